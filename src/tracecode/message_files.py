"""The message files of a landing directory: which may be read, which are new, which
changed or disappeared (their lines: ``message_lines``).

Only regular files under the landing directory are read. A symbolic link is followed
only to a regular file inside the landing directory; a link out of it, a dangling link,
a FIFO, socket or device is never opened and is reported instead (a FIFO would hang the
run, a link out would leak another file into the quarantine).

A registered file is taken as unchanged while its size, mtime, ctime and inode are as
registered (ctime cannot be set by a user, so an edit that keeps the mtime still shows);
only a file whose quick check fails is hashed again, and only a different SHA-256 makes
it changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from tracecode.db import Database
from tracecode.errors import InputError

log = logging.getLogger(__name__)

MESSAGE_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class MessageFile:
    """A regular file found under ``LANDING/messages``, with its stat at discovery."""

    rel: str  # path relative to LANDING/messages, '/'-separated
    path: Path  # what is opened: the file, or the target of a link inside the landing
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @property
    def quick(self) -> tuple[int, int, int, int]:
        return self.size, self.mtime_ns, self.ctime_ns, self.inode


@dataclass(frozen=True)
class FileNotice:
    """Something about a file that is not a line: refused, changed, or gone."""

    path: str  # relative to LANDING/messages
    kind: str  # 'refused', 'changed', 'disappeared'
    detail: str
    new: bool = True  # first noticed in this run


@dataclass(frozen=True)
class Plan:
    new: list[MessageFile]
    skipped: int
    # refused and changed files, and the files newly disappeared (not the ones known gone)
    notices: list[FileNotice]
    counts: dict[str, int]  # files by kind of notice now, known gone included
    # registered files touched but identical: their new stat is recorded, not re-hashed
    refreshed: list[MessageFile] = field(default_factory=list)


# -- discovery --------------------------------------------------------------------------


def discover(landing: Path) -> tuple[list[MessageFile], list[FileNotice]]:
    """Message files under ``LANDING/messages`` at any depth, and the entries refused."""
    root = landing / "messages"
    if not root.is_dir():
        raise InputError(
            f"{root} does not exist: a landing directory holds messages/ (the uploads, "
            "*.jsonl or *.jsonl.gz) and reference/ (see shared/contract.md)"
        )
    inside = landing.resolve()
    found: list[MessageFile] = []
    refused: list[FileNotice] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            refused.append(FileNotice(prefix.rstrip("/") or ".", "refused",
                                      f"directory cannot be listed: {e.strerror}"))
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel + "/"))
            elif entry.is_symlink():
                _follow_link(entry, rel, inside, found, refused)
            elif entry.name.endswith(MESSAGE_SUFFIXES):
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    refused.append(FileNotice(rel, "refused", _not_regular(st.st_mode)))
                elif not os.access(entry.path, os.R_OK):
                    # not registered: read once it is readable
                    refused.append(FileNotice(rel, "refused", "not readable (permission "
                                              "denied): read once it is"))
                else:
                    found.append(_message_file(rel, Path(entry.path), st))
    found.sort(key=lambda f: f.rel)
    refused.sort(key=lambda n: n.path)
    return found, refused


def _follow_link(
    entry: os.DirEntry[str], rel: str, inside: Path,
    found: list[MessageFile], refused: list[FileNotice],
) -> None:
    target = os.readlink(entry.path)
    try:
        resolved = Path(entry.path).resolve()
        st = resolved.stat()
    except (OSError, RuntimeError):  # dangling, or a loop of links
        if entry.name.endswith(MESSAGE_SUFFIXES):
            refused.append(FileNotice(rel, "refused",
                                      f"dangling symbolic link to {target}: nothing to read"))
        return
    if stat.S_ISDIR(st.st_mode):
        refused.append(FileNotice(rel, "refused",
                                  f"symbolic link to the directory {target}: not followed"))
    elif not entry.name.endswith(MESSAGE_SUFFIXES):
        return
    elif not resolved.is_relative_to(inside):
        refused.append(FileNotice(rel, "refused", f"symbolic link to {target}, outside the "
                                  "landing directory: not read"))
    elif not stat.S_ISREG(st.st_mode):
        refused.append(FileNotice(rel, "refused", "symbolic link to a "
                                  + _not_regular(st.st_mode)))
    else:
        found.append(_message_file(rel, resolved, st))


def _message_file(rel: str, path: Path, st: os.stat_result) -> MessageFile:
    return MessageFile(rel, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _not_regular(mode: int) -> str:
    kind = ("FIFO (named pipe)" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
    return f"{kind}: not read, only regular files are"


# -- planning ---------------------------------------------------------------------------


def plan(db: Database, landing: Path, select: Callable[[str], bool] | None = None) -> Plan:
    """Which files are new, which registered ones changed or disappeared, what was refused.

    A changed file is reported (its new content is not ingested) and does not hold back
    the other new files. The registry is compared in DuckDB: a run looks at the files
    whose quick check fails, not at every file of the history. ``select`` keeps the paths
    (relative to ``LANDING/messages``) to ingest, e.g. one day's folder; a registered file
    counts as disappeared only when it is gone from the whole landing directory.
    """
    found, notices = discover(landing)
    if select is not None:
        notices = [n for n in notices if select(n.path)]
    by_rel = {f.rel: f for f in found}
    db.register("seen_arrow", pa.table({
        "path": [f.rel for f in found] + [n.path for n in notices],
        "size": pa.array([f.size for f in found] + [None] * len(notices), pa.int64()),
        "mtime_ns": pa.array([f.mtime_ns for f in found] + [None] * len(notices), pa.int64()),
        "ctime_ns": pa.array([f.ctime_ns for f in found] + [None] * len(notices), pa.int64()),
        "inode": pa.array([f.inode for f in found] + [None] * len(notices), pa.int64()),
    }))
    looked_at = db.fetch_rows(
        "files new or failing the quick check",
        """select s.path, r.sha256
           from seen_arrow as s left join ingested_files as r using (path)
           where s.size is not null
             and (r.path is null
                  or (r.size_bytes, r.mtime_ns, r.ctime_ns, r.inode)
                     is distinct from (s.size, s.mtime_ns, s.ctime_ns, s.inode))
           order by s.path""",
    )
    (gone_total,) = db.fetch_one(
        "files disappeared",
        "select count(*) from ingested_files anti join seen_arrow using (path)",
    )
    gone_new = db.fetch_rows(
        "files newly disappeared",
        """select path from ingested_files anti join seen_arrow using (path)
           anti join (select path from file_notices where kind = 'disappeared') using (path)
           order by path""",
    )
    db.unregister("seen_arrow")
    new: list[MessageFile] = []
    refreshed: list[MessageFile] = []
    for rel, sha in looked_at:
        if select is not None and not select(rel):
            continue
        f = by_rel[rel]
        if sha is None:
            new.append(f)
            continue
        now = file_sha256(f.path)
        if now == sha:
            refreshed.append(f)
        else:
            notices.append(FileNotice(
                f.rel, "changed",
                f"content changed after it was ingested (SHA-256 {sha[:12]}… then, "
                f"{now[:12]}… now): not read again; deliver corrections as new files",
            ))
    counts = dict(Counter(n.kind for n in notices))
    if gone_total:
        counts["disappeared"] = int(gone_total)
    notices = _mark_known(db, notices) + [
        FileNotice(rel, "disappeared", "ingested earlier, no longer in the landing directory "
                   "(its records stay)") for (rel,) in gone_new]
    kept = len(found) if select is None else sum(1 for f in found if select(f.rel))
    return Plan(new, kept - len(new) - sum(n.kind == "changed" for n in notices),
                notices, counts, refreshed)


def _mark_known(db: Database, notices: list[FileNotice]) -> list[FileNotice]:
    """Set ``new`` false on the notices an earlier run already gave."""
    if not notices:
        return []
    db.register("notices_arrow", pa.table({"path": [n.path for n in notices]}))
    earlier = set(db.fetch_rows("earlier notices",
                                """select path, kind, detail from file_notices
                                   semi join notices_arrow using (path)"""))
    db.unregister("notices_arrow")
    return [FileNotice(n.path, n.kind, n.detail, (n.path, n.kind, n.detail) not in earlier)
            for n in notices]


def record_plan(db: Database, p: Plan, run_id: str) -> None:
    """Store the run's new notices (a refused entry also as one quarantined line) and the
    new stat of touched but identical files, in one transaction."""
    fresh = [n for n in p.notices if n.new]
    if not fresh and not p.refreshed:
        return
    with db.transaction():
        if fresh:
            db.register("notices_arrow", pa.table({
                "path": [n.path for n in fresh], "kind": [n.kind for n in fresh],
                "detail": [n.detail for n in fresh],
            }))
            db.execute(
                "file notices",
                """insert into file_notices
                   select path, kind, detail, $run_id, current_timestamp from notices_arrow""",
                {"run_id": run_id},
            )
            db.execute(
                "quarantine refused files",
                """insert into quarantine
                   select 'messages/' || path, 0, detail, null, $run_id
                   from notices_arrow where kind = 'refused'""",
                {"run_id": run_id},
            )
            db.unregister("notices_arrow")
        if p.refreshed:
            db.register("refreshed_arrow", pa.table({
                "path": [f.rel for f in p.refreshed],
                "mtime_ns": [f.mtime_ns for f in p.refreshed],
                "ctime_ns": [f.ctime_ns for f in p.refreshed],
                "inode": [f.inode for f in p.refreshed],
            }))
            db.execute(
                "refresh file stat",
                """update ingested_files as f
                   set mtime_ns = r.mtime_ns, ctime_ns = r.ctime_ns, inode = r.inode
                   from refreshed_arrow as r where f.path = r.path""",
            )
            db.unregister("refreshed_arrow")
    for n in fresh[:20]:
        log.warning("file %s %s: %s", n.path, n.kind, n.detail)
    if len(fresh) > 20:
        log.warning("... and %d more file notices (table file_notices)", len(fresh) - 20)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
