"""The message files of a landing directory: which may be read, which are new or changed,
and their bytes, packed as lines of many files into one Arrow block for the parse SQL.

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

import codecs
import hashlib
import logging
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from tracecode.db import Database
from tracecode.errors import InputError

log = logging.getLogger(__name__)

MESSAGE_SUFFIXES = (".jsonl", ".jsonl.gz")
# a raw CR is never inside a JSON text: one not followed by LF ends a line (old Mac files)
_LONE_CR = re.compile(rb"\r(?!\n|\Z)")
_GZ_PIECE = 1 << 16


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
    notices: list[FileNotice]
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
                if stat.S_ISREG(st.st_mode):
                    found.append(_message_file(rel, Path(entry.path), st))
                else:
                    refused.append(FileNotice(rel, "refused", _not_regular(st.st_mode)))
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


def plan(db: Database, landing: Path) -> Plan:
    """Which files are new, which registered ones changed or disappeared, what was refused.

    A changed file is reported (its new content is not ingested) and does not hold back
    the other new files.
    """
    known = {
        row[0]: row[1:]
        for row in db.fetch_rows(
            "registered files",
            """select path, sha256, size_bytes, mtime_ns, coalesce(ctime_ns, -1),
                      coalesce(inode, -1)
               from ingested_files""",
        )
    }
    found, notices = discover(landing)
    new: list[MessageFile] = []
    refreshed: list[MessageFile] = []
    skipped = 0
    for f in found:
        if f.rel not in known:
            new.append(f)
            continue
        sha, *quick = known[f.rel]
        if tuple(quick) == f.quick:
            skipped += 1
            continue
        now = file_sha256(f.path)
        if now == sha:
            refreshed.append(f)
            skipped += 1
        else:
            notices.append(FileNotice(
                f.rel, "changed",
                f"content changed after it was ingested (SHA-256 {sha[:12]}… then, "
                f"{now[:12]}… now): not read again; deliver corrections as new files",
            ))
    seen = {f.rel for f in found} | {n.path for n in notices}
    notices += [FileNotice(rel, "disappeared", "ingested earlier, no longer in the landing "
                           "directory (its records stay)")
                for rel in sorted(known.keys() - seen)]
    return Plan(new, skipped, _mark_known(db, notices), refreshed)


def _mark_known(db: Database, notices: list[FileNotice]) -> list[FileNotice]:
    """Set ``new`` false on the notices an earlier run already gave."""
    if not notices:
        return []
    earlier = set(db.fetch_rows("earlier notices",
                                "select path, kind, detail from file_notices"))
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


# -- reading ----------------------------------------------------------------------------


@dataclass
class FileRead:
    """What reading one file gave. ``error`` says where it broke off, ``tail`` is the
    partial line at the break (the caller quarantines both as one more line)."""

    lines: int = 0
    size: int = 0  # bytes read, as stored (compressed, for .gz)
    sha256: str = ""
    error: str | None = None
    tail: bytes = b""


def read_lines(
    f: MessageFile, block_bytes: int, out: FileRead
) -> Iterator[tuple[int, bytes, int]]:
    """The file's complete lines, a block at a time: (number of the block's first line,
    the block, ending with a newline, its number of lines).

    A UTF-8 BOM at the start is dropped, a lone CR ends a line, a last line without a
    newline gets one; a truncated or corrupt gzip keeps every complete line before the
    break. ``out`` is filled in as the file is read.
    """
    digest = hashlib.sha256()
    carry = b""
    first = True
    try:
        for chunk in _decoded(f, block_bytes, digest, out):
            if first:
                first = False
                if chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[3:]
            buf = carry + chunk if carry else chunk
            if b"\r" in buf:
                buf = _LONE_CR.sub(b"\n", buf)
            cut = buf.rfind(b"\n") + 1
            if cut:
                block = buf[:cut]
                n = block.count(b"\n")
                yield out.lines + 1, block, n
                out.lines += n
            carry = buf[cut:]
    except _Broken as e:
        out.error = f"{e} after line {out.lines}"
        out.tail = carry
    else:
        if carry:
            yield out.lines + 1, carry + b"\n", 1
            out.lines += 1
    out.sha256 = digest.hexdigest()


class _Broken(Exception):
    pass


def _decoded(
    f: MessageFile, block_bytes: int, digest: hashlib._Hash, out: FileRead
) -> Iterator[bytes]:
    raw = _raw(f, block_bytes, digest, out)
    if not f.rel.endswith(".gz"):
        yield from raw
        return
    d = zlib.decompressobj(wbits=31)
    started = False  # d has been fed: a member is open until d.eof
    for raw_block in raw:
        # fed in small pieces, so that a corrupt piece costs only what it decodes to
        for at in range(0, len(raw_block), _GZ_PIECE):
            data = raw_block[at: at + _GZ_PIECE]
            while data:
                if d.eof:  # a member ended: another may follow (concatenated gzip)
                    if not data.startswith(b"\x1f\x8b"):
                        raise _Broken("bytes that are not gzip")
                    d = zlib.decompressobj(wbits=31)
                started = True
                before = d.copy()
                try:
                    chunk = d.decompress(data, block_bytes)
                except zlib.error as e:
                    yield from _up_to_the_damage(before, data)
                    raise _Broken(f"corrupt gzip ({e})") from e
                if chunk:
                    yield chunk
                data = d.unused_data if d.eof else d.unconsumed_tail
    if started and not d.eof:
        raise _Broken("truncated gzip")


def _up_to_the_damage(d: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """What a piece decodes to before its first bad byte, fed a byte at a time."""
    for i in range(len(data)):
        try:
            chunk = d.decompress(data[i: i + 1])
        except zlib.error:
            return
        if chunk:
            yield chunk


def _raw(f: MessageFile, block_bytes: int, digest: hashlib._Hash, out: FileRead
         ) -> Iterator[bytes]:
    """The file's bytes, hashed as read. Opened without following a link and without
    blocking, and checked to be a regular file before the first read."""
    try:
        fd = os.open(f.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _Broken(f"cannot be opened ({e.strerror})") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Broken("no longer a regular file")
        while True:
            try:
                data = os.read(fd, block_bytes)
            except OSError as e:
                raise _Broken(f"read error ({e.strerror})") from e
            if not data:
                return
            digest.update(data)
            out.size += len(data)
            yield data
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- packing ----------------------------------------------------------------------------


class LinePacker:
    """Lines of many files gathered into one ``batch_lines`` Arrow table: the parse SQL
    runs once per block of ``block_bytes``, not once per file."""

    def __init__(self, block_bytes: int) -> None:
        self.block_bytes = block_bytes
        self.parts: list[bytes] = []
        self.part_file: list[int] = []  # index of the part's file in the group
        self.part_first: list[int] = []  # line number of the part's first line
        self.part_lines: list[int] = []
        self.size = 0

    def add(self, file_index: int, first_line: int, block: bytes, n_lines: int) -> None:
        self.parts.append(block)
        self.part_file.append(file_index)
        self.part_first.append(first_line)
        self.part_lines.append(n_lines)
        self.size += len(block)

    def full(self) -> bool:
        return self.size >= self.block_bytes

    def take(self, file_ids: np.ndarray, rels: pa.Array) -> pa.Table | None:
        """The packed lines as a table ``(txt, bad_bytes, line_no, file_id, src_file)``,
        emptying the packer; None when there is nothing."""
        if not self.parts:
            return None
        data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        counts = np.asarray(self.part_lines, dtype=np.int64)
        arr = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10) + 1
        n = len(ends)
        assert n == int(counts.sum()), "line count of a packed block"
        offsets = np.empty(n + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        raw = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        starts = np.cumsum(counts) - counts
        first = np.asarray(self.part_first, dtype=np.int64)
        line_no = np.arange(n, dtype=np.int64) + np.repeat(first - starts, counts)
        file_index = np.repeat(np.asarray(self.part_file, dtype=np.int64), counts)
        try:
            # Arrow validates the whole block's UTF-8 at C speed
            txt = raw.cast(pa.large_string())
            bad = pa.nulls(n, pa.large_string())
        except pa.ArrowInvalid:
            txt, bad = _split_invalid_utf8(raw)
        self.__init__(self.block_bytes)  # type: ignore[misc]
        return pa.table({
            "txt": txt, "bad_bytes": bad, "line_no": line_no,
            "file_id": pa.array(file_ids[file_index], pa.int64()),
            "src_file": rels.take(pa.array(file_index)),
        })


def _split_invalid_utf8(raw: pa.LargeBinaryArray) -> tuple[pa.Array, pa.Array]:
    """For a block with invalid UTF-8 (rare): the text of the good lines, and the bad ones
    with their bytes escaped (``\\xff``) for the quarantine."""
    txt: list[str | None] = []
    bad: list[str | None] = []
    for line in raw.to_pylist():
        try:
            txt.append(line.decode("utf-8"))
            bad.append(None)
        except UnicodeDecodeError:
            txt.append(None)
            bad.append(line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace"))
    return pa.array(txt, pa.large_string()), pa.array(bad, pa.large_string())
