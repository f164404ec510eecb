"""Load the reference CSVs of a landing directory (institutions, catalog, persons,
code_issuance) into DuckDB: detected encoding, typed and checked columns, bad rows
quarantined with their line number, a file reloaded only when its content changed."""

from __future__ import annotations

import codecs
import csv
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tracecode.db import Database
from tracecode.errors import InputError
from tracecode.message_files import file_sha256 as _sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceResult:
    name: str
    loaded: bool  # False: unchanged since the last run
    encoding: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0


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
