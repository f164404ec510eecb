"""Collusion rings: institutions and collectors passing codes among themselves (the Yulin case).

A rule lead about one code says a box moved against the rules: sold at A and re-sold at
B (``dup_cross_*``), returned at A and sold at B (``return_resold``), taken into B's stock
after a sale at A (``reflux_inbound``). Each such lead links the institutions its evidence
names, and the buyers who bought two or more such codes (``sql/rings/ring_links.sql``).
The connected parts of that graph (networkx) with at least ``min_institutions``
institutions and ``min_codes`` codes are rings. Each ring is one case: a ``ring`` lead on
its hub (the institution most of its codes passed through) whose evidence is its member
leads' evidence, a row in ``rings`` and its members in ``ring_members``. A chain's own
transfers between its shops (3502 102/101) raise none of those rules and link nothing.

>>> build_rings(db, Settings())                      # doctest: +SKIP
2
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import networkx as nx
import polars as pl

from tracecode.categories import CATEGORIES
from tracecode.db import Database
from tracecode.settings import Settings

log = logging.getLogger(__name__)

# the rules whose leads say a code moved between institutions against the rules
RING_RULES = ("dup_cross_long_gap", "dup_cross_short_gap", "return_resold", "reflux_inbound")
# a ring is organised fraud: above a single reflux box (4), below nothing
RING_SEVERITY = 5


@dataclass(frozen=True)
class Ring:
    hub: str                          # the institution most of its codes passed through
    institutions: tuple[str, ...]     # hub first, then by codes
    persons: tuple[str, ...]
    lead_ids: tuple[str, ...]
    n_codes: int
    amount: float


def find_rings(links: pl.DataFrame, min_institutions: int, min_codes: int) -> list[Ring]:
    """Group ``ring_links`` rows (lead_id, code, member_type, member_id, amount) into rings,
    largest amount first."""
    graph = nx.Graph()
    for lead_id, member_type, member_id in links.select(
            "lead_id", "member_type", "member_id").iter_rows():
        graph.add_edge(("lead", lead_id), (member_type, member_id))
    rings = []
    for part in nx.connected_components(graph):
        leads = sorted(n[1] for n in part if n[0] == "lead")
        inst = [n[1] for n in part if n[0] == "institution"]
        if len(inst) < min_institutions:
            continue
        rows = links.filter(pl.col("lead_id").is_in(leads))
        codes = rows["code"].n_unique()
        if codes < min_codes:
            continue
        per_member = (rows.group_by("member_type", "member_id")
                      .agg(pl.col("code").n_unique().alias("n_codes"))
                      .sort(["n_codes", "member_id"], descending=[True, False]))
        ranked = per_member.filter(pl.col("member_type") == "institution")["member_id"]
        persons = per_member.filter(pl.col("member_type") == "person")["member_id"]
        amount = float(rows.filter(pl.col("member_type") == "institution")["amount"].sum())
        rings.append(Ring(str(ranked[0]), tuple(ranked.to_list()), tuple(persons.to_list()),
                          tuple(leads), int(codes), round(amount, 2)))
    return sorted(rings, key=lambda r: (-r.amount, r.hub))


def build_rings(db: Database, settings: Settings) -> int:
    """Replace ``rings``, ``ring_members`` and the ``ring`` leads from the rule leads now in
    ``leads``/``lead_evidence`` (run it after :func:`tracecode.leads.build_leads`); the
    number of rings."""
    db.run_file("rings/ring_links.sql", {"ring_rules": ";".join(RING_RULES)})
    links = db.fetch_polars("ring links", "select * from ring_links")
    s = settings.rings
    rings = find_rings(links, s.min_institutions, s.min_codes)
    ring_rows = pl.DataFrame(
        [{"hub": r.hub, "n_institutions": len(r.institutions), "n_persons": len(r.persons),
          "n_codes": r.n_codes, "amount": r.amount,
          "members": ";".join(r.institutions + r.persons),
          "institutions": ";".join(r.institutions), "lead_ids": ";".join(r.lead_ids),
          "reason": _reason_zh(r), "reason_en": _reason_en(r)} for r in rings],
        schema={"hub": pl.String, "n_institutions": pl.Int64, "n_persons": pl.Int64,
                "n_codes": pl.Int64, "amount": pl.Float64, "members": pl.String,
                "institutions": pl.String, "lead_ids": pl.String, "reason": pl.String,
                "reason_en": pl.String})
    members = (
        links.join(pl.DataFrame(
            [{"hub": r.hub, "lead_id": lead} for r in rings for lead in r.lead_ids],
            schema={"hub": pl.String, "lead_id": pl.String}), on="lead_id")
        .group_by("hub", "member_type", "member_id")
        .agg(pl.col("code").n_unique().alias("n_codes"), pl.col("amount").sum().round(2))
    )
    db.register("ring_rows", ring_rows.to_arrow())
    db.register("ring_member_rows", members.to_arrow())
    try:
        db.run_file("rings/store_rings.sql", {
            **asdict(settings.score), "severity": RING_SEVERITY,
            "category_zh": CATEGORIES["ring"].zh})
    finally:
        db.unregister("ring_rows")
        db.unregister("ring_member_rows")
    log.info("rings: %d (%s)", len(rings),
             ", ".join(f"{len(r.institutions)} institutions/{r.n_codes} codes" for r in rings))
    return len(rings)


def _reason_zh(r: Ring) -> str:
    shops = "、".join(r.institutions[:4]) + (" 等" if len(r.institutions) > 4 else "")
    who = f"与 {len(r.persons)} 名反复经手的人员" if r.persons else ""
    return (f"疑似团伙：{len(r.institutions)} 家机构（{shops}）{who}之间，"
            f"{r.n_codes} 个追溯码违规流转（跨机构重复销售、退货后异地再售或售出后回流入库），"
            f"医保基金支付 {r.amount:,.2f} 元；涉及线索 {len(r.lead_ids)} 条。")


def _reason_en(r: Ring) -> str:
    shops = ", ".join(r.institutions[:4]) + (" and others" if len(r.institutions) > 4 else "")
    who = f" and {len(r.persons)} persons handling several of them" if r.persons else ""
    return (f"Possible ring: {r.n_codes} codes moved against the rules (re-sold, returned "
            f"and re-sold, or taken back into stock after a sale) among "
            f"{len(r.institutions)} institutions ({shops}){who}; the fund paid "
            f"{r.amount:,.2f} yuan; {len(r.lead_ids)} leads behind it.")
