"""Data quality: how an institution's system uploads, apart from what it sold.

Two jobs, both over the whole history:

* before the rules (:func:`prepare`), find the upload habits that would fool a rule
  (placeholder identities, a 12-hour clock, dispensing sent as 3502 ``101``: see
  ``sql/quality/exemptions.sql``) and load the resident-ID region codes; the rules read
  those tables to stay out of them;
* after the leads (:func:`build_findings`), write ``dq_findings``: one row per
  institution and pattern, for the bureau to take to the vendor
  (``out/data_quality.csv``, :func:`write_findings`).

>>> with Database.open(Path("tracecode.duckdb")) as db:              # doctest: +SKIP
...     rescreen = prepare(db, Settings(), load_rules())
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import stdnum
from stdnum import numdb

from tracecode.categories import DQ_PATTERNS
from tracecode.db import Database
from tracecode.rules import Rule
from tracecode.safe_cells import write_csv
from tracecode.settings import Settings

log = logging.getLogger(__name__)

# the tables a rule may read to stay out of a habit, and the columns that decide what the
# rule sees (a change in the others, e.g. a count, changes no lead)
EXEMPTIONS: dict[str, str] = {
    "placeholder_identities": "field, value, fixmedins_code",
    "twelve_hour_clocks": "fixmedins_code",
    "dispensing_as_inbound": "fixmedins_code, mirror_hours",
    "resident_id_regions": "region",
}


def resident_id_regions() -> list[str]:
    """Every 6-digit region code python-stdnum's ``cn.ric`` knows (current and retired
    divisions: an ID keeps the region of its issue)."""
    regions = set()
    for _, province, _, _, children in numdb.get("cn/loc").prefixes:
        for _, low, high, _, _ in children:
            if low != high:  # the data lists single codes; a range would need expanding
                raise ValueError(f"unexpected region range {province}{low}-{high}")
            regions.add(province + low)
    return sorted(regions)


def load_regions(db: Database) -> None:
    """Fill ``resident_id_regions`` once per python-stdnum version."""
    source = f"python-stdnum {stdnum.__version__}"
    (known,) = db.fetch_one("regions loaded",
                            "select count(*) from resident_id_regions where source = $source",
                            {"source": source})
    if known:
        return
    db.execute("forget regions", "delete from resident_id_regions")
    db.register("regions_arrow", pa.table({"region": resident_id_regions()}))
    try:
        db.execute("load regions",
                   "insert into resident_id_regions select region, $source from regions_arrow",
                   {"source": source})
    finally:
        db.unregister("regions_arrow")
    log.info("resident-ID regions: loaded from %s", source)


def prepare(db: Database, settings: Settings, rules: list[Rule]) -> frozenset[str]:
    """Rebuild the exemption tables; return the ids of the rules that read one whose
    content changed since the last screen, which must screen the whole history (the
    placeholder a buyer's sales carry can change without any of that buyer's data)."""
    load_regions(db)
    db.run_file("quality/exemptions.sql", asdict(settings.quality))
    changed = []
    for table, key in EXEMPTIONS.items():
        (digest,) = db.fetch_one(
            f"digest {table}",
            f"""select md5(coalesce(string_agg(k, '|' order by k), ''))
                from (select distinct concat_ws(';', {key}) as k from {table})""",
        )
        (before,) = db.fetch_one(
            f"digest before {table}",
            "select max(digest) from exemption_digests where table_name = $t", {"t": table})
        if digest != before:
            changed.append(table)
            db.execute("remember digest",
                       "insert or replace into exemption_digests values ($t, $d)",
                       {"t": table, "d": digest})
    rescreen = frozenset(r.id for r in rules if any(t in r.sql for t in changed))
    counts = dict(db.fetch_rows(
        "exemptions",
        """select 'placeholders', count(*) from placeholder_identities
           union all select 'twelve-hour clocks', count(*) from twelve_hour_clocks
           union all select 'dispensing as inbound', count(*) from dispensing_as_inbound""",
    ))
    log.info("exemptions: %s%s", ", ".join(f"{v} {k}" for k, v in counts.items()),
             f"; changed, so {sorted(rescreen)} screen everything" if rescreen else "")
    return rescreen


def build_findings(db: Database, settings: Settings) -> dict[str, int]:
    """Rebuild ``dq_findings``; return the number of findings by pattern."""
    db.register("dq_pattern_labels_arrow", pa.table({
        "pattern": list(DQ_PATTERNS),
        "pattern_zh": [p.zh for p in DQ_PATTERNS.values()],
        "what_zh": [p.what_zh for p in DQ_PATTERNS.values()],
        "what_en": [p.what_en for p in DQ_PATTERNS.values()],
    }))
    try:
        db.execute("pattern labels", "create or replace temp table dq_pattern_labels as "
                                     "select * from dq_pattern_labels_arrow")
    finally:
        db.unregister("dq_pattern_labels_arrow")
    db.run_file("quality/findings.sql", asdict(settings.quality))
    by_pattern = {str(k): int(v) for k, v in db.fetch_rows(
        "findings by pattern",
        "select pattern, count(*) from dq_findings group by pattern order by pattern")}
    log.info("data quality: %d findings %s", sum(by_pattern.values()), by_pattern)
    return by_pattern


def write_findings(db: Database, out: Path) -> None:
    """``out/data_quality.csv``. Examples carry no personal data: placeholder ID numbers
    are masked when the findings are built, the rest are record keys and codes."""
    frame = db.fetch_polars(
        "data quality list",
        """select * from dq_findings
           order by fixmedins_code, pattern""",
    )
    write_csv(frame, out / "data_quality.csv")
