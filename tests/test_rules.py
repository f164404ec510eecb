"""Each rule against its fraud shapes and the look-alikes that must not fool it.

Cases live in ``tests/cases/<rule>.yaml``: the messages given (``Landing`` methods and their
arguments) and the leads expected, by category. A case passes only when the run raises
exactly the expected leads, in every category, so each look-alike is checked against all
the rules at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from landing import PERSONS, Landing, code

from tracecode import pipeline
from tracecode.db import Database
from tracecode.errors import RuleError
from tracecode.rules import load_rules, parse_rule
from tracecode.settings import settings_from_dict

CASES_DIR = Path(__file__).parent / "cases"


def _cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


def _subject(category_subject: str) -> str:
    if category_subject in PERSONS:
        return PERSONS[category_subject].psn_no
    return code(category_subject)


def build(landing: Landing, given: list[dict[str, Any]]) -> None:
    for step in given:
        ((op, args),) = step.items()
        if op == "raw":
            landing.add(args["line"], args.get("file", "day1.jsonl"))
            continue
        positional = [args.pop(k) for k in ("inst", "bchno", "codes", "time") if k in args]
        getattr(landing, op)(*positional, **args)


@pytest.mark.parametrize("case", _cases())
def test_rule_case(case: dict[str, Any], landing: Landing, tmp_path: Path) -> None:
    landing.auto_stock = case.get("auto_stock", True)
    build(landing, [dict((k, dict(v)) for k, v in s.items()) for s in case["given"]])
    landing.write()
    settings = settings_from_dict(case.get("settings", {}))
    pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out", settings)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        got = set(db.fetch_rows("leads", "select category, subject_id from leads"))
    expected = {
        (category, _subject(s))
        for category, subjects in (case.get("expect") or {}).items()
        for s in subjects
    }
    assert got == expected, f"missing {expected - got}, unexpected {got - expected}"


def test_every_rule_has_cases() -> None:
    covered = {p.stem for p in CASES_DIR.glob("*.yaml")}
    missing = [r.id for r in load_rules() if r.id not in covered]
    assert not missing, f"rules without tests/cases/<id>.yaml: {missing}"


HEADER = """-- id: r
-- category: dup_same_institution
-- subject: code
-- severity: 4
-- why: w
-- reason_zh: z
-- reason_en: e
"""


@pytest.mark.parametrize(("text", "message"), [
    (HEADER.replace("-- why: w\n", "") + "select 1", "lacks why"),
    (HEADER.replace("dup_same_institution", "fraud") + "select 1", "unknown category"),
    (HEADER.replace("code", "drug") + "select 1", "subject must be one of"),
    (HEADER.replace("severity: 4", "severity: 9") + "select 1", "severity must be 1-5"),
    (HEADER, "no query"),
    # a rule may only claim to wait on the clock if it compares the clock with the setting
    (HEADER + "-- waits: upload_lag_days\nselect 1", "waits on 'upload_lag_days'"),
    (HEADER + "-- waits: upload_lag_days\nselect $upload_lag_days from sales",
     "waits on 'upload_lag_days'"),
])
def test_a_malformed_rule_fails_at_load_naming_its_file(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message) as e:
        parse_rule(text, "rules/r.sql")
    assert str(e.value).startswith("rules/r.sql")


def test_only_rules_waiting_on_the_clock_in_a_declared_way_are_scoped() -> None:
    rules = {r.id: r for r in load_rules()}
    assert rules["no_inbound"].waits == "upload_lag_days" and rules["no_inbound"].scopable
    clocked = HEADER + "select * from sales, data_clock"
    assert not parse_rule(clocked, "rules/r.sql").scopable
