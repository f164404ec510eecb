"""What a run writes to its output folder: leads.csv / .parquet, quarantine.csv and
run_summary.json (shared/contract.md). Every file is written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tracecode.db import Database, read_sql

# The contract's columns first, then what investigators use besides.
LEAD_COLUMNS = (
    "lead_id", "rule_id", "category", "category_zh", "subject_type", "subject_id",
    "fixmedins_codes", "first_time", "last_time", "n_events", "amount", "score", "reason",
    "reason_en", "n_institutions", "severity", "status",
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def lead_frame(db: Database, *, include_dismissed: bool = False) -> pl.DataFrame:
    """The lead list as exported: highest score first; dismissed leads left out."""
    return db.fetch_polars(
        "lead list",
        f"""select {', '.join(LEAD_COLUMNS)}
            from leads
            where $include_dismissed or status <> 'dismissed'
            order by score desc, lead_id""",
        {"include_dismissed": include_dismissed},
    )


# Excel's sheet limit, less the header row
EXCEL_ROWS = 1_048_575


def write_outputs(
    db: Database, out: Path, summary: dict[str, Any], *, unmask: bool = False
) -> None:
    """The contract's files, plus ``evidence.parquet`` and ``leads.xlsx`` for investigators
    (ID numbers and names masked unless ``unmask``)."""
    out.mkdir(parents=True, exist_ok=True)
    leads = lead_frame(db)
    _atomic(out / "leads.csv", lambda p: leads.write_csv(
        p, include_bom=True, datetime_format=TIME_FORMAT))
    _atomic(out / "leads.parquet", lambda p: leads.write_parquet(p))
    evidence = db.fetch_polars("evidence export", read_sql("leads/evidence_export.sql"),
                               {"unmask": unmask}, source="leads/evidence_export.sql")
    _atomic(out / "evidence.parquet", lambda p: evidence.write_parquet(p))
    _atomic(out / "leads.xlsx", lambda p: _write_workbook(p, leads, evidence))
    quarantine = db.fetch_polars(
        "quarantine list",
        """select src_file as file, line_no as line, reason, raw, run_id
           from quarantine order by file, line""",
    )
    _atomic(out / "quarantine.csv", lambda p: quarantine.write_csv(p, include_bom=True))
    _atomic(out / "run_summary.json", lambda p: Path(p).write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"))


def _write_workbook(path: str, leads: pl.DataFrame, evidence: pl.DataFrame) -> None:
    """Two sheets: 线索 (the leads, as in leads.csv) and 证据 (their records)."""
    import xlsxwriter

    with xlsxwriter.Workbook(path) as wb:
        leads.write_excel(wb, worksheet="线索", autofit=True, freeze_panes=(1, 0),
                          dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss"})
        shown = evidence.head(EXCEL_ROWS)
        shown.write_excel(wb, worksheet="证据", freeze_panes=(1, 0),
                          dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss"})
        if evidence.height > EXCEL_ROWS:
            note = wb.add_worksheet("说明")
            note.write(0, 0, f"证据共 {evidence.height} 行，超出 Excel 上限，"
                             f"此处仅列前 {EXCEL_ROWS} 行；完整内容见 evidence.parquet。")


def _atomic(target: Path, write: Callable[[str], object]) -> None:
    """Write through a temp file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
