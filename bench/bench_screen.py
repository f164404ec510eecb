"""Screening time: incremental days against a full rebuild, on a simulated city.

Simulates ``--days`` days, ingests and screens all days but the last ``--increments``,
then each of those days incrementally (timed, step by step), then screens everything
again from scratch (timed, the baseline); checks that the last incremental run and the
rebuild give the same leads, and prints the figures.

    python bench/bench_screen.py [--scale city] [--days 14] [--increments 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tracecode import pipeline
from tracecode.db import Database
from tracecode.settings import Settings
from tracecode.simulate import simulate

LEADS = "select lead_id, n_events, amount, score, reason from leads order by lead_id"


def copy_days(src: Path, dst: Path, folders: list[Path]) -> None:
    for folder in folders:
        shutil.copytree(folder, dst / "messages" / folder.name, dirs_exist_ok=True)


def row(label: str, db: Path, screen: pipeline.ScreenResult, total: float) -> None:
    with Database.open(db, read_only=True) as con:
        (records,) = con.fetch_one("records", "select count(*) from records")
    t = screen.seconds
    print(f"{label:<24} {records:>10,} {screen.touched_codes:>13,} {t['inputs']:>6.1f}s "
          f"{t['rules']:>6.1f}s {t['leads']:>6.1f}s {t['model']:>6.1f}s {t['commit']:>6.1f}s "
          f"{total:>6.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="city")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--increments", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracecode-screen-"))
    try:
        world = root / "world"
        t = time.perf_counter()
        sim = simulate(world, scale=args.scale, days=args.days, seed=args.seed)
        print(f"simulated {sim.n_messages:,} messages in {time.perf_counter() - t:.1f}s")
        folders = sorted(p for p in (world / "messages").iterdir() if p.is_dir())
        # one upload folder per increment; the last also takes the late-upload tails
        first = date(2025, 11, 1) + timedelta(days=args.days - args.increments)
        days = [(first + timedelta(days=i)).isoformat() for i in range(args.increments)]
        history = [f for f in folders if f.name < days[0]]
        landing = root / "landing"
        shutil.copytree(world / "reference", landing / "reference")
        copy_days(world, landing, history)
        db = root / "daily.duckdb"

        t = time.perf_counter()
        pipeline.run(landing, db, root / "out")
        print(f"{len(history)} days of uploads: ingest + full screen "
              f"{time.perf_counter() - t:.1f}s")

        print(f"{'screen':<24} {'records':>10} {'touched codes':>13} "
              f"{'inputs':>7} {'rules':>7} {'leads':>7} {'model':>7} {'commit':>7} "
              f"{'total':>7}")
        for i, day in enumerate(days):
            last = i == len(days) - 1
            copy_days(world, landing, [f for f in folders
                                       if f.name == day or (last and f.name > day)])
            run_id, _ = pipeline.start_run(db, landing)
            pipeline.ingest_stage(db, landing, run_id)
            t = time.perf_counter()
            daily = pipeline.screen_stage(db, Settings(), run_id, incremental=True)
            row(f"incremental {day}", db, daily, time.perf_counter() - t)
        with Database.open(db, read_only=True) as con:
            daily_leads = con.fetch_rows("leads", LEADS)

        t = time.perf_counter()
        rebuilt = pipeline.screen_stage(db, Settings(), run_id, incremental=False)
        row("full rebuild (baseline)", db, rebuilt, time.perf_counter() - t)
        with Database.open(db, read_only=True) as con:
            full_leads = con.fetch_rows("leads", LEADS)
        print(f"{len(full_leads):,} leads; incremental leads equal the full rebuild's: "
              f"{daily_leads == full_leads}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
