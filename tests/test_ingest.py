"""Ingest per the contract: what is stored, replaced, retracted and quarantined.

Every test ends by checking the accounting invariant against the database itself: for
every file, lines read = records stored + records replaced + lines quarantined, and the
stored rows and quarantine rows are really there in those numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from landing import INSTITUTIONS, PERSONS, Landing, code
from typer.testing import CliRunner

from tracecode import leads, pipeline
from tracecode.cli import app
from tracecode.db import Database
from tracecode.errors import InputError


def run(landing: Landing, tmp_path: Path) -> pipeline.RunSummary:
    summary = pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    assert_balanced(tmp_path / "db.duckdb")
    return summary


def assert_balanced(db_path: Path) -> None:
    with Database.open(db_path, read_only=True) as db:
        rows = db.fetch_rows(
            "accounting",
            """select f.path, f.lines_read, f.records_stored, f.records_replaced,
                      f.lines_quarantined,
                      (select count(distinct r.line_no) from records r
                         where r.src_file = f.path and r.run_id = f.run_id),
                      (select count(*) from quarantine q
                         where q.src_file = 'messages/' || f.path)
               from ingested_files f""",
        )
    for path, read, stored, replaced, quarantined, n_records, n_quarantine in rows:
        assert read == stored + replaced + quarantined, path
        assert n_records == stored + replaced, path  # lines: a batch line counts once
        assert n_quarantine == quarantined, path


def quarantine_reasons(db_path: Path) -> dict[int, str]:
    with Database.open(db_path, read_only=True) as db:
        return dict(db.fetch_rows("q", "select line_no, reason from quarantine "
                                       "where src_file like 'messages/%'"))


def _sale_msg(landing: Landing, **body_override: object) -> dict:
    landing.sale("P44010600001", "S9", ["A:1"], "2025-11-01 10:00:00", stock=False)
    _, msg = landing.messages.pop()
    assert isinstance(msg, dict)
    msg["input"]["selinfo"].update(body_override)
    return msg


BAD_LINES = {
    "empty line": "",
    "not valid JSON": '{"infno": "3505", "msgid": ',
    "not a JSON object": "[1, 2, 3]",
    "missing envelope field infno": {"drop": "infno"},
    "missing envelope field msgid": {"drop": "msgid"},
    "missing envelope field inf_time": {"drop": "inf_time"},
    "missing envelope field fixmedins_code": {"drop": "fixmedins_code"},
    "unsupported infno 9999": {"set": {"infno": "9999"}},
    "inf_time yesterday is not a time": {"set": {"inf_time": "yesterday"}},
    "missing body node input.selinfo": {"set": {"input": {"invinfo": {}}}},
    "input.selinfo is not an object": {"set": {"input": {"selinfo": "x"}}},
    "missing fixmedins_bchno": {"body": {"fixmedins_bchno": ""}},
    "missing sel_retn_time": {"body": {"sel_retn_time": None}},
    "sel_retn_time 2025-13-45 is not a time": {"body": {"sel_retn_time": "2025-13-45"}},
    "sel_retn_cnt many is not a number": {"body": {"sel_retn_cnt": "many"}},
    "finl_trns_pric cheap is not a number": {"body": {"finl_trns_pric": "cheap"}},
    "expy_end soon is not a date": {"body": {"expy_end": "soon"}},
    "drugtracinfo is not a list": {"body": {"drugtracinfo": 8123}},
    "drugtracinfo has an element without drug_trac_codg": {"body": {"drugtracinfo": [{}]}},
}


def test_every_kind_of_bad_line_is_quarantined_with_its_reason(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")  # lines 1-2
    expected = {}
    for reason, spec in BAD_LINES.items():
        if isinstance(spec, str):
            landing.add(spec)
        else:
            msg = _sale_msg(landing, **spec.get("body", {}))
            for key in [spec.get("drop")] if spec.get("drop") else []:
                del msg[key]
            msg.update(spec.get("set", {}))
            landing.add(msg)
        expected[len(landing.messages)] = reason
    landing.add(b"\xff\xfe not utf-8")
    expected[len(landing.messages)] = "not valid UTF-8"
    landing.write()
    summary = run(landing, tmp_path)
    assert quarantine_reasons(tmp_path / "db.duckdb") == expected
    assert summary.lines_read == 2 + len(expected)
    assert summary.records_stored == 2
    assert summary.lines_quarantined == len(expected)


def test_quarantine_csv_keeps_file_line_reason_and_raw_text(landing: Landing, tmp_path: Path):
    landing.add('{"broken": ')
    landing.write()
    run(landing, tmp_path)
    text = (tmp_path / "out" / "quarantine.csv").read_text(encoding="utf-8-sig")
    header, row = text.splitlines()[:2]
    assert header.startswith("file,line,reason,raw")
    assert row.startswith('messages/day1.jsonl,1,not valid JSON,"{""broken"": "')


def test_a_malformed_code_is_stored_not_quarantined(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["123-not-a-code"], "2025-11-01 10:00:00", drug="A")
    landing.write()
    summary = run(landing, tmp_path)
    assert summary.lines_quarantined == 0
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("c", "select code_format from record_codes") == [("invalid",)]


def test_counts_as_float_and_infno_as_number_are_accepted(landing: Landing, tmp_path: Path):
    msg = _sale_msg(landing, sel_retn_cnt=28.0, finl_trns_pric="2.5")
    msg["infno"] = 3505
    landing.add(msg)
    landing.write()
    summary = run(landing, tmp_path)
    assert summary.records_stored == 1
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select qty, price, infno from records") == [(28.0, 2.5, "3505")]


def test_a_resent_record_replaces_the_earlier_one(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=28,
                 inf_time="2025-11-01 10:01:00", stock=False)
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=56,
                 inf_time="2025-11-01 11:00:00", stock=False)
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=84,
                 inf_time="2025-11-01 10:30:00", stock=False)
    landing.write()
    summary = run(landing, tmp_path)
    assert (summary.records_stored, summary.records_replaced) == (1, 2)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select qty from current_records") == [(56.0,)]


def test_a_resend_in_a_later_run_replaces_the_stored_version(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=28,
                 inf_time="2025-11-01 10:01:00", stock=False)
    landing.write()
    run(landing, tmp_path)
    later = Landing(landing.root)
    later.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=56,
               inf_time="2025-11-02 09:00:00", stock=False, file="day2.jsonl")
    later.write()
    summary = run(later, tmp_path)
    assert summary.records_stored == 1
    assert summary.earlier_records_replaced == 1
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select qty from current_records") == [(56.0,)]


def test_an_older_version_arriving_later_does_not_win(landing: Landing, tmp_path: Path):
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=56,
                 inf_time="2025-11-02 09:00:00", stock=False)
    landing.write()
    run(landing, tmp_path)
    later = Landing(landing.root)
    later.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", qty=28,
               inf_time="2025-11-01 10:01:00", stock=False, file="day2.jsonl")
    later.write()
    summary = run(later, tmp_path)
    assert (summary.records_stored, summary.records_replaced) == (0, 1)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select qty from current_records") == [(56.0,)]


def test_a_3507_retracts_the_sale_it_names(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.delete("P44010600001", "S1", "2025-11-01 12:00:00")
    landing.write()
    summary = run(landing, tmp_path)
    assert summary.records_retracted == 1
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select count(*) from sales") == [(0,)]
        assert db.fetch_rows("q", "select count(*) from stock_moves") == [(1,)]


def test_a_gzipped_file_is_read_like_a_plain_one(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", file="d/day1.jsonl")
    landing.add("oops", file="d/day1.jsonl")
    landing.write(gz=["d/day1.jsonl"])
    summary = run(landing, tmp_path)
    assert (summary.lines_read, summary.records_stored, summary.lines_quarantined) == (3, 2, 1)
    assert summary.files[0]["path"] == "d/day1.jsonl.gz"


def test_message_files_at_any_depth_are_found(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", file="a/b/c/x.jsonl")
    landing.write()
    summary = run(landing, tmp_path)
    assert summary.files[0]["path"] == "a/b/c/x.jsonl"


def test_gbk_reference_files_load_with_their_chinese_intact(landing: Landing, tmp_path: Path):
    landing.write(encoding="gbk")
    summary = run(landing, tmp_path)
    encodings = {r["name"]: r["encoding"] for r in summary.reference}
    # files with Chinese text are detected as GB18030; ASCII-only ones are valid UTF-8
    assert encodings["institutions"] == encodings["persons"] == "gb18030"
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        names = {r[0] for r in db.fetch_rows("q", "select fixmedins_name from institutions")}
    assert names == {i[1] for i in INSTITUTIONS}


def test_reference_columns_may_come_in_any_order_with_extras(landing: Landing, tmp_path: Path):
    landing.write()
    path = landing.root / "reference" / "persons.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    cols = [c.split(",") for c in lines]
    reordered = [",".join(["extra", *reversed(row)]) for row in cols]
    reordered[0] = "extra," + ",".join(reversed(cols[0]))
    path.write_text("\n".join(reordered) + "\n", encoding="utf-8")
    run(landing, tmp_path)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        got = dict(db.fetch_rows("q", "select psn_no, certno from persons"))
    assert got == {p.psn_no: p.certno for p in PERSONS.values()}


def test_a_bad_reference_row_is_quarantined_with_its_line(landing: Landing, tmp_path: Path):
    landing.write()
    path = landing.root / "reference" / "catalog.csv"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("X1,坏药,12345,zero,1.0,,,\n")
        fh.write("X2,少列\n")
    run(landing, tmp_path)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        rows = db.fetch_rows("q", "select line_no, reason from quarantine "
                                  "where src_file = 'reference/catalog.csv' order by 1")
    assert rows[0][0] == 6 and "trace_prefix 12345 is not 7 digits" in rows[0][1]
    assert "pack_units zero is not a double" in rows[0][1]
    assert rows[1][0] == 7


def test_a_reference_file_without_a_required_column_stops_the_run(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    path = landing.root / "reference" / "institutions.csv"
    path.write_text("fixmedins_name,admdvs\nx,440106\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"lacks required column.*fixmedins_code"):
        pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")


def test_a_missing_reference_file_is_named(landing: Landing, tmp_path: Path) -> None:
    landing.write()
    (landing.root / "reference" / "code_issuance.csv").unlink()
    with pytest.raises(InputError, match=r"code_issuance\.csv"):
        pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")


def test_a_rerun_changes_nothing(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    landing.add("junk")
    landing.write()
    first = run(landing, tmp_path)
    leads_csv = (tmp_path / "out" / "leads.csv").read_bytes()
    quarantine_csv = (tmp_path / "out" / "quarantine.csv").read_bytes()
    second = run(landing, tmp_path)
    assert (second.lines_read, second.files_skipped, second.files_ingested) == (0, 1, 0)
    assert second.totals == first.totals
    assert (tmp_path / "out" / "leads.csv").read_bytes() == leads_csv
    assert (tmp_path / "out" / "quarantine.csv").read_bytes() == quarantine_csv


def test_only_new_files_are_ingested_and_leads_cover_the_history(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    run(landing, tmp_path)
    later = Landing(landing.root, auto_stock=False)
    later.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00", file="day2.jsonl")
    later.write()
    summary = run(later, tmp_path)
    assert (summary.files_ingested, summary.files_skipped, summary.lines_read) == (1, 1, 1)
    assert summary.leads_by_category == {"dup_same_institution": 1}


def test_a_touched_but_identical_file_is_not_an_error(landing: Landing, tmp_path: Path):
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    run(landing, tmp_path)
    path = landing.root / "messages" / "day1.jsonl"
    path.write_bytes(path.read_bytes())
    assert run(landing, tmp_path).files_skipped == 1


def test_a_crash_after_ingest_and_a_rerun_equal_one_clean_run(
    landing: Landing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    landing.sale("P44010600002", "S3", ["B:1"], "2025-11-02 10:00:00", file="day2.jsonl")
    landing.write()
    clean = run(landing, tmp_path / "clean")

    def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(leads, "build_leads", crash)
    with pytest.raises(RuntimeError):
        pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    monkeypatch.undo()
    again = run(landing, tmp_path)
    assert again.totals == clean.totals
    assert (tmp_path / "out" / "leads.csv").read_bytes() == (
        tmp_path / "clean" / "out" / "leads.csv").read_bytes()


def test_a_crash_inside_ingest_leaves_no_half_file(
    landing: Landing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    from tracecode import ingest

    def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "_file_stats", crash)
    with pytest.raises(RuntimeError):
        pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    monkeypatch.undo()
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select count(*) from records") == [(0,)]
        assert db.fetch_rows("q", "select count(*) from ingested_files") == [(0,)]
    assert run(landing, tmp_path).records_stored == 2


def test_run_summary_json_has_the_contract_counts(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    run(landing, tmp_path)
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text(encoding="utf-8"))
    for key in ("lines_read", "records_stored", "records_replaced", "records_retracted",
                "lines_quarantined", "leads", "leads_by_category"):
        assert key in summary


def test_leads_files_open_in_excel_and_parquet_agrees(landing: Landing, tmp_path: Path):
    import polars as pl

    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    landing.write()
    run(landing, tmp_path)
    raw = (tmp_path / "out" / "leads.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    csv = pl.read_csv(tmp_path / "out" / "leads.csv")
    parquet = pl.read_parquet(tmp_path / "out" / "leads.parquet")
    assert csv["lead_id"].to_list() == parquet["lead_id"].to_list()
    assert csv["subject_id"].cast(pl.Utf8).to_list() == [code("A:1")]
    assert "同机构" in csv["category_zh"][0] and "整盒销售 2 次" in csv["reason"][0]


def test_a_missing_landing_directory_exits_2_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nope"), "--db",
                                      str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_exports_mask_id_numbers_and_names_unless_asked(landing: Landing, tmp_path: Path):
    import polars as pl

    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    landing.write()
    run(landing, tmp_path)
    certno, name = PERSONS["p1"].certno, PERSONS["p1"].name
    evidence = pl.read_parquet(tmp_path / "out" / "evidence.parquet")
    assert evidence["certno"].to_list() == [certno[:6] + "********" + certno[-4:]] * 2
    assert evidence["psn_name"].to_list() == [name[0] + "*"] * 2
    sheets = pl.read_excel(tmp_path / "out" / "leads.xlsx", sheet_id=0)
    assert {"概览", "线索", "机构", "证据"} <= set(sheets)
    assert certno not in sheets["证据"].write_csv()

    pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "plain", unmask=True)
    plain = pl.read_parquet(tmp_path / "plain" / "evidence.parquet")
    assert plain["certno"].to_list() == [certno] * 2


def test_the_html_report_lists_each_lead_with_its_reason_and_masked_evidence(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    landing.write()
    run(landing, tmp_path)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "整盒销售 2 次" in page and code("A:1") in page
    assert PERSONS["p1"].certno not in page and PERSONS["p1"].name not in page
