"""Capture compliance: institutions far below their peers are findings, apart from the
leads; a new institution, a clinic with few sales and a holiday closure are not."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from landing import Landing

from tracecode import pipeline
from tracecode.db import Database
from tracecode.settings import settings_from_dict

SETTINGS = {"compliance": {"min_insured_sales": 5, "min_active_days": 3, "silence_days": 3,
                           "silence_min_expected_sales": 10}}
PEOPLE = ("p1", "p2", "p3", "p4", "p8", "p9", "p10", "p11", "p12", "p13")


def _day(inst: str, landing: Landing, day: int, serial: int, *, coded: int = 2, codeless: int = 0,
         late_days: int = 0) -> None:
    """A day's insured sales at ``inst``: ``coded`` with a code, ``codeless`` without."""
    for i in range(coded + codeless):
        time = f"2025-11-{day:02d} {9 + i:02d}:00:00"
        inf = f"2025-11-{day + late_days:02d} {9 + i:02d}:30:00"
        codes = [f"A:{serial + i}"] if i < coded else []
        landing.sale(inst, f"S{day}-{serial + i}", codes, time, person=PEOPLE[i % 10],
                     inf_time=inf)


def test_institutions_far_below_their_peers_are_findings_and_the_look_alikes_are_not(
    landing: Landing, tmp_path: Path
) -> None:
    for day in range(1, 11):
        s = day * 100
        _day("P44010600001", landing, day, s) if day not in (4, 5, 6) else None  # a holiday
        _day("P44010600002", landing, day, s + 10_000, late_days=4 if day <= 6 else 0)
        if day <= 3:
            _day("P44010400003", landing, day, s + 20_000)  # then silent
        _day("P44030400005", landing, day, s + 30_000, coded=1, codeless=2)  # skips scanning
        if day >= 9:
            _day("H44010600004", landing, day, s + 40_000, coded=0, codeless=3)  # new
    # a night pharmacy with two sales, both without codes
    _day("P44010600007", landing, 5, 50_000, coded=0, codeless=2)
    landing.write()
    db_path, out = tmp_path / "db.duckdb", tmp_path / "out"
    summary = pipeline.run(landing.root, db_path, out, settings_from_dict(SETTINGS))
    with Database.open(db_path, read_only=True) as db:
        found = {(r[0], r[1]): r[2:] for r in db.fetch_rows(
            "compliance", """select category, fixmedins_code, metric, peer_median, amount,
                                    score from compliance_findings""")}
        lead_categories = {r[0] for r in db.fetch_rows("leads", "select category from leads")}
    assert set(found) == {("capture_gap", "P44030400005"), ("upload_silence", "P44010400003"),
                          ("late_upload", "P44010600002")}
    metric, peer, amount, score = found[("capture_gap", "P44030400005")]
    assert round(metric, 3) == round(1 / 3, 3) and peer == 1.0
    assert amount == 20 * 56.0 and 0 < score <= 100  # 20 codeless sales of one A pack
    assert found[("upload_silence", "P44010400003")][0] > 6
    assert not lead_categories & {"capture_gap", "upload_silence", "late_upload"}
    assert summary.compliance == {"capture_gap": 1, "late_upload": 1, "upload_silence": 1}
    frame = pl.read_csv(out / "compliance.csv")
    assert frame["finding_id"].n_unique() == 3 and frame["reason"].str.contains("机构").all()
    assert "capture_gap" not in (out / "leads.csv").read_text(encoding="utf-8-sig")

    head = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))["headline"]
    assert head["institutions_registered"] == 7 and head["institutions_connected"] == 6
    assert head["connected_rate"] == round(6 / 7, 4)
    insured = 2 * 7 + 2 * 10 + 2 * 3 + 3 * 10 + 3 * 2 + 2
    assert head["insured_sales"] == insured
    assert head["insured_sales_with_codes"] == 2 * 7 + 20 + 6 + 10
    # every code uploaded, sold and stocked (the landing stocks each before its sale)
    assert head["codes_collected"] == 2 * head["insured_sales_with_codes"]
    assert head["capture_rate"] == round(50 / insured, 4)
    assert {"leads_raised", "leads_confirmed", "leads_dismissed", "leads_open",
            "institutions_proposed", "amount_at_risk"} <= head.keys()
    assert [d["day"] for d in head["by_day"]] == [f"2025-11-{d:02d}" for d in range(1, 11)]
    cities = {c["city"]: c for c in head["by_city"]}
    assert cities.keys() == {"4401", "4403"}
    assert (cities["4401"]["institutions_registered"], cities["4401"]["institutions_connected"],
            cities["4403"]["capture_rate"]) == (6, 5, round(10 / 30, 4))
    with Database.open(db_path, read_only=True) as db:
        district = db.fetch_one("district", """select institutions_silent, dq_findings
                                           from capture_regions where region = '440104'""")
    assert district == (1, 0)  # P44010400003 went silent


def test_upload_lag_and_scanning_are_measured_per_institution(
    landing: Landing, tmp_path: Path
) -> None:
    # a whole-pack sale of two packs listing one code, and a stock-in listing none
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=56,
                 inf_time="2025-11-04 10:00:00")
    landing.sale("P44010600001", "S2", ["A:2"], "2025-11-01 11:00:00",
                 inf_time="2025-11-01 11:30:00")
    landing.sale("P44010600001", "S3", ["A:3"], "2025-11-02 11:00:00",
                 inf_time="2025-11-03 11:00:00")
    landing.stock("P44010600001", "X1", [], "2025-11-01 08:00:00", cnt=10)
    landing.write()
    db_path = tmp_path / "db.duckdb"
    pipeline.run(landing.root, db_path, tmp_path / "out")
    with Database.open(db_path, read_only=True) as db:
        row = db.fetch_polars("measures", """select * from capture_institutions
                                             where fixmedins_code = 'P44010600001'""").row(
            0, named=True)
    assert row["whole_count_mismatch"] == 1
    assert row["stock_ins_without_codes"] == 1
    assert row["late_sales"] == 1 and row["late_share"] == pytest.approx(1 / 3)
    # lags of 30 minutes, 1 day and 3 days: the middle one; the 90th percentile
    # interpolated 80% of the way from the second to the third
    assert row["lag_median_days"] == pytest.approx(1.0)
    assert row["lag_p90_days"] == pytest.approx(1.0 + 0.8 * 2.0)
    assert row["capture_share"] == 1.0
