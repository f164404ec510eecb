"""The model stage: features, a kept forest, scores, and how many of them become leads.

Rules catch what they name; this catches behaviour that stands out from the crowd: a shop
whose sales swing to one expensive drug for buyers from other cities, a person buying far
more than anyone needs. One isolation forest per subject type (:mod:`tracecode.forest`:
institutions, one row each over the window; persons, one row per person and month),
explained by :mod:`tracecode.explain`.

**A kept model.** The forest is fitted on a schedule, not every night: it is kept beside
the database (``models/kept``) and refitted when it is older than ``refit_days`` days of
data, when the population it was fitted on drifted by more than ``refit_drift``, or when
its version, features or hyperparameters changed. Between fits, only the rows whose
features changed are scored again (``anomaly_rows`` keeps each row's feature hash and
score under the fit that scored it); a row's score depends on nothing but its features
and the fit, so a daily run's scores, and lead list, equal a rebuild's with the same fit.

**How many leads** (:func:`calibrate`): a subject becomes a model lead when its score
stands out from the bulk of its own population by a robust z of at least ``lead_z_*``
((score - median) / (1.4826 x MAD)), in a population of ``tail_min_subjects`` or more
also beyond its own top percent (``lead_tail_*``), scores at least
``min_anomaly_score``, and is within the top ``max_lead_share`` of its subjects. The
count follows the evidence: a world with nothing unusual gives few or none, a province
more than a district.

>>> result = run_model(db, Settings(), Path("out/models/R1"),
...                    kept_dir=Path("out/models/kept"))              # doctest: +SKIP
>>> db.fetch_rows("top", "select subject_id, anomaly_score, robust_z from anomaly_scores "
...               "where is_lead")                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from tracecode.categories import CATEGORIES
from tracecode.db import Database
from tracecode.explain import drivers, explain
from tracecode.features import FeatureMatrix, SubjectType, compute_features
from tracecode.forest import MODEL_VERSION, AnomalyModel, ModelError
from tracecode.review import apply_reviews
from tracecode.settings import ModelSettings, Settings

log = logging.getLogger(__name__)

# Fewer rows than this and a subject type is not modelled: an "outlier" among a handful
# of institutions means nothing.
MIN_FIT_ROWS = 50
# Rows explained per subject type, from the top: the attribution walks every tree for
# each row, so it is spent on what can become a lead.
EXPLAIN_TOP = 1000
# The settings that shape a fitted forest or what it sees: a change of any refits.
FIT_SETTINGS = ("n_estimators", "max_samples", "random_state", "fit_sample_rows",
                "expensive_pack_price")
# A MAD below this (score points) is taken as this: a population of identical subjects
# must not make every small difference a "robust z" of thousands.
MIN_MAD = 1.0
PEER_NOUN: dict[str, tuple[str, str]] = {
    "institution": ("家机构", "institutions"),
    "person": ("名参保人", "insured persons"),
}


@dataclass(frozen=True)
class AnomalyResult:
    n_institutions: int
    n_persons: int
    fit_seconds: float
    score_seconds: float
    # the folder holding anomaly_<subject>.joblib, when a model_dir was given
    model_path: Path | None
    model_files: tuple[Path, ...] = ()
    refitted: tuple[str, ...] = ()      # subject types fitted this run (others kept)
    rows_scored: int = 0                # feature rows scored this run
    rows_reused: int = 0                # rows whose features had not changed since scored


@dataclass(frozen=True)
class Fit:
    """A fitted model and where it came from: ``fit_id`` names it in ``model_fits``."""

    model: AnomalyModel
    fit_id: str
    data_until: str     # last day of the data it was fitted on, YYYY-MM-DD
    n_rows: int

    @property
    def label(self) -> str:
        """What a lead says of the model that raised it: version and fit date."""
        return f"v{MODEL_VERSION} fitted on data to {self.data_until}"


def run_model(db: Database, settings: Settings, model_dir: Path | None, *,
              kept_dir: Path | None = None) -> AnomalyResult:
    """Features, fit (or the kept fit), score what changed, explain; replace
    ``anomaly_scores``; save the models used under ``model_dir``.

    One row per scored subject in ``anomaly_scores`` (a person's row is their most
    anomalous month), ranked within its subject type (1 = most anomalous), with its
    robust z and whether it is a lead. Without ``kept_dir`` every run fits afresh. Run
    it inside ``db.transaction()`` to replace the tables all or nothing.
    """
    matrices = compute_features(db, settings)
    fit_seconds = score_seconds = 0.0
    frames: list[pl.DataFrame] = []
    files: list[Path] = []
    counts: dict[str, int] = {}
    refitted: list[str] = []
    n_scored = n_reused = 0
    for subject, matrix in matrices.items():
        if len(matrix) < MIN_FIT_ROWS:
            log.info("anomaly %s: %d rows, fewer than %d: not modelled",
                     subject, len(matrix), MIN_FIT_ROWS)
            counts[subject] = 0
            continue
        started = time.perf_counter()
        fit, why = kept_or_new_fit(db, settings.model, subject, matrix, kept_dir)
        if why:
            refitted.append(subject)
        fitted = time.perf_counter()
        scores, reused = score_changed(db, fit, matrix)
        scored = time.perf_counter()
        fit_seconds += fitted - started
        score_seconds += scored - fitted
        n_scored += len(matrix) - reused
        n_reused += reused
        led = rule_led_subjects(db, subject)
        frame = ranked_subjects(fit.model, matrix, scores, also_explain=led)
        frame = calibrate(frame, settings.model).with_columns(
            pl.lit(fit.fit_id).alias("fit_id"), pl.lit(fit.label).alias("model_fit"))
        frames.append(frame)
        counts[subject] = frame.height
        if model_dir is not None:
            files.append(fit.model.save(model_dir / f"anomaly_{subject}.joblib"))
        log.info("anomaly %s: %d rows, %s; %d scored, %d unchanged -> %d subjects, %d leads; "
                 "fit %.1fs, score %.1fs, explain %.1fs", subject, len(matrix),
                 f"refitted ({why})" if why else f"kept fit {fit.fit_id}",
                 len(matrix) - reused, reused, frame.height, frame["is_lead"].sum(),
                 fitted - started, scored - fitted, time.perf_counter() - scored)
    store_scores(db, frames)
    return AnomalyResult(
        n_institutions=counts.get("institution", 0),
        n_persons=counts.get("person", 0),
        fit_seconds=round(fit_seconds, 3),
        score_seconds=round(score_seconds, 3),
        model_path=model_dir if files else None,
        model_files=tuple(files),
        refitted=tuple(refitted),
        rows_scored=n_scored,
        rows_reused=n_reused,
    )


# -- the kept model --------------------------------------------------------------------------


def kept_or_new_fit(db: Database, settings: ModelSettings, subject: SubjectType,
                    matrix: FeatureMatrix, kept_dir: Path | None) -> tuple[Fit, str]:
    """The kept fit when it still holds, else a new one (kept when ``kept_dir`` is given);
    and why it was refitted ("" when kept)."""
    data_until = _data_until(matrix)
    why = "no kept model" if kept_dir is None else ""
    if kept_dir is not None:
        row = db.fetch_rows(
            "kept fit",
            """select fit_id, path, data_until, n_rows, version, settings::varchar
               from model_fits where subject_type = $subject and kept
               order by fitted_at desc limit 1""",
            {"subject": subject},
        )
        why = refit_reason(row[0] if row else None, settings, data_until, len(matrix))
        if not why:
            fit_id, path, until, n_rows = row[0][:4]
            try:
                model = AnomalyModel.load(Path(path))
                model._checked(matrix.take(np.arange(0)))
                return Fit(model, fit_id, str(until), int(n_rows)), ""
            except ModelError as e:
                why = f"kept model unusable: {e}"
    model = AnomalyModel(settings, subject).fit(matrix)
    fit_id = f"{subject}-{data_until.replace('-', '')}-{datetime.now():%H%M%S%f}"
    fit = Fit(model, fit_id, data_until, len(matrix))
    if kept_dir is not None:
        path = model.save(kept_dir / f"{fit_id}.joblib")
        db.execute("retire kept fit", "update model_fits set kept = false "
                                      "where subject_type = $subject", {"subject": subject})
        db.execute(
            "keep fit",
            """insert into model_fits values ($fit_id, $subject, now(), $until, $n_rows,
                                              $version, $settings, $path, $why, true)""",
            {"fit_id": fit_id, "subject": subject, "until": data_until, "n_rows": len(matrix),
             "version": MODEL_VERSION, "settings": json.dumps(_fit_settings(settings)),
             "path": str(path), "why": why},
        )
        prune_kept(db, kept_dir)
    return fit, why


def refit_reason(kept: tuple | None, settings: ModelSettings, data_until: str,
                 n_rows: int) -> str:
    """Why the kept fit must be replaced, or "" when it holds. ``kept`` is its
    ``model_fits`` row (fit_id, path, data_until, n_rows, version, settings)."""
    if kept is None:
        return "no kept model"
    _, _, until, kept_rows, version, fit_settings = kept
    if version != MODEL_VERSION or json.loads(fit_settings) != _fit_settings(settings):
        return "model version or settings changed"
    age = (datetime.fromisoformat(data_until) - datetime.fromisoformat(str(until))).days
    if age >= settings.refit_days:
        return f"{age} days of data since the fit"
    drift = abs(n_rows / max(int(kept_rows), 1) - 1)
    if drift > settings.refit_drift:
        return f"rows changed by {100 * drift:.0f}% since the fit"
    return ""


def score_changed(db: Database, fit: Fit, matrix: FeatureMatrix) -> tuple[np.ndarray, int]:
    """Each row's score: kept from ``anomaly_rows`` when the same fit scored the same
    features, else scored now; ``anomaly_rows`` then holds every row. Returns the scores
    and how many were kept."""
    rows = matrix.rows.select("subject_id", "period").with_columns(
        row_hash=feature_hash(matrix), row=pl.int_range(0, len(matrix), dtype=pl.Int64))
    db.register("anomaly_rows_now", rows.to_arrow())
    try:
        known = db.fetch_polars(
            "unchanged rows",
            """select n.row, k.anomaly_score
               from anomaly_rows_now as n
               join anomaly_rows as k
                 on k.subject_type = $subject and k.fit_id = $fit_id
                and k.subject_id = n.subject_id and k.period is not distinct from n.period
                and k.row_hash = n.row_hash""",
            {"subject": matrix.subject_type, "fit_id": fit.fit_id},
        )
        scores = np.full(len(matrix), np.nan)
        scores[known["row"].to_numpy()] = known["anomaly_score"].to_numpy()
        todo = np.flatnonzero(np.isnan(scores))
        if len(todo) == len(matrix):  # a new fit: no copy of the whole matrix
            scores = fit.model.score(matrix)
        elif len(todo):
            scores[todo] = fit.model.score(matrix.take(todo))
        kept = rows.select("subject_id", "period", "row_hash").with_columns(
            pl.Series("anomaly_score", scores))
        db.register("anomaly_rows_scores", kept.to_arrow())
        db.execute("forget rows", "delete from anomaly_rows where subject_type = $subject",
                   {"subject": matrix.subject_type})
        db.execute(
            "keep rows",
            """insert into anomaly_rows
               select $subject, subject_id, period, $fit_id, row_hash, anomaly_score
               from anomaly_rows_scores""",
            {"subject": matrix.subject_type, "fit_id": fit.fit_id},
        )
    finally:
        db.unregister("anomaly_rows_now")
        db.unregister("anomaly_rows_scores")
    return scores, len(matrix) - len(todo)


def feature_hash(matrix: FeatureMatrix) -> pl.Series:
    """A 64-bit hash of everything a row's score depends on: its features, its peer group
    and its record count (which pulls its shares toward the peers')."""
    frame = pl.DataFrame(matrix.values, schema=list(matrix.names), orient="row").with_columns(
        matrix.rows["n_events"].cast(pl.Int64), matrix.rows["peer_group"].fill_null(""))
    return frame.hash_rows(seed=20251101).alias("row_hash")


def prune_kept(db: Database, kept_dir: Path) -> None:
    """Remove kept model files no longer named by a kept fit (older fits stay listed)."""
    live = {Path(r[0]).name for r in db.fetch_rows(
        "kept paths", "select path from model_fits where kept")}
    for path in kept_dir.glob("*.joblib"):
        if path.name not in live:
            path.unlink()


def _fit_settings(settings: ModelSettings) -> dict[str, object]:
    return {k: v for k, v in asdict(settings).items() if k in FIT_SETTINGS}


def _data_until(matrix: FeatureMatrix) -> str:
    last = matrix.rows["last_time"].max()
    return last.strftime("%Y-%m-%d") if isinstance(last, datetime) else "1970-01-01"


# -- how many leads ---------------------------------------------------------------------------


def calibrate(frame: pl.DataFrame, settings: ModelSettings) -> pl.DataFrame:
    """Add each subject's standing among its population and whether it is a lead.

    ``robust_z`` = (score - median) / (1.4826 x MAD) over all subjects of the type (the
    bulk sets the scale, the tail does not); ``tail`` = (score - q99) / (q99 - median),
    how far beyond the population's own top percent. A lead has ``robust_z >=
    lead_z_<type>``, ``tail >= lead_tail_<type>`` when there are at least
    ``tail_min_subjects`` subjects (thousands make a top percent to measure against; a
    few hundred institutions do not: at 3,000 a z alone let 30 shops through), a score of
    at least ``min_anomaly_score``, and a rank within ``max_lead_share_<type>`` of the
    subjects (at least one). ``standing_zh`` / ``standing_en`` say it in words for the
    leads and the explained rows, and are null for the rest.
    """
    scores = frame["anomaly_score"].to_numpy()
    n = len(scores)
    median, q99 = (float(q) for q in np.quantile(scores, [0.5, 0.99])) if n else (0.0, 0.0)
    mad = max(1.4826 * float(np.median(np.abs(scores - median))) if n else 0.0, MIN_MAD)
    subject = frame["subject_type"][0] if n else "person"
    if subject == "institution":
        share, lead_z, lead_tail = (settings.max_lead_share_institutions,
                                    settings.lead_z_institutions,
                                    settings.lead_tail_institutions)
    else:
        share, lead_z, lead_tail = (settings.max_lead_share_persons, settings.lead_z_persons,
                                    settings.lead_tail_persons)
    if n < settings.tail_min_subjects:
        lead_tail = -math.inf
    cap = max(1, math.ceil(share * n))
    z = (scores - median) / mad
    tail = (scores - q99) / max(q99 - median, MIN_MAD)
    rank = frame["rank"].to_numpy()
    is_lead = ((z >= lead_z) & (tail >= lead_tail) & (scores >= settings.min_anomaly_score)
               & (rank <= cap))
    # in words for the rows a reader sees (leads, and the explained top ranks): a
    # province's millions of person rows would take a minute of string formatting
    shown = is_lead.copy()
    if "explanation_zh" in frame.columns:
        shown |= frame["explanation_zh"].is_not_null().to_numpy()
    zh_noun, en_noun = PEER_NOUN[subject]
    standing_zh: list[str | None] = [None] * n
    standing_en: list[str | None] = [None] * n
    for i in np.flatnonzero(shown):
        top, zz = _top_percent(int(rank[i]), n), z[i]
        standing_zh[i] = f"排在 {n:,} {zh_noun}的前 {top}%（稳健 z {zz:.1f}）"
        standing_en[i] = f"ranks in the top {top}% of {n:,} {en_noun} (robust z {zz:.1f})"
    return frame.with_columns(
        pl.lit(n, dtype=pl.Int64).alias("n_peers"),
        pl.Series("robust_z", np.round(z, 3)),
        pl.Series("tail", np.round(tail, 4)),
        pl.Series("is_lead", is_lead),
        pl.Series("standing_zh", standing_zh, dtype=pl.String),
        pl.Series("standing_en", standing_en, dtype=pl.String),
    )


def _top_percent(rank: int, n: int) -> str:
    p = 100.0 * rank / max(n, 1)
    if p >= 10:
        return f"{p:.0f}"
    if p >= 1:
        return f"{p:.1f}".rstrip("0").rstrip(".")
    return f"{p:.2g}"


def merge_anomalies(db: Database, settings: Settings) -> int:
    """Fold the model's ``anomaly_scores`` into the lead list (sql/leads/anomaly_leads.sql);
    the number of anomaly leads added."""
    kinds = [c for c in CATEGORIES if c.startswith("anomaly_")]
    db.register("anomaly_categories_arrow", pa.table({
        "category": kinds, "category_zh": [CATEGORIES[c].zh for c in kinds]}))
    db.execute("anomaly categories", "create or replace temp table anomaly_categories as "
                                     "select * from anomaly_categories_arrow")
    db.unregister("anomaly_categories_arrow")
    db.run_file("leads/anomaly_leads.sql", asdict(settings.score))
    (n,) = db.fetch_one("anomaly leads", "select count(*) from anomaly_leads")
    log.info("anomaly leads: %d", n)
    # the last step that adds leads or evidence: statuses come from the review trail
    apply_reviews(db)
    return int(n)


# -- scores --------------------------------------------------------------------------------


RUN_FOLDER = re.compile(r"R\d{8}T\d{6}-[0-9a-f]{6}")


def prune_models(models: Path, keep: int) -> list[Path]:
    """Remove the model folders of all but the ``keep`` latest runs under ``models``
    (``models/<run_id>``; run ids sort by time). Anything else there is left alone.
    ``keep`` 0 keeps everything. Returns the folders removed."""
    if keep <= 0 or not models.is_dir():
        return []
    runs = sorted(p for p in models.iterdir() if p.is_dir() and RUN_FOLDER.fullmatch(p.name))
    removed = runs[:-keep]
    for folder in removed:
        shutil.rmtree(folder)
    if removed:
        log.info("models: removed %d run folders older than the latest %d", len(removed), keep)
    return removed


SCORE_COLUMNS = (
    "subject_type", "subject_id", "period", "anomaly_score", "rank", "explanation_zh",
    "explanation_en", "drivers", "first_time", "last_time", "n_events", "amount",
    "fixmedins_codes",
)


def rule_led_subjects(db: Database, subject_type: str) -> set[str]:
    """Subjects the rules have already led (when they ran before the model): explained
    whatever their rank, so that a merged lead carries the model's view too."""
    rows = db.fetch_rows(
        "rule-led subjects",
        """select distinct subject_id from leads
           where subject_type = $subject_type and category not like 'anomaly%'""",
        {"subject_type": subject_type},
    )
    return {r[0] for r in rows}


def ranked_subjects(model: AnomalyModel, matrix: FeatureMatrix, scores: np.ndarray,
                    also_explain: set[str] | None = None) -> pl.DataFrame:
    """One row per subject (its most anomalous row), ranked; the top ``EXPLAIN_TOP`` and
    the subjects in ``also_explain`` explained."""
    # ranked on the keys alone, the evidence gathered once for the subjects kept (a
    # province's 23M person-months: every sort would copy all their columns)
    order = (
        pl.DataFrame({
            "subject_id": matrix.rows["subject_id"],
            "period": matrix.rows["period"],
            "anomaly_score": np.round(scores, 4),
            "row": np.arange(len(matrix)),
        })
        # a subject's most anomalous row (a person's worst month), ties to the earliest
        .sort(["subject_id", "anomaly_score", "period"], descending=[False, True, False])
        .unique("subject_id", keep="first", maintain_order=True)
        .sort(["anomaly_score", "subject_id"], descending=[True, False])
    )
    frame = pl.concat(
        [order, matrix.rows.drop("subject_id", "period")[order["row"].to_numpy()]],
        how="horizontal",
    ).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
        pl.lit(matrix.subject_type).alias("subject_type"),
    )
    top = frame.filter(
        (pl.col("rank") <= EXPLAIN_TOP)
        | pl.col("subject_id").is_in(sorted(also_explain or ()))
    )
    rows = top["row"].to_numpy()
    found = drivers(model, matrix.take(rows))
    zh, en, js = [], [], []
    for r, d in zip(top.iter_rows(named=True), found, strict=True):
        s_zh, s_en = explain(matrix.subject_type, r["peer_group"], r["period"],
                             r["anomaly_score"], d)
        zh.append(s_zh)
        en.append(s_en)
        js.append(json.dumps([
            {"feature": x.feature, "value": _finite(x.value), "typical": _finite(x.typical),
             "share": x.share} for x in d[:5]
        ], ensure_ascii=False))
    explained = pl.DataFrame({
        "row": rows,
        "explanation_zh": pl.Series(zh, dtype=pl.String),
        "explanation_en": pl.Series(en, dtype=pl.String),
        "drivers": pl.Series(js, dtype=pl.String),
    })
    return (
        frame.join(explained, on="row", how="left", maintain_order="left")
        .select(SCORE_COLUMNS)
    )


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def store_scores(db: Database, frames: list[pl.DataFrame]) -> None:
    """Replace ``anomaly_scores`` with ``frames``."""
    db.execute("clear anomaly scores", "delete from anomaly_scores")
    frames = [f for f in frames if f.height]
    if not frames:
        return
    db.register("anomaly_scores_arrow", pl.concat(frames, how="diagonal").to_arrow())
    try:
        db.execute(
            "store anomaly scores",
            """insert into anomaly_scores by name
               select * exclude (drivers), cast(drivers as json) as drivers
               from anomaly_scores_arrow""",
        )
    finally:
        db.unregister("anomaly_scores_arrow")
