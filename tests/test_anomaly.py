"""The anomaly model: planted outliers rank first, scores reproduce, explanations name
the right feature, and the stage fills ``anomaly_scores`` from a landing directory."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import landing as landing_module
import numpy as np
import polars as pl
import pytest
from landing import Landing, Person, resident_id

from tracecode import anomaly, forest, pipeline
from tracecode.anomaly import run_model
from tracecode.db import Database
from tracecode.explain import drivers, explain
from tracecode.features import FEATURES, FeatureMatrix
from tracecode.forest import AnomalyModel, ModelError, score_with
from tracecode.settings import ModelSettings, Settings

# the features of the synthetic institutions below (the forest takes any named subset)
NAMES = tuple(f.name for f in FEATURES["institution"] if f.name != "top_drug_rise")
SETTINGS = ModelSettings(n_estimators=100)


def inliers(n: int, seed: int) -> np.ndarray:
    """Institutions as the simulator and real cities have them: volumes log-normal, shares
    small and noisy."""
    rng = np.random.default_rng(seed)
    buyers = rng.lognormal(3.0, 0.6, n)
    col = {
        "buyers_per_day": buyers,
        "packs_per_buyer_day": 1 + rng.gamma(2.0, 0.3, n),
        "amount_per_buyer": rng.lognormal(4.5, 0.4, n),
        "expensive_share": rng.beta(1, 60, n),
        "top_drug_share": rng.beta(3, 12, n),
        "top_drug_lift": 1 + rng.gamma(2.0, 0.5, n),
        "nonlocal_share": rng.beta(2, 40, n),
        "night_share": rng.beta(1, 50, n),
        "split_share": rng.beta(1, 20, n),
        "repeat_code_rate": rng.beta(1, 400, n),
        "unstocked_share": rng.beta(1, 200, n),
        "volume_jump": 1 + rng.gamma(2.0, 0.1, n),
        "expensive_jump": 1 + rng.gamma(1.0, 0.2, n),
    }
    return np.column_stack([col[name] for name in NAMES])


# What each planted outlier does, on top of an ordinary institution's values. Frauds show
# in several features at once (an isolation forest isolates a point extreme in one of a
# dozen features only when a tree happens to split on it within its eight levels).
PLANTED = {
    "phantom night sales": {"night_share": 0.6, "unstocked_share": 0.5,
                            "buyers_per_day": 200.0},
    "expensive drug sold to outsiders": {"nonlocal_share": 0.85, "expensive_share": 0.6,
                                         "expensive_jump": 30.0, "top_drug_share": 0.9},
    "card collecting": {"amount_per_buyer": 20_000.0, "packs_per_buyer_day": 15.0,
                        "expensive_share": 0.5},
    "recycled codes": {"repeat_code_rate": 0.4, "unstocked_share": 0.6, "volume_jump": 5.0},
    "split overdraw": {"split_share": 0.95, "packs_per_buyer_day": 10.0, "volume_jump": 8.0},
}


def matrix(values: np.ndarray, names: tuple[str, ...] = NAMES) -> FeatureMatrix:
    n = values.shape[0]
    rows = pl.DataFrame({
        "subject_id": [f"P{i:011d}" for i in range(n)],
        "period": ["2025-11-01~2025-11-30"] * n,
        "peer_group": ["pharmacy"] * n,
        "first_time": pl.Series([None] * n, dtype=pl.Datetime),
        "last_time": pl.Series([None] * n, dtype=pl.Datetime),
        "n_events": [1] * n,
        "amount": [0.0] * n,
        "fixmedins_codes": [f"P{i:011d}" for i in range(n)],
    })
    return FeatureMatrix("institution", names, values, rows)


@pytest.fixture(scope="module")
def planted() -> tuple[FeatureMatrix, list[int]]:
    """1000 ordinary institutions with five outliers planted at seeded random rows."""
    values = inliers(1000, seed=7)
    rows = np.random.default_rng(8).choice(len(values), size=len(PLANTED), replace=False)
    for row, changes in zip(rows, PLANTED.values(), strict=True):
        for name, value in changes.items():
            values[row, NAMES.index(name)] = value
    return matrix(values), [int(r) for r in rows]


@pytest.fixture(scope="module")
def fitted(planted: tuple[FeatureMatrix, list[int]]) -> AnomalyModel:
    return AnomalyModel(SETTINGS, "institution").fit(planted[0])


def test_planted_outliers_rank_above_every_inlier(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]],
) -> None:
    features, outliers = planted
    scores = fitted.score(features)
    top = set(np.argsort(-scores)[: len(outliers)].tolist())
    assert top == set(outliers)
    assert scores[outliers].min() > 60 > 55 > np.median(scores)


def test_the_same_random_state_gives_the_same_scores_and_another_the_same_ranking(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]],
) -> None:
    features, outliers = planted
    again = AnomalyModel(SETTINGS, "institution").fit(features)
    assert np.array_equal(again.score(features), fitted.score(features))
    other = AnomalyModel(replace(SETTINGS, random_state=1), "institution").fit(features)
    assert not np.array_equal(other.score(features), fitted.score(features))
    assert set(np.argsort(-other.score(features))[: len(outliers)]) == set(outliers)


def test_a_large_table_is_fitted_on_a_seeded_sample_of_fit_sample_rows(
    planted: tuple[FeatureMatrix, list[int]],
) -> None:
    features, outliers = planted
    settings = replace(SETTINGS, fit_sample_rows=400)
    model = AnomalyModel(settings, "institution").fit(features)
    assert (model.n_fit_rows_, model.n_rows_seen_) == (400, 1000)
    again = AnomalyModel(settings, "institution").fit(features)
    assert np.array_equal(model.score(features), again.score(features))
    # the outliers are ranked first whether or not the sample drew them
    assert set(np.argsort(-model.score(features))[: len(outliers)]) == set(outliers)


def test_a_saved_model_rescores_the_same_features_identically(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]], tmp_path: Path,
) -> None:
    features, _ = planted
    path = fitted.save(tmp_path / "anomaly_institution.joblib")
    assert np.array_equal(score_with(path, features), fitted.score(features))


def test_scoring_features_other_than_those_fitted_raises_a_clear_error(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]], tmp_path: Path,
) -> None:
    features, _ = planted
    dropped = matrix(features.values[:, 1:], NAMES[1:])
    with pytest.raises(ModelError, match=r"missing \['buyers_per_day'\]"):
        fitted.score(dropped)
    shuffled = matrix(features.values[:, ::-1], NAMES[::-1])
    path = fitted.save(tmp_path / "anomaly_institution.joblib")
    with pytest.raises(ModelError, match="another order"):
        score_with(path, shuffled)


def test_a_file_that_is_not_a_saved_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.joblib").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a saved tracecode anomaly model"):
        AnomalyModel.load(tmp_path / "x.joblib")


def test_contributions_add_up_to_each_rows_score(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]],
) -> None:
    features, outliers = planted
    some = features.take(np.array([*outliers, 0, 1, 2]))
    path_length = fitted.contributions(some).sum(axis=1) + fitted.expected_path_length_
    assert np.allclose(fitted.path_length_to_score(path_length), fitted.score(some))


def test_the_explanation_names_the_planted_feature_first_with_its_value_and_the_median(
    fitted: AnomalyModel, planted: tuple[FeatureMatrix, list[int]],
) -> None:
    features, outliers = planted
    for (kind, changes), row in zip(PLANTED.items(), outliers, strict=True):
        found = drivers(fitted, features.take(np.array([row])))[0]
        assert found[0].feature in changes, kind
        assert sum(d.share for d in found) == pytest.approx(100, abs=0.5)
    row = outliers[list(PLANTED).index("phantom night sales")]
    found = drivers(fitted, features.take(np.array([row])))[0]
    assert found[0].feature == "night_share"
    median = fitted.typical_["pharmacy"][NAMES.index("night_share")]
    zh, en = explain("institution", "pharmacy", None, 70.0, found)
    assert zh.startswith(f"行为异常分 70：夜间销售占比 60%，同类药店中位数 {100 * median:.1f}%")
    assert f"share of sales at night 60% vs {100 * median:.1f}% median for pharmacies" in en


# -- the stage, from a landing directory --------------------------------------------------

SHOPS = [f"P440106{i:05d}" for i in range(1, 61)]
FRAUD_SHOP = SHOPS[17]


def _person(i: int, admdvs: str) -> Person:
    birth = f"19{50 + i % 45:02d}-0{1 + i % 9}-1{i % 10}"
    return Person(f"44{i:012d}", resident_id(admdvs, birth, i % 499, i % 2 == 0),
                  f"居民{i}", "M" if i % 2 == 0 else "F", birth, admdvs)


COLLECTOR = _person(5, "440106")


@pytest.fixture(scope="module")
def behaviour_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 pharmacies, 600 local buyers over three weeks; in the third week one pharmacy
    sells the expensive drug C to 40 buyers from Shenzhen, and one person collects
    twelve packs of C at two pharmacies."""
    tmp = tmp_path_factory.mktemp("behaviour")
    rng = np.random.default_rng(3)
    persons = {f"l{i}": _person(i, "440106") for i in range(600)}
    persons.update({f"s{i}": _person(1000 + i, "440304") for i in range(40)})
    institutions = [(c, f"药房{c[-3:]}", "pharmacy", "440106", "08:00", "22:00")
                    for c in SHOPS]
    mp = pytest.MonkeyPatch()
    mp.setattr(landing_module, "PERSONS", persons)
    mp.setattr(landing_module, "INSTITUTIONS", institutions)
    try:
        land = Landing(tmp / "landing")
        serial = {d: 0 for d in "ABC"}
        seq = 0

        def sell(shop: str, who: str, drug: str, day: int, hour: int, packs: int = 1) -> None:
            nonlocal seq
            seq += 1
            codes = []
            for _ in range(packs):
                serial[drug] += 1
                codes.append(f"{drug}:{serial[drug]}")
            land.sale(shop, f"S{seq:06d}", codes,
                      f"2025-11-{3 + day:02d} {hour:02d}:{rng.integers(0, 60):02d}:00",
                      person=who)

        for i in range(600):
            home = SHOPS[i % len(SHOPS)]
            for _ in range(int(rng.integers(1, 4))):
                drug = str(rng.choice(["A", "B", "C"], p=[0.72, 0.25, 0.03]))
                shop = home if rng.random() < 0.8 else str(rng.choice(SHOPS))
                sell(shop, f"l{i}", drug, int(rng.integers(0, 21)), int(rng.integers(9, 21)))
        for i in range(40):
            sell(FRAUD_SHOP, f"s{i}", "C", int(rng.integers(14, 21)), int(rng.integers(9, 21)))
        for k in range(6):
            sell(SHOPS[(k % 2) * 30], "l5", "C", 2 + 3 * k, 15, packs=2)
        land.write(persons=persons)
    finally:
        mp.undo()
    pipeline.run(land.root, tmp / "db.duckdb", tmp / "out")
    return tmp / "db.duckdb"


@pytest.fixture(scope="module")
def stage(behaviour_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    models = tmp_path_factory.mktemp("models")
    with Database.open(behaviour_db) as db:
        result = run_model(db, Settings(model=SETTINGS), models)
    assert (result.n_institutions, result.n_persons) == (60, 640)
    assert result.model_path == models
    return behaviour_db, models


def test_the_stage_ranks_the_shop_selling_to_outsiders_and_the_collector_first(
    stage: tuple[Path, Path],
) -> None:
    db_path, _ = stage
    with Database.open(db_path, read_only=True) as db:
        top = dict(db.fetch_rows("top", "select subject_type, subject_id from anomaly_scores "
                                        "where rank = 1"))
        (drivers_json, sentence) = db.fetch_one(
            "shop", "select drivers, explanation_zh from anomaly_scores "
                    "where subject_id = $id", {"id": FRAUD_SHOP})
    assert top == {"institution": FRAUD_SHOP, "person": COLLECTOR.psn_no}
    named = {d["feature"] for d in json.loads(drivers_json)[:3]}
    assert named & {"nonlocal_share", "top_drug_share", "expensive_jump", "top_drug_rise"}
    assert sentence.startswith("行为异常分 ")


def test_the_stage_stores_one_ranked_row_per_subject_with_its_evidence(
    stage: tuple[Path, Path],
) -> None:
    db_path, _ = stage
    with Database.open(db_path, read_only=True) as db:
        rows = db.fetch_rows("per type", """
            select subject_type, count(*), count(distinct subject_id), min(rank), max(rank),
                   bool_and(anomaly_score between 0 and 100),
                   bool_and(n_events > 0 and first_time <= last_time)
            from anomaly_scores group by all order by all""")
        collector = db.fetch_one("collector", """
            select period, n_events, fixmedins_codes, explanation_zh from anomaly_scores
            where subject_id = $id""", {"id": COLLECTOR.psn_no})
    assert rows == [("institution", 60, 60, 1, 60, True, True),
                    ("person", 640, 640, 1, 640, True, True)]
    # l5 bought at their home shop and on six visits at two others
    assert collector[0] == "2025-11"
    assert set(collector[2].split(";")) >= {SHOPS[0], SHOPS[30]}
    assert collector[3].startswith("2025年11月行为异常分 ")


def test_the_saved_models_rescore_the_stage_features_identically(
    stage: tuple[Path, Path],
) -> None:
    db_path, models = stage
    from tracecode.features import compute_features

    with Database.open(db_path) as db:
        matrices = compute_features(db, Settings(model=SETTINGS))
        stored = dict(db.fetch_rows("scores", "select subject_id, anomaly_score "
                                              "from anomaly_scores "
                                              "where subject_type = 'institution'"))
    scores = score_with(models / "anomaly_institution.joblib", matrices["institution"])
    ids = matrices["institution"].rows["subject_id"].to_list()
    assert np.allclose(scores, [stored[i] for i in ids], atol=1e-4)
    assert (models / "anomaly_person.joblib").exists()


def test_only_the_latest_runs_models_are_kept(tmp_path: Path) -> None:
    models = tmp_path / "models"
    runs = [f"R202511{day:02d}T020000-abc123" for day in range(1, 6)]
    for run in runs:
        (models / run).mkdir(parents=True)
        (models / run / "anomaly_person.joblib").write_bytes(b"x")
    (models / "notes").mkdir()  # not a run's folder: never touched
    removed = anomaly.prune_models(models, keep=2)
    assert [p.name for p in removed] == runs[:3]
    assert sorted(p.name for p in models.iterdir()) == [*runs[3:], "notes"]
    assert anomaly.prune_models(models, keep=0) == []
    assert len(list(models.iterdir())) == 3


# -- how many leads, and the kept model, on simulated worlds ------------------------------


def _model_leads(db_path: Path) -> dict[str, set[str]]:
    with Database.open(db_path, read_only=True) as db:
        rows = db.fetch_rows("model leads", "select category, subject_id from leads "
                                            "where category like 'anomaly_%'")
    out: dict[str, set[str]] = {"anomaly_institution": set(), "anomaly_person": set()}
    for category, subject in rows:
        out[category].add(subject)
    return out


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """A district (180 institutions, ~12,000 buyers) with its behaviour frauds planted
    among look-alikes, on a seed the settings were not tuned on."""
    from tracecode.simulate import simulate

    tmp = tmp_path_factory.mktemp("district")
    simulate(tmp / "land", scale="district", days=7, seed=3)
    pipeline.run(tmp / "land", tmp / "db.duckdb", tmp / "out")
    return tmp / "db.duckdb", pl.read_csv(tmp / "land" / "truth.csv", infer_schema=False)


@pytest.mark.slow
def test_the_calibrated_list_is_mostly_the_planted_behaviour_and_at_most_twice_as_long(
    district: tuple[Path, pl.DataFrame],
) -> None:
    db_path, truth = district
    leads = _model_leads(db_path)
    for category, found in leads.items():
        planted = set(truth.filter(pl.col("category") == category)["subject_id"])
        assert found, category
        assert len(found & planted) >= 0.6 * len(planted), category
        assert len(found) <= 2 * len(planted), category
    with Database.open(db_path, read_only=True) as db:
        reason, fit = db.fetch_one("a person lead", """
            select reason, model_fit from leads where category = 'anomaly_person'
            order by score desc limit 1""")
    assert re.match(r"排在 [\d,]+ 名参保人的前 [\d.]+%（稳健 z [\d.]+）；", reason)
    assert fit.startswith("v") and "fitted on data to 2025-11-07" in fit


@pytest.mark.slow
def test_a_world_with_no_planted_behaviour_gives_few_or_no_model_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracecode import simulate as simulate_module
    from tracecode.simulate.scales import SCALES

    quiet = replace(SCALES["district"], name="quiet", anomaly_institutions=0,
                    anomaly_persons=0)
    monkeypatch.setitem(simulate_module.SCALES, "quiet", quiet)
    simulate_module.simulate(tmp_path / "land", scale="quiet", days=7, seed=5)
    pipeline.run(tmp_path / "land", tmp_path / "db.duckdb", tmp_path / "out")
    leads = _model_leads(tmp_path / "db.duckdb")
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        (n_persons,) = db.fetch_one("persons", "select count(*) from anomaly_scores "
                                               "where subject_type = 'person'")
    assert n_persons > 10_000
    # the look-alikes (a cancer patient's dear box, long prescriptions, busy patients,
    # travellers, specialty pharmacies) are there, and are not leads
    assert len(leads["anomaly_person"]) <= 3
    assert len(leads["anomaly_institution"]) <= 1


def test_calibration_counts_only_subjects_far_above_the_bulk() -> None:
    rng = np.random.default_rng(0)
    # an isolation forest's scores: a bounded bulk, and three subjects far beyond it
    scores = np.sort(np.concatenate([rng.uniform(30, 50, 5000), [80.0, 78.0, 66.0]]))[::-1]
    frame = pl.DataFrame({"subject_type": "person", "anomaly_score": scores,
                          "rank": np.arange(1, len(scores) + 1)})
    settings = ModelSettings()
    marked = anomaly.calibrate(frame, settings)
    assert marked["is_lead"].to_list()[:3] == [True, True, True]
    assert marked["is_lead"].sum() == 3
    # the share caps the list: 0.03% of 5,003 subjects, rounded up, is two
    capped = anomaly.calibrate(frame, replace(settings, max_lead_share_persons=0.0003))
    assert capped["is_lead"].sum() == 2
    assert re.fullmatch(r"排在 5,003 名参保人的前 0.02%（稳健 z 5\.\d）",
                        capped["standing_zh"][0])


def test_a_city_of_institutions_is_judged_by_its_top_percent_too_and_a_district_by_z() -> None:
    rng = np.random.default_rng(1)

    def frame(scores: np.ndarray) -> pl.DataFrame:
        scores = np.sort(scores)[::-1]
        return pl.DataFrame({"subject_type": "institution", "anomaly_score": scores,
                             "rank": np.arange(1, len(scores) + 1)})

    # 3,000 shops: a tight bulk, a percent of odd but ordinary ones (chains' busiest
    # shops, specialty pharmacies) well above it, and fifteen planted far beyond
    planted = rng.uniform(62, 74, 15)
    city = frame(np.concatenate([rng.normal(39, 2.3, 2955), rng.uniform(50, 60, 30),
                                 planted]))
    marked = anomaly.calibrate(city, ModelSettings())
    leads = marked.filter("is_lead")["anomaly_score"].to_numpy()
    # a robust z of 4 alone (the rule for a few hundred institutions) lets 45 through
    assert (marked["robust_z"] >= 4).sum() >= 45
    assert set(planted.round(4)) <= set(leads.round(4))
    assert len(leads) <= 1.5 * len(planted)
    # 180 shops: three planted, no top percent to speak of, the z alone decides
    district = frame(np.concatenate([rng.normal(39, 2.3, 177), [70.0, 66.0, 63.0]]))
    assert anomaly.calibrate(district, ModelSettings())["is_lead"].sum() == 3


def test_a_kept_fit_is_refitted_when_old_drifted_or_changed() -> None:
    s = ModelSettings()
    fit_settings = json.dumps({k: v for k, v in asdict(s).items() if k in anomaly.FIT_SETTINGS})
    kept = ("f1", "x.joblib", "2025-11-01", 1000, forest.MODEL_VERSION, fit_settings)
    assert anomaly.refit_reason(kept, s, "2025-11-03", 1100) == ""
    assert "days" in anomaly.refit_reason(kept, s, "2025-11-08", 1000)
    assert "rows changed" in anomaly.refit_reason(kept, s, "2025-11-03", 1400)
    assert "settings" in anomaly.refit_reason(kept, replace(s, n_estimators=50),
                                              "2025-11-03", 1000)
    assert anomaly.refit_reason(None, s, "2025-11-03", 1000) == "no kept model"


def test_a_daily_run_with_the_kept_fit_equals_a_rebuild_with_that_fit(tmp_path: Path) -> None:
    from tracecode.simulate import simulate

    simulate(tmp_path / "sim", scale="demo", days=7, seed=4)
    land = tmp_path / "land"
    (land / "messages").mkdir(parents=True)
    shutil.copytree(tmp_path / "sim" / "reference", land / "reference")
    days = sorted((tmp_path / "sim" / "messages").iterdir())
    for day in days[:-1]:
        shutil.copytree(day, land / "messages" / day.name)
    db_path = tmp_path / "db.duckdb"
    pipeline.run(land, db_path, tmp_path / "out1")
    shutil.copytree(days[-1], land / "messages" / days[-1].name)
    pipeline.run(land, db_path, tmp_path / "out2")

    def state() -> tuple[list, list, list, list]:
        with Database.open(db_path, read_only=True) as db:
            return (
                db.fetch_rows("scores", "select * exclude (drivers), drivers::varchar "
                                        "from anomaly_scores order by all"),
                db.fetch_rows("leads", "select * from leads order by lead_id"),
                db.fetch_rows("fits", "select fit_id from model_fits order by all"),
                # every row's unrounded score: kept or scored anew, bit for bit the same
                # (not its hash: DuckDB's parallel sums may differ in the last bit between
                # runs, which only makes such a row be scored again)
                db.fetch_rows("rows", "select * exclude (row_hash) from anomaly_rows "
                                      "order by all"),
            )

    daily = state()
    assert len(daily[2]) == 2  # one fit per subject type, kept from the first run
    with Database.open(db_path) as db:
        (reused,) = db.fetch_one("rows", "select count(*) from anomaly_rows")
        db.execute("forget kept scores", "delete from anomaly_rows")
    assert reused > 0
    pipeline.screen_stage(db_path, Settings(), pipeline.new_run_id(), incremental=False)
    rebuilt = state()
    assert rebuilt == daily
