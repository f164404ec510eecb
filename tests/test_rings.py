"""Collusion rings: codes that moved against the rules link institutions and collectors
into one case; a chain's own transfers and a lone reflux box make none."""

from __future__ import annotations

from pathlib import Path

import pytest
from landing import PERSONS, Landing

from tracecode import pipeline
from tracecode.db import Database

RING_SHOPS = ("P44010600001", "P44010600002", "P44010400003", "P44030400005")


@pytest.fixture(scope="module")
def ring_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("rings")
    land = Landing(tmp / "landing")
    a1, a2, b1, b2 = RING_SHOPS
    # two collectors buy boxes at A1 and A2; each box is taken into stock at B1 or B2
    for i, (who, sold_at, taken_at) in enumerate(
            (("p4", a1, b1), ("p4", a2, b2), ("p5", a1, b2), ("p5", a2, b1))):
        box = f"B:{101 + i}"
        land.sale(sold_at, f"S{i}", [box], f"2025-11-0{3 + i} 10:00:00", person=who)
        land.stock(taken_at, f"IN{i}", [box], f"2025-11-0{4 + i} 16:00:00", chg_type="108")
    # a chain's flagship passes boxes to its branch (102 out, 101 in), which sells them
    for i in range(3):
        box = f"A:{201 + i}"
        land.stock("P44010600007", f"T{i}", [box], "2025-11-02 09:00:00")
        land.stock("P44010600007", f"TO{i}", [box], "2025-11-03 09:00:00", chg_type="102")
        land.stock("H44010600006", f"TI{i}", [box], "2025-11-03 11:00:00", chg_type="101")
        land.sale("H44010600006", f"TS{i}", [box], f"2025-11-0{4 + i} 10:00:00", person="p1",
                  stock=False)
    # one box bought back, alone: a reflux lead, no ring
    land.sale("H44010600004", "L1", ["B:300"], "2025-11-03 10:00:00", person="p2")
    land.stock("P44010600007", "LI1", ["B:300"], "2025-11-05 16:00:00", chg_type="108")
    land.write()
    pipeline.run(land.root, tmp / "db.duckdb", tmp / "out")
    return tmp / "db.duckdb"


def test_a_planted_ring_is_one_case_with_its_shops_and_collectors(ring_db: Path) -> None:
    with Database.open(ring_db, read_only=True) as db:
        rings = db.fetch_rows("rings", "select ring_id, n_institutions, n_persons, n_codes, "
                                       "members, lead_ids from rings")
        members = db.fetch_rows("members", "select member_type, member_id, n_codes "
                                           "from ring_members order by all")
        lead = db.fetch_one("ring lead", "select lead_id, fixmedins_codes, n_events, severity, "
                                         "reason from leads where category = 'ring'")
        (evidence,) = db.fetch_one("evidence", "select count(distinct note) from lead_evidence "
                                               "where rule_id = 'ring'")
    assert len(rings) == 1
    ring_id, n_inst, n_persons, n_codes, _, lead_ids = rings[0]
    assert (n_inst, n_persons, n_codes) == (4, 2, 4)
    assert {m[1] for m in members if m[0] == "institution"} == set(RING_SHOPS)
    assert {m[1] for m in members if m[0] == "person"} == {PERSONS["p4"].psn_no,
                                                          PERSONS["p5"].psn_no}
    assert lead[0] == ring_id and set(lead[1].split(";")) == set(RING_SHOPS)
    assert lead[2:4] == (4, 5) and lead[4].startswith("疑似团伙：4 家机构")
    # the case holds its four member leads' evidence, each row naming the lead it came from
    assert evidence == len(lead_ids.split(";")) == 4


def test_a_chains_transfers_and_a_lone_reflux_box_make_no_ring(ring_db: Path) -> None:
    with Database.open(ring_db, read_only=True) as db:
        (in_rings,) = db.fetch_one("chain", """
            select count(*) from ring_members
            where member_id in ('P44010600007', 'H44010600006', 'H44010600004')""")
        (lone,) = db.fetch_one("lone reflux", "select count(*) from leads "
                                              "where category = 'reflux_inbound'")
    assert in_rings == 0
    assert lone == 5  # the ring's four boxes and the lone one: rule leads all the same
