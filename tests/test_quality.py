"""Data-quality findings and the exemptions they earn: each pattern is reported for the
institution that shows it, and the rules it would fool stay out of it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from landing import PERSONS, Landing, code

from tracecode import pipeline, quality
from tracecode.db import Database
from tracecode.settings import Settings


def _leads(db_path: Path) -> set[tuple[str, str]]:
    with Database.open(db_path, read_only=True) as db:
        return set(db.fetch_rows("leads", "select category, subject_id from leads"))


def test_resident_id_regions_come_from_python_stdnum(tmp_path: Path) -> None:
    regions = quality.resident_id_regions()
    assert "440106" in regions and "441900" in regions and "999999" not in regions
    with Database.open(tmp_path / "db.duckdb") as db:
        quality.load_regions(db)
        quality.load_regions(db)  # once per stdnum version
        (n,) = db.fetch_one("n", "select count(*) from resident_id_regions")
    assert n == len(regions) > 3000


def test_sales_timed_by_date_alone_are_not_judged_by_the_time_of_day_rules(
    landing: Landing, tmp_path: Path
) -> None:
    # a night's burst, and p1 in Guangzhou and Shenzhen within the hour
    landing.sale_series("P44010600001", "N", [f"A:{i}" for i in range(1, 11)],
                        "2025-11-01 23:10:00", every_minutes=15)
    landing.sale("P44010600002", "T1", ["B:1"], "2025-11-03 10:00:00", person="p2")
    landing.sale("P44030400005", "T2", ["B:2"], "2025-11-03 10:40:00", person="p2")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    pipeline.run(landing.root, db_path, tmp_path / "out")
    assert _leads(db_path) == {("off_hours_burst", "P44010600001"),
                               ("impossible_travel", PERSONS["p2"].psn_no)}
    # as helper "shapes" stores a sale time given as a date alone
    with Database.open(db_path) as db:
        db.execute("date only", """update records set event_date_only = true,
                                   habits = ['date_only', 'string_numbers']
                                   where infno = '3505'""")
    pipeline.screen_stage(db_path, Settings(), "R2", incremental=False)
    assert _leads(db_path) == set()
    with Database.open(db_path, read_only=True) as db:
        found = {(r[0], r[1]): r[2] for r in db.fetch_rows(
            "dq", "select fixmedins_code, pattern, n_records from dq_findings")}
    assert found[("P44010600001", "date_only")] == 10
    assert found[("P44010600001", "string_numbers")] == 10
    # below finding_min_records (3): two sales are not a pattern
    assert ("P44010600002", "date_only") not in found


def test_each_upload_pattern_is_a_finding_for_its_institution(
    landing: Landing, tmp_path: Path
) -> None:
    # placeholder ID and name on eight buyers
    landing.sale_series("P44010600001", "C", [f"A:{i}" for i in range(1, 9)],
                        "2025-11-01 09:00:00", persons=["p1", "p2", "p3", "p4", "p8", "p9",
                                                        "p10", "p11"],
                        certno="320500199001010011", psn_name="参保人")
    # one key on three different sales (a formula-like key, to be neutralised in the CSV)
    for i, t in enumerate(("2025-11-02 09:00:00", "2025-11-02 10:00:00", "2025-11-02 11:00:00")):
        landing.sale("P44010600002", "=1+1", [f"B:{i + 1}"], t, person=SHOPPERS_[i])
    # twenty sales, none after 12:59, at a shop open till 21:30
    landing.sale_series("P44010400003", "M", [f"A:{i}" for i in range(101, 121)],
                        "2025-11-03 08:40:00", every_minutes=10)
    # every sale sent again as a 101 transfer in
    landing.sale_series("P44030400005", "S", [f"C:{i}" for i in range(1, 6)],
                        "2025-11-01 09:00:00", every_minutes=30)
    for i in range(5):
        landing.stock("P44030400005", f"X{i}", [f"C:{i + 1}"],
                      f"2025-11-01 {9 + i // 2:02d}:{(i % 2) * 30 + 1:02d}:00", chg_type="101")
    # codes of unusual shape
    for i in range(3):
        landing.sale("P44010600007", f"U{i}", [f"12345{i}"], "2025-11-04 21:00:00", drug="A",
                     person=SHOPPERS_[i], stock=False)
    landing.write()
    db_path, out = tmp_path / "db.duckdb", tmp_path / "out"
    summary = pipeline.run(landing.root, db_path, out)
    with Database.open(db_path, read_only=True) as db:
        found = {(r[0], r[1]): (r[2], r[3]) for r in db.fetch_rows(
            "dq", "select fixmedins_code, pattern, n_records, share from dq_findings")}
    assert set(found) == {
        ("P44010600001", "placeholder_identity"), ("P44010600002", "key_reuse"),
        ("P44010400003", "twelve_hour_clock"), ("P44030400005", "dispensing_as_inbound"),
        ("P44010600007", "unusual_code"),
    }
    assert found[("P44010600001", "placeholder_identity")] == (8, 1.0)
    assert found[("P44010600002", "key_reuse")][0] == 3
    assert found[("P44030400005", "dispensing_as_inbound")] == (5, 1.0)
    assert summary.data_quality["key_reuse"] == 1
    # not leads: no placeholder buyer, no 12-hour night, no mirrored 101 is judged
    assert not {c for c, _ in _leads(db_path)} & {
        "identity_mismatch", "off_hours_burst", "reflux_inbound"}
    raw = (out / "data_quality.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    frame = pl.read_csv(out / "data_quality.csv")
    examples = dict(zip(frame["pattern"], frame["examples"], strict=True))
    assert examples["key_reuse"] == "'=1+1"
    # a placeholder ID is shown masked; the name on eight people is no one's name
    assert "320500********0011" in examples["placeholder_identity"]
    assert "320500199001010011" not in raw.decode("utf-8-sig")
    assert all(frame["reason"].str.contains("请通知其系统厂商"))


SHOPPERS_ = ("p1", "p2", "p3", "p4")


def test_the_simulator_plants_each_habit_at_its_institutions_only() -> None:
    from datetime import date

    import numpy as np

    from tracecode.simulate import habits
    from tracecode.simulate.records import conform
    from tracecode.simulate.scales import SCALES
    from tracecode.simulate.world import DAY, build_world

    world = build_world(SCALES["demo"], date(2025, 11, 1), 14, 1)
    frauds = conform(pl.DataFrame({"inst": [0, 1]}))
    plan = habits.plan_habits(world, frauds, np.random.default_rng(0))
    assert set(plan["habit"]) == set(habits.HABITS) and not {0, 1} & set(plan["inst"])
    at = dict(zip(plan["habit"], plan["inst"], strict=False))
    n = 400
    insts = [at[h] for h in habits.HABITS] + [0]
    inst = np.array(insts)[np.arange(n) % len(insts)]
    t_ev = np.arange(n) * (14 * DAY // n)
    rows = conform(pl.DataFrame({
        "key": np.arange(n), "infno": "3505", "inst": inst, "t_ev": t_ev, "t_up": t_ev + 60,
        "codes": [f"81{i:018d}" for i in range(n)], "n_codes": 1, "trdn": "0",
        "setl": "1", "role": "normal",
    }))
    out = habits.apply_habits(world, rows, plan, np.random.default_rng(1))

    def of(habit: str) -> pl.DataFrame:
        return out.filter(pl.col("inst") == at[habit])

    certnos = of("placeholder_identity")["certno"]
    placeholder = (certnos == habits.PLACEHOLDER_CERTNO).fill_null(False)
    assert 0.2 < placeholder.mean() < 0.6  # type: ignore[operator]
    assert (of("twelve_hour_clock")["t_ev"] % DAY < 13 * 3600).all()
    unscanned = of("capture_gap").filter(pl.col("codes").is_null())
    assert 0.4 < unscanned.height / of("capture_gap").height < 0.8
    assert (unscanned["n_codes"] == 0).all()
    late = of("late_upload")
    due = np.minimum(late["t_ev"] + 3 * DAY, 14 * DAY - 60)
    assert (late["t_up"] >= due).all()
    assert of("upload_silence")["t_ev"].max() < 10 * DAY  # type: ignore[operator]
    mirrored = of("dispensing_as_inbound")
    sold, moved = (mirrored.filter(pl.col("infno") == k) for k in ("3505", "3502"))
    assert sorted(moved["codes"]) == sorted(sold["codes"]) and set(moved["chg_type"]) == {"101"}
    # the institution with no habit is as it was
    assert out.filter(pl.col("inst") == 0).equals(rows.filter(pl.col("inst") == 0))


def test_a_twelve_hour_clocks_morning_sale_is_judged_at_its_afternoon_reading(
    landing: Landing, tmp_path: Path
) -> None:
    # a shop open till 21:30 whose clock reads 12-hour: 20:40 is sent as 08:40
    landing.sale_series("P44010400003", "M", [f"A:{i}" for i in range(101, 121)],
                        "2025-11-03 08:40:00", every_minutes=10)
    # a box transferred in at 10:00 and sold in the evening (sent as 08:40): no reflux
    landing.stock("P44010400003", "T1", ["A:101"], "2025-11-03 10:00:00", chg_type="101")
    # one taken in again the next day is
    landing.stock("P44010400003", "T2", ["A:102"], "2025-11-04 10:00:00", chg_type="101")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    pipeline.run(landing.root, db_path, tmp_path / "out")
    reflux = {s for c, s in _leads(db_path) if c == "reflux_inbound"}
    assert reflux == {code("A:102")}
