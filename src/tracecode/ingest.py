"""Ingest a landing directory: reference CSVs and NHSA upload messages into DuckDB.

Messages are read as raw lines in large blocks (numpy finds the newlines, Arrow carries
the bytes without copying) and parsed, validated and typed by DuckDB's JSON functions in
``sql/ingest/parse_lines.sql``: no Python runs per line. Files are merged in groups, each
group in one transaction together with its entries in the file registry, so a crash
leaves whole files in or out and a re-run finishes the job.

For every file: lines read = records stored + records replaced + lines quarantined.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from tracecode import codes
from tracecode.db import Database, read_sql
from tracecode.errors import ChangedFileError, InputError

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
    seconds: float = 0.0

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


@dataclass(frozen=True)
class ReferenceResult:
    name: str
    loaded: bool  # False: unchanged since the last run
    encoding: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0


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


def plan_message_files(db: Database, landing: Path) -> tuple[list[_PlannedFile], int]:
    """Which files are new; raise if an ingested file has changed since.

    A file whose size and mtime are as registered is taken as unchanged without reading
    it; otherwise its SHA-256 decides (a touched but identical file is fine).
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
) -> IngestResult:
    """Ingest every message file under ``LANDING/messages`` not ingested before."""
    started = time.perf_counter()
    new, skipped = plan_message_files(db, landing)
    groups: list[_Group] = []
    for planned in new:
        if not groups or groups[-1].size >= group_bytes:
            groups.append(_Group())
        groups[-1].files.append(planned)
        groups[-1].size += planned.size

    all_stats: list[FileStats] = []
    earlier_replaced = 0
    codes_stored = 0
    for group in groups:
        stats, replaced, n_codes = _ingest_group(db, group.files, run_id, block_bytes)
        all_stats.extend(stats)
        earlier_replaced += replaced
        codes_stored += n_codes
    retracted = _count_retracted(db, run_id) if new else 0
    result = IngestResult(
        files=tuple(all_stats),
        files_skipped=skipped,
        earlier_records_replaced=earlier_replaced,
        records_retracted=retracted,
        codes_stored=codes_stored,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "ingest: %d new files (%d already in), %d lines read, %d stored, %d replaced, "
        "%d quarantined, %d codes, %d retracted, %.1fs",
        len(result.files), skipped, result.lines_read, result.records_stored,
        result.records_replaced, result.lines_quarantined, codes_stored, retracted,
        result.seconds,
    )
    return result


def _ingest_group(
    db: Database, files: Sequence[_PlannedFile], run_id: str, block_bytes: int
) -> tuple[list[FileStats], int, int]:
    parse_sql = read_sql("ingest/parse_lines.sql")
    with db.transaction():
        _create_stage(db)
        lines_read: dict[str, int] = {}
        digests: dict[str, str] = {}
        file_ids: dict[str, int] = {}
        for planned in files:
            (file_id,) = db.fetch_one("next file id", "select nextval('file_id_seq')")
            file_ids[planned.rel] = file_id
            params = {"src_file": planned.rel, "file_id": file_id, "run_id": run_id}
            reader = _LineReader(planned.path, block_bytes)
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
        _split_stage(db)
        _stage_code_map(db)
        db.run_file("ingest/merge_stage.sql", {"run_id": run_id})
        stats = _file_stats(db, files, lines_read)
        earlier_replaced, n_codes = db.fetch_one(
            "merge counts",
            """select count(*) filter (where wins and rival_rec_id is not null),
                      coalesce(sum(n_codes), 0)
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
                """insert into ingested_files values ($file_id, $path, $sha, $size, $mtime,
                   $read, $stored, $replaced, $quarantined, $run_id, $now)""",
                {
                    "file_id": file_ids[planned.rel], "path": planned.rel,
                    "sha": digests[planned.rel], "size": planned.size,
                    "mtime": planned.mtime_ns, "read": st.lines_read,
                    "stored": st.records_stored, "replaced": st.records_replaced,
                    "quarantined": st.lines_quarantined, "run_id": run_id, "now": now,
                },
            )
            if not st.balanced():
                raise AssertionError(f"line accounting does not add up for {st}")
        _drop_stage(db)
    return stats, int(earlier_replaced), int(n_codes)


def _create_stage(db: Database) -> None:
    db.execute(
        "stage table",
        """create or replace temp table stage_parsed as
           select null::bigint as line_no, null::varchar as raw_text, null::varchar as reason,
                  * exclude (is_current, line_no, superseded_run_id), null::varchar[] as codes
           from records limit 0""",
    )


def _split_stage(db: Database) -> None:
    db.execute(
        "stage valid lines",
        """create or replace temp table stage_records as
           select * exclude (raw_text, reason) from stage_parsed where reason is null""",
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
    counts = {
        row[0]: row[1:]
        for row in db.fetch_rows(
            "per-file counts",
            """select src_file,
                      sum(stored)::bigint, sum(replaced)::bigint, sum(quarantined)::bigint
               from (
                   select src_file, wins::int as stored, (not wins)::int as replaced,
                          0 as quarantined
                   from stage_decided
                   union all
                   select src_file, 0, 0, 1 from stage_bad
               )
               group by src_file""",
        )
    }
    return [
        FileStats(f.rel, lines_read[f.rel], *(int(x) for x in counts.get(f.rel, (0, 0, 0))))
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
                  "stage_decided", "code_map"):
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

    def __init__(self, path: Path, block_bytes: int) -> None:
        self.path = path
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
        return pa.table({"txt": txt, "bad_bytes": bad, "line_no": line_no})


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


# -- reference files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A reference column: its SQL type, whether it must be present, and a check on the
    typed value (SQL, the value written ``VALUE``), with what to say when it fails."""

    name: str
    sql_type: str = "varchar"
    required: bool = False
    check: str | None = None
    says: str = ""


REFERENCE: dict[str, tuple[Column, ...]] = {
    "institutions": (
        Column("fixmedins_code", required=True),
        Column("fixmedins_name"),
        Column("fixmedins_type", check="VALUE in ('pharmacy', 'clinic', 'hospital')",
               says="is not pharmacy, clinic or hospital"),
        Column("admdvs", required=True, check="regexp_full_match(VALUE, '[0-9]{6}')",
               says="is not a 6-digit region code"),
        Column("open_time", "time"),
        Column("close_time", "time"),
    ),
    "catalog": (
        Column("med_list_codg", required=True),
        Column("drug_name"),
        Column("trace_prefix", check="regexp_full_match(VALUE, '[0-9]{7}')",
               says="is not 7 digits"),
        Column("pack_units", "double", check="VALUE > 0", says="is not a positive number"),
        Column("pack_price", "double", check="VALUE >= 0", says="is negative"),
        Column("gender_limit", check="VALUE in ('F', 'M')", says="is not F or M"),
        Column("min_age", "integer", check="VALUE >= 0", says="is negative"),
        Column("max_age", "integer", check="VALUE >= 0", says="is negative"),
    ),
    "persons": (
        Column("psn_no", required=True),
        Column("certno"),
        Column("psn_name"),
        Column("gender", check="VALUE in ('F', 'M')", says="is not F or M"),
        Column("birth_date", "date"),
        Column("insu_admdvs"),
        Column("death_date", "date"),
    ),
    "code_issuance": (
        Column("trace_prefix", required=True, check="regexp_full_match(VALUE, '[0-9]{7}')",
               says="is not 7 digits"),
        Column("serial_from", "bigint", required=True, check="VALUE between 0 and 999999999",
               says="is not a 9-digit serial"),
        Column("serial_to", "bigint", required=True, check="VALUE between 0 and 999999999",
               says="is not a 9-digit serial"),
        Column("manu_lotnum"),
        Column("manu_date", "date"),
        Column("expy_end", "date"),
    ),
}


def load_reference(
    db: Database, landing: Path, run_id: str, *, encoding: str | None = None
) -> list[ReferenceResult]:
    """Load each reference CSV whose content changed since it was last loaded.

    ``encoding`` forces one (e.g. ``gb18030``); by default UTF-8 (with or without BOM) is
    tried and GB18030, a superset of GBK, is used when the file is not valid UTF-8.
    """
    folder = landing / "reference"
    missing = [n for n in REFERENCE if not (folder / f"{n}.csv").is_file()]
    if missing:
        raise InputError(
            f"reference file(s) missing in {folder}: "
            + ", ".join(f"{n}.csv" for n in missing)
            + ". Every landing directory needs all four (see shared/contract.md)."
        )
    loaded = dict(db.fetch_rows("reference hashes", "select name, sha256 from reference_files"))
    results = []
    for name, columns in REFERENCE.items():
        path = folder / f"{name}.csv"
        sha = _sha256(path)
        if loaded.get(name) == sha:
            results.append(ReferenceResult(name, loaded=False))
            continue
        results.append(_load_reference_file(db, name, path, columns, sha, run_id, encoding))
    return results


def _load_reference_file(
    db: Database, name: str, path: Path, columns: tuple[Column, ...], sha: str,
    run_id: str, encoding: str | None,
) -> ReferenceResult:
    rel = f"reference/{path.name}"
    with _as_utf8(path, encoding) as (utf8_path, used), db.transaction():
        # the dialect is the contract's (comma, double quotes) and the header is read
        # here, so DuckDB's sniffer cannot be misled by a malformed row
        names = _csv_header(utf8_path, rel)
        db.execute(
            f"read {rel}",
            """create or replace temp table ref_raw as
                   select * from read_csv($path, header = true, auto_detect = false,
                                          columns = $columns, delim = ',', quote = '"',
                                          escape = '"', strict_mode = false,
                                          store_rejects = true,
                                          rejects_table = 'ref_rejects',
                                          rejects_scan = 'ref_rejects_scan')""",
            {"path": str(utf8_path), "columns": {n: "VARCHAR" for n in names}},
        )
        # rows DuckDB could not split (wrong column count...) are in ref_rejects with
        # their line; the k-th accepted row is the k-th line (after the header) not there
        db.execute(
            f"lines of {rel}",
            """create or replace temp table ref_lines as
                   select line_no, row_number() over (order by line_no) - 1 as k
                   from (select range as line_no
                         from range(2, 2 + (select count(*) from ref_raw)
                                       + (select count(*) from ref_rejects)))
                   anti join ref_rejects on ref_rejects.line = line_no""",
        )
        header = {
            row[0].strip().lstrip("\ufeff").lower(): row[0]
            for row in db.fetch_rows(f"columns of {rel}", "describe ref_raw")
        }
        absent = [c.name for c in columns if c.name not in header]
        required_absent = [c for c in absent if next(x for x in columns if x.name == c).required]
        if required_absent:
            raise InputError(
                f"{rel} lacks required column(s) {', '.join(required_absent)}; "
                f"it has {', '.join(sorted(header))}"
            )
        select = _reference_select(columns, header)
        (first_rowid,) = db.fetch_one(f"first row of {rel}", "select min(rowid) from ref_raw")
        db.execute(
            f"validate {rel}",
            f"create or replace temp table ref_checked as {select}",
            {"first_rowid": first_rowid or 0},
        )
        db.execute(f"clear {name}", f"delete from {name}")
        db.execute(
            f"load {name}",
            f"insert into {name} by name select * exclude (line_no, problems, raw) "
            "from ref_checked where problems = ''",
        )
        db.execute(
            f"quarantine {rel}",
            """insert into quarantine
                   select $rel, line_no, problems, raw, $run_id
                   from ref_checked where problems <> ''
                   union all
                   select $rel, line, error_message, csv_line, $run_id
                   from ref_rejects""",
            {"rel": rel, "run_id": run_id},
        )
        rows_read, rows_loaded = db.fetch_one(
            f"count {rel}",
            """select (select count(*) from ref_checked) + (select count(*) from ref_rejects),
                          (select count(*) from ref_checked where problems = '')""",
        )
        db.execute(
            f"register {rel}",
            """insert or replace into reference_files
                   values ($name, $sha, $enc, $read, $loaded, $run_id, $now)""",
            {"name": name, "sha": sha, "enc": used, "read": rows_read,
             "loaded": rows_loaded, "run_id": run_id, "now": datetime.now()},
        )
        for t in ("ref_raw", "ref_checked", "ref_lines", "ref_rejects", "ref_rejects_scan"):
            db.execute(f"drop {t}", f"drop table {t}")
    result = ReferenceResult(name, True, used, int(rows_read), int(rows_loaded),
                             int(rows_read - rows_loaded))
    log.info("reference %s: %d rows loaded of %d (%s)%s", name, result.rows_loaded,
             result.rows_read, used,
             f", {result.rows_quarantined} quarantined" if result.rows_quarantined else "")
    return result


def _csv_header(path: Path, rel: str) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise InputError(f"{rel} is empty: it needs a header row (see shared/contract.md)")
    names = [h.strip() for h in header]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"{rel} has duplicate column(s) {', '.join(duplicated)}")
    return names


def _reference_select(columns: tuple[Column, ...], header: dict[str, str]) -> str:
    """SQL typing and checking each column of ``ref_raw``, with a ``problems`` sentence."""
    typed, problems, raw_parts = [], [], []
    for c in columns:
        if c.name not in header:
            typed.append(f"null::{c.sql_type} as {c.name}")
            continue
        src = '"' + header[c.name].replace('"', '""') + '"'
        text = f"nullif(trim({src}), '')"
        value = text if c.sql_type == "varchar" else f"try_cast({text} as {c.sql_type})"
        typed.append(f"{value} as {c.name}")
        raw_parts.append(f"coalesce({src}, '')")
        if c.required:
            problems.append(f"case when {text} is null then '{c.name} is empty' end")
        if c.sql_type != "varchar":
            problems.append(
                f"case when {text} is not null and {value} is null "
                f"then '{c.name} ' || {text} || ' is not a {c.sql_type}' end"
            )
        if c.check:
            check = c.check.replace("VALUE", value)
            problems.append(
                f"case when {value} is not null and not ({check}) "
                f"then '{c.name} ' || {text} || ' {c.says}' end"
            )
    return (
        "select ref_lines.line_no, "
        + ", ".join(typed)
        + ", concat_ws('; ', " + ", ".join(problems) + ") as problems, "
        + "concat_ws(',', " + ", ".join(raw_parts) + ") as raw "
        # rowids of rows written in an open transaction start high: count from the first
        # ($first_rowid, a constant: a subquery here would make DuckDB loop over pairs)
        + "from ref_raw join ref_lines on ref_lines.k = ref_raw.rowid - $first_rowid"
    )


class _as_utf8:
    """The path of a UTF-8 version of a CSV: the file itself, or a transcoded temp copy."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        self.encoding = encoding
        self.tmp: Path | None = None

    def __enter__(self) -> tuple[Path, str]:
        enc = self.encoding or _detect_encoding(self.path)
        if enc in ("utf-8", "utf-8-sig"):
            return self.path, enc
        fd, name = tempfile.mkstemp(suffix=".csv", prefix="tracecode-ref-")
        self.tmp = Path(name)
        try:
            with open(self.path, encoding=enc, newline="") as src, os.fdopen(
                fd, "w", encoding="utf-8", newline=""
            ) as dst:
                while block := src.read(8 << 20):
                    dst.write(block)
        except (UnicodeDecodeError, LookupError) as e:
            raise InputError(f"{self.path} cannot be read as {enc}: {e}") from e
        return self.tmp, enc

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def _detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) when every byte decodes as UTF-8, else GB18030 (covers GBK)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        head = fh.read(3)
        bom = head == codecs.BOM_UTF8
        try:
            decoder.decode(head)
            while block := fh.read(8 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig" if bom else "utf-8"
