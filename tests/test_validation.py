"""Poison values are quarantined at the boundary, naming the field and the value, so that
no later stage (rules, model, exports) can meet them: the run that ingests them and every
later run succeed (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from landing import Landing, code
from test_ingest import assert_balanced
from typer.testing import CliRunner

from tracecode import pipeline
from tracecode.cli import app
from tracecode.db import Database
from tracecode.settings import IngestSettings, Settings

INST = "P44010600001"
T = "2025-11-01 10:00:00"
MARK = "__POISON__"

# reason -> (where, raw JSON text put in place of MARK)
POISON = {
    "sel_retn_cnt 1e400 is not a finite number": ("sel_retn_cnt", "1e400"),
    "sel_retn_cnt -1e400 is not a finite number": ("sel_retn_cnt", "-1e400"),
    "sel_retn_cnt 1e308 is above the ceiling 1000000.0": ("sel_retn_cnt", "1e308"),
    "sel_retn_cnt NaN is not a finite number": ("sel_retn_cnt", '"NaN"'),
    "sel_retn_cnt infinity is not a finite number": ("sel_retn_cnt", '"infinity"'),
    "sel_retn_cnt -2 is not a positive count": ("sel_retn_cnt", "-2"),
    "sel_retn_cnt 0 is not a positive count": ("sel_retn_cnt", "0"),
    "finl_trns_pric -1.5 is negative": ("finl_trns_pric", "-1.5"),
    "finl_trns_pric Infinity is not a finite number": ("finl_trns_pric", '"Infinity"'),
    "sel_retn_time infinity is not a time": ("sel_retn_time", '"infinity"'),
    "sel_retn_time 9999-12-31 23:59:59 is more than 24 h after its upload "
    "(inf_time 2025-11-01 10:01:00)": ("sel_retn_time", '"9999-12-31 23:59:59"'),
    "sel_retn_time 0001-01-01 00:00:00 is before 2019-01-01": (
        "sel_retn_time", '"0001-01-01 00:00:00"'),
    "sel_retn_time 2025-11-01 10:00:00+25:00 is not a time": (
        "sel_retn_time", '"2025-11-01 10:00:00+25:00"'),
    "expy_end 9999-12-31 is outside 1970-01-01 .. 2199-12-31": ("expy_end", '"9999-12-31"'),
    'psn_no {"id":1} is not a text': ("psn_no", '{"id": 1}'),
    'certno ["440106199001011234"] is not a text': ("certno", '["440106199001011234"]'),
    'fixmedins_bchno ["S1"] is not a text': ("fixmedins_bchno", '["S1"]'),
    f'drug_trac_codg ["{code("A:1")}"] is not a text': (
        "drugtracinfo", f'[{{"drug_trac_codg": ["{code("A:1")}"]}}]'),
}
ENVELOPE_POISON = {
    "inf_time infinity is not a time": ("inf_time", '"infinity"'),
    "inf_time 9999-12-31 23:59:59 is outside 2019-01-01 .. ": (
        "inf_time", '"9999-12-31 23:59:59"'),
    "inf_time 0001-01-01 00:00:00 is outside 2019-01-01 .. ": (
        "inf_time", '"0001-01-01 00:00:00"'),
    'fixmedins_code ["P44010600001"] is not a text': ("fixmedins_code", '["P44010600001"]'),
}


def _poisoned(landing: Landing, bchno: str, field: str, raw: str, *, envelope: bool) -> str:
    landing.sale(INST, bchno, ["A:1"], T, stock=False, inf_time="2025-11-01 10:01:00")
    _, msg = landing.messages.pop()
    assert isinstance(msg, dict)
    (msg if envelope else msg["input"]["selinfo"])[field] = MARK
    return json.dumps(msg, ensure_ascii=False).replace(json.dumps(MARK), raw)


def test_each_poison_value_is_quarantined_and_no_later_run_fails(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale(INST, "OK1", ["A:1"], T)
    expected: dict[int, str] = {}
    cases = [(r, f, raw, False) for r, (f, raw) in POISON.items()]
    cases += [(r, f, raw, True) for r, (f, raw) in ENVELOPE_POISON.items()]
    for i, (reason, field, raw, envelope) in enumerate(cases):
        landing.add(_poisoned(landing, f"X{i}", field, raw, envelope=envelope))
        expected[len(landing.messages)] = reason
    landing.write()
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    summary = pipeline.run(landing.root, db, out)
    assert summary.lines_quarantined == len(expected)
    assert_balanced(db)
    with Database.open(db, read_only=True) as con:
        got = dict(con.fetch_rows("q", "select line_no, reason from quarantine"))
    for line_no, reason in expected.items():
        assert got[line_no].startswith(reason), (line_no, got[line_no])

    # two more runs, each with new data so that screening runs again: both succeed
    for day, extra in (("day2.jsonl", ["--full"]), ("day3.jsonl", [])):
        landing.sale(INST, f"OK-{day}", ["A:2"], "2025-11-02 10:00:00", file=day)
        landing.write()
        result = CliRunner().invoke(
            app, ["run", str(landing.root), "--db", str(db), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
    with Database.open(db, read_only=True) as con:
        (n,) = con.fetch_one("q", "select count(*) from quarantine")
    assert n == len(expected)


def test_a_time_zone_offset_is_converted_to_local_time(landing: Landing, tmp_path: Path):
    landing.add(_poisoned(landing, "S1", "sel_retn_time", '"2025-11-01T09:30:00+07:00"',
                          envelope=False))
    landing.write()
    summary = pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    assert summary.lines_quarantined == 0
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("t", "select strftime(event_time, '%H:%M'), habits from records"
                             ) == [("10:30", ["time_offset"])]


@pytest.mark.parametrize(("setting", "value", "reason"), [
    ("max_count", 10.0, "sel_retn_cnt 28 is above the ceiling 10.0"),
    ("earliest_time", "2025-12-01", "inf_time 2025-11-01 10:01:00 is outside 2025-12-01"),
])
def test_the_bounds_are_settings(
    setting: str, value: object, reason: str, landing: Landing, tmp_path: Path
) -> None:
    landing.sale(INST, "S1", ["A:1"], T, qty=28, stock=False, inf_time="2025-11-01 10:01:00")
    landing.write()
    settings = Settings(ingest=IngestSettings(**{setting: value}))  # type: ignore[arg-type]
    pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out", settings)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        (got,) = db.fetch_one("q", "select reason from quarantine")
    assert got.startswith(reason)
