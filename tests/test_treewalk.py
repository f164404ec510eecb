"""The compiled forest walk gives scikit-learn's scores to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from tracecode import forest
from tracecode.features import FEATURES, FeatureMatrix
from tracecode.forest import AnomalyModel
from tracecode.settings import ModelSettings
from tracecode.treewalk import FlatForest


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.lognormal(size=(n, 5))
    X[:, 1] = np.round(X[:, 1])            # many values exactly on a threshold
    X[: n // 10, 2] = 0.0                  # and a column that is often 0, as excess is
    return X.astype(np.float32)


@pytest.mark.parametrize("params", [
    {"n_estimators": 60, "max_samples": 256},
    # shallow trees of different depths: leaves above the forest's depth are padded
    {"n_estimators": 25, "max_samples": 7},
    # each tree sees three of the five columns
    {"n_estimators": 40, "max_samples": 64, "max_features": 3},
    {"n_estimators": 30, "max_samples": 100, "bootstrap": True, "max_features": 0.6},
])
def test_scores_equal_scikit_learn(params: dict) -> None:
    X = _rows(3000, seed=1)
    est = IsolationForest(random_state=4, **params).fit(X[:1500])
    walked = FlatForest.of(est).scores(X)
    np.testing.assert_array_equal(walked, -100.0 * est.score_samples(X))


def test_the_model_walks_large_matrices_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    names = tuple(f.name for f in FEATURES["person"] if f.modelled)
    import polars as pl

    n = 4000
    rng = np.random.default_rng(2)
    values = rng.lognormal(mean=4.0, size=(n, len(names)))
    rows = pl.DataFrame({"subject_id": [f"P{i}" for i in range(n)], "period": "2025-11",
                         "peer_group": "person", "n_events": rng.integers(1, 9, n)})
    matrix = FeatureMatrix("person", names, values, rows)
    model = AnomalyModel(ModelSettings(n_estimators=50), "person").fit(matrix)
    small = model.score(matrix)                      # scikit-learn's own walk
    assert model._flat is None
    monkeypatch.setattr(forest, "COMPILED_MIN_ROWS", 100)
    compiled = model.score(matrix)
    assert model._flat is not None
    np.testing.assert_array_equal(compiled, small)
    # a missing value is left to scikit-learn, which learnt where it goes
    values[7, 0] = np.nan
    with_nan = FeatureMatrix("person", names, values, rows)
    np.testing.assert_array_equal(model.score(with_nan),
                                  -100.0 * model.estimator_.score_samples(model.excess(with_nan)))


def test_equal_rows_walk_once_and_a_shared_hash_is_not_trusted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    X = _rows(2000, seed=3)
    X[::3] = 0.0                           # a third of the rows alike, as most persons are
    X[1::3, 1:] = 0.0
    est = IsolationForest(n_estimators=30, max_samples=128, random_state=0).fit(X)
    flat = FlatForest.of(est)
    expected = -100.0 * est.score_samples(X)
    np.testing.assert_array_equal(flat.scores(X), expected)
    # every row under one hash: only the equal ones may share a walk
    import polars as pl

    monkeypatch.setattr(pl.DataFrame, "hash_rows",
                        lambda self, seed=0: pl.Series(np.zeros(self.height, np.uint64)))
    np.testing.assert_array_equal(flat.scores(X), expected)


def test_a_forest_too_deep_to_lay_out_is_left_to_scikit_learn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tracecode import treewalk

    X = _rows(500, seed=5)
    est = IsolationForest(n_estimators=5, max_samples=256, random_state=0).fit(X)
    assert treewalk.supports(est)
    monkeypatch.setattr(treewalk, "MAX_DEPTH", 4)
    assert not treewalk.supports(est)
