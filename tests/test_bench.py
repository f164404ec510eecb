"""`make bench` times each stage by wrapping the functions a run calls: they must exist."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

import bench_all


def test_every_function_the_bench_times_is_one_a_run_calls() -> None:
    missing = [f"{m.__name__}.{attr}" for m, attr, _ in bench_all.TIMED if not hasattr(m, attr)]
    assert not missing, f"bench/bench_all.py times functions that are gone: {missing}"
    assert {stage for *_, stage in bench_all.TIMED} == set(bench_all.STAGES)
