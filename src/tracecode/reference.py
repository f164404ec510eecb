"""Load the reference CSVs of a landing directory (institutions, catalog, persons,
code_issuance) into DuckDB: detected encoding, typed and checked columns, bad rows
quarantined with their line number, a file reloaded only when its content changed."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from tracecode.db import Database
from tracecode.errors import DatabaseError, InputError
from tracecode.message_files import file_sha256 as _sha256

log = logging.getLogger(__name__)
GB18030_BOM = b"\x841\x953"


@dataclass(frozen=True)
class ReferenceResult:
    name: str
    loaded: bool  # False: unchanged since the last run
    encoding: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    # optional columns absent, each naming the rules that cannot judge without it
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    """A reference column: its SQL type, whether it must be present, and a check on the
    typed value (SQL, the value written ``VALUE``), with what to say when it fails."""

    name: str
    sql_type: str = "varchar"
    required: bool = False
    check: str | None = None
    says: str = ""
    needed_by: tuple[str, ...] = ()  # the rules (or the model) that read it


MODEL = "the anomaly model's features"

REFERENCE: dict[str, tuple[Column, ...]] = {
    "institutions": (
        Column("fixmedins_code", required=True),
        Column("fixmedins_name"),
        Column("fixmedins_type", check="VALUE in ('pharmacy', 'clinic', 'hospital')",
               says="is not pharmacy, clinic or hospital", needed_by=(MODEL,)),
        Column("admdvs", required=True, check="regexp_full_match(VALUE, '[0-9]{6}')",
               says="is not a 6-digit region code"),
        Column("open_time", "time", needed_by=("off_hours_burst",)),
        Column("close_time", "time", needed_by=("off_hours_burst",)),
    ),
    "catalog": (
        Column("med_list_codg", required=True),
        Column("drug_name"),
        Column("trace_prefix", check="regexp_full_match(VALUE, '[0-9]{7}')",
               says="is not 7 digits", needed_by=("product_mismatch",)),
        Column("pack_units", "double", check="VALUE > 0", says="is not a positive number",
               needed_by=("split_overdraw", MODEL)),
        Column("pack_price", "double", check="VALUE >= 0", says="is negative",
               needed_by=(MODEL,)),
        Column("gender_limit", check="VALUE in ('F', 'M')", says="is not F or M",
               needed_by=("demographic_mismatch",)),
        Column("min_age", "integer", check="VALUE >= 0", says="is negative",
               needed_by=("demographic_mismatch",)),
        Column("max_age", "integer", check="VALUE >= 0", says="is negative",
               needed_by=("demographic_mismatch",)),
    ),
    "persons": (
        Column("psn_no", required=True),
        Column("certno", needed_by=("identity_mismatch",)),
        Column("psn_name"),
        Column("gender", check="VALUE in ('F', 'M')", says="is not F or M",
               needed_by=("demographic_mismatch",)),
        Column("birth_date", "date", needed_by=("demographic_mismatch",)),
        Column("insu_admdvs", needed_by=(MODEL,)),
        Column("death_date", "date", needed_by=("deceased_person",)),
    ),
    "code_issuance": (
        Column("trace_prefix", required=True, check="regexp_full_match(VALUE, '[0-9]{7}')",
               says="is not 7 digits"),
        Column("serial_from", "bigint", required=True, check="VALUE between 0 and 999999999",
               says="is not a 9-digit serial"),
        Column("serial_to", "bigint", required=True, check="VALUE between 0 and 999999999",
               says="is not a 9-digit serial"),
        Column("manu_lotnum", needed_by=("lot_expiry_mismatch",)),
        Column("manu_date", "date", needed_by=("expired_sale",)),
        Column("expy_end", "date", needed_by=("expired_sale", "lot_expiry_mismatch")),
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
    loaded = {r[0]: r[1:] for r in db.fetch_rows(
        "reference hashes", "select name, sha256, encoding from reference_files")}
    results = []
    for name, columns in REFERENCE.items():
        path = folder / f"{name}.csv"
        sha = _sha256(path)
        if name in loaded and loaded[name][0] == sha:
            # unchanged: not reloaded, but what it lacks is said again every run
            with open(path, "rb") as raw:
                header = next(csv.reader(_decoded(raw, loaded[name][1])), [])
            warnings = _absent_optional(f"reference/{path.name}", columns,
                                        [h.strip() for h in header])
            results.append(ReferenceResult(name, loaded=False, warnings=warnings))
            continue
        results.append(_load_reference_file(db, name, path, columns, sha, run_id, encoding))
    return results


def _load_reference_file(
    db: Database, name: str, path: Path, columns: tuple[Column, ...], sha: str,
    run_id: str, encoding: str | None,
) -> ReferenceResult:
    rel = f"reference/{path.name}"
    with _as_utf8(path, encoding) as (utf8_path, used):
        # the dialect is the contract's (comma, double quotes) and the header is read
        # here, so DuckDB's sniffer cannot be misled by a malformed row
        names = _csv_header(utf8_path, rel)
        present = {n.lower() for n in names}
        missing = [c.name for c in columns if c.required and c.name not in present]
        if missing:
            raise InputError(
                f"{rel} lacks required column(s) {', '.join(missing)}; "
                f"it has {', '.join(sorted(names))}"
            )
        warnings = _absent_optional(rel, columns, names)
        _read_csv(db, utf8_path, rel, names)
        # one row per rejected record (DuckDB lists each problem of a row), numbered as
        # DuckDB numbers records (the header is 1)
        db.execute(
            f"rejects of {rel}",
            """create or replace temp table ref_bad as
                   select line as record, string_agg(distinct error_message, '; '
                                                      order by error_message) as reason,
                          -- strict mode names it; lenient, it is a rejected row that runs
                          -- over lines with an odd number of quotes
                          bool_or(error_type = 'UNQUOTED VALUE'
                                  or (contains(rtrim(csv_line, chr(10) || chr(13)), chr(10))
                                      and (length(csv_line)
                                           - length(replace(csv_line, '"', ''))) % 2 = 1)
                          ) as unclosed,
                          any_value(csv_line) as raw
                   from ref_rejects group by line""",
        )
        lines = _physical_lines(db, utf8_path, rel, names)
        unclosed = db.fetch_rows(f"unclosed quote in {rel}",
                                 "select min(record) from ref_bad where unclosed having "
                                 "count(*) > 0")
        if unclosed:
            line = lines.get(int(unclosed[0][0]), int(unclosed[0][0]))
            raise InputError(
                f"{rel} line {line}: a quoted value opens there and is never closed, so "
                "every row after it would be read as part of that value. Close the quote "
                '(a quote inside a value is written twice: "") and run again.'
            )
        # the k-th accepted row is the k-th record (after the header) not rejected
        db.execute(
            f"lines of {rel}",
            """create or replace temp table ref_lines as
                   select line_no, row_number() over (order by line_no) - 1 as k
                   from (select range as line_no
                         from range(2, 2 + (select count(*) from ref_raw)
                                       + (select count(*) from ref_bad)))
                   anti join ref_bad on ref_bad.record = line_no""",
        )
        if lines:
            db.register("ref_phys_arrow", pa.table({
                "record": pa.array(list(lines), pa.int64()),
                "line": pa.array(list(lines.values()), pa.int64())}))
            for table, col in (("ref_lines", "line_no"), ("ref_bad", "record")):
                db.execute(f"physical lines of {rel}",
                           f"""update {table} set {col} = p.line from ref_phys_arrow as p
                               where p.record = {table}.{col}""")
            db.unregister("ref_phys_arrow")
        with db.transaction():
            header = {n.lower(): n for n in names}
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
                       select $rel, record, reason, raw, $run_id
                       from ref_bad""",
                {"rel": rel, "run_id": run_id},
            )
            rows_read, rows_loaded = db.fetch_one(
                f"count {rel}",
                """select (select count(*) from ref_checked) + (select count(*) from ref_bad),
                              (select count(*) from ref_checked where problems = '')""",
            )
            db.execute(
                f"register {rel}",
                """insert or replace into reference_files
                       values ($name, $sha, $enc, $read, $loaded, $run_id, $now)""",
                {"name": name, "sha": sha, "enc": used, "read": rows_read,
                 "loaded": rows_loaded, "run_id": run_id, "now": datetime.now()},
            )
        for t in ("ref_raw", "ref_checked", "ref_lines", "ref_bad", "ref_rejects",
                  "ref_rejects_scan"):
            db.execute(f"drop {t}", f"drop table {t}")
    result = ReferenceResult(name, True, used, int(rows_read), int(rows_loaded),
                             int(rows_read - rows_loaded), warnings)
    log.info("reference %s: %d rows loaded of %d (%s)%s", name, result.rows_loaded,
             result.rows_read, used,
             f", {result.rows_quarantined} quarantined" if result.rows_quarantined else "")
    return result


def _read_csv(db: Database, path: Path, rel: str, names: list[str]) -> None:
    """``ref_raw`` (every column text) and ``ref_rejects``. Strict, so that a row with too
    many values is rejected rather than cut short; DuckDB's strict parser gives up on
    mixed line ends (CRLF and LF in one file), which are read leniently then."""
    for strict in (True, False):
        for t in ("ref_rejects", "ref_rejects_scan"):
            db.execute(f"drop {t}", f"drop table if exists {t}")
        try:
            db.execute(
                f"read {rel}",
                """create or replace temp table ref_raw as
                       select * from read_csv($path, header = true, auto_detect = false,
                                              columns = $columns, delim = ',', quote = '"',
                                              escape = '"', strict_mode = $strict,
                                              store_rejects = true,
                                              rejects_table = 'ref_rejects',
                                              rejects_scan = 'ref_rejects_scan')""",
                {"path": str(path), "columns": {n: "VARCHAR" for n in names},
                 "strict": strict},
            )
            return
        except DatabaseError as e:
            if not strict or "invalid state" not in str(e):
                raise
            log.warning("%s has mixed line ends: read leniently (a row with too many "
                        "values loses the extra ones)", rel)


def _absent_optional(rel: str, columns: tuple[Column, ...], names: list[str]) -> tuple[str, ...]:
    """A warning for each optional column that is absent, naming who cannot work."""
    present = {n.lower() for n in names}
    warnings = tuple(
        f"{rel} has no column {c.name}: {', '.join(c.needed_by)} cannot judge without it"
        for c in columns if c.needed_by and c.name not in present
    )
    for w in warnings:
        log.warning("%s", w)
    return warnings


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _physical_lines(db: Database, path: Path, rel: str, names: list[str]) -> dict[int, int]:
    """Record number (as DuckDB counts, header 1) -> line in the file, for the records
    after a value that spans lines; empty when every record is one line (the usual case).
    """
    spans = " or ".join(f"contains({_ident(n)}, chr(10))" for n in names)
    (multiline,) = db.fetch_one(
        f"values spanning lines in {rel}",
        f"select count(*) > 0 from ref_raw where {spans}",
    )
    (rejected_multiline,) = db.fetch_one(
        f"rejected rows spanning lines in {rel}",
        "select count(*) > 0 from ref_bad where contains(rtrim(raw, chr(10) || chr(13)), chr(10))",
    )
    if not multiline and not rejected_multiline:
        return {}
    lines: dict[int, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            for record, _row in enumerate(reader, start=1):
                if start != record:
                    lines[record] = start
                start = reader.line_num + 1
        except csv.Error:
            pass  # an unclosed quote: the records before it are numbered
    return lines


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
        src = _ident(header[c.name])
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
            with open(self.path, "rb") as raw, os.fdopen(
                fd, "w", encoding="utf-8", newline=""
            ) as dst:
                src = _decoded(raw, enc)
                while block := src.read(8 << 20):
                    dst.write(block)
        except (UnicodeDecodeError, LookupError) as e:
            raise InputError(f"{self.path} cannot be read as {enc}: {e}") from e
        return self.tmp, enc

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def _decoded(raw: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """The text of a CSV after its BOM, UTF-8 or GB18030 whatever the encoding: a GBK file
    saved with a UTF-8 BOM (some editors do) is read without it, not as '锘縫sn_no'."""
    head = raw.read(4)
    raw.seek(3 if head.startswith(codecs.BOM_UTF8) else 4 if head == GB18030_BOM else 0)
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


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
