"""Scoring a lead list against the truth: the arithmetic, on a tiny hand-made pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracecode.evaluate import (
    EvaluationInputError,
    evaluate,
    render_false_positives,
    render_table,
    to_dict,
)

TRUTH = """category,subject_type,subject_id,note
dup_same_institution,code,81234560000000010001,one box sold 5 times
dup_same_institution,code,81234560000000020002,one box sold 3 times
no_inbound,institution,P44010600123,7 boxes without stock
anomaly_person,person,44000012345678,collector
deceased_person,person,44000012340000,dead since 2024
"""

LEAD_HEADER = ("lead_id,rule_id,category,category_zh,subject_type,subject_id,fixmedins_codes,"
               "first_time,last_time,n_events,amount,score,reason\n")


def leads(*rows: tuple[str, str, str]) -> str:
    body = "".join(f"L{i},r,{c},中文,{t},{s},P1,,,1,0,50,why\n" for i, (c, t, s) in
                   enumerate(rows))
    return LEAD_HEADER + body


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH, encoding="utf-8")
    lead_csv = tmp_path / "leads.csv"
    lead_csv.write_text(leads(
        ("dup_same_institution", "code", "81234560000000010001"),  # TP
        ("dup_same_institution", "code", "81234560000000010001"),  # same subject again
        ("dup_same_institution", "code", "89999990000000000009"),  # FP
        ("no_inbound", "institution", "P44010600123"),  # TP
        ("card_hopping", "person", "44000012345678"),  # FP, though planted as anomaly
        ("anomaly_person", "person", "44000012345678"),  # TP
    ), encoding="utf-8-sig")  # as the pipeline writes it: with a BOM
    return truth, lead_csv


def test_true_and_false_positives_and_misses_are_counted_per_category(pair) -> None:
    ev = evaluate(*pair)
    dup = ev.score("dup_same_institution")
    assert (dup.truth, dup.leads, dup.tp, dup.fp, dup.fn) == (2, 2, 1, 1, 1)
    assert dup.precision == 0.5 and dup.recall == 0.5
    assert ev.score("no_inbound").precision == 1.0
    assert ev.score("anomaly_person").recall == 1.0


def test_a_category_without_leads_has_no_precision_and_zero_recall(pair) -> None:
    dead = evaluate(*pair).score("deceased_person")
    assert (dead.leads, dead.tp, dead.fn) == (0, 0, 1)
    assert dead.precision is None and dead.recall == 0.0


def test_a_category_without_planted_cases_has_no_recall(pair) -> None:
    hop = evaluate(*pair).score("card_hopping")
    assert (hop.truth, hop.leads, hop.fp) == (0, 1, 1)
    assert hop.recall is None and hop.precision == 0.0
    empty = evaluate(*pair).score("impossible_travel")
    assert (empty.truth, empty.leads, empty.precision, empty.recall) == (0, 0, None, None)


def test_overall_counts_every_distinct_lead_once(pair) -> None:
    overall = evaluate(*pair).overall
    assert (overall.truth, overall.leads, overall.tp, overall.fp, overall.fn) == (5, 5, 3, 2, 2)
    assert overall.precision == pytest.approx(0.6) and overall.recall == pytest.approx(0.6)


def test_false_positives_say_what_the_subject_was_planted_as(pair) -> None:
    fps = {(fp.category, fp.subject_id): fp.planted_as for fp in evaluate(*pair).false_positives}
    assert fps == {("card_hopping", "44000012345678"): ("anomaly_person",),
                   ("dup_same_institution", "89999990000000000009"): ()}
    text = render_false_positives(evaluate(*pair))
    assert "planted as anomaly_person" in text


def test_the_table_is_markdown_and_the_json_is_plain_data(pair) -> None:
    ev = evaluate(*pair)
    table = render_table(ev).splitlines()
    assert table[0].startswith("| category |") and table[1].startswith("|---")
    assert any(r.startswith("| `dup_same_institution` |") and "50.0%" in r for r in table)
    assert any(r.startswith("| **overall** |") for r in table)
    assert not any("impossible_travel" in r for r in table)  # nothing planted, nothing found
    data = json.loads(json.dumps(to_dict(ev)))
    assert data["overall"]["tp"] == 3
    assert data["false_positives_by_category"] == {"card_hopping": 1,
                                                   "dup_same_institution": 1}


def test_an_empty_lead_list_scores_zero_recall(tmp_path: Path, pair) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(LEAD_HEADER, encoding="utf-8-sig")
    ev = evaluate(pair[0], empty)
    assert ev.overall.leads == 0 and ev.overall.recall == 0.0 and ev.overall.precision is None


def test_unreadable_inputs_say_what_is_wrong(tmp_path: Path, pair) -> None:
    with pytest.raises(EvaluationInputError, match="does not exist"):
        evaluate(tmp_path / "nope.csv", pair[1])
    bad = tmp_path / "bad.csv"
    bad.write_text("lead_id,category\nL1,no_inbound\n", encoding="utf-8")
    with pytest.raises(EvaluationInputError, match="subject_type, subject_id"):
        evaluate(pair[0], bad)


def test_the_rules_line_leaves_out_the_models_top_k(tmp_path) -> None:
    from tracecode.evaluate import evaluate

    truth = tmp_path / "truth.csv"
    truth.write_text("category,subject_type,subject_id,note\n"
                     "no_inbound,institution,P1,\nanomaly_person,person,X,\n", encoding="utf-8")
    leads = tmp_path / "leads.csv"
    leads.write_text("category,subject_type,subject_id\nno_inbound,institution,P1\n"
                     "anomaly_person,person,X\nanomaly_person,person,Y\n", encoding="utf-8")
    ev = evaluate(truth, leads)
    assert (ev.rules.tp, ev.rules.fp, ev.rules.precision) == (1, 0, 1.0)
    assert (ev.overall.tp, ev.overall.fp) == (2, 1)


def test_model_lists_are_judged_by_precision_at_k_and_length(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("category,subject_type,subject_id,note\n"
                     "anomaly_person,person,A,\nanomaly_person,person,B,\n", encoding="utf-8")
    lead_csv = tmp_path / "leads.csv"
    lead_csv.write_text("category,subject_type,subject_id,score\n"
                        "anomaly_person,person,X,70\nanomaly_person,person,A,60\n"
                        "anomaly_person,person,B,40\n", encoding="utf-8")
    ev = evaluate(truth, lead_csv)
    person = next(m for m in ev.model if m.category == "anomaly_person")
    # k = 2 planted; the two best-scored leads are X and A: one of two
    assert (person.planted, person.leads, person.precision_at_k) == (2, 3, 0.5)
    assert person.length_ratio == pytest.approx(1.5)
    assert "| `anomaly_person` | 2 | 3 | 1.5x | 50.0% |" in render_table(ev)


def test_a_ring_is_found_when_one_case_holds_most_of_its_institutions(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("category,subject_type,subject_id,note,members\n"
                     "ring,institution,P1,,P1;P2;P3;P4\n"
                     "ring,institution,P7,,P7;P8;P9\n", encoding="utf-8")
    lead_csv = tmp_path / "leads.csv"
    lead_csv.write_text("category,subject_type,subject_id,fixmedins_codes\n"
                        "ring,institution,P2,P2;P3;P4\n"      # 3 of 4: found, by its hub P2
                        "ring,institution,P7,P7;P5\n"         # 1 of 3: not found
                        "ring,institution,P20,P20;P21;P22\n", encoding="utf-8")
    r = evaluate(truth, lead_csv).rings
    assert (r.planted, r.cases, r.found, r.right) == (2, 3, 1, 1)
    assert r.recall == 0.5 and r.precision == pytest.approx(1 / 3)
