"""A fitted isolation forest walked in compiled code (numba), branch-free, on every core.

scikit-learn's ``score_samples`` walks the forest a tree at a time, each tree's ``apply``
passing over all the rows and branching at every node, which the processor mispredicts
about half the time. Here each tree is laid out as a complete binary tree of the
forest's depth (a shallower leaf is extended by splits that always go left, to a copy of
its value), so a row's walk through a tree is a fixed number of steps of index
arithmetic, ``node = 2 node + 1 + (x > threshold)``, with no branch to mispredict; the
rows are spread over the cores.

The arithmetic is scikit-learn's, in its order: the features compared as float32
against the float64 thresholds (``x <= threshold`` goes left), each tree adding (its
leaf's depth + c(rows in the leaf)) - 1 to the row's total in tree order, so the scores
are the same to the last bit. Rows with a missing value (NaN) are left to scikit-learn,
which sends them down the side each split learnt for missing values.

>>> forest = FlatForest.of(isolation_forest)        # doctest: +SKIP
>>> forest.scores(X)                                # 100 x 2^(-E[h(x)] / c(max_samples))
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numba import njit, prange

from tracecode.forest import average_path_length

# Deeper forests (max_samples beyond 65,536) are left to scikit-learn: padded to complete
# trees they would not fit in cache, nor perhaps in memory
MAX_DEPTH = 16


def supports(estimator: Any) -> bool:
    """Whether :class:`FlatForest` can walk this fitted forest."""
    return all(int(t.tree_.max_depth) <= MAX_DEPTH for t in estimator.estimators_)


def _float32_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold: for a float32 x,
    ``x <= t`` exactly when ``x <= _float32_below(t)`` (+inf stays +inf)."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


@dataclass(frozen=True)
class FlatForest:
    """The trees of one fitted :class:`~sklearn.ensemble.IsolationForest` as complete
    binary trees of ``depth`` levels: per tree, ``feature`` and ``threshold`` of its
    2^depth - 1 inner positions (heap order: the children of p are 2p + 1 and 2p + 2) and
    ``leaf_value`` of its 2^depth leaves, what reaching that leaf adds to the path length.
    """

    depth: int
    feature: np.ndarray     # (trees, 2^depth - 1) uint8: a column of the whole matrix
    threshold: np.ndarray   # (trees, 2^depth - 1) float32 (see _float32_below); +inf padded
    leaf_value: np.ndarray  # (trees, 2^depth) float64
    denominator: float      # trees x c(max_samples)

    @classmethod
    def of(cls, estimator: Any) -> FlatForest:
        trees = list(zip(estimator.estimators_, estimator.estimators_features_,
                         estimator._decision_path_lengths,
                         estimator._average_path_length_per_tree, strict=True))
        depth = max(int(t.tree_.max_depth) for t, *_ in trees)
        inner = 2 ** depth - 1
        feature = np.zeros((len(trees), max(inner, 1)), dtype=np.int64)
        threshold = np.full((len(trees), max(inner, 1)), np.inf)
        leaf_value = np.zeros((len(trees), 2 ** depth))
        for k, (tree, used, node_depth, average) in enumerate(trees):
            t = tree.tree_
            # scikit-learn adds depth[leaf] + average[leaf] - 1.0, in this order
            value = node_depth + average - 1.0
            stack = [(0, 0, 0)]  # node, heap position, level
            while stack:
                node, pos, level = stack.pop()
                if t.children_left[node] >= 0:
                    feature[k, pos] = used[t.feature[node]]
                    threshold[k, pos] = t.threshold[node]
                    stack.append((t.children_left[node], 2 * pos + 1, level + 1))
                    stack.append((t.children_right[node], 2 * pos + 2, level + 1))
                else:
                    # below a shallow leaf every split goes left: to its leftmost leaf
                    for _ in range(depth - level):
                        pos = 2 * pos + 1
                    leaf_value[k, pos - inner] = value[node]
        c = float(average_path_length(np.array([estimator._max_samples]))[0])
        return cls(depth, feature.astype(np.uint8 if estimator.n_features_in_ <= 256
                                         else np.int64),
                   _float32_below(threshold), leaf_value, len(trees) * c)

    def path_lengths_once(self, X: np.ndarray) -> np.ndarray:
        """:meth:`path_lengths`, walking each distinct row once."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros(0)
        keys = pl.DataFrame(X).hash_rows(seed=20251202).to_numpy()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        distinct = X[first]
        depths = self.path_lengths(distinct)[inverse]
        # a row that only shares its hash with another walks alone
        alone = ~(distinct[inverse] == X).all(axis=1)
        if alone.any():
            depths[alone] = self.path_lengths(X[alone])
        return depths

    def path_lengths(self, X: np.ndarray) -> np.ndarray:
        """Each row's summed path length over the trees (scikit-learn's ``depths``)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        with _ONE_WALK:
            return _walk(X, self.depth, self.feature, self.threshold, self.leaf_value)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """``anomaly_score`` of each row: 100 x 2^(-E[h(x)] / c(max_samples)).

        Equal rows walk once: most persons stand above their peers in nothing or in one
        thing, and a city's person-months hold about one distinct row in ten.
        """
        depths = self.path_lengths_once(X)
        if self.denominator == 0:
            return np.full(len(depths), 100.0)
        return 100.0 * 2 ** (-np.divide(depths, self.denominator))


# numba's default thread pool (workqueue) aborts the process when two threads launch
# parallel work at once: one walk at a time, each on every core
_ONE_WALK = threading.Lock()

# rows walked side by side: their steps do not wait on each other, so the processor
# overlaps them (one row's walk is a chain of dependent loads)
LANES = 16
# rows that walk one tree before the next: its nodes stay in the nearest cache
BLOCK = 512


@njit(parallel=True, cache=True, nogil=True)
def _walk(X, depth, feature, threshold, leaf_value):  # type: ignore[no-untyped-def]
    n = X.shape[0]
    n_trees = feature.shape[0]
    inner = 2 ** depth - 1
    out = np.zeros(n)
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        total = np.zeros(BLOCK)
        pos = np.zeros(LANES, dtype=np.int64)
        rows = np.empty(LANES, dtype=np.int64)
        for t in range(n_trees):
            f = feature[t]
            th = threshold[t]
            v = leaf_value[t]
            for g in range(lo, hi, LANES):
                for k in range(LANES):
                    # past the end, a lane walks the last row again, and is not kept
                    rows[k] = min(g + k, hi - 1)
                    pos[k] = 0
                for _ in range(depth):
                    for k in range(LANES):
                        p = pos[k]
                        pos[k] = 2 * p + 1 + (X[rows[k], f[p]] > th[p])
                for k in range(min(LANES, hi - g)):
                    # each row adds its trees in the forest's order, as scikit-learn does
                    total[g - lo + k] += v[pos[k] - inner]
        out[lo:hi] = total[: hi - lo]
    return out
