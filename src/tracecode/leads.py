"""Leads: one per rule and subject, scored 0-100 and explained in one sentence each.

Each rule's evidence (``rule_hits``) is aggregated in ``sql/leads/aggregate.sql``; the
reason is the rule's own template (its ``reason_zh`` / ``reason_en`` header) filled with
the lead's facts. ``lead_id`` is a hash of rule, subject type and subject, so the same
finding keeps its id across runs and investigators' decisions (``lead_reviews``) stick.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from tracecode.categories import CATEGORIES
from tracecode.db import Database
from tracecode.inputs import Scope
from tracecode.rules import Rule
from tracecode.settings import Settings

log = logging.getLogger(__name__)

STATUSES = ("open", "confirmed", "dismissed")


def build_leads(
    db: Database, rules: list[Rule], settings: Settings, *, scope: Scope,
    scoped: frozenset[str] = frozenset(),
) -> int:
    """Fold this run's ``rule_hits`` into ``lead_evidence``, then rebuild ``leads`` from it.

    A rule in ``scoped`` replaces the evidence of the subjects it screened (those of
    ``scope``); any other rule replaces all of its evidence. Evidence of rules no longer
    in the catalogue is dropped.
    """
    catalog = pa.table({
        "rule_id": [r.id for r in rules],
        "category": [r.category for r in rules],
        "category_zh": [CATEGORIES[r.category].zh for r in rules],
        "subject_type": [r.subject_type for r in rules],
        "severity": pa.array([r.severity for r in rules], pa.int32()),
    })
    db.register("rule_catalog_arrow", catalog)
    db.execute("rule catalog", "create or replace temp table rule_catalog as "
                               "select * from rule_catalog_arrow")
    db.unregister("rule_catalog_arrow")

    db.execute("drop retired evidence",
               "delete from lead_evidence where rule_id not in (select rule_id from rule_catalog)")
    for rule in rules:
        if rule.id in scoped:
            subjects = scope.subject_table(rule.subject_type)
            db.execute(
                f"replace evidence of {rule.id}",
                f"""delete from lead_evidence where rule_id = $rule_id
                    and subject_id in (select subject_id from {subjects})""",
                {"rule_id": rule.id},
            )
        else:
            db.execute(f"replace evidence of {rule.id}",
                       "delete from lead_evidence where rule_id = $rule_id", {"rule_id": rule.id})
    db.run_file("leads/store_evidence.sql")
    db.run_file("leads/aggregate.sql", asdict(settings.score))

    agg = db.fetch_arrow("leads to explain", "select * from lead_agg order by lead_id")
    templates = {r.id: (r.reason_zh, r.reason_en) for r in rules}
    reasons_zh, reasons_en = [], []
    for row in agg.to_pylist():
        zh, en = templates[row["rule_id"]]
        facts = lead_facts(row)
        reasons_zh.append(zh.format(**facts))
        reasons_en.append(en.format(**facts))
    db.register("lead_reasons", pa.table({
        "lead_id": agg.column("lead_id"),
        "reason": pa.array(reasons_zh, pa.string()),
        "reason_en": pa.array(reasons_en, pa.string()),
    }))
    db.execute("clear leads", "delete from leads")
    db.execute(
        "store leads",
        """insert into leads by name
           select a.lead_id, a.rule_id, a.category, a.category_zh, a.subject_type,
                  a.subject_id, a.fixmedins_codes, a.first_time, a.last_time, a.n_events,
                  a.n_institutions, a.amount, a.score, a.severity, r.reason, r.reason_en,
                  coalesce(s.status, 'open') as status
           from lead_agg a
           join lead_reasons r using (lead_id)
           left join lead_status s using (lead_id)""",
    )
    db.unregister("lead_reasons")
    (n,) = db.fetch_one("count leads", "select count(*) from leads")
    log.info("leads: %d", n)
    return int(n)


def lead_facts(row: dict[str, Any]) -> dict[str, str]:
    """The values a reason template may use, formatted for a sentence."""
    first, last = row["first_time"], row["last_time"]
    span = (last - first).total_seconds() if first and last else 0.0
    institutions = [c for c in (row["fixmedins_codes"] or "").split(";") if c]
    return {
        "subject_id": row["subject_id"],
        "n_events": str(row["n_events"]),
        "n_institutions": str(row["n_institutions"]),
        "n_persons": str(row["n_persons"]),
        "institutions_zh": _institutions_zh(institutions),
        "institutions_en": _institutions_en(institutions),
        "first_date": first.strftime("%Y-%m-%d") if first else "",
        "last_date": last.strftime("%Y-%m-%d") if last else "",
        "first_time": first.strftime("%Y-%m-%d %H:%M") if first else "",
        "last_time": last.strftime("%Y-%m-%d %H:%M") if last else "",
        "span_days": _number(span / 86400, 1),
        "span_hours": _number(span / 3600, 1),
        "amount": f"{row['amount']:,.2f}",
        "metric_total": _number(row["metric_total"]),
        "metric_max": _number(row["metric_max"]),
        "threshold": _number(row["threshold"]),
    }


def _number(value: float | None, digits: int = 2) -> str:
    """12.0 -> '12', 12.345 -> '12.35': no trailing zeros in a sentence."""
    if value is None:
        return ""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def _institutions_zh(codes: list[str]) -> str:
    if len(codes) == 1:
        return f"机构 {codes[0]}"
    if len(codes) <= 3:
        return f"{len(codes)} 家机构（{'、'.join(codes)}）"
    return f"{len(codes)} 家机构（{'、'.join(codes[:3])} 等）"


def _institutions_en(codes: list[str]) -> str:
    if len(codes) == 1:
        return codes[0]
    if len(codes) <= 3:
        return f"{len(codes)} institutions ({', '.join(codes)})"
    return f"{len(codes)} institutions ({', '.join(codes[:3])} and others)"
