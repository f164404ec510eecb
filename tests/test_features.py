"""The behaviour features, computed in DuckDB, against values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from landing import PERSONS, Landing

from tracecode import pipeline
from tracecode.db import Database, read_sql, split_statements
from tracecode.features import EVIDENCE_COLUMNS, FEATURES, TABLES, FeatureMatrix, compute_features
from tracecode.settings import Settings, settings_from_dict


@pytest.fixture(scope="module")
def small_world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three institutions, four persons, two weeks; values below are worked out by hand."""
    tmp = tmp_path_factory.mktemp("features")
    land = Landing(tmp / "landing")
    # pharmacy 1 (Guangzhou, 440106): four sale records
    land.sale("P44010600001", "S1", ["A:1"], "2025-11-03 10:00:00", person="p1")
    land.sale("P44010600001", "S2", ["C:1", "C:2"], "2025-11-03 23:30:00", person="p3")
    land.sale("P44010600001", "S3", ["A:2"], "2025-11-04 09:00:00", person="p1")
    # a code never stocked here and sold again elsewhere (repeat code)
    land.sale("P44010600001", "S4", ["B:5"], "2025-11-11 11:00:00", person="p2", stock=False)
    land.sale("P44010400003", "S5", ["B:5"], "2025-11-12 11:00:00", person="p4")
    # clinic: two split sales of one pack of A (28 units), 7 units each
    land.sale("H44010600004", "S6", ["A:9"], "2025-11-05 10:00:00", split=True, qty=7,
              person="p2")
    land.sale("H44010600004", "S7", ["A:9"], "2025-11-13 10:00:00", split=True, qty=7,
              person="p2")
    land.write()
    pipeline.run(land.root, tmp / "db.duckdb", tmp / "out")
    return tmp / "db.duckdb"


@pytest.fixture(scope="module")
def small_world(small_world_db: Path) -> dict[str, FeatureMatrix]:
    with Database.open(small_world_db) as db:
        return compute_features(db, Settings())


@pytest.fixture(scope="module")
def small_tables(small_world_db: Path) -> dict[str, pl.DataFrame]:
    """The feature tables, every column (the matrices hold the modelled ones only)."""
    with Database.open(small_world_db) as db:
        compute_features(db, Settings())
        return {s: db.fetch_polars(s, f"select * from {t}") for s, t in TABLES.items()}


def _row(table: pl.DataFrame, subject: str) -> dict[str, float]:
    return table.filter(pl.col("subject_id") == subject).row(0, named=True)


def test_the_feature_tables_hold_the_evidence_then_exactly_the_declared_features(
    small_world_db: Path,
) -> None:
    with Database.open(small_world_db) as db:
        compute_features(db, Settings())
        for subject, table in TABLES.items():
            columns = [r[0] for r in db.fetch_rows("columns", f"describe {table}")]
            assert columns == [*EVIDENCE_COLUMNS, *(f.name for f in FEATURES[subject])]


def test_institution_features_match_the_values_worked_out_by_hand(
    small_world: dict[str, FeatureMatrix], small_tables: dict[str, pl.DataFrame],
) -> None:
    m = small_tables["institution"]
    assert sorted(m["subject_id"]) == ["H44010600004", "P44010400003", "P44010600001"]
    p1 = _row(m, "P44010600001")
    window_days = 11  # 2025-11-03 .. 2025-11-13
    # buyer-days: p1 on 11-03 and 11-04, p3 on 11-03, p2 on 11-11
    assert p1["buyers_per_day"] == pytest.approx(4 / window_days)
    assert p1["packs_per_buyer_day"] == pytest.approx(5 / 4)
    # fund: A 56 + A 56 + C 2 x 1200 + B 180 over three buyers
    assert p1["amount_per_buyer"] == pytest.approx((56 + 56 + 2400 + 180) / 3)
    assert p1["expensive_share"] == pytest.approx(2 / 5)
    assert p1["top_drug_share"] == pytest.approx(2400 / 2692)
    # pharmacies sold 2 packs each of A, B and C: a third each; p1 sold 5 packs, 2 of A
    assert p1["top_drug_lift"] == pytest.approx((2 + 1) / (5 / 3 + 1))
    assert p1["nonlocal_share"] == pytest.approx(1 / 3)  # p3 is insured in Shenzhen
    assert p1["night_share"] == pytest.approx(1 / 4)
    assert p1["split_share"] == 0
    assert p1["repeat_code_rate"] == pytest.approx(1 / 5)  # B:5 sold twice
    assert p1["unstocked_share"] == pytest.approx(1 / 5)
    # weeks of the window: 11-03 (7 days) and 11-10 (4 days); packs a day 4/7 and 1/4
    assert p1["volume_jump"] == pytest.approx((4 / 7 + 1) / ((4 / 7 + 1 / 4) / 2 + 1))
    # expensive drugs' buyers a day: p3 bought two boxes of C in the first week (1/7), none
    # in the second; one heavy buyer is one buyer, not a jump of two boxes
    assert p1["expensive_jump"] == pytest.approx((1 / 7 + 1 / 7) / (1 / 14 + 1 / 7))
    # its top drug by money is C: 2 packs in the first half (11-03..11-07), none after
    assert p1["top_drug_rise"] == pytest.approx((0 / 6 + 1) / (2 / 5 + 1))
    # the forest sees the modelled features only: not what kind of shop this is
    names = small_world["institution"].names
    assert "top_drug_rise" in names and "expensive_share" not in names
    # nor what the rules already lead (codes sold twice, codes never in stock), nor a
    # specialty pharmacy's steady trade in one drug (its share of the money)
    assert not {"repeat_code_rate", "unstocked_share", "top_drug_share"} & set(names)
    clinic = _row(m, "H44010600004")
    assert clinic["split_share"] == 1
    assert clinic["packs_per_buyer_day"] == pytest.approx(0.25)


def test_person_features_are_per_month_and_compare_a_drug_with_its_usual_buyer(
    small_world: dict[str, FeatureMatrix], small_tables: dict[str, pl.DataFrame],
) -> None:
    m = small_tables["person"]
    assert set(m["period"]) == {"2025-11"}
    p1 = _row(m, PERSONS["p1"].psn_no)
    assert p1["packs"] == 2
    # A again on 11-04, the day after the first: that box's fund money is a re-buy
    assert p1["rebuy_fund"] == pytest.approx(56)
    # buyers of A this month: p1 two packs, p2 two quarter packs -> median 1.25
    assert p1["need_ratio"] == pytest.approx(2 / 1.25)
    p2 = _row(m, PERSONS["p2"].psn_no)
    assert p2["rebuy_fund"] == pytest.approx(14)  # the clinic's second split sale of A
    # B: p2 and p4 one box each; A: p2's half box is below the usual buyer's
    assert p2["need_ratio"] == 1
    p3 = _row(m, PERSONS["p3"].psn_no)
    assert p3["expensive_packs"] == 2
    assert p3["fund_amount"] == pytest.approx(2400)
    assert p3["amount_change"] == 1  # a single month is its own usual month
    evidence = _row(m, PERSONS["p2"].psn_no)
    assert evidence["fixmedins_codes"] == "H44010600004;P44010600001"
    assert evidence["n_events"] == 3


def test_the_expensive_threshold_is_the_setting(small_world_db: Path) -> None:
    # pharmacy 1 sold A (56 yuan a pack) twice, C (1,200) twice and B (180) once
    strict = settings_from_dict({"model": {"expensive_pack_price": 100.0}})
    with Database.open(small_world_db) as db:
        shares = []
        for s in (Settings(), strict):
            compute_features(db, s)
            shares.append(db.fetch_one("share", "select expensive_share from "
                                       "institution_features where subject_id = 'P44010600001'")[0])
    assert shares == [pytest.approx(2 / 5), pytest.approx(3 / 5)]


def test_person_features_spill_and_take_medians_as_median_does(tmp_path: Path) -> None:
    """600,000 sales of 300,000 persons at a 110 MB limit: median() ran out of memory
    there (it cannot spill); the window medians pass and equal median()'s, to the last
    decimal of packs (6 places) and yuan (4)."""
    con = duckdb.connect(config={"memory_limit": "110MB", "threads": 2,
                                 "temp_directory": str(tmp_path / "spill")})
    con.execute("""
        create temp table feature_sales as
        select
            i as rec_id,
            'F' || (i % 997) as fixmedins_code,
            'P' || (i // 2) as psn_no,
            'D' || (i % 20011) as med_list_codg,
            timestamp '2025-09-01' + to_minutes((i * 7919) % 129600) as sel_time,
            (timestamp '2025-09-01' + to_minutes((i * 7919) % 129600))::date as sel_date,
            date_trunc('month', timestamp '2025-09-01' + to_minutes((i * 7919) % 129600))::date
                as sel_month,
            (((i * 7919) % 1000) / 7)::decimal(18, 6) as packs,
            (((i * 17) % 3001) / 7)::decimal(18, 4) as fund_amount,
            i % 9 = 0 as is_expensive
        from range(600000) t(i)""")
    for stmt in split_statements(read_sql("features/040_person_features.sql")):
        con.execute(stmt)
    con.execute("set memory_limit = '4GB'")
    expected = pl.DataFrame(pl.from_arrow(con.sql("""
        with dm as (
            select psn_no, sel_month, med_list_codg, sum(packs) as packs
            from feature_sales group by all
        ),
        norms as (
            select sel_month, med_list_codg, greatest(median(packs), 1) as typical
            from dm group by all
        ),
        pm as (select psn_no, sel_month, sum(fund_amount) as fund from feature_sales group by all),
        usual as (select psn_no, median(fund) as usual from pm group by all)
        select
            psn_no as subject_id,
            strftime(sel_month, '%Y-%m') as period,
            max(dm.packs / n.typical) as need_ratio,
            any_value((pm.fund + 100) / (u.usual + 100)) as amount_change
        from dm
        join norms as n using (sel_month, med_list_codg)
        join pm using (psn_no, sel_month)
        join usual as u using (psn_no)
        group by all""").to_arrow_table()))
    got = pl.DataFrame(pl.from_arrow(con.sql(
        "select subject_id, period, need_ratio, amount_change from person_features"
    ).to_arrow_table()))
    assert got.height == expected.height > 300_000
    joined = got.join(expected, on=["subject_id", "period"], suffix="_median")
    assert joined.height == got.height
    assert (joined["need_ratio"] == joined["need_ratio_median"]).all()
    assert (joined["amount_change"] == joined["amount_change_median"]).all()
