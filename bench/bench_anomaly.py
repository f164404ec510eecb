"""Fit and scoring time and memory of the anomaly model, at city and province-day scale.

Two ways to measure:

- on a database that ``tracecode run`` filled (``--db``): the whole stage as the pipeline
  runs it (feature SQL, fit, score, explain, store), timed part by part;
- on generated feature matrices of a scale's size (``--scale``, the default): fit and
  score alone, with as many institutions and person-months as the simulator's scale has
  (province-day: 50,000 institutions and about 2.3 million person-months in a day);
- ``--kept``: the kept model's scoring of a day on which ``--changed`` (5%) of the rows'
  features changed, against scikit-learn's own ``score_samples`` of every row, with the
  largest difference between the two scores;
- ``--day``: the model's share of an incremental day. A simulated world
  (``--world-scale``, ``--days``, ``--seed``) is screened without its last day, then the
  last day arrives and is screened twice from the same copy: with the kept fit, and
  refitting and rescoring everyone (``refit_days`` 0, what every night did before the
  kept model).

    python bench/bench_anomaly.py [--scale city|province-day|all] [--db PATH] [--kept]
    python bench/bench_anomaly.py --day [--world-scale district|city] [--days 14] [--seed 7]

Prints seconds and the process's peak memory (RSS) after each step.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from memory import duckdb_memory_limit

from tracecode import pipeline
from tracecode.anomaly import Fit, ranked_subjects, run_model, score_changed
from tracecode.db import Database
from tracecode.features import FeatureMatrix, SubjectType, compute_features, modelled
from tracecode.forest import AnomalyModel
from tracecode.settings import Settings, settings_from_dict
from tracecode.simulate import simulate

# Rows per scale, from simulated runs: the city's 3,000 institutions and one million
# insured over 7 days (about 290,000 people buy something); a province's day.
SIZES: dict[str, dict[SubjectType, int]] = {
    "city": {"institution": 3_000, "person": 290_000},
    "province-day": {"institution": 50_000, "person": 2_300_000},
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generated(subject: SubjectType, n: int, seed: int = 0) -> FeatureMatrix:
    """A matrix of ``n`` rows shaped like real features: volumes log-normal, shares with
    most of their mass near zero, ratios near one."""
    rng = np.random.default_rng(seed)
    cols = []
    for f in modelled(subject):
        if f.kind == "share":
            cols.append(rng.beta(0.5, 10, n))
        elif f.kind == "ratio":
            cols.append(1 + rng.gamma(1.0, 0.3, n))
        elif f.kind == "yuan":
            cols.append(rng.lognormal(5, 1, n))
        else:
            cols.append(np.floor(1 + rng.lognormal(0.5, 0.8, n)))
    ids = pl.Series("subject_id", np.char.add("S", np.arange(n).astype(str)))
    rows = pl.DataFrame({
        "subject_id": ids,
        "period": pl.repeat("2025-11", n, eager=True),
        "peer_group": pl.repeat("person" if subject == "person" else "pharmacy", n,
                                eager=True),
        "first_time": pl.repeat(None, n, dtype=pl.Datetime, eager=True),
        "last_time": pl.repeat(None, n, dtype=pl.Datetime, eager=True),
        "n_events": pl.repeat(1, n, eager=True),
        "amount": pl.repeat(0.0, n, eager=True),
        "fixmedins_codes": ids,
    })
    return FeatureMatrix(subject, tuple(f.name for f in modelled(subject)),
                         np.column_stack(cols), rows)


def bench_kept(scale: str, settings: Settings, changed: float) -> None:
    """A day's scoring with the kept fit (only the changed rows) against scikit-learn's
    ``score_samples`` of every row; scores must agree to 1e-9."""
    print(f"\n== {scale}: kept model, {100 * changed:.0f}% of rows changed, against "
          "scikit-learn score_samples of every row")
    print(f"{'subject':<12}{'rows':>11}{'sklearn s':>11}{'kept s':>9}{'ratio':>8}"
          f"{'max |diff|':>12}")
    with tempfile.TemporaryDirectory() as tmp, Database.open(Path(tmp) / "k.duckdb") as db:
        for subject, n in SIZES[scale].items():
            matrix = generated(subject, n)
            model = AnomalyModel(settings.model, subject).fit(matrix)
            fit = Fit(model, f"{subject}-bench", "2025-11-07", n)
            score_changed(db, fit, matrix)                     # yesterday: every row
            rng = np.random.default_rng(1)
            rows = rng.choice(n, size=int(changed * n), replace=False)
            values = matrix.values.copy()
            values[rows, 0] *= 1.5                             # today's changed rows
            today = FeatureMatrix(subject, matrix.names, values, matrix.rows)
            t0 = time.perf_counter()
            reference = -100.0 * model.estimator_.score_samples(model.excess(today))
            t1 = time.perf_counter()
            kept, _ = score_changed(db, fit, today)
            t2 = time.perf_counter()
            diff = float(np.max(np.abs(kept - reference)))
            print(f"{subject:<12}{n:>11,}{t1 - t0:>11.2f}{t2 - t1:>9.2f}"
                  f"{(t1 - t0) / (t2 - t1):>7.1f}x{diff:>12.1e}")


def bench_generated(scale: str, settings: Settings) -> None:
    print(f"\n== {scale}: generated features ({settings.model.n_estimators} trees, "
          f"max_samples {settings.model.max_samples}, "
          f"fit sample {settings.model.fit_sample_rows:,} rows)")
    print(f"{'subject':<12}{'rows':>11}{'fit s':>8}{'score s':>9}{'explain s':>11}"
          f"{'rows/s scored':>15}{'peak MiB':>10}")
    for subject, n in SIZES[scale].items():
        matrix = generated(subject, n)
        t0 = time.perf_counter()
        model = AnomalyModel(settings.model, subject).fit(matrix)
        t1 = time.perf_counter()
        scores = model.score(matrix)
        t2 = time.perf_counter()
        ranked_subjects(model, matrix, scores)
        t3 = time.perf_counter()
        print(f"{subject:<12}{n:>11,}{t1 - t0:>8.2f}{t2 - t1:>9.2f}{t3 - t2:>11.2f}"
              f"{n / (t2 - t1):>15,.0f}{peak_mib():>10,.0f}")


def bench_db(db_path: Path, settings: Settings) -> None:
    print(f"\n== {db_path}: the stage as the pipeline runs it")
    with tempfile.TemporaryDirectory() as tmp, Database.open(db_path) as db:
        t0 = time.perf_counter()
        matrices = compute_features(db, settings)
        t1 = time.perf_counter()
        print(f"features (SQL)  {t1 - t0:8.2f}s  institutions {len(matrices['institution']):,}"
              f", person-months {len(matrices['person']):,}  peak {peak_mib():,.0f} MiB")
        result = run_model(db, settings, Path(tmp))
        t2 = time.perf_counter()
        print(f"run_model       {t2 - t1:8.2f}s  (fit {result.fit_seconds:.2f}s, score "
              f"{result.score_seconds:.2f}s; the rest: features again, explain, store)  "
              f"peak {peak_mib():,.0f} MiB")


def bench_day(scale: str, days: int, seed: int) -> None:
    """The last day of a ``days``-day world, incremental, with the kept fit and refitted."""
    print(f"\n== {scale}, {days} days, seed {seed}: day {days} incremental after "
          f"{days - 1}")
    print(f"{'model':<28}{'run s':>8}{'model s':>9}{'share':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate(root / "world", scale=scale, days=days, seed=seed)
        land = root / "run" / "land"
        shutil.copytree(root / "world" / "reference", land / "reference")
        names = sorted(p.name for p in (root / "world" / "messages").iterdir())
        for name in names[:-1]:
            shutil.copytree(root / "world" / "messages" / name, land / "messages" / name)
        pipeline.run(land, root / "run" / "db.duckdb", root / "out0")
        shutil.copytree(root / "world" / "messages" / names[-1],
                        land / "messages" / names[-1])
        base = root / "base"
        shutil.copytree(root / "run", base)
        for label, model in (("kept fit, changed rows", {}),
                             ("refit, every row", {"refit_days": 0})):
            shutil.rmtree(root / "run")
            shutil.copytree(base, root / "run")
            out = root / "out"
            pipeline.run(land, root / "run" / "db.duckdb", out,
                         settings=settings_from_dict({"model": model} if model else {}))
            summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
            total, part = summary["seconds"], summary["screen"]["seconds"]["model"]
            print(f"{label:<28}{total:>8.2f}{part:>9.2f}{100 * part / total:>6.0f}%")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=[*SIZES, "all"], default="all")
    parser.add_argument("--db", type=Path, help="a database filled by `tracecode run`")
    parser.add_argument("--kept", action="store_true",
                        help="the kept model's day against scikit-learn's full scoring")
    parser.add_argument("--changed", type=float, default=0.05,
                        help="share of rows whose features changed (--kept)")
    parser.add_argument("--day", action="store_true",
                        help="the model's share of an incremental day, kept vs refitted")
    parser.add_argument("--world-scale", default="district", help="simulated scale (--day)")
    parser.add_argument("--days", type=int, default=14, help="days of the world (--day)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the world (--day)")
    parser.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit")
    args = parser.parse_args(argv)
    duckdb_memory_limit(args.memory_limit)
    settings = Settings()
    if args.day:
        bench_day(args.world_scale, args.days, args.seed)
        return
    if args.kept:
        for scale in SIZES if args.scale == "all" else [args.scale]:
            bench_kept(scale, settings, args.changed)
        return
    if args.db:
        bench_db(args.db, settings)
        return
    for scale in SIZES if args.scale == "all" else [args.scale]:
        bench_generated(scale, settings)


if __name__ == "__main__":
    sys.exit(main())
