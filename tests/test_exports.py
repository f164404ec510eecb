"""What the outputs promise: no cell runs as a formula, personal data masked (also in
quarantine.csv's raw lines), files whole with ordinary permissions, no temp file left."""

from __future__ import annotations

import csv
import json
import shutil
import stat
from pathlib import Path

import landing as world
import openpyxl
import polars as pl
import pytest
from landing import Landing

from tracecode import pipeline, report
from tracecode.db import Database
from tracecode.exports import TEMP_PREFIX, mask_raw
from tracecode.safe_cells import FORMULA_STARTS, neutralise, neutralise_frame

LINK = '=HYPERLINK("http://x.example","点我")'
HEADLINE = {"institutions_registered": 10, "institutions_connected": 8,
            "connected_rate": 0.8, "capture_rate": 0.625, "amount_at_risk": 1234.5,
            "by_day": [{"day": "2025-11-01", "leads": 3}],
            "by_city": [{"city": "4401", "capture_rate": 0.625, "fund_without_codes": 12.3456}]}
HOSTILE_CODES = [LINK, "=1+1", "@SUM(1)", "+1", "-1", "\tTAB"]


@pytest.fixture(scope="module")
def hostile_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose uploads and institutions.csv carry formulas in every field they control;
    its folder holds db.duckdb and the pristine outputs in out/."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    landing = Landing(tmp_path / "landing")
    names = {"P44010600001": LINK, "P44010600002": "-1+2"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(world, "INSTITUTIONS",
                   [(c, names.get(c, n), *rest) for c, n, *rest in world.INSTITUTIONS])
        _fill(landing)
        pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    return tmp_path


@pytest.fixture
def hostile_run(hostile_world: Path, tmp_path: Path) -> Path:
    """A fresh copy of the hostile run's outputs (db.duckdb beside it, in tmp_path)."""
    shutil.copytree(hostile_world / "out", tmp_path / "out")
    shutil.copy(hostile_world / "db.duckdb", tmp_path / "db.duckdb")
    return tmp_path / "out"


def _fill(landing: Landing) -> None:
    for i, bad in enumerate(HOSTILE_CODES):
        landing.sale("P44010600001", f"S{i}", [bad], f"2025-11-0{i + 1} 10:00:00")
    # a psn_no that is a formula: the sale is on nobody registered
    landing.sale("P44010600002", "=2+2", ["A:5"], "2025-11-03 10:00:00", psn_no="=1+1")
    landing.sale("P44010600001", "D1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "D2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    person = world.PERSONS["p1"]
    # quarantined lines: one with an ID number and a name, one that is a formula
    landing.add('{"infno":"3505","input":{"selinfo":{"certno":"' + person.certno
                + '","psn_name":"' + person.name + '"')
    landing.add("=1+1")
    landing.write()


def test_neutralise_prefixes_a_quote_only_where_a_formula_could_start() -> None:
    assert [neutralise(v) for v in ("=1", "+1", "-1", "@A", "\tx", "\rx")] == [
        "'=1", "'+1", "'-1", "'@A", "'\tx", "'\rx"]
    assert neutralise("8123456000000010000") == "8123456000000010000"
    frame = neutralise_frame(pl.DataFrame({"s": ["=1", "ok", None], "n": [-1.5, 2.0, 3.0]}))
    assert frame.to_dict(as_series=False) == {"s": ["'=1", "ok", None], "n": [-1.5, 2.0, 3.0]}


def test_no_csv_cell_begins_like_a_formula(hostile_run: Path) -> None:
    for name in ("leads.csv", "quarantine.csv"):
        with open(hostile_run / name, encoding="utf-8-sig", newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], name
    leads = pl.read_csv(hostile_run / "leads.csv", infer_schema=False)
    subjects = set(leads["subject_id"])
    # the value is still there to read, behind the quote
    assert {"'" + LINK, "'=1+1", "'@SUM(1)", "'+1", "'-1"} <= subjects
    assert "'=1+1" in set(pl.read_csv(hostile_run / "quarantine.csv", infer_schema=False)["raw"])


def test_no_workbook_cell_is_a_formula_and_hostile_text_reads_back_exactly(
    hostile_run: Path,
) -> None:
    wb = openpyxl.load_workbook(hostile_run / "leads.xlsx")
    assert {"概览", "线索", "机构", "证据"} <= set(wb.sheetnames)
    texts = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
                if isinstance(cell.value, str):
                    texts.add(cell.value)
                    if cell.value.startswith(FORMULA_STARTS):
                        # Excel keeps it text even when the cell is edited
                        assert cell.quotePrefix, f"{ws.title}!{cell.coordinate}"
    assert {LINK, "=1+1", "@SUM(1)", "+1", "-1", "=2+2", "-1+2"} <= texts
    leads = pl.read_excel(hostile_run / "leads.xlsx", sheet_name="线索")
    # money stays a number, with two decimals
    assert leads.schema["涉及金额（元）"].is_numeric()
    sheet = wb["线索"]
    money = next(c for c in sheet[1] if c.value == "涉及金额（元）").column
    assert sheet.cell(2, money).number_format == "#,##0.00"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert LINK in set(pl.read_excel(hostile_run / "leads.xlsx", sheet_name="机构")["机构名称"])


def test_quarantined_lines_mask_id_numbers_and_names(hostile_run: Path, tmp_path: Path) -> None:
    person = world.PERSONS["p1"]
    text = (hostile_run / "quarantine.csv").read_text(encoding="utf-8-sig")
    assert person.certno not in text and person.name not in text
    assert person.certno[:2] in text  # masked, not dropped
    html = (hostile_run / "report.html").read_text(encoding="utf-8")
    assert "已脱敏" in html and LINK not in html  # escaped, never raw markup

    with Database.open(tmp_path / "db.duckdb") as db:
        report.write_outputs(db, tmp_path / "unmasked", {"run_id": "R"}, unmask=True)
    text = (tmp_path / "unmasked" / "quarantine.csv").read_text(encoding="utf-8-sig")
    assert person.certno in text
    html = (tmp_path / "unmasked" / "report.html").read_text(encoding="utf-8")
    assert "已脱敏" not in html and "unmask-personal-data" in html


def test_mask_raw_masks_fields_and_resident_ids_anywhere() -> None:
    assert mask_raw('{"psn_no":"44000012345678","psn_name":"张三丰"}') == \
        '{"psn_no":"44**********78","psn_name":"张**"}'
    assert mask_raw("P1,440106199001011234,x") == "P1,440106********1234,x"
    assert mask_raw("serial 81234567890123456789") == "serial 81234567890123456789"


def test_outputs_are_readable_by_the_team_and_stale_temp_files_are_removed(
    hostile_run: Path, tmp_path: Path,
) -> None:
    # what a killed export leaves: this version's temp names and the earlier ones
    (hostile_run / f"{TEMP_PREFIX}leads.xlsx.x1").write_bytes(b"half")
    (hostile_run / ".leads.xlsx.abc123").write_bytes(b"half")
    (hostile_run / f"{TEMP_PREFIX}report.deadbeef").mkdir()
    with Database.open(tmp_path / "db.duckdb") as db:
        written = report.write_outputs(db, hostile_run, {"run_id": "R"})
    assert [p.name for p in written] == list(report.OUTPUT_NAMES)
    left = [p.name for p in hostile_run.iterdir() if p.name.startswith(".")]
    assert left == []
    for path in hostile_run.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_failed_export_keeps_the_previous_file_and_leaves_no_temp_file(
    hostile_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = (hostile_run / "leads.xlsx").read_bytes()

    def crash(path: str, **_: object) -> None:
        Path(path).write_bytes(b"half a workbook")
        raise RuntimeError("killed")

    monkeypatch.setattr(report.workbook, "write_workbook", crash)
    with Database.open(tmp_path / "db.duckdb") as db, pytest.raises(RuntimeError):
        report.write_outputs(db, hostile_run, {"run_id": "R"})
    assert (hostile_run / "leads.xlsx").read_bytes() == before
    assert not [p for p in hostile_run.iterdir() if p.name.startswith(".")]


def test_findings_of_other_stages_get_their_own_sheets(hostile_run: Path, tmp_path: Path) -> None:
    with Database.open(tmp_path / "db.duckdb") as db:
        db.execute("dq", """insert into dq_findings by name select 'P44010600001' as fixmedins_code,
            '=1+1' as fixmedins_name, 'late_upload' as pattern, '迟报' as pattern_zh,
            12 as n_records, 0.25 as share, 'x' as examples, '上传晚于销售' as reason,
            'late' as reason_en, now()::timestamp as first_time, now()::timestamp as last_time""")
        # the model's schema keeps the table (empty until rings are found)
        db.execute("rings", """insert into rings by name select 'G1' as ring_id,
            3 as n_institutions, 5 as n_persons, 9 as n_codes, 1234.5 as amount,
            80.0 as score, 'a;b' as members, '团伙' as reason, 'ring' as reason_en,
            'L1;L2' as lead_ids""")
        (compliance,) = db.fetch_one("compliance", "select count(*) from compliance_findings")
        report.write_outputs(db, tmp_path / "o", {"run_id": "R", "headline": HEADLINE})
    wb = openpyxl.load_workbook(tmp_path / "o" / "leads.xlsx")
    # the headline comes first
    assert [wb["概览"][f"A{i}"].value for i in (1, 2)] == ["总体情况", "登记机构"]
    # a sheet for each kind of finding there is, none for an empty one
    assert {"数据质量", "团伙"} <= set(wb.sheetnames)
    assert ("合规" in wb.sheetnames) == (compliance > 0)
    names = wb["数据质量"]["B"][1:]
    assert "=1+1" in [c.value for c in names] and {c.data_type for c in names} == {"s"}
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "数据质量" in html and "团伙" in html and "采集率" in html and "62.5%" in html
    assert "按日" in html and "2025-11-01" in html
    # the headline's tables read Chinese: headers, city names, rates as percentages
    assert "广州市（4401）" in html and "无码结算基金（元）" in html and "62.5%" in html
    overview = [[c.value for c in row] for row in wb["概览"].iter_rows()]
    assert ["广州市（4401）", "62.5%", 12.35] in [[v for v in r if v is not None][:3]
                                              for r in overview]
    summary = json.loads((tmp_path / "o" / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["headline"]["capture_rate"] == 0.625
