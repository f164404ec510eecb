"""What a run (or ``tracecode export``) writes to its output folder: leads.csv / .parquet,
quarantine.csv and run_summary.json (shared/contract.md), and for investigators
evidence.parquet, leads.xlsx (:mod:`tracecode.workbook`) and report.html with its
report/ folder (:mod:`tracecode.html_report`).

Every file is written whole or not at all (:mod:`tracecode.exports`); CSV cells cannot
run as formulas (:mod:`tracecode.safe_cells`); ID numbers and names are masked, also in
quarantine.csv's raw lines, unless ``unmask``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tracecode import compliance, html_report, quality, workbook
from tracecode.db import Database, read_sql
from tracecode.exports import atomic_dir, atomic_file, mask_raw_column, prepare_out
from tracecode.regions import with_city_names
from tracecode.review import STATUS_ZH
from tracecode.safe_cells import neutralise_frame

log = logging.getLogger(__name__)

# The contract's columns first, then what investigators use besides.
LEAD_COLUMNS = (
    "lead_id", "rule_id", "category", "category_zh", "subject_type", "subject_id",
    "fixmedins_codes", "first_time", "last_time", "n_events", "amount", "score", "reason",
    "reason_en", "n_institutions", "severity", "status", "anomaly_score", "anomaly_reason",
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# what write_outputs writes into the output folder, in order
OUTPUT_NAMES = ("leads.csv", "leads.parquet", "evidence.parquet", "leads.xlsx", "report",
                "report.html", "quarantine.csv", "data_quality.csv", "compliance.csv",
                "run_summary.json")


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


def write_outputs(
    db: Database, out: Path, summary: dict[str, Any], *, unmask: bool = False
) -> list[Path]:
    """Write every output into ``out``; the paths written, in order."""
    prepare_out(out, OUTPUT_NAMES)
    data = gather(db, summary, unmask=unmask)
    leads = data["leads"]
    written = [
        atomic_file(out / "leads.csv", lambda p: neutralise_frame(leads).write_csv(
            p, include_bom=True, datetime_format=TIME_FORMAT)),
        atomic_file(out / "leads.parquet", lambda p: leads.write_parquet(p)),
        atomic_file(out / "evidence.parquet", lambda p: data["evidence"].write_parquet(p)),
        atomic_file(out / "leads.xlsx", lambda p: workbook.write_workbook(
            p, overview=overview_blocks(data), lead_sheet=data["lead_sheet"],
            cases=data["cases"], evidence=data["evidence"], findings=data["findings"])),
    ]
    pages: dict[str, str] = {}

    def fill(folder: Path) -> None:
        pages["main"] = html_report.write_report(folder, data)

    written.append(atomic_dir(out / "report", fill))
    written.append(atomic_file(out / "report.html", lambda p: Path(p).write_text(
        pages["main"], encoding="utf-8")))
    written.append(atomic_file(out / "quarantine.csv", lambda p: neutralise_frame(
        data["quarantine"]).write_csv(p, include_bom=True)))
    # the findings kept apart from the fraud leads, for the vendor and the inspection
    quality.write_findings(db, out)
    compliance.write_findings(db, out)
    written += [out / "data_quality.csv", out / "compliance.csv"]
    written.append(atomic_file(out / "run_summary.json", lambda p: Path(p).write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8")))
    return written


def export_from_db(db: Database, out: Path, *, unmask: bool = False) -> int:
    """``tracecode export``: the outputs rewritten from the database as it is now (the last
    run's summary, with the lead counts of now); the number of leads written."""
    rows = db.fetch_rows(
        "last summary",
        """select summary from runs where summary is not null
           order by finished_at desc nulls last, started_at desc limit 1""")
    summary: dict[str, Any] = json.loads(rows[0][0]) if rows else {}
    by_category = dict(db.fetch_rows(
        "leads by category",
        """select category, count(*) from leads where status <> 'dismissed'
           group by category order by category"""))
    (dismissed,) = db.fetch_one(
        "dismissed", "select count(*) from leads where status = 'dismissed'")
    summary.update(leads=sum(by_category.values()), leads_by_category=by_category,
                   leads_dismissed=int(dismissed),
                   exported_at=datetime.now().isoformat(timespec="seconds"))
    write_outputs(db, out, summary, unmask=unmask)
    return int(summary["leads"])


def gather(db: Database, summary: dict[str, Any], *, unmask: bool) -> dict[str, Any]:
    """Everything the outputs show, read once."""
    evidence = db.fetch_polars("evidence export", read_sql("leads/evidence_export.sql"),
                               {"unmask": unmask}, source="leads/evidence_export.sql")
    quarantine = db.fetch_polars(
        "quarantine list",
        """select src_file as file, line_no as line, reason, raw, run_id
           from quarantine order by file, line""",
    )
    if not unmask:
        quarantine = mask_raw_column(quarantine)
    reviews = db.fetch_polars(
        "review trail",
        """select lead_id, decided_at, status, decided_by, note, source
           from lead_reviews order by lead_id, review_id""",
    )
    return {
        "summary": summary,
        "unmask": unmask,
        "exported_at": datetime.now().strftime(TIME_FORMAT),
        "leads": lead_frame(db),
        "lead_sheet": with_city_names(db.fetch_polars(
            "lead sheet", read_sql("leads/lead_sheet.sql"), source="leads/lead_sheet.sql")),
        "cases": with_city_names(db.fetch_polars(
            "institution cases", read_sql("leads/institution_cases.sql"),
            source="leads/institution_cases.sql")),
        "evidence": evidence,
        "quarantine": quarantine,
        "reviews": reviews,
        "status_counts": dict(db.fetch_rows(
            "status counts", "select status, count(*) from leads group by status order by 1")),
        "n_reviews": db.fetch_one("review count", "select count(*) from lead_reviews")[0],
        "findings": optional_findings(db),
    }


def optional_findings(db: Database) -> dict[str, pl.DataFrame]:
    """The data-quality, compliance and ring findings, for those tables that exist."""
    present = {r[0] for r in db.fetch_rows(
        "finding tables",
        """select table_name from duckdb_tables()
           where schema_name = 'main' and database_name = current_database()""")}
    found = {}
    for table in workbook.OPTIONAL_SHEETS:
        if table in present:
            # the table name comes from our own constant, never from input
            frame = db.fetch_polars(f"{table} export", f"select * from {table}")
            if frame.height:  # no sheet for a kind of finding there is none of
                found[table] = frame
    return found


def _shown(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field.endswith("_rate"):
        return f"{value:.1%}"
    return round(float(value), 2) if field == "fund_without_codes" else value


def overview_blocks(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The 概览 sheet: the run, the headline when given, counts by category and city,
    decisions so far."""
    summary = data["summary"]
    sheet: pl.DataFrame = data["lead_sheet"]
    blocks: list[tuple[str, list[tuple[str, Any]]]] = [("运行", [
        ("运行编号", str(summary.get("run_id", ""))),
        ("开始时间", str(summary.get("started_at", ""))),
        ("导出时间", data["exported_at"]),
        ("读入行数 / 入库 / 隔离", (summary.get("lines_read", 0), summary.get("records_stored", 0),
                             summary.get("lines_quarantined", 0))),
        ("线索（不含已排除）", sheet.height),
        ("涉及金额（元）", round(float(sheet["amount"].sum() or 0.0), 2)),
        ("个人数据", "未脱敏（--unmask-personal-data）" if data["unmask"]
         else "身份证号与姓名已脱敏"),
    ])]
    headline = summary.get("headline")
    if headline:
        blocks.insert(0, ("总体情况", [
            (label, _shown(k, headline[k]))
            for k, label in workbook.HEADLINE_ZH.items() if headline.get(k) is not None
        ]))
        # the trend by day and the table by city, after the figures
        for at, (key, title, fields) in enumerate((
            ("by_day", "按日（上传机构 / 医保销售 / 采集率 / 采集追溯码 / 线索）",
             ("institutions_uploading", "insured_sales", "capture_rate", "codes_collected",
              "leads")),
            ("by_city", "按地市（登记 / 接入 / 医保销售 / 采集率 / 无码结算金额 / 线索）",
             ("institutions_registered", "institutions_connected", "insured_sales",
              "capture_rate", "fund_without_codes", "leads")),
        ), start=1):
            rows = headline.get(key)
            if isinstance(rows, list) and rows:
                frame = with_city_names(pl.DataFrame(rows))
                label = "day" if key == "by_day" else "city"
                blocks.insert(at, (title, [
                    (str(r[label]), tuple(_shown(f, r.get(f)) for f in fields))
                    for r in frame.iter_rows(named=True)]))
    by_cat = sheet.group_by("category_zh").agg(pl.len(), pl.col("amount").sum()) \
        .sort("len", "category_zh", descending=[True, False])
    blocks.append(("按类别（线索数 / 金额）",
                   [(c, (int(n), round(float(a), 2))) for c, n, a in by_cat.iter_rows()]))
    by_city = sheet.group_by(pl.col("city").fill_null("未知")).agg(
        pl.len(), pl.col("amount").sum()).sort("len", "city", descending=[True, False])
    blocks.append(("按地市（线索数 / 金额）",
                   [(c, (int(n), round(float(a), 2))) for c, n, a in by_city.iter_rows()]))
    decisions = [(STATUS_ZH.get(s, s), int(n)) for s, n in data["status_counts"].items()]
    decisions.append(("核查记录条数", int(data["n_reviews"])))
    blocks.append(("核查进度", decisions))
    return blocks
