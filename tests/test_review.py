"""The review round trip: decisions filled in the workbook come back into an append-only
audit trail; a dismissed lead stays away for the same evidence and returns when new
evidence arrives; a confirmed lead keeps its status."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest
from landing import Landing

from tracecode import pipeline
from tracecode.db import Database
from tracecode.errors import InputError
from tracecode.review import Decision, read_review_file, record_decisions

INST = "P44010600001"


def _run(landing: Landing, tmp_path: Path) -> pl.DataFrame:
    landing.write()
    pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    return pl.read_csv(tmp_path / "out" / "leads.csv")


def _lead(leads: pl.DataFrame, subject_code: str) -> dict:
    rows = leads.filter(pl.col("subject_id").cast(pl.String) == subject_code)
    assert rows.height == 1, leads.select("category", "subject_id")
    return rows.row(0, named=True)


def _fill_in(xlsx: Path, decisions: dict[str, tuple[str, str, str]]) -> None:
    """What an investigator does in Excel: fill 核查结论 / 核查说明 / 核查人 and save."""
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["线索"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) + 1 for name in ("线索编号", "核查结论", "核查说明", "核查人")}
    for row in range(2, ws.max_row + 1):
        lead_id = ws.cell(row, col["线索编号"]).value
        if lead_id in decisions:
            for name, value in zip(("核查结论", "核查说明", "核查人"), decisions[lead_id],
                                   strict=True):
                ws.cell(row, col[name]).value = value
    wb.save(xlsx)


def _reviews(tmp_path: Path) -> list[tuple]:
    with Database.open(tmp_path / "db.duckdb") as db:
        return db.fetch_rows("reviews", """select review_id, lead_id, status, note, decided_by,
                                                  decided_at, evidence_fingerprint
                                           from lead_reviews order by review_id""")


def test_a_dismissed_lead_stays_away_until_new_evidence_reopens_it(
    landing: Landing, tmp_path: Path
) -> None:
    from landing import code

    a1, a2 = code("A:1"), code("A:2")
    landing.sale(INST, "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale(INST, "S2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    landing.sale(INST, "S3", ["A:2"], "2025-11-01 11:00:00")
    landing.sale(INST, "S4", ["A:2"], "2025-11-02 11:00:00", person="p2")
    leads = _run(landing, tmp_path)
    dismissed, confirmed = _lead(leads, a1)["lead_id"], _lead(leads, a2)["lead_id"]

    xlsx = tmp_path / "out" / "leads.xlsx"
    _fill_in(xlsx, {dismissed: ("排除", "同一患者两次复诊，已核实", "张科"),
                    confirmed: ("属实", "串换", "李科")})
    with Database.open(tmp_path / "db.duckdb") as db:
        decisions = read_review_file(xlsx)
        assert record_decisions(db, decisions, source=xlsx.name).recorded == 2
        # the same workbook again adds nothing
        assert record_decisions(db, decisions, source=xlsx.name).recorded == 0
    first = _reviews(tmp_path)
    assert sorted((r[1], r[2], r[3], r[4]) for r in first) == sorted([
        (dismissed, "dismissed", "同一患者两次复诊，已核实", "张科"),
        (confirmed, "confirmed", "串换", "李科")])

    # a re-run on the same evidence: the dismissed lead is not raised again
    leads = _run(landing, tmp_path)
    assert dismissed not in set(leads["lead_id"])
    assert _lead(leads, a2)["status"] == "confirmed"

    # new evidence for both subjects: a third sale of each code
    landing.sale(INST, "S5", ["A:1"], "2025-11-03 10:00:00", person="p3", file="day2.jsonl")
    landing.sale(INST, "S6", ["A:2"], "2025-11-03 11:00:00", person="p3", file="day2.jsonl")
    leads = _run(landing, tmp_path)
    assert _lead(leads, a1)["status"] == "reopened"
    assert _lead(leads, a2)["status"] == "confirmed"
    # the audit trail only grew: the earlier rows are untouched
    assert _reviews(tmp_path)[: len(first)] == first

    # the workbook shows the earlier decision beside the reopened status, and the report too
    sheet = pl.read_excel(tmp_path / "out" / "leads.xlsx", sheet_name="线索")
    row = sheet.filter(pl.col("线索编号") == dismissed).row(0, named=True)
    assert (row["当前状态"], row["核查结论"], row["核查人"]) == (
        "重新打开（有新证据）", "排除", "张科")
    page = (tmp_path / "out" / "report" / f"{dismissed}.html").read_text(encoding="utf-8")
    assert "同一患者两次复诊" in page and "重新打开" in page


def test_a_csv_of_decisions_imports_and_an_unknown_lead_fails_the_whole_file(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale(INST, "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale(INST, "S2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    leads = _run(landing, tmp_path)
    lead_id = leads["lead_id"][0]
    good = tmp_path / "review.csv"
    good.write_text(f"lead_id,status,note,decided_by\n{lead_id},dismissed,'=ok,王\n",
                    encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"线索编号,核查结论\n{lead_id},属实\nLnope,排除\n", encoding="utf-8")
    with Database.open(tmp_path / "db.duckdb") as db:
        with pytest.raises(InputError, match="Lnope"):
            record_decisions(db, read_review_file(bad), source=bad.name)
        assert db.fetch_one("n", "select count(*) from lead_reviews") == (0,)
        record_decisions(db, read_review_file(good), source=good.name)
        # the quote a CSV export put before a formula-like note is taken off again
        assert db.fetch_rows("r", "select status, note, decided_by from lead_reviews") == [
            ("dismissed", "=ok", "王")]
        assert db.fetch_one("s", "select status from leads where lead_id = $i",
                            {"i": lead_id}) == ("dismissed",)
        record_decisions(db, [Decision(lead_id, "open", "再查", "王")], source="mark")
        assert db.fetch_one("s", "select status from leads where lead_id = $i",
                            {"i": lead_id}) == ("open",)


def test_an_unknown_decision_word_is_an_error_naming_the_choices(tmp_path: Path) -> None:
    bad = tmp_path / "r.csv"
    bad.write_text("线索编号,核查结论\nL1,也许\n", encoding="utf-8")
    with pytest.raises(InputError, match="属实"):
        read_review_file(bad)
