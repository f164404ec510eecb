"""`make bench`: every stage of a run on simulated data, and each stage's peer, in one table.

Simulates ``--days`` days (``tracecode simulate``), runs the pipeline on all days but the
last (a full screen of the history), then on the last day (incremental), and prints per
stage (ingest, inputs, rules, leads, model, exports) wall seconds, rows per second and
the peak memory (RSS) seen during it. In the same process, on the same files and
database, it times the peers the issue compares with:

- bare DuckDB ``read_json`` of the same message files (peer of ingest);
- the floor query ``select code_id, count(*) from record_codes group by all`` (peer of
  the rule stage of a rebuild);
- a pandas version of ``dup_same_institution`` on the kept net sales, against the rule
  as the runner runs it (bound to ``screened_sales``);
- scikit-learn's raw ``score_samples`` against the model's scoring, same rows.

After each run's table, the ``--top`` slowest SQL statements of it (what dominates).

    python bench/bench_all.py [--scale city] [--days 14] [--seed 3] [--memory-limit 6GB]
    # make bench-province: a province day on 1 and on 5 days (10M and 60M codes), an hour
    python bench/bench_all.py --scale province-day --days 6 --seed 4 \
        --layout per-institution --one-day --compare-history-days 1 [--world DIR]

``--compare-history-days N`` first adds the same day to a history of only N days, and
compares the two days' wall time (the issue's target: less than 1.3x apart).

Every database gets ``--memory-limit`` (the machine may be shared).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from memory import PeakRSS, duckdb_memory_limit, link_tree
from statements import StatementTimes

from tracecode import anomaly, inputs, leads, pipeline, report, rules
from tracecode.db import Database
from tracecode.features import compute_features
from tracecode.settings import Settings
from tracecode.simulate import simulate

FLOOR = "select code_id, count(*) from record_codes group by all"
STAGES = ("ingest", "inputs", "rules", "leads", "model", "exports")


class StageMeter:
    """Wall seconds and peak RSS of each stage, by wrapping the functions that run it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_gb: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        with PeakRSS() as peak:
            t = time.perf_counter()
            yield
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
        self.peak_gb[name] = max(self.peak_gb.get(name, 0.0), peak.gb)
        # as it happens: a province run takes an hour, and one that fails still tells
        print(f"  {name}: {time.perf_counter() - t:.1f} s, peak RSS {peak.gb:.2f} GB")

    def wrap(self, module: Any, attr: str, name: str) -> None:
        original: Callable[..., Any] = getattr(module, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(module, attr, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.peak_gb.clear()


# what each stage's time is the time of: the functions a run calls, wrapped in place
# (tests/test_bench.py checks that they still exist)
TIMED = (
    (pipeline, "ingest_stage", "ingest"),
    (inputs, "_refresh", "inputs"),
    (rules, "run_rules", "rules"),
    (leads, "build_leads", "leads"),
    (anomaly, "run_model", "model"),
    (anomaly, "merge_anomalies", "model"),
    (report, "write_outputs", "exports"),
)


def instrument(meter: StageMeter) -> None:
    for module, attr, stage in TIMED:
        meter.wrap(module, attr, stage)


def timed(fn: Callable[[], Any], repeat: int = 2) -> tuple[float, Any]:
    """Best of ``repeat`` wall times, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def read_json_peer(messages: Path, limit: str) -> float:
    con = duckdb.connect(config={"memory_limit": limit})
    t = time.perf_counter()
    con.execute("create table m as select * from read_json($files, "
                "format = 'newline_delimited', ignore_errors = true)",
                {"files": f"{messages}/**/*.jsonl"})
    seconds = time.perf_counter() - t
    con.close()
    return seconds


def dup_rule_peers(db: Database, settings: Settings) -> tuple[float, float, float, bool]:
    """(DuckDB rule as the runner binds it, pandas on the same kept rows in memory, the
    load of those rows into pandas, equal)."""
    rule = next(r for r in rules.load_rules(settings=settings) if r.id == "dup_same_institution")
    sql = rules.bind_inputs(rule.sql, inputs.ALL_INPUTS)
    params = {k: v for k, v in settings.rule_params().items() if k in rule.params}
    duck_s, duck = timed(lambda: db.fetch_arrow("dup rule", sql, params))
    load_s, frame = timed(lambda: db.fetch_arrow(
        "kept sales", "select code_id, fixmedins_code, trdn_flag, code_format, rec_id, "
        "sel_time, drug_trac_codg, psn_no, fund_amount from screened_sales").to_pandas())
    min_sales = settings.rules.dup_min_sales

    def pandas_rule() -> Any:
        whole = frame[(frame["trdn_flag"].fillna("0") != "1")
                      & (frame["code_format"] != "invalid")]
        n = whole.groupby(["code_id", "fixmedins_code"])["rec_id"].transform("size")
        return whole[n >= min_sales]

    pandas_s, peer = timed(pandas_rule)
    return duck_s, pandas_s, load_s, len(peer) == duck.num_rows


def scoring_peer(db: Database, settings: Settings, model_dir: Path) -> tuple[float, float,
                                                                            float, int]:
    """(model's scoring, raw score_samples, max |difference|, rows) for persons."""
    with inputs.kept_inputs_as_views(db):
        matrix = compute_features(db, settings)["person"]
    model = anomaly.AnomalyModel.load(model_dir / "anomaly_person.joblib")
    X = model.excess(matrix)
    ours_s, ours = timed(lambda: model.score(matrix))
    raw_s, raw = timed(lambda: -100.0 * model.estimator_.score_samples(X))
    return ours_s, raw_s, float(np.max(np.abs(ours - raw))), len(matrix)


def print_table(title: str, meter: StageMeter, rows: dict[str, int]) -> None:
    print(f"\n{title}")
    print("| stage | wall s | rows | rows/s | peak RSS GB |\n|---|--:|--:|--:|--:|")
    for stage in STAGES:
        if stage not in meter.seconds:
            continue
        s, n = meter.seconds[stage], rows.get(stage, 0)
        print(f"| {stage} | {s:.2f} | {n:,} | {n / s if s else 0:,.0f} | "
              f"{meter.peak_gb[stage]:.2f} |")
    print(f"| total | {sum(meter.seconds.values()):.2f} | | | "
          f"{max(meter.peak_gb.values()):.2f} |")


def print_targets(rows: list[tuple[str, str, bool]]) -> None:
    """Issue 13's targets against this run's figures (a day on a longer history against a
    shorter one: bench_history.py)."""
    print("\ntargets (issue 13)\n| target | measured | met |\n|---|--:|---|")
    for target, measured, met in rows:
        print(f"| {target} | {measured} | {'yes' if met else 'no'} |")


@dataclass
class Screened:
    """A world screened as the bench screens it: the history in full, then one day."""

    landing: Path
    db: Path
    results: list[tuple[str, pipeline.RunSummary]]
    runs: list[tuple[float, float, int]]  # wall s, peak RSS GB, codes in the history
    ingest_s: float


def screen_world(world: Path, root: Path, args: argparse.Namespace, settings: Settings,
                 meter: StageMeter, statements: StatementTimes, history_days: int) -> Screened:
    """All days but the last (or the ``history_days`` before it) screened in full, then
    the last day incrementally, in a landing directory and database under ``root``;
    one table per run."""
    days = sorted(p.name for p in (world / "messages").iterdir() if p.is_dir())
    landing = root / "landing"
    shutil.copytree(world / "reference", landing / "reference")
    # the last simulated day, with the late-upload tails after it, is the increment
    last = min(args.days, len(days)) - 1
    first = max(0, last - history_days) if history_days else 0
    db = root / "bench.duckdb"
    out = Screened(landing, db, [], [], 0.0)
    for label, names, incremental in (
        (f"history: {last - first} days, full screen", days[first:last], False),
        ("one more day, incremental", days[last:last + 1] if args.one_day else days[last:],
         True),
    ):
        for name in names:
            link_tree(world / "messages" / name, landing / "messages" / name)
        meter.reset()
        statements.reset()
        summary = pipeline.run(landing, db, root / "out", settings, incremental=incremental)
        with Database.open(db, read_only=True) as con:
            (kept,) = con.fetch_one("kept", "select count(*) from screened_sales")
            (codes,) = con.fetch_one("codes", "select count(*) from record_codes")
        touched = summary.screen.get("touched_codes") or codes
        print_table(f"{label}: {summary.lines_read:,} messages, {summary.codes_stored:,} "
                    f"new codes, {codes:,} codes in the history", meter, {
                        "ingest": summary.lines_read, "inputs": touched,
                        "rules": touched, "leads": summary.leads,
                        "model": kept, "exports": summary.leads})
        if args.top:
            statements.print_top(args.top)
        out.results.append((label, summary))
        out.runs.append((sum(meter.seconds.values()), max(meter.peak_gb.values()), codes))
        out.ingest_s += meter.seconds["ingest"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, help="a landing directory `tracecode simulate` wrote")
    ap.add_argument("--scale", default="city")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--layout", default="parts",
                    help="the simulator's file layout (per-institution: a province's 50,000 "
                         "files a day)")
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--one-day", action="store_true",
                    help="the increment is the one day after the history, without the late "
                         "uploads of the days after it (a --world of more days than --days)")
    ap.add_argument("--history-days", type=int, default=0,
                    help="screen only the N days before the increment as the history (0: all "
                         "of them): the same day on a shorter history")
    ap.add_argument("--compare-history-days", type=int, default=0,
                    help="first add the same day to a history of only N days, and compare "
                         "the two days' wall time (the target: < 1.3x)")
    ap.add_argument("--top", type=int, default=12,
                    help="print the N slowest SQL statements of each run (0: none)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    duckdb_memory_limit(args.memory_limit)
    meter = StageMeter()
    instrument(meter)
    statements = StatementTimes().install()
    settings = Settings()
    root = Path(tempfile.mkdtemp(prefix="tracecode-bench-"))
    try:
        world = args.world
        if world is None:
            world = root / "world"
            simulate(world, scale=args.scale, days=args.days, seed=args.seed,
                     layout=args.layout)
        short: Screened | None = None
        if args.compare_history_days:
            print(f"\n## the day on a history of {args.compare_history_days} days")
            short = screen_world(world, root / "short", args, settings, meter, statements,
                                 args.compare_history_days)
            shutil.rmtree(root / "short")  # a province's database and spill: tens of GB
            print("\n## the day on the whole history")
        run = screen_world(world, root / "long", args, settings, meter, statements,
                           args.history_days)
        results, runs, ingest_s, db = run.results, run.runs, run.ingest_s, run.db

        full_rules_s = sum(r["seconds"] for r in results[0][1].rules)
        print("\npeers, same files and database")
        print("| stage | ours s | peer | peer s | ratio |\n|---|--:|---|--:|--:|")
        read_json_s = read_json_peer(run.landing / "messages", args.memory_limit)
        with Database.open(db) as con:
            floor_s, _ = timed(lambda: con.fetch_rows("floor", FLOOR))
            duck_s, pandas_s, load_s, same = dup_rule_peers(con, settings)
            model_dir = db.parent / "models" / results[1][1].run_id
            ours_s, raw_s, diff, n = scoring_peer(con, settings, model_dir)
        print(f"| ingest (all days) | {ingest_s:.2f} | bare read_json | {read_json_s:.2f} | "
              f"{ingest_s / read_json_s:.1f}x slower |")
        print(f"| rules of the full screen | {full_rules_s:.2f} | floor query | "
              f"{floor_s:.2f} | {full_rules_s / floor_s:.1f}x slower |")
        print(f"| dup_same_institution | {duck_s:.3f} | pandas, same rows | {pandas_s:.3f} | "
              f"{pandas_s / duck_s:.1f}x faster (same rows: {same}) |")
        print(f"| dup_same_institution | {duck_s:.3f} | pandas, with loading its rows | "
              f"{pandas_s + load_s:.3f} | {(pandas_s + load_s) / duck_s:.1f}x faster |")
        print(f"| person scoring ({n:,} rows) | {ours_s:.3f} | raw score_samples | "
              f"{raw_s:.3f} | {raw_s / ours_s:.2f}x faster (max diff {diff:.1e}) |")
        day_s, day_gb, history = runs[1]
        print_targets([
            (f"the day added to {history:,} codes (the target's: a province day on >= 50M) "
             "<= 60 s wall", f"{day_s:.1f} s", day_s <= 60),
            ("... and <= 8 GB peak RSS", f"{day_gb:.2f} GB", day_gb <= 8),
            *([(f"the day on {history:,} codes against on {short.runs[1][2]:,} < 1.3x",
                f"{day_s / short.runs[1][0]:.2f}x", day_s < 1.3 * short.runs[1][0])]
              if short else []),
            ("ingest <= 2x bare read_json", f"{ingest_s / read_json_s:.1f}x",
             ingest_s <= 2 * read_json_s),
            ("full screen's rules <= 3x the floor query", f"{full_rules_s / floor_s:.1f}x",
             full_rules_s <= 3 * floor_s),
            ("dup_same_institution >= 8x pandas (rows in memory)",
             f"{pandas_s / duck_s:.1f}x", pandas_s >= 8 * duck_s),
            ("scoring >= 4x score_samples, scores within 1e-9",
             f"{raw_s / ours_s:.1f}x, {diff:.1e}", raw_s >= 4 * ours_s and diff <= 1e-9),
        ])
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
