"""What a run writes to its output folder: leads.csv / .parquet, quarantine.csv and
run_summary.json (shared/contract.md). Every file is written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import polars as pl

from tracecode.db import Database, read_sql

# The contract's columns first, then what investigators use besides.
LEAD_COLUMNS = (
    "lead_id", "rule_id", "category", "category_zh", "subject_type", "subject_id",
    "fixmedins_codes", "first_time", "last_time", "n_events", "amount", "score", "reason",
    "reason_en", "n_institutions", "severity", "status", "anomaly_score", "anomaly_reason",
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
    _atomic(out / "report.html", lambda p: Path(p).write_text(
        render_html(leads, evidence, summary), encoding="utf-8"))
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


# leads shown in the HTML report, and evidence rows under each
HTML_LEADS = 500
HTML_EVIDENCE = 50
_EVIDENCE_COLUMNS = ("event_time", "fixmedins_code", "fixmedins_name", "infno", "code",
                     "psn_no", "certno", "psn_name", "qty", "amount", "fixmedins_bchno")


def render_html(leads: pl.DataFrame, evidence: pl.DataFrame, summary: dict[str, Any]) -> str:
    """A self-contained page: counts by category, then the top leads, each with its
    evidence behind a click. Personal data as masked in ``evidence``."""
    by_lead: dict[str, list[dict[str, Any]]] = {}
    for row in evidence.select("lead_id", *_EVIDENCE_COLUMNS).iter_rows(named=True):
        rows = by_lead.setdefault(row["lead_id"], [])
        if len(rows) < HTML_EVIDENCE:
            rows.append(row)
    counts = "".join(
        f"<tr><td>{escape(c)}</td><td>{n}</td></tr>"
        for c, n in summary.get("leads_by_category", {}).items()
    )
    head = "".join(f"<th>{c}</th>" for c in _EVIDENCE_COLUMNS)
    items = []
    for lead in leads.head(HTML_LEADS).iter_rows(named=True):
        ev = by_lead.get(lead["lead_id"], [])
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_cell(r[c]))}</td>" for c in _EVIDENCE_COLUMNS) + "</tr>"
            for r in ev
        )
        more = lead["n_events"] - len(ev)
        items.append(
            f"<details><summary><b>{lead['score']:.1f}</b> {escape(lead['category_zh'])} · "
            f"{escape(str(lead['subject_id']))} · {escape(lead['reason'])}</summary>"
            f"<p class=en>{escape(lead['reason_en'])}</p>"
            f"<p>lead_id <code>{lead['lead_id']}</code> · rule <code>{lead['rule_id']}</code>"
            f" · {escape(lead['fixmedins_codes'] or '')}</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            + (f"<p>另有 {more} 条证据见 evidence.parquet</p>" if more > 0 else "")
            + "</details>"
        )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>疑点线索 tracecode</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 90%; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
details {{ margin: .4em 0; }} summary {{ cursor: pointer; }} .en {{ color: #555; }}
</style></head><body>
<h1>疑点线索 Suspicious leads</h1>
<p>运行 {escape(str(summary.get("run_id", "")))} · 共 {leads.height} 条线索（按优先级排序，
显示前 {min(leads.height, HTML_LEADS)} 条）· 身份证号与姓名已脱敏</p>
<table><tr><th>category</th><th>leads</th></tr>{counts}</table>
<h2>线索 Leads</h2>
{"".join(items)}
</body></html>
"""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime(TIME_FORMAT)
    return str(value)


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
