"""The parse of upload lines (sql/ingest/parse_lines.sql) on lines that its shortcuts must
not get wrong: line breaks stripped without rtrim, the nodes read in a second transform,
and the colon count that lets a line skip the upper-case-key and extra-key searches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracecode import ingest
from tracecode.db import Database, read_sql

ENVELOPE = {"infno": "3505", "msgid": "M1", "inf_time": "2025-11-01 11:00:00",
            "fixmedins_code": "P44010600001", "fixmedins_name": "药房"}
SALE = {"med_list_codg": "XC1", "fixmedins_bchno": "S1", "psn_no": "P1", "sel_retn_cnt": 2,
        "sel_retn_time": "2025-11-01 10:00:00", "finl_trns_pric": 2.5,
        "drugtracinfo": [{"drug_trac_codg": "81234567890123456789"}]}
STOCK = {"med_list_codg": "XC1", "fixmedins_bchno": "K1", "inv_chg_type": "108", "cnt": 2,
         "pric": 1, "inv_chg_time": "2025-11-01 10:00:00",
         "drugtracinfo": [{"drug_trac_codg": "81234567890123456789"}]}


def sale(**body: Any) -> str:
    return json.dumps({**ENVELOPE, "input": {"selinfo": {**SALE, **body}}}, ensure_ascii=False)


def stock(input_text: str) -> str:
    return json.dumps({**ENVELOPE, "infno": "3502"})[:-1] + ', "input": ' + input_text + "}"


def parse(tmp_path: Path, texts: list[str]) -> list[dict[str, Any]]:
    """Each text (newline included) parsed as line 2.. of one file; the rows by line."""
    with Database.open(tmp_path / "parse.duckdb") as db:
        ingest._create_stage(db, ingest.IngestSettings())
        n = len(texts)
        db.register("batch_lines", pa.table({
            "txt": pa.array(texts, pa.large_string()),
            "bad_bytes": pa.nulls(n, pa.large_string()),
            "line_no": pa.array(range(2, n + 2), pa.int64()),
            "file_id": pa.array([1] * n, pa.int64()),
            "src_file": pa.array(["2025-11-01/a.jsonl"] * n),
        }))
        table = db.fetch_arrow("parse", read_sql("ingest/parse_lines.sql") + " order by line_no",
                               {"run_id": "R1"}, source="ingest/parse_lines.sql")
    return table.to_pylist()


BREAKS = [
    ("{}\n", "{}", "missing envelope field infno"),
    ("{}\r\n", "{}", "missing envelope field infno"),
    ("{} \r\n", "{} ", "missing envelope field infno"),
    ("{}\r\r\n", "{}", "missing envelope field infno"),
    ("{}", "{}", "missing envelope field infno"),
    ("\r\n", "", "empty line"),
    ("   \n", "   ", "empty line"),
    ("\t\n", "\t", "not valid JSON"),
    ("a\rb\n", "a\rb", "not valid JSON"),
    ("药\n", "药", "not valid JSON"),
]


def test_a_lines_break_is_no_part_of_its_text(tmp_path: Path) -> None:
    rows = parse(tmp_path, [text for text, _, _ in BREAKS])
    assert [(r["raw_text"], r["reason"]) for r in rows] == [(t, r) for _, t, r in BREAKS]


def test_a_node_read_after_the_envelope_is_read_like_a_sales_node(tmp_path: Path) -> None:
    body = json.dumps(STOCK)
    rows = parse(tmp_path, [
        stock('{"invinfo": ' + body + "}") + "\n",
        stock('{"invinfo": ' + body + ', "invinfo": {"fixmedins_bchno": "K2"}}') + "\n",
        stock('{"invinfo": "K1"}') + "\n",
        stock('{"selinfo": ' + body + "}") + "\n",
    ])
    assert [(r["fixmedins_bchno"], r["qty"], r["price"], r["codes"]) for r in rows[:2]] == [
        ("K1", 2.0, 1.0, ["81234567890123456789"])] * 2  # a key sent twice: the first
    assert [r["reason"] for r in rows] == [
        None, None, "input.invinfo is not an object", "missing body node input.invinfo"]


def test_keys_beyond_the_spec_are_found_whatever_else_the_line_holds(tmp_path: Path) -> None:
    """The search for them is skipped only when the line's colons are all accounted for."""
    escaped = sale(hi_fee_flag="1").replace("10:00:00", "10\\u003a00:00")
    rows = parse(tmp_path, [t + "\n" for t in [
        sale(),
        sale(hi_fee_flag="1"),
        escaped,  # the escape hides a colon: the count cannot be trusted
        sale(psn_name="a:b", hi_fee_flag="x:y"),
        sale(psn_no=None, MDTRT_SETL_TYPE="1"),  # a null key, counted out, and an odd one
        sale(psn_no=None).replace('"psn_no"', '"PSN_NO"'),
        escaped.replace('"hi_fee_flag"', '"HI_FEE_FLAG"'),
        sale(ext={"Note": 1}),
        sale(ext={"NOTE": 1}),
    ]])
    assert [(r["extra_fields"], r["needs_shape"]) for r in rows] == [
        (None, False),
        ('{"hi_fee_flag":"1"}', False),
        ('{"hi_fee_flag":"1"}', False),
        ('{"hi_fee_flag":"x:y"}', False),
        ('{"MDTRT_SETL_TYPE":"1"}', True),
        ('{"PSN_NO":null}', True),
        ('{"HI_FEE_FLAG":"1"}', True),
        ('{"ext":{"Note":1}}', False),
        ('{"ext":{"NOTE":1}}', True),
    ]
    assert [r["reason"] for r in rows] == [None] * len(rows)
