"""Sorted arrays, the numpy idiom the generators share: runs of equal keys, and faster
drop-ins for ``np.lexsort`` and ``np.searchsorted`` where those dominate a profile.

>>> import numpy as np
>>> seq_in_groups(np.array([4, 4, 7, 7, 7, 9]))
array([0, 1, 0, 1, 2, 0])
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def run_starts(*keys: np.ndarray) -> np.ndarray:
    """Whether each element starts a run of equal keys (the arrays are sorted by them)."""
    n = len(keys[0])
    start = np.zeros(n, dtype=bool)
    if n:
        start[0] = True
        for k in keys:
            start[1:] |= k[1:] != k[:-1]
    return start


def run_first(*keys: np.ndarray) -> np.ndarray:
    """The index of the first element of each element's run."""
    idx = np.arange(len(keys[0]))
    return np.maximum.accumulate(np.where(run_starts(*keys), idx, 0)) if len(idx) else idx


def seq_in_groups(*keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal keys (the arrays are sorted by the keys)."""
    return np.arange(len(keys[0])) - run_first(*keys)


def lexsort(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """``np.lexsort(keys)`` (the last key sorts first), several times faster: the keys are
    packed, with the row number last, into as few int64 as they fit in, and each of those
    sorted by value (numpy sorts integers far faster than it argsorts them).

    >>> lexsort((np.array([1, 0, 1]), np.array([5, 5, 2])))
    array([2, 1, 0])
    """
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    room = (1 << 62) // n  # what a packed key may span, so that key * n + row fits
    packed: list[tuple[np.ndarray, int]] = []
    for k in reversed(keys):  # primary first
        k = np.asarray(k).astype(np.int64, copy=False)
        lo = int(k.min())
        width = int(k.max()) - lo + 1
        if packed and packed[-1][1] * width <= room:
            cur, span = packed[-1]
            packed[-1] = (cur * width + (k - lo), span * width)
        else:
            packed.append((k - lo, width))
    order = np.arange(n)
    for p, span in reversed(packed):  # least significant first, each pass stable
        if span <= room:
            order = order[np.sort(p[order] * n + np.arange(n)) % n]
        else:
            order = order[np.argsort(p[order], kind="stable")]
    return order


def stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")``, faster (see :func:`lexsort`)."""
    return lexsort((key,))


def search_right(axis: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``np.searchsorted(axis, u, side="right")`` for many unsorted ``u`` in a short
    ``axis``: a guide table gives a start at most a bucket early, then a few steps on."""
    if len(axis) == 0 or len(u) < 100_000:
        return np.searchsorted(axis, u, side="right")
    lo, hi = min(float(axis[0]), float(u.min())), float(axis[-1])
    buckets = 8 * len(axis)
    scale = buckets / max(hi - lo, 1e-300)
    guide = np.searchsorted(axis, lo + np.arange(buckets + 1) / scale, side="right")
    b = np.clip(((u - lo) * scale).astype(np.int64) - 1, 0, buckets)
    pos = guide[b]
    # guide[b] counts the axis up to a point at or below u: step on while axis <= u
    todo = np.flatnonzero(pos < len(axis))
    while len(todo):
        step = axis[pos[todo]] <= u[todo]
        todo = todo[step]
        pos[todo] += 1
        todo = todo[pos[todo] < len(axis)]
    return pos


def join_runs(values: pl.Series, starts: np.ndarray, sep: str) -> pl.Series:
    """One string per run: the ``values`` of the run (``starts`` marks where each begins)
    joined by ``sep``.

    >>> join_runs(pl.Series(["a", "b", "c"]), np.array([True, False, True]), "+").to_list()
    ['a+b', 'c']
    """
    first = np.flatnonzero(starts)
    size = np.diff(np.append(first, len(values)))
    many = np.flatnonzero(size > 1)
    if not len(many):  # every run one value: nothing to join
        return values.gather(first)
    # only runs of several values are joined (most runs are one value)
    members = np.repeat(first[many], size[many]) + seq_in_groups(np.repeat(many, size[many]))
    offsets = np.append(0, np.cumsum(size[many]))
    lists = pa.LargeListArray.from_arrays(
        pa.array(offsets), values.gather(members).to_arrow(compat_level=pl.CompatLevel.oldest()))
    joined = pl.Series(lists).list.join(sep)
    single = np.flatnonzero(size == 1)
    at = np.empty(len(first), dtype=np.int64)
    at[single] = np.arange(len(single))
    at[many] = len(single) + np.arange(len(many))
    return pl.concat([values.gather(first[single]), joined], rechunk=True).gather(at)
