"""Investigators' read-only access: ``tracecode sql`` and ``tracecode show``.

Queries run against the published snapshot (:func:`tracecode.db.snapshot_path`) when there
is one, else against the database opened read-only, so that they never write and never
hold the file a run needs. Results are masked (ID numbers and names) unless asked for.

>>> with open_for_reading(Path("tracecode.duckdb")) as db:          # doctest: +SKIP
...     frame = query(db, "select * from leads where score > $s", {"s": "80"})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tracecode.db import Database, snapshot_path
from tracecode.errors import DatabaseError, InputError
from tracecode.safe_cells import neutralise_frame

# columns whose every value is personal: masked whatever the query calls them
_NAME_COLUMNS = {"psn_name", "name", "patient_name", "insured_name"}
_ID_COLUMNS = {"certno", "psn_cert_no", "id_number", "idcard"}
# an 18-character resident ID inside any text
_RESIDENT_ID = r"(^|[^0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])([^0-9A-Za-z]|$)"


def open_for_reading(db_path: Path) -> Database:
    """The snapshot if published, else the database itself, read-only."""
    snapshot = snapshot_path(db_path)
    target = snapshot if snapshot.exists() else Path(db_path)
    if not target.exists():
        raise InputError(f"no database at {db_path}: give the --db of your runs")
    try:
        return Database.open(target, read_only=True)
    except DatabaseError as e:
        raise DatabaseError(
            f"{target} is held for writing (a tracecode run or another writer is using it) "
            f"and no snapshot has been published at {snapshot} yet. Try again when the run "
            "has finished; from then on queries read the snapshot and never wait."
        ) from e


def query(db: Database, sql: str, params: dict[str, str] | None = None, *,
          source: str | None = None) -> pl.DataFrame:
    """Run one read-only statement; ``$name`` parameters bound by name from ``params``."""
    return db.fetch_polars("sql", sql.strip().rstrip(";"), params or {}, source=source)


def read_query_file(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"query file {path} does not exist (see sql/investigations/)")
    return path.read_text(encoding="utf-8")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["code=812...", "month=2025-11"]`` -> a dict; a pair without ``=`` is an error."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name.strip()] = value
    return params


def mask_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Personal data masked: name and ID columns by name, resident IDs wherever they are."""
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        col = pl.col(name)
        if name.lower() in _NAME_COLUMNS:
            exprs.append((col.str.slice(0, 1) + col.str.slice(1).str.replace_all(".", "*"))
                         .alias(name))
        elif name.lower() in _ID_COLUMNS:
            exprs.append(pl.when(col.str.len_chars() > 10)
                         .then(col.str.slice(0, 6) + pl.lit("********") + col.str.slice(-4))
                         .otherwise(col.str.replace_all(".", "*")).alias(name))
        else:
            exprs.append(col.str.replace_all(_RESIDENT_ID, "${1}${2}********${3}${4}")
                         .alias(name))
    return frame.with_columns(exprs) if exprs else frame


def write_result(frame: pl.DataFrame, path: Path) -> Path:
    """A query's result to .csv, .parquet or .xlsx (text cells formula-proof)."""
    from tracecode.exports import atomic_file

    suffix = path.suffix.lower()
    if path.parent and not path.parent.exists():
        raise InputError(f"folder {path.parent} does not exist")
    if suffix == ".csv":
        return atomic_file(path, lambda p: neutralise_frame(frame).write_csv(
            p, include_bom=True, datetime_format="%Y-%m-%d %H:%M:%S"))
    if suffix == ".parquet":
        return atomic_file(path, lambda p: frame.write_parquet(p))
    if suffix == ".xlsx":
        from tracecode.workbook import write_table_workbook

        return atomic_file(path, lambda p: write_table_workbook(p, "结果", frame))
    raise InputError(f"--to {path}: give a .csv, .parquet or .xlsx file")


def render_table(frame: pl.DataFrame, *, title: str | None = None, max_rows: int = 50) -> Any:
    """A rich table of the first ``max_rows`` rows."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for name in frame.columns:
        table.add_column(name, overflow="fold")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*("" if v is None else _short(v) for v in row))
    if frame.height > max_rows:
        table.caption = f"{frame.height} rows, first {max_rows} shown (--to FILE for all)"
    else:
        table.caption = f"{frame.height} rows"
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if hasattr(value, "strftime"):
        return str(value)[:19]
    return str(value)


# what tracecode show lists of each evidence record (the terminal is narrow)
SHOW_EVIDENCE = ("event_time", "fixmedins_code", "fixmedins_name", "infno", "code", "psn_no",
                 "psn_name", "qty", "amount", "note")


# the review history as ``tracecode show`` prints it
REVIEW_HEADERS = {"decided_at": "时间", "status": "结论", "decided_by": "核查人",
                  "note": "核查说明", "source": "来源", "evidence_fingerprint": "证据指纹",
                  "n_evidence_records": "证据条数"}


def lead_details(db: Database, lead_id: str, *, unmask: bool = False) -> dict[str, Any]:
    """The lead, its review history and its evidence, for ``tracecode show``."""
    from tracecode.db import read_sql
    from tracecode.review import STATUS_ZH, review_history

    lead = db.fetch_polars("lead", "select * from leads where lead_id = $lead_id",
                           {"lead_id": lead_id})
    if lead.height == 0:
        raise InputError(f"no lead {lead_id} in the database (lead ids look like "
                         "L0123456789abcdef: see leads.csv)")
    source = "investigations/lead_evidence.sql"
    evidence = query(db, read_sql(source), {"lead_id": lead_id}, source=source)
    evidence = evidence if unmask else mask_frame(evidence)
    reviews = review_history(db, lead_id).with_columns(
        pl.col("evidence_fingerprint").str.slice(0, 8),
        pl.col("status").replace_strict(STATUS_ZH, default=pl.col("status")),
    ).rename(lambda c: REVIEW_HEADERS.get(c, c))
    return {"lead": lead.row(0, named=True), "reviews": reviews, "evidence": evidence,
            "evidence_brief": evidence.select(c for c in SHOW_EVIDENCE if c in evidence.columns)}


def render_lead(d: dict[str, Any], *, max_rows: int = 200) -> list[Any]:
    """``tracecode show``: a panel with the lead, then its reviews and its evidence."""
    from rich.panel import Panel
    from rich.text import Text

    from tracecode.review import STATUS_ZH

    lead = d["lead"]
    facts = Text()
    for label, key in (("类别", "category_zh"), ("对象", "subject_id"),
                       ("机构", "fixmedins_codes"), ("最早", "first_time"),
                       ("最晚", "last_time"), ("证据条数", "n_events"), ("优先级", "score"),
                       ("规则", "rule_id")):
        facts.append(f"{label}: ", style="bold")
        facts.append(f"{'' if lead[key] is None else lead[key]}\n")
    facts.append("金额（元）: ", style="bold")
    facts.append(f"{lead['amount']:,.2f}\n")
    facts.append("状态: ", style="bold")
    facts.append(f"{STATUS_ZH.get(lead['status'], lead['status'])} ({lead['status']})\n\n")
    facts.append(lead["reason"] + "\n")
    facts.append(lead["reason_en"], style="dim")
    if lead.get("anomaly_reason"):
        facts.append(f"\n模型: {lead['anomaly_reason']}")
    return [
        Panel(facts, title=f"线索 {lead['lead_id']}", expand=False),
        render_table(d["reviews"], title="核查记录 review history"),
        render_table(d["evidence_brief"], max_rows=max_rows,
                     title="证据 evidence (tracecode sql --file "
                           "sql/investigations/lead_evidence.sql for every column)"),
    ]


def prompt_loop(db: Database, params: dict[str, str], console: Any, *, unmask: bool,
                max_rows: int) -> None:
    """Read statements ending in ';' until EOF or .quit; an error is shown, not fatal."""
    from tracecode.errors import TracecodeError

    console.print("tracecode sql (read-only). End a statement with ';'; .quit to leave.")
    buffer: list[str] = []
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except EOFError:
            return
        if not buffer and line.strip() in (".quit", ".exit", "\\q"):
            return
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        text, buffer = "\n".join(buffer), []
        try:
            frame = query(db, text, params)
        except TracecodeError as e:
            console.print(f"[red]error:[/red] {str(e).splitlines()[0]}", markup=True)
            continue
        console.print(render_table(frame if unmask else mask_frame(frame), max_rows=max_rows))
