"""The bad-input corpus, line by line: what an attacker or a broken upstream can put in one
line, each with what tracecode must make of it (issue 10).

Each case is quarantined with the reason given, or stored whole when it is a shape real
systems send (a codeless sale, epoch milliseconds, a number where a text belongs). Then
the run, a full rebuild and a later incremental run all succeed, with unmasked exports
(so that control characters reach the workbook), and no line is lost.

The cases of whole files (empty, binary, NUL bytes, CRLF and lone CR, BOMs, GBK, oversized
lines, duplicates under other names, truncated and corrupt gzip, links and FIFOs) are in
tests/test_files.py; bad lines of the contract in tests/test_ingest.py (``BAD_LINES``);
poison values in tests/test_validation.py; reference CSVs in tests/test_reference.py.
Last, the supply chain's input: the pip-audit report that `make audit` judges.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from landing import Landing, code
from test_ingest import assert_balanced

from tracecode import pipeline
from tracecode.db import Database

INST = "P44010600001"
T = "2025-11-01 10:00:00"
_seq = iter(range(1, 1000))


def sale(**body: Any) -> str:
    """A valid sale line (its own bchno) with ``body`` fields set (``None``: removed)."""
    world = Landing(Path("unused"))
    bchno = f"K{next(_seq)}"
    world.sale(INST, bchno, ["A:1"], T, stock=False, inf_time="2025-11-01 10:01:00")
    _, msg = world.messages.pop()
    assert isinstance(msg, dict)
    for key, value in body.items():
        if value is None:
            del msg["input"]["selinfo"][key]
        else:
            msg["input"]["selinfo"][key] = value
    return json.dumps(msg, ensure_ascii=False)


def edited(old: str, new: str, **body: Any) -> str:
    line = sale(**body)
    assert old in line, old
    return line.replace(old, new, 1)


# name -> (the line, what it becomes: a quarantine reason's start, or the codes stored)
CASES: dict[str, tuple[str | bytes, str | int]] = {
    # -- not a JSON object at all
    "a JSON string": ('"hello"', "not a JSON object"),
    "JSON null": ("null", "not a JSON object"),
    "a bare number": ("3505", "not a JSON object"),
    "whitespace only": ("  \t  ", "not valid JSON"),
    "arrays nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "not a JSON object"),
    "objects nested 5,000 deep": ('{"a":' * 5000 + "1" + "}" * 5000,
                                  "missing envelope field infno"),
    "two objects on one line": (sale() + sale(), "not valid JSON"),
    "trailing garbage": (sale() + " xyz", "not valid JSON"),
    "a lone UTF-16 surrogate": (edited('"张伟"', '"\\ud800"'), "not valid JSON"),
    "a BOM at the start of a later line": ("\ufeff" + sale(), "not valid JSON"),
    "UTF-16 text": (sale().encode("utf-16"), "not valid UTF-8"),
    # -- wrong types and absurd values
    "a count that is a boolean": (sale(sel_retn_cnt=True), "sel_retn_cnt true is not a number"),
    "a count of 30 digits": (edited('"sel_retn_cnt": 28',
                                    '"sel_retn_cnt": 123456789012345678901234567890'),
                             "sel_retn_cnt 123456789012345678901234567890 is above the ceiling"),
    "NaN as a bare JSON literal": (edited('"finl_trns_pric": 2.0', '"finl_trns_pric": NaN'),
                                   "finl_trns_pric NaN is not a finite number"),
    "Infinity as a bare JSON literal": (
        edited('"finl_trns_pric": 2.0', '"finl_trns_pric": Infinity'),
        "finl_trns_pric Infinity is not a finite number"),
    "epoch milliseconds in the year 3 million": (sale(sel_retn_time=1e20),
                                                 "sel_retn_time 1e+20 is not a time"),
    "a date 0000-00-00": (sale(manu_date="0000-00-00"), "manu_date 0000-00-00 is not a date"),
    "February 30th": (sale(expy_end="2026-02-30"), "expy_end 2026-02-30 is not a date"),
    "an infno with a fraction": (edited('"infno": "3505"', '"infno": 3505.5'),
                                 "unsupported infno 3505.5"),
    "an empty object as the record serial": (sale(fixmedins_bchno={}),
                                             "fixmedins_bchno {} is not a text"),
    "input null": (edited('"input": {"selinfo"', '"input": null, "x": {"selinfo"'),
                   "missing body node input.selinfo"),
    # -- real shapes, stored whole
    "an empty drugtracinfo (a codeless sale)": (sale(drugtracinfo=[]), 0),
    "no drugtracinfo at all": (sale(drugtracinfo=None), 0),
    "epoch milliseconds": (sale(sel_retn_time=1761962400000), 1),
    "ISO 8601 with Z": (sale(sel_retn_time="2025-11-01T02:00:00Z"), 1),
    "fractional seconds": (sale(sel_retn_time="2025-11-01 10:00:00.123456"), 1),
    "a number as the record serial": (sale(fixmedins_bchno=12345), 1),
    # one value of a duplicated key is taken, and it is validated like any other
    "a duplicated key": (edited('"sel_retn_cnt": 28', '"sel_retn_cnt": 28, "sel_retn_cnt": 56'),
                         1),
    "an escaped NUL and control characters in a name": (sale(psn_name="\u0001\u0000x\u001f"), 1),
    "a control character inside a code": (
        sale(drugtracinfo=[{"drug_trac_codg": code("A:9")[:10] + "\u0007" + code("A:9")[10:]}]),
        1),
    "a 10,000-character code": (sale(drugtracinfo=[{"drug_trac_codg": "8" * 10_000}]), 1),
    "10,000 codes in one sale": (
        sale(drugtracinfo=[{"drug_trac_codg": f"8123456{i:09d}0000"} for i in range(10_000)]),
        10_000),
}


def _bytes(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8")


def test_every_bad_line_is_quarantined_with_its_reason_or_stored_whole(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    corpus = b"".join(_bytes(line) + b"\n" for line, _ in CASES.values())
    (landing.root / "messages" / "corpus.jsonl").write_bytes(corpus)
    # a writer that died mid-line: the complete lines before it are kept
    cut = sale()
    (landing.root / "messages" / "cut.jsonl").write_bytes(
        (sale() + "\n" + sale() + "\n" + cut[: len(cut) // 2]).encode())
    db, out = tmp_path / "db.duckdb", tmp_path / "out"

    summary = pipeline.run(landing.root, db, out, unmask=True)

    assert_balanced(db)
    quarantined = sum(isinstance(expect, str) for _, expect in CASES.values())
    assert summary.lines_read == len(CASES) + 3
    assert summary.lines_quarantined == quarantined + 1
    assert summary.records_stored + summary.records_replaced == len(CASES) - quarantined + 2
    with Database.open(db, read_only=True) as con:
        reasons = {(f, n): r for f, n, r in con.fetch_rows(
            "q", "select src_file, line_no, reason from quarantine")}
        codes = dict(con.fetch_rows("codes", """
            select r.line_no, count(c.rec_id) from records r
            left join record_codes c using (rec_id)
            where r.src_file = 'corpus.jsonl' group by all"""))
    for line_no, (name, (_, expect)) in enumerate(CASES.items(), start=1):
        if isinstance(expect, str):
            got = reasons.get(("messages/corpus.jsonl", line_no), "")
            assert got.startswith(expect), (name, got)
        else:
            assert codes.get(line_no) == expect, name
    assert reasons[("messages/cut.jsonl", 3)] == "not valid JSON"

    # a full rebuild and a later run with new data both succeed over the same history
    for day, incremental in (("day2.jsonl", False), ("day3.jsonl", True)):
        landing.sale(INST, f"OK-{day}", ["A:2"], "2025-11-02 10:00:00", file=day)
        landing.write()
        again = pipeline.run(landing.root, db, out, unmask=True, incremental=incremental)
        assert again.lines_quarantined == 0
    with Database.open(db, read_only=True) as con:
        (n,) = con.fetch_one("q", "select count(*) from quarantine")
    assert n == quarantined + 1
    assert (out / "leads.xlsx").stat().st_size > 0


# -- the supply chain: how `make audit` (.ci/audit.py) judges pip-audit's report ---------


def test_the_audit_fails_on_a_vulnerability_with_a_fix_and_only_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location(
        "ci_audit", Path(__file__).parents[1] / ".ci" / "audit.py")
    assert spec and spec.loader
    audit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audit)

    def verdict(*deps: dict[str, Any]) -> int:
        report = tmp_path / "audit.json"
        report.write_text(json.dumps({"dependencies": list(deps)}), encoding="utf-8")
        return int(audit.main(["--report", str(report)]))

    ok = {"name": "duckdb", "version": "1.0", "vulns": []}
    fixable = {"name": "jinja2", "version": "3.1.2",
               "vulns": [{"id": "GHSA-x", "fix_versions": ["3.1.3"]}]}
    unfixed = {"name": "x", "version": "1", "vulns": [{"id": "GHSA-y", "fix_versions": []}]}
    blind = {"name": "y", "version": "1", "skip_reason": "not found"}
    assert verdict(ok, fixable) == 1
    assert verdict(ok, unfixed) == 0
    assert verdict(blind) == 0
    monkeypatch.setenv("AUDIT_STRICT", "1")
    assert verdict(blind) == 1


def test_every_test_docs_reliability_cites_exists() -> None:
    root = Path(__file__).parents[1]
    text = (root / "docs" / "reliability.md").read_text(encoding="utf-8")
    cited: list[tuple[str, str]] = []
    for line in text.splitlines():
        file = None
        for named, test in re.findall(r"`(?:(test_\w+\.py))?::(test_\w+)", line):
            file = named or file
            assert file, line
            cited.append((file, test))
    assert len(cited) > 40
    for file, test in cited:
        source = (root / "tests" / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.M), f"{file}::{test}"
