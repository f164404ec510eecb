"""Does an incremental day cost more on a longer history? And a rebuild's rules vs the floor.

On one simulated world of ``--long + 1`` days: screens the first ``--short`` days, adds
day ``short + 1`` incrementally (timed), brings the history up to ``--long`` days, adds
day ``long + 1`` incrementally (timed), then rebuilds the whole screen (timed) and runs
the floor query (``select code_id, count(*) from record_codes group by all``) on the same
file. Prints one table with the ratios the issue asks for (a day on the long history ÷
a day on the short one; the rebuild's rule stage ÷ the floor) and checks that the
incremental leads equal the rebuild's.

    python bench/bench_history.py [--world DIR] [--short 14] [--long 28] [--seed 3]

``--world`` reuses a simulated landing directory (``tracecode simulate --days 29``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from memory import PeakRSS, duckdb_memory_limit, link_tree

from tracecode import pipeline
from tracecode.db import Database
from tracecode.settings import Settings
from tracecode.simulate import simulate

LEADS = "select lead_id, n_events, amount, score, reason from leads order by lead_id"
FLOOR = "select code_id, count(*) from record_codes group by all"


def add_days(world: Path, landing: Path, names: list[str]) -> None:
    for name in names:
        link_tree(world / "messages" / name, landing / "messages" / name)


def screen(db: Path, landing: Path, *, incremental: bool, ingest: bool = True
           ) -> tuple[pipeline.ScreenResult, float, float]:
    """(result, wall seconds of the screen, its peak RSS in GB)."""
    run_id, _ = pipeline.start_run(db, landing)
    if ingest:
        pipeline.ingest_stage(db, landing, run_id)
    with PeakRSS() as peak:
        t = time.perf_counter()
        result = pipeline.screen_stage(db, Settings(), run_id, incremental=incremental)
        wall = time.perf_counter() - t
    return result, wall, peak.gb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", type=Path)
    ap.add_argument("--scale", default="city")
    ap.add_argument("--short", type=int, default=14)
    ap.add_argument("--long", type=int, default=28)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--snapshot", type=Path,
                    help="copy the database screened up to --long days here (to profile)")
    args = ap.parse_args()
    duckdb_memory_limit(args.memory_limit)
    root = Path(tempfile.mkdtemp(prefix="tracecode-history-"))
    try:
        world = args.world
        if world is None:
            world = root / "world"
            simulate(world, scale=args.scale, days=args.long + 1, seed=args.seed)
        days = sorted(p.name for p in (world / "messages").iterdir() if p.is_dir())
        landing = root / "landing"
        shutil.copytree(world / "reference", landing / "reference")
        db = root / "screen.duckdb"
        rows: list[tuple[str, pipeline.ScreenResult, float, float]] = []

        add_days(world, landing, days[: args.short])
        screen(db, landing, incremental=True)
        add_days(world, landing, days[args.short: args.short + 1])
        rows.append((f"day {args.short + 1} on {args.short} days",
                     *screen(db, landing, incremental=True)))
        add_days(world, landing, days[args.short + 1: args.long])
        screen(db, landing, incremental=True)
        if args.snapshot:
            shutil.copy(db, args.snapshot)
        # the last day takes the late-upload tails too
        add_days(world, landing, days[args.long:])
        rows.append((f"day {args.long + 1} on {args.long} days",
                     *screen(db, landing, incremental=True)))
        with Database.open(db, read_only=True) as con:
            daily_leads = con.fetch_rows("leads", LEADS)
        rows.append(("full rebuild", *screen(db, landing, incremental=False, ingest=False)))
        with Database.open(db, read_only=True) as con:
            full_leads = con.fetch_rows("leads", LEADS)
            (codes,) = con.fetch_one("codes", "select count(*) from record_codes")
            con.fetch_rows("floor warm-up", FLOOR)
            t = time.perf_counter()
            con.fetch_rows("floor", FLOOR)
            floor = time.perf_counter() - t

        print(f"\n{codes:,} code rows in the history; floor query {floor:.2f}s")
        print(f"{'screen':<22} {'touched':>9} {'inputs':>7} {'rules':>7} {'leads':>7} "
              f"{'model':>7} {'commit':>7} {'wall':>7} {'peak GB':>8}")
        for label, r, wall, peak in rows:
            s = r.seconds
            print(f"{label:<22} {r.touched_codes:>9,} {s['inputs']:>6.1f}s {s['rules']:>6.1f}s "
                  f"{s['leads']:>6.1f}s {s['model']:>6.1f}s {s['commit']:>6.1f}s "
                  f"{wall:>6.1f}s {peak:>8.2f}")
        short, long_, full = rows
        screen_only = ("inputs", "rules", "leads")

        def part(r: pipeline.ScreenResult) -> float:
            return sum(r.seconds[k] for k in screen_only)

        print(f"day on {args.long} ÷ day on {args.short} days: wall "
              f"{long_[2] / short[2]:.2f}x, inputs+rules+leads "
              f"{part(long_[1]) / part(short[1]):.2f}x (target < 1.3x)")
        print(f"rebuild's rule stage ÷ floor: {full[1].seconds['rules'] / floor:.1f}x, "
              f"inputs ÷ floor: {full[1].seconds['inputs'] / floor:.1f}x (target ≤ 3x)")
        print(f"{len(full_leads):,} leads; incremental equals rebuild: "
              f"{daily_leads == full_leads}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
