"""Capture compliance (应采尽采、依码结算) and the bureau's headline figures.

After the leads, :func:`build_findings` measures every institution's capture
(``sql/compliance/measures.sql``: tables ``capture_institutions``, ``capture_regions``
and ``capture_days``)
and writes ``compliance_findings`` for those far below their peers (capture_gap,
upload_silence, late_upload), scored like leads and exported apart from them
(``out/compliance.csv``). :func:`headline` gives the figures a bureau reports, for
``run_summary.json``.

>>> headline(db, Settings())["connected_rate"]      # doctest: +SKIP
0.9948
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracecode.categories import COMPLIANCE_CATEGORIES
from tracecode.db import Database
from tracecode.safe_cells import write_csv
from tracecode.settings import Settings

log = logging.getLogger(__name__)


def build_findings(db: Database, settings: Settings) -> dict[str, int]:
    """Rebuild the capture measures and ``compliance_findings``; findings by category."""
    lag = {"upload_lag_days": settings.rules.upload_lag_days}
    db.run_file("compliance/measures.sql",
                {**lag, "silence_days": settings.compliance.silence_days})
    db.register("compliance_labels_arrow", pa.table({
        "category": list(COMPLIANCE_CATEGORIES),
        "category_zh": [c.zh for c in COMPLIANCE_CATEGORIES.values()],
    }))
    try:
        db.execute("compliance labels", "create or replace temp table compliance_labels as "
                                        "select * from compliance_labels_arrow")
    finally:
        db.unregister("compliance_labels_arrow")
    db.run_file("compliance/findings.sql",
                {**asdict(settings.compliance), **asdict(settings.score), **lag})
    by_category = {str(k): int(v) for k, v in db.fetch_rows(
        "compliance by category",
        "select category, count(*) from compliance_findings group by all order by 1")}
    log.info("compliance: %d findings %s", sum(by_category.values()), by_category)
    return by_category


def write_findings(db: Database, out: Path) -> None:
    """``out/compliance.csv``: about institutions, so no personal data to mask."""
    frame = db.fetch_polars("compliance list",
                            "select * from compliance_findings order by score desc, finding_id")
    write_csv(frame, out / "compliance.csv")


def headline(db: Database, settings: Settings) -> dict[str, Any]:
    """The figures a bureau reports: connection and capture, leads raised and reviewed,
    institutions proposed for inspection, the amount at risk; by day and by city."""
    row = db.fetch_polars("headline", _HEADLINE, {
        "propose_min_score": settings.compliance.propose_min_score}).row(0, named=True)
    figures: dict[str, Any] = {k: _plain(v) for k, v in row.items()}
    figures["by_day"] = [
        {k: _plain(v) for k, v in r.items()}
        for r in db.fetch_polars("headline by day", _BY_DAY).iter_rows(named=True)
    ]
    figures["by_city"] = [
        {k: _plain(v) for k, v in r.items()}
        for r in db.fetch_polars("headline by city", _BY_CITY).iter_rows(named=True)
    ]
    return figures


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO text, floats rounded."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    return value


_HEADLINE = """
with registered as (
    select * from capture_institutions where registered
),

open_leads as (
    select * from leads where status <> 'dismissed'
),

proposed as (
    select distinct unnest(string_split(fixmedins_codes, ';')) as fixmedins_code
    from open_leads
    where status = 'confirmed'
       or score >= $propose_min_score
)

select
    (select count(*) from registered) as institutions_registered,
    (select count(*) from registered where connected) as institutions_connected,
    (select count(*) filter (where connected) / nullif(count(*), 0) from registered)
        as connected_rate,
    (select coalesce(sum(codes_collected), 0)::bigint from capture_institutions)
        as codes_collected,
    (select coalesce(sum(insured_sales), 0)::bigint from capture_institutions)
        as insured_sales,
    (select coalesce(sum(insured_with_codes), 0)::bigint from capture_institutions)
        as insured_sales_with_codes,
    (select sum(insured_with_codes) / nullif(sum(insured_sales), 0) from capture_institutions)
        as capture_rate,
    (select coalesce(sum(fund_without_codes), 0)::double from capture_institutions)
        as fund_without_codes,
    (select count(*) from leads) as leads_raised,
    (select count(*) from leads where status = 'confirmed') as leads_confirmed,
    (select count(*) from leads where status = 'dismissed') as leads_dismissed,
    (select count(*) from leads where status = 'open') as leads_open,
    (select count(*) from proposed) as institutions_proposed,
    (select coalesce(round(sum(amount), 2), 0)::double from open_leads) as amount_at_risk,
    (select count(*) from compliance_findings) as compliance_findings,
    (select count(*) from dq_findings) as data_quality_findings
"""

_BY_DAY = """
with leads_by_day as (
    select
        first_time::date as day,
        count(*) as leads
    from leads
    where status <> 'dismissed'
    group by all
)

select
    d.day,
    d.institutions_uploading,
    d.sales,
    d.insured_sales,
    d.insured_with_codes,
    d.insured_with_codes / nullif(d.insured_sales, 0) as capture_rate,
    d.codes_collected::bigint as codes_collected,
    coalesce(l.leads, 0) as leads
from capture_days as d
left join leads_by_day as l using (day)
order by d.day
"""

_BY_CITY = """
with lead_institutions as (
    select
        lead_id,
        amount,
        unnest(string_split(fixmedins_codes, ';')) as fixmedins_code
    from leads
    where status <> 'dismissed'
),

lead_cities as (
    select
        i.city,
        count(distinct l.lead_id) as leads
    from lead_institutions as l
    join capture_institutions as i using (fixmedins_code)
    group by i.city
)

select
    r.region as city,
    r.institutions_registered,
    r.institutions_connected,
    r.connected_rate,
    r.codes_collected,
    r.insured_sales,
    r.capture_rate,
    r.fund_without_codes,
    coalesce(l.leads, 0) as leads
from capture_regions as r
left join lead_cities as l on l.city = r.region
where r.level = 'city'
order by r.region
"""
