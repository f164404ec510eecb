"""Ingest a landing directory: reference CSVs and NHSA upload messages into DuckDB.

Messages are read as raw lines in large blocks (numpy finds the newlines, Arrow carries
the bytes without copying) and parsed, validated and typed by DuckDB's JSON functions in
``sql/ingest/parse_lines.sql``: no Python runs per line. Files are merged in groups, each
group in one transaction together with its entries in the file registry, so a crash
leaves whole files in or out and a re-run finishes the job.

Lines of a rare, non-spec shape (batch messages, upper-case keys, codes outside
``drugtracinfo``...) are rewritten by :mod:`tracecode.shapes` and parsed a second time.

For every file: lines read = records stored + records replaced + lines quarantined, where
a batch line counts once (stored when any of its records is current) and its records are
counted in ``batch_records``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from tracecode import codes, shapes
from tracecode.db import Database, read_sql
from tracecode.errors import ChangedFileError, InputError
from tracecode.settings import IngestSettings

log = logging.getLogger(__name__)

MESSAGE_SUFFIXES = (".jsonl", ".jsonl.gz")
BLOCK_BYTES = 64 << 20
GROUP_BYTES = 1 << 30


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStats:
    path: str
    lines_read: int
    records_stored: int
    records_replaced: int
    lines_quarantined: int
    # records stored from this file's batch lines (each such line counts once above)
    batch_records: int = 0

    def balanced(self) -> bool:
        return self.lines_read == (
            self.records_stored + self.records_replaced + self.lines_quarantined
        )


@dataclass(frozen=True)
class IngestResult:
    files: tuple[FileStats, ...] = ()
    files_skipped: int = 0
    # stored records of earlier runs that a line of this run replaced
    earlier_records_replaced: int = 0
    records_retracted: int = 0
    codes_stored: int = 0
    # records kept beside another record under the same key (a reused fixmedins_bchno)
    key_collisions: int = 0
    seconds: float = 0.0

    @property
    def batch_records(self) -> int:
        return sum(f.batch_records for f in self.files)

    @property
    def lines_read(self) -> int:
        return sum(f.lines_read for f in self.files)

    @property
    def records_stored(self) -> int:
        return sum(f.records_stored for f in self.files)

    @property
    def records_replaced(self) -> int:
        return sum(f.records_replaced for f in self.files)

    @property
    def lines_quarantined(self) -> int:
        return sum(f.lines_quarantined for f in self.files)


# -- message files ----------------------------------------------------------------------


@dataclass(frozen=True)
class _PlannedFile:
    rel: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class _Group:
    files: list[_PlannedFile] = field(default_factory=list)
    size: int = 0


def discover_message_files(landing: Path) -> list[tuple[str, Path]]:
    """Message files under ``LANDING/messages`` at any depth, by relative path."""
    root = landing / "messages"
    if not root.is_dir():
        raise InputError(
            f"{root} does not exist: a landing directory holds messages/ (the uploads, "
            "*.jsonl or *.jsonl.gz) and reference/ (see shared/contract.md)"
        )
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(MESSAGE_SUFFIXES):
                path = Path(dirpath) / name
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def plan_message_files(
    db: Database, landing: Path, select: Callable[[str], bool] | None = None
) -> tuple[list[_PlannedFile], int]:
    """Which files are new; raise if an ingested file has changed since.

    A file whose size and mtime are as registered is taken as unchanged without reading
    it; otherwise its SHA-256 decides (a touched but identical file is fine). ``select``
    keeps only the paths (relative to ``LANDING/messages``) it says yes to.
    """
    known = {
        row[0]: row[1:]
        for row in db.fetch_rows(
            "registered files", "select path, sha256, size_bytes, mtime_ns from ingested_files"
        )
    }
    new: list[_PlannedFile] = []
    changed: list[str] = []
    skipped = 0
    for rel, path in discover_message_files(landing):
        if select is not None and not select(rel):
            continue
        st = path.stat()
        if rel not in known:
            new.append(_PlannedFile(rel, path, st.st_size, st.st_mtime_ns))
            continue
        sha, size, mtime_ns = known[rel]
        if (size, mtime_ns) != (st.st_size, st.st_mtime_ns) and _sha256(path) != sha:
            changed.append(rel)
        else:
            skipped += 1
    if changed:
        listing = "\n  ".join(changed)
        raise ChangedFileError(
            f"{len(changed)} message file(s) already ingested have different content now:"
            f"\n  {listing}\nIngested files must not change. Restore the original file, and "
            "deliver corrections as new files (a re-sent record replaces the old one; a "
            "3507 deletes one)."
        )
    return new, skipped


def ingest_messages(
    db: Database,
    landing: Path,
    run_id: str,
    *,
    block_bytes: int = BLOCK_BYTES,
    group_bytes: int = GROUP_BYTES,
    settings: IngestSettings | None = None,
    select: Callable[[str], bool] | None = None,
) -> IngestResult:
    """Ingest every message file under ``LANDING/messages`` not ingested before (of those
    ``select`` keeps, e.g. one day's folder)."""
    started = time.perf_counter()
    new, skipped = plan_message_files(db, landing, select)
    groups: list[_Group] = []
    for planned in new:
        if not groups or groups[-1].size >= group_bytes:
            groups.append(_Group())
        groups[-1].files.append(planned)
        groups[-1].size += planned.size

    all_stats: list[FileStats] = []
    earlier_replaced = 0
    codes_stored = 0
    collisions = 0
    for group in groups:
        stats, replaced, n_codes, n_collisions = _ingest_group(
            db, group.files, run_id, block_bytes, settings or IngestSettings())
        all_stats.extend(stats)
        earlier_replaced += replaced
        codes_stored += n_codes
        collisions += n_collisions
    retracted = _count_retracted(db, run_id) if new else 0
    result = IngestResult(
        files=tuple(all_stats),
        files_skipped=skipped,
        earlier_records_replaced=earlier_replaced,
        records_retracted=retracted,
        codes_stored=codes_stored,
        key_collisions=collisions,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "ingest: %d new files (%d already in), %d lines read, %d stored, %d replaced, "
        "%d quarantined, %d codes, %d retracted, %d key collisions, %.1fs",
        len(result.files), skipped, result.lines_read, result.records_stored,
        result.records_replaced, result.lines_quarantined, codes_stored, retracted,
        collisions, result.seconds,
    )
    return result


def _ingest_group(
    db: Database, files: Sequence[_PlannedFile], run_id: str, block_bytes: int,
    settings: IngestSettings,
) -> tuple[list[FileStats], int, int, int]:
    parse_sql = read_sql("ingest/parse_lines.sql")
    with db.transaction():
        _create_stage(db, settings)
        lines_read: dict[str, int] = {}
        digests: dict[str, str] = {}
        file_ids: dict[str, int] = {}
        for planned in files:
            (file_id,) = db.fetch_one("next file id", "select nextval('file_id_seq')")
            file_ids[planned.rel] = file_id
            params = {"run_id": run_id}
            reader = _LineReader(planned.path, block_bytes, file_id, planned.rel)
            for batch in reader:
                db.register("batch_lines", batch)
                db.execute(
                    f"parse {planned.rel}",
                    "insert into stage_parsed by name " + parse_sql,
                    params,
                    source="ingest/parse_lines.sql",
                )
                db.unregister("batch_lines")
            if reader.error is not None:
                _quarantine_unreadable(db, planned.rel, reader, run_id)
            lines_read[planned.rel] = reader.lines
            digests[planned.rel] = reader.sha256
        shapes.reshape_stage(db, parse_sql, run_id)
        _split_stage(db)
        _stage_code_map(db)
        db.run_file("ingest/merge_stage.sql", {"run_id": run_id})
        stats = _file_stats(db, files, lines_read)
        earlier_replaced, n_codes, n_collisions = db.fetch_one(
            "merge counts",
            """select count(*) filter (where wins and rival_rec_id is not null),
                      coalesce(sum(n_codes), 0),
                      (select key_collisions from stage_collisions)
               from stage_decided""",
        )
        db.execute(
            "quarantine lines",
            """insert into quarantine
               select 'messages/' || src_file, line_no, reason, raw_text, $run_id
               from stage_bad""",
            {"run_id": run_id},
        )
        now = datetime.now()
        for planned, st in zip(files, stats, strict=True):
            db.execute(
                "register file",
                """insert into ingested_files
                       (file_id, path, sha256, size_bytes, mtime_ns, lines_read,
                        records_stored, records_replaced, lines_quarantined, batch_records,
                        run_id, ingested_at)
                   values ($file_id, $path, $sha, $size, $mtime, $read, $stored, $replaced,
                           $quarantined, $batch, $run_id, $now)""",
                {
                    "file_id": file_ids[planned.rel], "path": planned.rel,
                    "sha": digests[planned.rel], "size": planned.size,
                    "mtime": planned.mtime_ns, "read": st.lines_read,
                    "stored": st.records_stored, "replaced": st.records_replaced,
                    "quarantined": st.lines_quarantined, "batch": st.batch_records,
                    "run_id": run_id, "now": now,
                },
            )
            if not st.balanced():
                raise AssertionError(f"line accounting does not add up for {st}")
        _drop_stage(db)
    return stats, int(earlier_replaced), int(n_codes), int(n_collisions)


def _create_stage(db: Database, settings: IngestSettings) -> None:
    db.run_file("ingest/parse_macros.sql")
    db.execute(
        "ingest bounds",
        """create or replace temp table ingest_bounds as
           select $earliest::timestamp as earliest_time,
                  $now::timestamp + to_hours($future) as latest_inf_time,
                  $future::integer as future_tolerance_hours,
                  $after::integer as event_after_upload_hours,
                  $offset::integer as local_offset_minutes,
                  $max_count::double as max_count,
                  $max_price::double as max_price,
                  $earliest_date::date as earliest_date,
                  $latest_date::date as latest_date""",
        {
            "earliest": settings.earliest_time, "now": datetime.now(),
            "future": settings.future_tolerance_hours,
            "after": settings.event_after_upload_hours,
            "offset": settings.local_offset_minutes, "max_count": settings.max_count,
            "max_price": settings.max_price, "earliest_date": settings.earliest_date,
            "latest_date": settings.latest_date,
        },
    )
    db.execute(
        "stage table",
        """create or replace temp table stage_parsed as
           select null::bigint as line_no, null::varchar as raw_text, null::varchar as reason,
                  null::boolean as needs_shape,
                  * exclude (is_current, line_no, superseded_run_id), null::varchar[] as codes
           from records limit 0""",
    )


def _split_stage(db: Database) -> None:
    # rec_id: one number per record in ingest order, above every stored one (a batch line
    # yields several records, so the line alone cannot name them)
    (base,) = db.fetch_one("last rec_id", "select coalesce(max(rec_id), 0) from records")
    # (file, line, element) numbered without sorting the stage: each file takes a block of
    # (its last line + 1) * (the group's largest batch + 1) ids
    db.execute(
        "stage valid lines",
        """create or replace temp table stage_records as
           with per_file as (
               select src_file, max(line_no) + 1 as n from stage_parsed group by src_file
           ),
           offsets as (
               select src_file,
                      coalesce(sum(n) over (order by src_file rows between unbounded preceding
                                                              and 1 preceding), 0) as before
               from per_file
           ),
           width as (select coalesce(max(elem_no), 0) + 1 as k from stage_parsed)
           select p.* exclude (raw_text, reason, needs_shape)
                      replace (($base + (o.before + p.line_no) * w.k + p.elem_no)::bigint
                               as rec_id)
           from stage_parsed as p
           join offsets as o using (src_file)
           cross join width as w
           where p.reason is null""",
        {"base": base + 1},
    )
    db.execute(
        "stage bad lines",
        """create or replace temp table stage_bad as
           select src_file, line_no, reason, raw_text from stage_parsed where reason is not null""",
    )
    db.execute("drop parsed stage", "drop table stage_parsed")


def _stage_code_map(db: Database) -> None:
    """Classify the few codes that are not the 20-digit form (GS1 or invalid) in Python."""
    rows = db.fetch_rows(
        "odd codes",
        """select distinct c
           from (select unnest(codes) as c from stage_records where n_codes > 0)
           where not regexp_full_match(c, '8[0-9]{19}')""",
    )
    db.register("code_map_arrow", codes.code_map(r[0] for r in rows))
    db.execute("code map", "create or replace temp table code_map as select * from code_map_arrow")
    db.unregister("code_map_arrow")


def _file_stats(
    db: Database, files: Sequence[_PlannedFile], lines_read: dict[str, int]
) -> list[FileStats]:
    # a line counts once: stored when any of its records (batch elements) won
    counts = {
        row[0]: row[1:]
        for row in db.fetch_rows(
            "per-file counts",
            """select src_file,
                      sum(stored)::bigint, sum(replaced)::bigint, sum(quarantined)::bigint,
                      sum(batch_records)::bigint
               from (
                   select src_file, bool_or(wins)::int as stored,
                          (not bool_or(wins))::int as replaced, 0 as quarantined,
                          count(*) filter (where wins and elem_no > 0) as batch_records
                   from stage_decided
                   group by src_file, line_no
                   union all
                   select src_file, 0, 0, 1, 0 from stage_bad
               )
               group by src_file""",
        )
    }
    return [
        FileStats(f.rel, lines_read[f.rel], *(int(x) for x in counts.get(f.rel, (0, 0, 0, 0))))
        for f in files
    ]


def _quarantine_unreadable(db: Database, rel: str, reader: _LineReader, run_id: str) -> None:
    """A file that breaks off (truncated gzip, I/O error) quarantines the rest as one line."""
    reader.lines += 1
    db.execute(
        "quarantine unreadable rest",
        """insert into stage_parsed (src_file, line_no, reason, raw_text)
           values ($rel, $line, $reason, null)""",
        {"rel": rel, "line": reader.lines, "reason": f"file unreadable from here: {reader.error}"},
    )


def _drop_stage(db: Database) -> None:
    for table in ("stage_records", "stage_bad", "stage_keys", "stored_rivals",
                  "stage_decided", "stage_collisions", "code_map", "ingest_bounds"):
        db.execute(f"drop {table}", f"drop table if exists {table}")


def _count_retracted(db: Database, run_id: str) -> int:
    """Stored records (of any run) that a 3507 of this run deletes."""
    (n,) = db.fetch_one(
        "retracted by this run",
        """select count(*)
           from current_records r
           semi join (
               select fixmedins_code, fixmedins_bchno, inv_data_type, inf_time
               from current_records
               where infno = '3507' and run_id = $run_id
           ) d
             on d.fixmedins_code = r.fixmedins_code
            and d.fixmedins_bchno = r.fixmedins_bchno
            and d.inv_data_type = case r.infno when '3501' then '1' when '3502' then '2'
                                    when '3503' then '3' when '3504' then '3' else '4' end
            and d.inf_time >= r.inf_time
           where r.infno <> '3507'""",
        {"run_id": run_id},
    )
    return int(n)


class _HashingReader(io.RawIOBase):
    """Passes bytes through while computing the file's SHA-256."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        if n:
            self.digest.update(memoryview(b)[:n])
        return n or 0

    def drain(self) -> None:
        while chunk := self.raw.read(1 << 20):
            self.digest.update(chunk)


class _LineReader:
    """Yields a file's lines as Arrow tables ``(txt, bad_bytes, line_no)``, a block at a time.

    Each ``txt`` keeps its newline (the SQL strips it); a last line without one gets one.
    ``sha256`` covers the file's bytes as stored (compressed, for .gz).
    """

    def __init__(self, path: Path, block_bytes: int, file_id: int, rel: str) -> None:
        self.path = path
        self.file_id = file_id
        self.rel = rel
        self.block_bytes = block_bytes
        self.lines = 0
        self.sha256 = ""
        self.error: str | None = None

    def __iter__(self) -> Iterator[pa.Table]:
        with open(self.path, "rb") as fh:
            hashing = _HashingReader(fh)
            stream: BinaryIO = (
                gzip.GzipFile(fileobj=hashing)  # type: ignore[assignment]
                if self.path.name.endswith(".gz")
                else io.BufferedReader(hashing, buffer_size=1 << 20)
            )
            carry = b""
            while True:
                try:
                    chunk = stream.read(self.block_bytes)
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    self.error = f"{type(e).__name__}: {e}"
                    break
                if not chunk:
                    break
                buf = carry + chunk
                cut = buf.rfind(b"\n") + 1
                carry = buf[cut:]
                if cut:
                    yield self._batch(buf[:cut])
            if carry and self.error is None:
                yield self._batch(carry + b"\n")
            elif carry:
                self.lines += 1  # the broken last line is reported with the error
            hashing.drain()
            self.sha256 = hashing.digest.hexdigest()

    def _batch(self, data: bytes) -> pa.Table:
        arr = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10) + 1
        offsets = np.empty(len(ends) + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        raw = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        line_no = np.arange(self.lines + 1, self.lines + len(ends) + 1, dtype=np.int64)
        self.lines += len(ends)
        try:
            # Arrow validates the whole block's UTF-8 at C speed
            txt = raw.cast(pa.large_string())
            bad = pa.nulls(len(raw), pa.large_string())
        except pa.ArrowInvalid:
            txt, bad = _split_invalid_utf8(raw)
        n = len(line_no)
        return pa.table({
            "txt": txt, "bad_bytes": bad, "line_no": line_no,
            "file_id": pa.repeat(self.file_id, n).cast(pa.int64()),
            "src_file": pa.repeat(self.rel, n),
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


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
