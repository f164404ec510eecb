"""Screening time: a full rebuild against one incremental day, on a simulated city.

Simulates ``--days`` days, ingests and screens all days but the last, then the last day
incrementally (timed), then screens everything again from scratch (timed); checks that
both give the same leads, and prints the figures.

    python bench/bench_screen.py [--scale city] [--days 14] [--seed 1]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="city")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracecode-screen-"))
    try:
        world = root / "world"
        t = time.perf_counter()
        sim = simulate(world, scale=args.scale, days=args.days, seed=args.seed)
        print(f"simulated {sim.n_messages:,} messages in {time.perf_counter() - t:.1f}s")
        folders = sorted(p for p in (world / "messages").iterdir() if p.is_dir())
        # the last simulated day's upload folder, and the late-upload tails after it
        last_day = (date(2025, 11, 1) + timedelta(days=args.days - 1)).isoformat()
        history = [f for f in folders if f.name < last_day]
        today = [f for f in folders if f.name >= last_day]
        landing = root / "landing"
        shutil.copytree(world / "reference", landing / "reference")
        copy_days(world, landing, history)
        db = root / "daily.duckdb"

        t = time.perf_counter()
        pipeline.run(landing, db, root / "out")
        print(f"{len(history)} days of uploads: ingest + full screen {time.perf_counter() - t:.1f}s")

        copy_days(world, landing, today)
        run_id, _ = pipeline.start_run(db, landing)
        t = time.perf_counter()
        pipeline.ingest_stage(db, landing, run_id)
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        pipeline.screen_stage(db, Settings(), run_id, incremental=True)
        incremental_s = time.perf_counter() - t
        with Database.open(db, read_only=True) as con:
            daily = con.fetch_rows("leads", LEADS)

        t = time.perf_counter()
        pipeline.screen_stage(db, Settings(), run_id, incremental=False)
        full_s = time.perf_counter() - t
        with Database.open(db, read_only=True) as con:
            full = con.fetch_rows("leads", LEADS)
            (records,) = con.fetch_one("records", "select count(*) from records")

        print(f"history: {records:,} records, {len(full):,} leads")
        print(f"last day ({', '.join(f.name for f in today)}): "
              f"{sum(1 for f in today for _ in f.rglob('*.jsonl*'))} files, ingest {ingest_s:.1f}s")
        print(f"screen, incremental (last day): {incremental_s:6.1f}s")
        print(f"screen, full rebuild:           {full_s:6.1f}s")
        print(f"incremental leads equal the full rebuild's: {daily == full}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
