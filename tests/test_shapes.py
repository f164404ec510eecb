"""Every message shape real systems send (docs/messages.md, "Shapes tracecode reads"):
each is read into the same record as the spec shape, tagged with its habit, or
quarantined with a reason that names the shape. No code is ever dropped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from landing import Landing, code
from test_ingest import assert_balanced

from tracecode import ingest, pipeline
from tracecode.db import Database

INST = "P44010600001"
T = "2025-11-01 10:00:00"


def spec_sale(landing: Landing, bchno: str = "S1", codes: tuple[str, ...] = ("A:1",),
              time: str = T, **body: Any) -> dict[str, Any]:
    """A spec-shaped sale (not added to the landing)."""
    landing.sale(INST, bchno, list(codes), time, stock=False)
    _, msg = landing.messages.pop()
    assert isinstance(msg, dict)
    msg["input"]["selinfo"].update(body)
    return msg


def ingest_only(landing: Landing, tmp_path: Path) -> Path:
    landing.write()
    db_path = tmp_path / "db.duckdb"
    with Database.open(db_path) as db:
        ingest.ingest_messages(db, landing.root, "R1")
    assert_balanced(db_path)
    return db_path


def stored(db_path: Path) -> list[dict[str, Any]]:
    with Database.open(db_path, read_only=True) as db:
        rows = db.fetch_rows(
            "stored",
            """select r.infno, r.fixmedins_bchno, r.elem_no, r.qty, r.price, r.event_time,
                      r.event_date_only, r.habits, r.mdtrt_setl_type,
                      list(c.drug_trac_codg order by c.code_seq) filter (where c.rec_id is not null)
               from records r left join record_codes c using (rec_id)
               where r.is_current
               group by all order by min(r.rec_id)""",
        )
    keys = ("infno", "bchno", "elem", "qty", "price", "time", "date_only", "habits",
            "setl_type", "codes")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def quarantined(db_path: Path) -> list[str]:
    with Database.open(db_path, read_only=True) as db:
        return [r[0] for r in db.fetch_rows("q", "select reason from quarantine order by line_no")]


def _tracinfo_object(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["drugtracinfo"] = b["drugtracinfo"][0]


def _tracinfo_string(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["drugtracinfo"] = json.dumps(b["drugtracinfo"])


def _code_alias(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["drugtracinfo"] = [{"drug_trac_code": t["drug_trac_codg"]} for t in b["drugtracinfo"]]


def _top_level_code(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["drug_trac_codg"] = ",".join(t["drug_trac_codg"] for t in b.pop("drugtracinfo"))


def _node_string(m: dict) -> None:
    m["input"]["selinfo"] = json.dumps(m["input"]["selinfo"], ensure_ascii=False)


def _input_string(m: dict) -> None:
    m["input"] = json.dumps(m["input"], ensure_ascii=False)


def _node_misplaced(m: dict) -> None:
    m["input"] = {"purcinfo": m["input"]["selinfo"]}


def _upper_keys(m: dict) -> None:
    body = {k.upper(): v for k, v in m["input"]["selinfo"].items()}
    body["DRUGTRACINFO"] = [{"DRUG_TRAC_CODG": t["drug_trac_codg"]}
                            for t in body["DRUGTRACINFO"]]
    m["INPUT"] = {"SELINFO": body}
    del m["input"]


def _upper_one_key(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["MDTRT_SETL_TYPE"] = b.pop("mdtrt_setl_type")


def _string_numbers(m: dict) -> None:
    b = m["input"]["selinfo"]
    b["sel_retn_cnt"] = "28"
    b["finl_trns_pric"] = "24.0"


def _time(value: Any):
    def set_time(m: dict) -> None:
        m["input"]["selinfo"]["sel_retn_time"] = value
    return set_time


EPOCH_MS = 1761962400000  # 2025-11-01 02:00:00 UTC = 10:00:00 in China

# variant -> (rewrite, habits, event time, date only)
VARIANTS = {
    "spec": (lambda m: None, [], T, False),
    "drugtracinfo as a single object": (_tracinfo_object, ["tracinfo_object"], T, False),
    "drugtracinfo as a JSON string": (_tracinfo_string, ["tracinfo_string"], T, False),
    "the drug_trac_code alias": (_code_alias, ["code_alias"], T, False),
    "a top-level drug_trac_codg": (_top_level_code, ["top_level_code"], T, False),
    "the body node held as a string": (_node_string, ["node_string"], T, False),
    "the input held as a string": (_input_string, ["node_string"], T, False),
    "the body under another infno's node": (_node_misplaced, ["node_misplaced"], T, False),
    "upper-case keys and node names": (_upper_keys, ["upper_keys"], T, False),
    "one upper-case key": (_upper_one_key, ["upper_keys"], T, False),
    "numbers as strings": (_string_numbers, ["string_numbers"], T, False),
    "a time without the space": (_time("2025-11-0110:00:00"), ["time_no_space"], T, False),
    "a time with slashes": (_time("2025/11/1 10:00:00"), ["time_slashes"], T, False),
    "a date alone": (_time("2025-11-01"), ["date_only"], "2025-11-01 00:00:00", True),
    "epoch milliseconds as a number": (_time(EPOCH_MS), ["time_epoch_ms"], T, False),
    "epoch milliseconds as a string": (_time(str(EPOCH_MS)), ["time_epoch_ms"], T, False),
    "a time-zone offset, converted": (_time("2025-11-01T02:00:00Z"), ["time_offset"], T, False),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_real_shape_is_read_as_the_spec_record_with_its_habit(
    variant: str, landing: Landing, tmp_path: Path
) -> None:
    rewrite, habits, time, date_only = VARIANTS[variant]
    # a single object holds one code; every other shape two
    codes = ("A:1",) if rewrite is _tracinfo_object else ("A:1", "A:2")
    msg = spec_sale(landing, codes=codes, sel_retn_cnt=28, finl_trns_pric=24.0)
    rewrite(msg)
    landing.add(msg)
    db_path = ingest_only(landing, tmp_path)
    assert quarantined(db_path) == []
    (rec,) = stored(db_path)
    assert rec["codes"] == [code(c) for c in codes]
    assert (rec["infno"], rec["bchno"], rec["qty"], rec["price"]) == ("3505", "S1", 28, 24)
    assert rec["setl_type"] == "1"
    assert str(rec["time"]) == time
    assert rec["date_only"] is date_only
    assert rec["habits"] == habits


def test_a_top_level_string_of_one_code_is_one_code(landing: Landing, tmp_path: Path) -> None:
    msg = spec_sale(landing)
    _top_level_code(msg)
    landing.add(msg)
    (rec,) = stored(ingest_only(landing, tmp_path))
    assert rec["codes"] == [code("A:1")]


def test_a_bare_code_string_as_drugtracinfo_is_quarantined_and_the_line_it_copies_stands(
    landing: Landing, tmp_path: Path
) -> None:
    # a broken copy of a stock-in, a second later: read as one code, it would replace the
    # line with all its codes (the codes would then have no stock-in)
    good = spec_sale(landing, codes=("A:1", "A:2"))
    broken = json.loads(json.dumps(good))
    good["inf_time"], broken["inf_time"] = "2025-11-01 10:05:00", "2025-11-01 10:05:01"
    broken["input"]["selinfo"]["drugtracinfo"] = code("A:1")
    landing.add(good)
    landing.add(broken)
    db = ingest_only(landing, tmp_path)
    (rec,) = stored(db)
    assert rec["codes"] == [code("A:1"), code("A:2")]
    assert quarantined(db) == [
        "drugtracinfo is not a list (a text, not a list of drug_trac_codg objects)"]


def test_an_empty_string_as_drugtracinfo_is_no_codes(landing: Landing, tmp_path: Path) -> None:
    landing.add(spec_sale(landing, drugtracinfo=""))
    (rec,) = stored(ingest_only(landing, tmp_path))
    assert (rec["codes"] or [], rec["habits"]) == ([], ["tracinfo_string"])


@pytest.mark.parametrize(("infno", "node", "detail"), [
    ("3505A", "selinfo", "selinfoDetail"),
    ("3502A", "invinfo", "invinfoDetail"),
    ("3501A", "invinfo", "invinfoDetail"),
    ("3503A", "purcinfo", "purcinfoDetail"),
])
def test_a_batch_message_gives_one_record_per_element_each_with_its_key(
    infno: str, node: str, detail: str, landing: Landing, tmp_path: Path
) -> None:
    base = infno[:-1]
    if base == "3505":
        bodies = [spec_sale(landing, f"S{i}", (f"A:{i}",))["input"][node] for i in (1, 2, 3)]
    elif base == "3503":
        landing.purchase(INST, "X", T)
        proto = landing.messages.pop()[1]["input"][node]  # type: ignore[index]
        bodies = [{**proto, "fixmedins_bchno": f"S{i}"} for i in (1, 2, 3)]
    else:
        (landing.stock if base == "3502" else landing.snapshot)(INST, "X", ["A:1"], T)
        proto = landing.messages.pop()[1]["input"][node]  # type: ignore[index]
        bodies = [{**proto, "fixmedins_bchno": f"S{i}",
                   "drugtracinfo": [{"drug_trac_codg": code(f"A:{i}")}]} for i in (1, 2, 3)]
    msg = landing.envelope(infno, INST, "2025-11-01 11:00:00", detail, bodies)
    landing.add(msg)
    db_path = ingest_only(landing, tmp_path)
    recs = stored(db_path)
    assert [(r["infno"], r["bchno"], r["elem"], r["habits"]) for r in recs] == [
        (base, f"S{i}", i, ["batch"]) for i in (1, 2, 3)]
    if base != "3503":
        assert [r["codes"] for r in recs] == [[code(f"A:{i}")] for i in (1, 2, 3)]
    with Database.open(db_path, read_only=True) as db:
        assert db.fetch_one("f", "select records_stored, batch_records from ingested_files"
                            ) == (1, 3)


def test_a_batch_with_one_bad_element_is_quarantined_whole_naming_it(
    landing: Landing, tmp_path: Path
) -> None:
    bodies = [spec_sale(landing, f"S{i}", (f"A:{i}",))["input"]["selinfo"] for i in (1, 2)]
    bodies[1]["sel_retn_cnt"] = "many"
    landing.add(landing.envelope("3505A", INST, "2025-11-01 11:00:00", "selinfoDetail", bodies))
    db_path = ingest_only(landing, tmp_path)
    assert stored(db_path) == []
    assert quarantined(db_path) == ["element 2 of the batch: sel_retn_cnt many is not a number"]


def test_an_empty_string_number_means_none(landing: Landing, tmp_path: Path) -> None:
    landing.add(spec_sale(landing, finl_trns_pric=""))
    (rec,) = stored(ingest_only(landing, tmp_path))
    assert rec["price"] is None
    assert rec["habits"] == ["string_numbers"]


# Where a code may sit; each gets its own code, then one spec sale of every code follows
# at the same institution: each must raise dup_same_institution, so each was screened.
POSITIONS = {
    "spec list": lambda m, c: m["input"]["selinfo"].update(drugtracinfo=[{"drug_trac_codg": c}]),
    "single object": lambda m, c: m["input"]["selinfo"].update(drugtracinfo={"drug_trac_codg": c}),
    "JSON string": lambda m, c: m["input"]["selinfo"].update(
        drugtracinfo=json.dumps([{"drug_trac_codg": c}])),
    "alias": lambda m, c: m["input"]["selinfo"].update(drugtracinfo=[{"drug_trac_code": c}]),
    "upper-case element": lambda m, c: m["input"]["selinfo"].update(
        drugtracinfo=[{"DRUG_TRAC_CODG": c}]),
    "top level": lambda m, c: (m["input"]["selinfo"].pop("drugtracinfo"),
                               m["input"]["selinfo"].update(drug_trac_codg=c)),
    "top level, second of two": lambda m, c: (m["input"]["selinfo"].pop("drugtracinfo"),
                                              m["input"]["selinfo"].update(
                                                  drug_trac_codg=f"{code('B:99')},{c}")),
    "beside drugtracinfo": lambda m, c: m["input"]["selinfo"].update(
        drugtracinfo=[{"drug_trac_codg": code("B:98")}], drug_trac_codg=c),
    "batch element": lambda m, c: m.update(
        infno="3505A", input={"selinfoDetail": [
            {**m["input"]["selinfo"], "drugtracinfo": [{"drug_trac_codg": c}]}]}),
    "string-held node": lambda m, c: m["input"].update(selinfo=json.dumps(
        {**m["input"]["selinfo"], "drugtracinfo": [{"drug_trac_codg": c}]})),
}


def test_a_code_in_every_known_position_is_stored_and_screened(
    landing: Landing, tmp_path: Path
) -> None:
    codes = {}
    for i, (position, put) in enumerate(POSITIONS.items(), start=1):
        c = code(f"A:{100 + i}")
        codes[position] = c
        msg = spec_sale(landing, f"P{i}", time=f"2025-11-01 09:{i:02d}:00")
        put(msg, c)
        landing.add(msg)
        landing.sale(INST, f"Q{i}", [c], f"2025-11-02 09:{i:02d}:00", person="p2", stock=False)
    landing.stock(INST, "IN1", [*codes.values(), code("B:98"), code("B:99")],
                  "2025-10-30 09:00:00")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    summary = pipeline.run(landing.root, db_path, tmp_path / "out")
    assert summary.lines_quarantined == 0
    assert_balanced(db_path)
    with Database.open(db_path, read_only=True) as db:
        in_records = {r[0] for r in db.fetch_rows("c", "select drug_trac_codg from record_codes")}
        dups = {r[0] for r in db.fetch_rows(
            "dups", "select subject_id from leads where rule_id = 'dup_same_institution'")}
    for position, c in codes.items():
        assert c in in_records, position
        assert c in dups, position


def test_a_code_outside_the_body_quarantines_the_line_saying_where(
    landing: Landing, tmp_path: Path
) -> None:
    msg = spec_sale(landing)
    msg["drug_trac_codg"] = code("A:5")
    landing.add(msg)
    msg = spec_sale(landing, "S2")
    msg["input"]["drugtracinfo"] = [{"drug_trac_codg": code("A:6")}]
    landing.add(msg)
    msg = spec_sale(landing, "S3")
    msg["input"]["selinfo"]["drugtracinfo"] = [{"drug_trac_codg": code("A:7"),
                                                "drug_trac_code": code("A:8")}]
    landing.add(msg)
    db_path = ingest_only(landing, tmp_path)
    assert stored(db_path) == []
    assert quarantined(db_path) == [
        "a trace code at drug_trac_codg, outside the body: tracecode cannot tell which record "
        "it belongs to",
        "a trace code at input.drugtracinfo, outside the body: tracecode cannot tell which "
        "record it belongs to",
        "drugtracinfo[1] holds a code under 'drug_trac_code' beside drug_trac_codg",
    ]


def test_a_utf8_bom_does_not_spoil_the_first_line(landing: Landing, tmp_path: Path) -> None:
    landing.add(b"\xef\xbb\xbf" + json.dumps(spec_sale(landing)).encode())
    (rec,) = stored(ingest_only(landing, tmp_path))
    assert rec["codes"] == [code("A:1")]


def test_a_line_that_sends_the_internal_habit_key_itself_cannot_forge_habits(
    landing: Landing, tmp_path: Path
) -> None:
    msg = spec_sale(landing)
    msg["_tracecode"] = {"habits": ["forged"], "elem": 7}
    landing.add(copy.deepcopy(msg))
    msg["input"] = {"SELINFO": msg["input"]["selinfo"]}
    msg["input"]["SELINFO"]["fixmedins_bchno"] = "S2"
    landing.add(msg)
    recs = stored(ingest_only(landing, tmp_path))
    assert [(r["bchno"], r["elem"], r["habits"]) for r in recs] == [
        ("S1", 0, []), ("S2", 0, ["upper_keys"])]


# -- record keys that are not unique ------------------------------------------------------


def test_a_key_reused_for_a_different_sale_keeps_both_and_counts_the_collision(
    landing: Landing, tmp_path: Path
) -> None:
    # the trace code itself as fixmedins_bchno: the same pack sold twice is two sales
    c = code("A:1")
    landing.sale(INST, c, ["A:1"], "2025-11-01 10:00:00")
    landing.sale(INST, c, ["A:1"], "2025-11-03 15:00:00", person="p2")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    summary = pipeline.run(landing.root, db_path, tmp_path / "out")
    assert_balanced(db_path)
    assert summary.key_collisions == 1
    assert summary.records_replaced == 0
    with Database.open(db_path, read_only=True) as db:
        (n,) = db.fetch_one("n", "select count(*) from live_records where infno = '3505'")
        dups = db.fetch_rows("d", "select subject_id from leads "
                                  "where rule_id = 'dup_same_institution'")
    assert n == 2
    assert dups == [(c,)]
    summary_json = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary_json["key_collisions"] == 1


def test_a_collision_with_a_record_of_an_earlier_run_is_counted_in_the_later_run(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale(INST, "0001", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    assert pipeline.run(landing.root, db_path, tmp_path / "out").key_collisions == 0
    landing.sale(INST, "0001", ["A:2"], "2025-11-02 10:00:00", person="p2", file="day2.jsonl")
    landing.sale(INST, "0001", ["A:3"], "2025-11-02 11:00:00", person="p3", file="day2.jsonl")
    landing.write()
    summary = pipeline.run(landing.root, db_path, tmp_path / "out")
    assert (summary.key_collisions, summary.records_stored) == (2, 4)  # 2 stock-ins, 2 sales
    with Database.open(db_path, read_only=True) as db:
        (n,) = db.fetch_one("n", "select count(*) from live_records where fixmedins_bchno = '0001'")
    assert n == 3


def test_a_correction_of_the_same_sale_still_replaces_it(landing: Landing, tmp_path: Path):
    landing.sale(INST, "S1", ["A:1"], T, qty=28, price=2.0, inf_time="2025-11-01 10:01:00")
    landing.sale(INST, "S1", ["A:1"], T, qty=14, price=2.5, inf_time="2025-11-01 12:00:00",
                 file="day2.jsonl")
    landing.write()
    db_path = tmp_path / "db.duckdb"
    summary = pipeline.run(landing.root, db_path, tmp_path / "out")
    assert (summary.key_collisions, summary.records_replaced) == (0, 1)
    with Database.open(db_path, read_only=True) as db:
        assert db.fetch_rows("q", "select qty, price from current_records where infno = '3505'"
                             ) == [(14.0, 2.5)]


def test_a_3507_naming_a_shared_key_retracts_every_record_sent_before_it(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale(INST, "R100", ["A:1"], "2025-11-01 10:00:00")
    landing.sale(INST, "R100", ["A:2"], "2025-11-01 10:05:00", person="p2")
    landing.delete(INST, "R100", "2025-11-01 12:00:00")
    landing.sale(INST, "R100", ["A:3"], "2025-11-01 13:00:00", person="p3")  # after: stands
    landing.write()
    db_path = tmp_path / "db.duckdb"
    summary = pipeline.run(landing.root, db_path, tmp_path / "out")
    assert summary.records_retracted == 2
    with Database.open(db_path, read_only=True) as db:
        (n,) = db.fetch_one("n", "select count(*) from live_records where fixmedins_bchno = "
                                 "'R100'")
    assert n == 1


def test_rec_ids_are_unique_across_batch_elements_and_runs(landing: Landing, tmp_path: Path):
    bodies = [spec_sale(landing, f"S{i}", (f"A:{i}",))["input"]["selinfo"] for i in (1, 2)]
    landing.add(landing.envelope("3505A", INST, "2025-11-01 11:00:00", "selinfoDetail", bodies))
    landing.write()
    db_path = tmp_path / "db.duckdb"
    pipeline.run(landing.root, db_path, tmp_path / "out")
    landing.add(spec_sale(landing, "S9"), file="day2.jsonl")
    landing.write()
    pipeline.run(landing.root, db_path, tmp_path / "out")
    with Database.open(db_path, read_only=True) as db:
        assert db.fetch_one("u", "select count(*), count(distinct rec_id) from records") == (3, 3)


def test_a_snapshots_invdate_is_a_date_by_the_spec_not_a_habit(
    landing: Landing, tmp_path: Path
) -> None:
    landing.snapshot("P44010600001", "K1", ["A:1"], "2025-11-01")
    landing.sale("P44010600001", "S1", ["A:2"], "2025-11-01")
    recs = {r["infno"]: r for r in stored(ingest_only(landing, tmp_path))}
    assert (recs["3501"]["date_only"], recs["3501"]["habits"]) == (False, [])
    assert (recs["3505"]["date_only"], recs["3505"]["habits"]) == (True, ["date_only"])


@pytest.mark.parametrize("rewrite", [None, _upper_keys, _node_string])
def test_body_fields_tracecode_does_not_read_are_kept_with_the_record(
    rewrite: Any, landing: Landing, tmp_path: Path
) -> None:
    msg = spec_sale(landing, hi_fee_flag="1", ext={"opter": "张三", "n": 2},
                    **{'odd "key"': 1.5})
    if rewrite is not None:
        rewrite(msg)
    landing.add(msg)
    landing.add(spec_sale(landing, bchno="S2", codes=("A:2",)))
    db_path = ingest_only(landing, tmp_path)
    assert quarantined(db_path) == []
    with Database.open(db_path, read_only=True) as db:
        kept = dict(db.fetch_rows("extra", "select fixmedins_bchno, extra_fields from records"))
    extra = {k.lower(): v for k, v in json.loads(kept["S1"]).items()}
    assert extra == {"hi_fee_flag": "1", "ext": {"opter": "张三", "n": 2}, 'odd "key"': 1.5}
    assert kept["S2"] is None
