"""Score a lead list against a simulation's truth: precision and recall per category.

A lead is a true positive when its ``(category, subject_type, subject_id)`` is a row of
the truth. Leads are counted once per such triple (two rules of one category on one
subject are one finding). Precision is undefined (``None``) for a category without leads,
recall for a category without planted cases. For the model's categories
(``anomaly_*``) the evaluation adds precision at k (k = planted: the share of the k
best-scored model leads that were planted) and the list's length against the planted
count. A ``ring`` is judged by its members, not its hub: a planted ring is found when
more than half of its institutions are in one ``ring`` lead's ``fixmedins_codes``, and a
ring lead is right when it so covers some planted ring.

>>> ev = evaluate(Path("sim/truth.csv"), Path("out/leads.csv"))  # doctest: +SKIP
>>> print(render_table(ev))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracecode.categories import CATEGORIES
from tracecode.errors import InputError

KEY = ("category", "subject_type", "subject_id")


class EvaluationInputError(InputError):
    """The truth or the lead list cannot be read."""


@dataclass(frozen=True)
class Score:
    category: str
    truth: int  # planted cases
    leads: int  # distinct (category, subject) leads
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class FalsePositive:
    category: str
    subject_type: str
    subject_id: str
    planted_as: tuple[str, ...]  # the subject's truth categories, if it was planted at all


@dataclass(frozen=True)
class ModelScore:
    """How good a model category's list is to an inspector who visits from the top."""

    category: str
    planted: int
    leads: int                      # the default (calibrated) list's length
    precision_at_k: float | None    # of the `planted` best-scored leads, the share planted
    length_ratio: float | None      # leads / planted


@dataclass(frozen=True)
class RingScore:
    planted: int
    cases: int          # ring leads
    found: int          # planted rings covered by one case
    right: int          # cases covering a planted ring
    recall: float | None
    precision: float | None


@dataclass(frozen=True)
class Evaluation:
    categories: tuple[Score, ...]  # the contract's vocabulary order, then any others
    overall: Score
    false_positives: tuple[FalsePositive, ...]
    # the rule categories alone (the model's lists and rings are judged on their own)
    rules: Score | None = None
    model: tuple[ModelScore, ...] = ()
    rings: RingScore | None = None

    def score(self, category: str) -> Score:
        return next(s for s in self.categories if s.category == category)


def evaluate(truth_csv: Path, leads_csv: Path) -> Evaluation:
    """Compare ``leads_csv`` (contract columns, UTF-8 with or without BOM) to ``truth_csv``."""
    truth = _read(truth_csv, "truth")
    leads = _read(leads_csv, "lead list")
    hit = leads.join(truth, on=list(KEY), how="semi")
    missed = truth.join(leads, on=list(KEY), how="anti")
    wrong = leads.join(truth, on=list(KEY), how="anti")

    def count(df: pl.DataFrame) -> dict[str, int]:
        return dict(df.group_by("category").len().iter_rows())

    n_truth, n_leads, n_tp, n_fn = count(truth), count(leads), count(hit), count(missed)
    known = list(CATEGORIES)
    others = sorted((set(n_truth) | set(n_leads)) - set(known))
    scores = tuple(
        _score(c, n_truth.get(c, 0), n_leads.get(c, 0), n_tp.get(c, 0), n_fn.get(c, 0))
        for c in known + others
    )
    overall = _score("overall", truth.height, leads.height, hit.height, missed.height)
    planted = truth.group_by("subject_type", "subject_id").agg(
        pl.col("category").sort().alias("planted_as"))
    fps = (
        wrong.join(planted, on=["subject_type", "subject_id"], how="left")
        .sort(list(KEY))
        .iter_rows(named=True)
    )
    false_positives = tuple(
        FalsePositive(r["category"], r["subject_type"], r["subject_id"],
                      tuple(r["planted_as"] or ()))
        for r in fps
    )
    model = pl.col("category").str.starts_with("anomaly_") | (pl.col("category") == "ring")
    rules = _score("rules", truth.filter(~model).height, leads.filter(~model).height,
                   hit.filter(~model).height, missed.filter(~model).height)
    full_truth, full_leads = _read_full(truth_csv), _read_full(leads_csv)
    model_scores = tuple(_model_score(c, truth, full_leads)
                         for c in CATEGORIES if c.startswith("anomaly_"))
    ring = _ring_score(full_truth, full_leads)
    # a ring lead names its hub, the truth the ring's first shop: judge it by members
    scores = tuple(
        Score("ring", ring.planted, ring.cases, ring.right, ring.cases - ring.right,
              ring.planted - ring.found, ring.precision, ring.recall)
        if s.category == "ring" else s for s in scores)
    false_positives = tuple(fp for fp in false_positives if fp.category != "ring")
    return Evaluation(scores, overall, false_positives, rules, model_scores, ring)


def _model_score(category: str, truth: pl.DataFrame, leads: pl.DataFrame) -> ModelScore:
    planted = set(truth.filter(pl.col("category") == category)["subject_id"])
    mine = leads.filter(pl.col("category") == category)
    if "score" in mine.columns:
        mine = mine.sort(pl.col("score").cast(pl.Float64, strict=False), descending=True,
                         maintain_order=True)
    ids = mine["subject_id"].unique(maintain_order=True).to_list() if mine.height else []
    k = len(planted)
    at_k = sum(1 for s in ids[:k] if s in planted) / k if k else None
    return ModelScore(category, k, len(ids), at_k, len(ids) / k if k else None)


def _ring_score(truth: pl.DataFrame, leads: pl.DataFrame) -> RingScore:
    rings = [set(m.split(";")) for m in truth.filter(pl.col("category") == "ring")
             .get_column("members", default=pl.Series([], dtype=pl.String))
             .fill_null("").to_list() if m]
    cases = [set((c or "").split(";")) for c in leads.filter(pl.col("category") == "ring")
             .get_column("fixmedins_codes", default=pl.Series([], dtype=pl.String))
             .to_list()]

    def covers(case: set[str], ring: set[str]) -> bool:
        return len(case & ring) * 2 > len(ring)

    found = sum(1 for r in rings if any(covers(c, r) for c in cases))
    right = sum(1 for c in cases if any(covers(c, r) for r in rings))
    return RingScore(len(rings), len(cases), found, right,
                     found / len(rings) if rings else None,
                     right / len(cases) if cases else None)


def _read_full(path: Path) -> pl.DataFrame:
    """Every column of a CSV already checked by :func:`_read`, as text."""
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    return (pl.read_csv(text.encode(), infer_schema=False) if text.strip()
            else pl.DataFrame(schema={c: pl.String for c in KEY}))


def _score(category: str, truth: int, leads: int, tp: int, fn: int) -> Score:
    return Score(
        category=category,
        truth=truth,
        leads=leads,
        tp=tp,
        fp=leads - tp,
        fn=fn,
        precision=tp / leads if leads else None,
        recall=tp / truth if truth else None,
    )


def _read(path: Path, what: str) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"the {what} {path} does not exist; give the path of a CSV")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        df = pl.read_csv(text.encode(), infer_schema=False) if text.strip() else pl.DataFrame()
    except pl.exceptions.PolarsError as e:
        raise EvaluationInputError(f"the {what} {path} is not a readable CSV: {e}") from e
    missing = [c for c in KEY if c not in df.columns]
    if missing:
        raise EvaluationInputError(
            f"the {what} {path} lacks column(s) {', '.join(missing)}; it needs "
            f"{', '.join(KEY)} (as truth.csv and leads.csv have)")
    return (
        df.select([pl.col(c).fill_null("").str.strip_chars() for c in KEY])
        .filter(pl.col("category") != "")
        .unique(maintain_order=True)
    )


def render_table(ev: Evaluation) -> str:
    """A Markdown table: one row per category that has planted cases or leads, then
    the overall row."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    head = ("| category | 类别 | planted | leads | TP | FP | FN | precision | recall |\n"
            "|---|---|--:|--:|--:|--:|--:|--:|--:|")
    rows = []
    totals = (ev.rules, ev.overall) if ev.rules else (ev.overall,)
    for s in (*[s for s in ev.categories if s.truth or s.leads], *totals):
        zh = CATEGORIES[s.category].zh if s.category in CATEGORIES else ""
        name = f"**{s.category}**" if s.category in ("rules", "overall") else f"`{s.category}`"
        rows.append(f"| {name} | {zh} | {s.truth} | {s.leads} | {s.tp} | {s.fp} | {s.fn} | "
                    f"{pct(s.precision)} | {pct(s.recall)} |")
    lines = [head, *rows]
    if any(m.planted or m.leads for m in ev.model):
        lines += ["", "| model category | planted | default list | list / planted | "
                      "precision at k = planted |", "|---|--:|--:|--:|--:|"]
        lines += [f"| `{m.category}` | {m.planted} | {m.leads} | "
                  f"{'–' if m.length_ratio is None else f'{m.length_ratio:.1f}x'} | "
                  f"{pct(m.precision_at_k)} |" for m in ev.model if m.planted or m.leads]
    if ev.rings and (ev.rings.planted or ev.rings.cases):
        r = ev.rings
        lines += ["", f"Rings: {r.found} of {r.planted} planted rings found as one case "
                      f"(recall {pct(r.recall)}); {r.right} of {r.cases} ring cases cover a "
                      f"planted ring (precision {pct(r.precision)})."]
    return "\n".join(lines)


def render_false_positives(ev: Evaluation, limit: int = 20) -> str:
    """The false positives, a few per category, for a human to look at."""
    lines: list[str] = []
    by_cat: dict[str, list[FalsePositive]] = {}
    for fp in ev.false_positives:
        by_cat.setdefault(fp.category, []).append(fp)
    for cat, fps in by_cat.items():
        lines.append(f"{cat}: {len(fps)} false positive(s)")
        for fp in fps[:limit]:
            also = f" (planted as {', '.join(fp.planted_as)})" if fp.planted_as else ""
            lines.append(f"  {fp.subject_type} {fp.subject_id}{also}")
    return "\n".join(lines)


def to_dict(ev: Evaluation) -> dict[str, Any]:
    """The evaluation as plain data, for ``--json``."""
    return {
        "categories": [asdict(s) for s in ev.categories],
        "overall": asdict(ev.overall),
        "rules": asdict(ev.rules) if ev.rules else None,
        "model": [asdict(m) for m in ev.model],
        "rings": asdict(ev.rings) if ev.rings else None,
        "false_positives_by_category": {
            s.category: s.fp for s in ev.categories if s.fp
        },
        "false_positives": [
            {**asdict(fp), "planted_as": list(fp.planted_as)} for fp in ev.false_positives
        ],
    }


def evaluate_habits(habits_csv: Path, data_quality_csv: Path,
                    compliance_csv: Path) -> tuple[Score, ...]:
    """Score the data-quality and compliance findings against a simulation's
    ``habits.csv`` (``simulate --habits``): a finding is a true positive when its
    (pattern or category, institution) was planted. One row per planted pattern, then
    the findings of patterns nobody planted (the simulator's own upload behaviour, e.g.
    unusual codes from planted unknown-code frauds), whose precision is not meaningful."""
    planted = _read_table(habits_csv, "habits", ("habit", "fixmedins_code")).rename(
        {"habit": "pattern"})
    found = pl.concat([
        _read_table(data_quality_csv, "data-quality findings", ("pattern", "fixmedins_code")),
        _read_table(compliance_csv, "compliance findings", ("category", "fixmedins_code"))
        .rename({"category": "pattern"}),
    ]).unique()
    hit = found.join(planted, on=["pattern", "fixmedins_code"], how="semi")
    missed = planted.join(found, on=["pattern", "fixmedins_code"], how="anti")

    def count(df: pl.DataFrame) -> dict[str, int]:
        return dict(df.group_by("pattern").len().iter_rows())

    n_planted, n_found, n_tp, n_fn = count(planted), count(found), count(hit), count(missed)
    order = sorted(n_planted) + sorted(set(n_found) - set(n_planted))
    return tuple(_score(p, n_planted.get(p, 0), n_found.get(p, 0), n_tp.get(p, 0),
                        n_fn.get(p, 0)) for p in order)


def _read_table(path: Path, what: str, columns: tuple[str, ...]) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"the {what} {path} does not exist; give the path of a CSV")
    df = pl.read_csv(path, infer_schema=False)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise EvaluationInputError(f"the {what} {path} lacks column(s) {', '.join(missing)}")
    return df.select(columns).unique()


def render_habits_table(scores: tuple[Score, ...]) -> str:
    """A Markdown table of :func:`evaluate_habits`."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    head = ("| pattern / category | planted | found | TP | FP | FN | precision | recall |\n"
            "|---|--:|--:|--:|--:|--:|--:|--:|")
    rows = [f"| `{s.category}` | {s.truth} | {s.leads} | {s.tp} | {s.fp} | {s.fn} | "
            f"{pct(s.precision)} | {pct(s.recall)} |" for s in scores]
    return "\n".join([head, *rows])
