"""The isolation forest over one subject type's behaviour features, in scikit-learn's manner.

- hyperparameters and ``random_state`` come from :class:`~tracecode.settings.ModelSettings`;
- :meth:`AnomalyModel.fit` learns on a seeded sample of at most ``fit_sample_rows`` rows
  (each tree sees ``max_samples`` rows anyway; fit time grows with the table, not with
  what the trees see), and stores the feature list, which :meth:`AnomalyModel.score`
  checks;
- the forest sees each feature as its excess over the subject's peers (same institution
  type; all persons): shares pulled toward the peers' median when they rest on few
  records, volumes and ratios on a log scale, and anything at or below the median as 0,
  since less than usual is never a reason for suspicion;
- one score, ``anomaly_score`` = 100 x 2^(-E[h(x)] / c(max_samples)), the isolation
  forest's own anomaly score (Liu et al. 2008) on a 0-100 scale: higher is more
  suspicious; most subjects score 30-50, the top percent 60 or more;
- :meth:`AnomalyModel.contributions` splits a row's path length among the features whose
  splits isolated it (a path-based, Saabas-style attribution: exact in sum), which
  :mod:`tracecode.explain` turns into sentences.

A fitted model is saved (``anomaly_<subject>.joblib``) so that it re-scores the same
features to the same scores (:func:`score_with`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import polars as pl
import sklearn
from sklearn.ensemble import IsolationForest

from tracecode.errors import TracecodeError
from tracecode.features import FEATURES, FeatureMatrix, SubjectType
from tracecode.settings import ModelSettings

log = logging.getLogger(__name__)

# Bump when what is saved, or how a saved model scores, changes.
MODEL_VERSION = 3
# A share is pulled toward its peers' median as if the subject had this many more
# records at the median: two sales, both at night, do not make a night shop.
PRIOR_RECORDS = 20.0
# From this many rows on, the forest is walked in compiled code (tracecode.treewalk:
# 9-12x scikit-learn's score_samples on a city's and a province's person rows, the same
# scores); below, loading the compiled walk costs more than it saves.
COMPILED_MIN_ROWS = 20_000


class ModelError(TracecodeError):
    """A saved model cannot be used: wrong file, version or features."""


class AnomalyModel:
    """An isolation forest over one subject type's features.

    Fitted attributes: ``feature_names_in_`` (checked when scoring), ``typical_`` (median
    of each feature per peer group, what :meth:`excess` measures from), ``estimator_``
    (the :class:`~sklearn.ensemble.IsolationForest`), ``n_rows_seen_`` and
    ``n_fit_rows_`` (rows given, rows fitted on).

    >>> model = AnomalyModel(ModelSettings(), "institution").fit(matrix)  # doctest: +SKIP
    >>> model.score(matrix)[:3]                                           # doctest: +SKIP
    array([48.1, 51.7, 83.9])
    """

    def __init__(self, settings: ModelSettings, subject_type: SubjectType) -> None:
        self.settings = settings
        self.subject_type = subject_type
        self._flat: Any = None  # the fitted forest laid out for tracecode.treewalk

    # -- learning -------------------------------------------------------------------------

    def fit(self, features: FeatureMatrix) -> AnomalyModel:
        """Learn from ``features`` (a seeded sample of ``fit_sample_rows`` when larger)."""
        if features.subject_type != self.subject_type:
            raise ModelError(f"a {self.subject_type} model cannot fit {features.subject_type} "
                             "features")
        if len(features) == 0:
            raise ModelError(f"no {self.subject_type} rows to fit on")
        s = self.settings
        meta = {f.name: f for f in FEATURES[self.subject_type]}
        self.feature_names_in_ = features.names
        self.log_features_ = tuple(n for n in features.names if meta[n].log)
        self.floors_ = {n: meta[n].floor for n in features.names if meta[n].floor}
        self.share_features_ = tuple(n for n in features.names if meta[n].kind == "share")
        self.prior_records_ = PRIOR_RECORDS
        self.typical_ = peer_medians(features)
        X = self.excess(features)
        self.n_rows_seen_ = X.shape[0]
        rows = fit_sample(X.shape[0], s.fit_sample_rows, s.random_state)
        self.n_fit_rows_ = len(rows)
        self.estimator_ = IsolationForest(
            n_estimators=s.n_estimators,
            max_samples=max(1, min(s.max_samples, len(rows))),
            random_state=s.random_state,
        ).fit(X[rows])
        self._flat = None
        self.version_ = MODEL_VERSION
        self.sklearn_version_ = sklearn.__version__
        return self

    # -- what the forest sees --------------------------------------------------------------

    def typical(self, features: FeatureMatrix) -> np.ndarray:
        """Each row's peers' median of each feature (the values the model compares with)."""
        peer, table = self._peer_index(features)
        return table[peer]

    def excess(self, features: FeatureMatrix) -> np.ndarray:
        """What the forest sees: how far each feature stands above the row's peers.

        Shares are first pulled toward the peers' median by ``prior_records_`` records;
        volumes and ratios are compared on a log scale (they span decades), above a floor
        when the feature has one (a few hundred yuan more is noise, not a collector); a
        value at or below the median is 0: less than usual is never a reason for
        suspicion, and comparing with one's own kind keeps busy hospitals from looking odd
        among shops.

        Column by column, into float32: a province's 23M person-months are 1.1 GB a
        float64 copy, and the whole-matrix form held four of them at once.
        """
        out = np.empty(features.values.shape, dtype=np.float32)
        peer, table = self._peer_index(features)
        n = features.rows["n_events"].to_numpy().astype(np.float64)
        m = self.prior_records_
        for j, name in enumerate(features.names):
            x, t = features.values[:, j], table[peer, j]
            if name in self.share_features_:
                x = (n * x + m * t) / (n + m)
            if name in self.log_features_:
                f = self.floors_.get(name, 0.0)
                x, t = np.log1p(np.maximum(x, 0.0) + f), np.log1p(np.maximum(t, 0.0) + f)
            out[:, j] = np.maximum(x - t, 0.0)
        return out

    def _peer_index(self, features: FeatureMatrix) -> tuple[np.ndarray, np.ndarray]:
        """(each row's peer group as an index into the table, the table of the peer
        groups' medians, one row each); a group the model has not seen takes all rows'."""
        peers = features.rows["peer_group"].fill_null("unknown")
        names = peers.unique().sort().to_list()
        table = np.array([self.typical_.get(p, self.typical_[ALL_PEERS]) for p in names],
                         dtype=np.float64).reshape(len(names), len(features.names))
        index = peers.replace_strict(names, range(len(names)), return_dtype=pl.Int64)
        return index.to_numpy().astype(np.intp), table

    # -- scoring --------------------------------------------------------------------------

    def score(self, features: FeatureMatrix) -> np.ndarray:
        """``anomaly_score`` of each row, 0-100: higher is more suspicious."""
        X = self._checked(features)
        if X.shape[0] < COMPILED_MIN_ROWS or np.isnan(X).any():
            return -100.0 * self.estimator_.score_samples(X) if len(X) else np.zeros(0)
        if self._flat is None:
            from tracecode import treewalk

            if not treewalk.supports(self.estimator_):
                return -100.0 * self.estimator_.score_samples(X)
            self._flat = treewalk.FlatForest.of(self.estimator_)
        return self._flat.scores(X)

    def contributions(self, features: FeatureMatrix) -> np.ndarray:
        """Each feature's share in each row's average path length, in tree levels.

        Shape (rows, features). A negative value shortens the path: that feature's splits
        isolated the row, making it more anomalous. Exact in sum: the row's contributions
        plus :attr:`expected_path_length_` equal its average path length, from which
        :meth:`score` follows (see :func:`path_length_to_score`).
        """
        X = self._checked(features)
        est = self.estimator_
        phi = np.zeros(X.shape, dtype=np.float64)
        for tree, used in zip(est.estimators_, est.estimators_features_, strict=True):
            deltas = self._tree_deltas(tree, used, X.shape[1])
            paths = tree.decision_path(X if self._all_features else X[:, used])
            phi += paths @ deltas
        return phi / len(est.estimators_)

    @property
    def expected_path_length_(self) -> float:
        """Average path length of the training rows, over the trees (the baseline)."""
        roots = [_node_path_lengths(tree)[0] for tree in self.estimator_.estimators_]
        return float(np.mean(roots))

    def path_length_to_score(self, path_length: np.ndarray) -> np.ndarray:
        """``anomaly_score`` from an average path length: 100 x 2^(-h / c(max_samples))."""
        c = float(average_path_length(np.array([self.estimator_.max_samples_]))[0])
        return 100.0 * np.power(2.0, -path_length / c) if c > 0 else np.full_like(path_length, 100)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Write the fitted model, its feature list, settings and version (joblib)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({
            "version": self.version_,
            "sklearn_version": self.sklearn_version_,
            "subject_type": self.subject_type,
            "feature_names": list(self.feature_names_in_),
            "log_features": list(self.log_features_),
            "floors": dict(self.floors_),
            "share_features": list(self.share_features_),
            "prior_records": self.prior_records_,
            "typical": {k: v.tolist() for k, v in self.typical_.items()},
            "settings": asdict(self.settings),
            "n_rows_seen": self.n_rows_seen_,
            "n_fit_rows": self.n_fit_rows_,
            "estimator": self.estimator_,
        }, path)
        return path

    @classmethod
    def load(cls, path: Path) -> AnomalyModel:
        """A model saved by :meth:`save`; refuses other files and other versions."""
        try:
            saved = joblib.load(path)
        except FileNotFoundError as e:
            raise ModelError(f"no saved model at {path}") from e
        except Exception as e:  # any unpickling failure means the same to the user
            raise ModelError(f"{path} is not a saved tracecode anomaly model: {e}") from e
        if not isinstance(saved, dict) or "estimator" not in saved:
            raise ModelError(f"{path} is not a saved tracecode anomaly model")
        if saved.get("version") != MODEL_VERSION:
            raise ModelError(f"{path} was saved by model version {saved.get('version')}; this "
                             f"tracecode reads version {MODEL_VERSION}. Refit with `tracecode "
                             "run` to score with this version.")
        if saved["sklearn_version"] != sklearn.__version__:
            log.warning("%s was fitted with scikit-learn %s, scoring with %s: scores may "
                        "differ slightly", path, saved["sklearn_version"], sklearn.__version__)
        model = cls(ModelSettings(**saved["settings"]), saved["subject_type"])
        model.feature_names_in_ = tuple(saved["feature_names"])
        model.log_features_ = tuple(saved["log_features"])
        model.floors_ = dict(saved["floors"])
        model.share_features_ = tuple(saved["share_features"])
        model.prior_records_ = saved["prior_records"]
        model.typical_ = {k: np.asarray(v) for k, v in saved["typical"].items()}
        model.n_rows_seen_ = saved["n_rows_seen"]
        model.n_fit_rows_ = saved["n_fit_rows"]
        model.estimator_ = saved["estimator"]
        model.version_ = saved["version"]
        model.sklearn_version_ = saved["sklearn_version"]
        return model

    # -- internals ------------------------------------------------------------------------

    def _checked(self, features: FeatureMatrix) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise ModelError("the model is not fitted: call fit() or AnomalyModel.load()")
        if features.subject_type != self.subject_type:
            raise ModelError(f"a {self.subject_type} model cannot score "
                             f"{features.subject_type} features")
        if tuple(features.names) != tuple(self.feature_names_in_):
            missing = [n for n in self.feature_names_in_ if n not in features.names]
            extra = [n for n in features.names if n not in self.feature_names_in_]
            detail = (f"missing {missing}, unexpected {extra}" if missing or extra
                      else "same names in another order")
            raise ModelError(
                f"the {self.subject_type} model was fitted on features "
                f"{list(self.feature_names_in_)} but was given {list(features.names)} "
                f"({detail}). Score with features computed by the tracecode version that "
                "fitted the model, or refit.")
        return self.excess(features)

    @property
    def _all_features(self) -> bool:
        est = self.estimator_
        return est.max_features == 1.0 and not est.bootstrap_features

    def _tree_deltas(self, tree: Any, used: np.ndarray, n_features: int) -> np.ndarray:
        """(nodes x features): entering a node changes the expected path length by this
        much, charged to the feature its parent split on."""
        t = tree.tree_
        value = _node_path_lengths(tree)
        parent = np.full(t.node_count, -1)
        inner = np.flatnonzero(t.children_left >= 0)
        parent[t.children_left[inner]] = inner
        parent[t.children_right[inner]] = inner
        child = np.flatnonzero(parent >= 0)
        split_on = t.feature[parent[child]]
        column = split_on if self._all_features else np.asarray(used)[split_on]
        deltas = np.zeros((t.node_count, n_features))
        deltas[child, column] = value[child] - value[parent[child]]
        return deltas


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary search tree of
    n rows, which an isolation tree adds at a leaf still holding n rows (Liu et al.)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _node_path_lengths(tree: Any) -> np.ndarray:
    """Expected path length of the training rows reaching each node of one isolation tree:
    at a leaf, its depth plus c(rows in the leaf), as scikit-learn scores; inside, the
    row-weighted mean of its children."""
    t = tree.tree_
    n = t.n_node_samples.astype(np.float64)
    left, right = t.children_left, t.children_right
    # scikit-learn numbers nodes depth first: a parent comes before its children
    depth = np.zeros(t.node_count)
    for node in range(t.node_count):
        if left[node] >= 0:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    value = depth + average_path_length(n)
    for node in range(t.node_count - 1, -1, -1):
        if left[node] >= 0:
            value[node] = (n[left[node]] * value[left[node]]
                           + n[right[node]] * value[right[node]]) / n[node]
    return value


def fit_sample(n_rows: int, max_rows: int, random_state: int) -> np.ndarray:
    """Row indices to fit on: all rows, or ``max_rows`` of them drawn with the seed."""
    if max_rows <= 0 or n_rows <= max_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_rows, size=max_rows, replace=False))


def score_with(model_path: Path, features: FeatureMatrix) -> np.ndarray:
    """Re-score ``features`` with a saved model: the same scores as the run that saved it.

    Raises :class:`ModelError` when the features are not the ones the model was fitted on.
    """
    return AnomalyModel.load(model_path).score(features)


ALL_PEERS = "*"


def peer_medians(features: FeatureMatrix) -> dict[str, np.ndarray]:
    """Median of each feature per peer group (institution type; all persons), and over
    all rows (``"*"``, for a peer group the model has not seen)."""
    medians = {peer: np.median(features.values[rows], axis=0)
               for peer, rows in peer_rows(features).items()}
    medians[ALL_PEERS] = np.median(features.values, axis=0)
    return medians


def peer_rows(features: FeatureMatrix) -> dict[str, np.ndarray]:
    """Which rows belong to each peer group (a boolean mask per group)."""
    peers = features.rows["peer_group"].fill_null("unknown")
    return {str(p): (peers == p).to_numpy() for p in peers.unique().sort()}
