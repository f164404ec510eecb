"""The rule inputs and rules on Spark (local mode) against DuckDB, on the same data.

Takes a finished database (``--db``, copied first) or simulates a world and runs it
through ``tracecode run``. Then times, on DuckDB (memory_limit 6GB, best of two), the
rebuild of the rule inputs from the normalised records (sql/screen/rebuild.sql) and the
rules over them; exports the normalised tables to Parquet; and times on Spark the same
two stages from those tables (sql/views' text through sqlglot), a cold run and a warm
one. Checks that the leads and evidence Spark's evidence folds into equal the database's
own rule leads, row for row (``--parity``), prints the ratios, the measured
per-partition figures (Spark's REST API: input, shuffle, task time) and what a
national year would cost on a cluster, scaled from them.

    python bench/bench_spark.py --db bench_data/city.duckdb --partitions 8 --parity
    python bench/bench_spark.py [--scale demo] [--days 14] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tracecode import pipeline, rules
from tracecode.db import Database
from tracecode.inputs import open_scope
from tracecode.settings import EngineSettings, Settings
from tracecode.simulate import simulate
from tracecode.spark.command import screen_on_spark
from tracecode.spark.layout import export_inputs
from tracecode.spark.runner import PARTITION_KEYS, fold_leads, spark_session

NATIONAL_YEAR_SALES = 60e9  # boxes sold a year in China: one code, one net-sale row each
TARGET_PARTITION_BYTES = 128 * 2**20
ENGINE = EngineSettings(memory_limit="6GB")
LEAD_COLUMNS = ("lead_id, rule_id, category, subject_type, subject_id, fixmedins_codes, "
                "first_time, last_time, n_events, round(amount, 2), score, reason")
EVIDENCE_COLUMNS = "lead_id, rec_id, fixmedins_code, event_time, code, psn_no, round(amount, 2)"


def duckdb_stages(db_path: Path, settings: Settings) -> tuple[float, float, int]:
    """Seconds of the input rebuild and of the rules on DuckDB (best of two each), and
    the evidence rows."""
    loaded = rules.load_rules(settings=settings)
    best_inputs = best_rules = float("inf")
    rows = 0
    with Database.open(db_path, engine=ENGINE) as db:
        for attempt in range(2):
            started = time.perf_counter()
            with open_scope(db, rebuild=True) as scope:
                built = time.perf_counter()
                runs = rules.run_rules(db, loaded, settings, f"bench-{attempt}", scope=scope)
                done = time.perf_counter()
            best_inputs = min(best_inputs, built - started)
            best_rules = min(best_rules, done - built)
            rows = sum(r.rows for r in runs)
    return best_inputs, best_rules, rows


def stage_metrics(spark: Any) -> dict[str, float]:
    """Totals over the application's completed stages, from Spark's REST API."""
    base = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{base}/api/v1/applications/{app}/stages") as response:
        stages = [s for s in json.load(response) if s.get("status") == "COMPLETE"]
    keys = ("inputBytes", "shuffleWriteBytes", "shuffleReadBytes", "executorRunTime",
            "numTasks", "memoryBytesSpilled", "diskBytesSpilled")
    return {k: float(sum(s.get(k, 0) for s in stages)) for k in keys} | {
        "stages": float(len(stages))}


def rule_leads(db: Database, ids: list[str]) -> tuple[list[tuple[Any, ...]], ...]:
    leads = db.fetch_rows("leads", f"select {LEAD_COLUMNS} from leads "
                          "where list_contains($ids, rule_id) order by all", {"ids": ids})
    evidence = db.fetch_rows("evidence", f"select {EVIDENCE_COLUMNS} from lead_evidence "
                             "where list_contains($ids, rule_id) order by all", {"ids": ids})
    return leads, evidence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", type=Path, help="a finished database (copied; else simulate)")
    ap.add_argument("--scale", default="demo")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--parity", action="store_true",
                    help="compare Spark's leads and evidence with the database's")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracecode-spark-bench-"))
    settings = Settings()
    try:
        db_path = root / "bench.duckdb"
        if args.db:
            shutil.copyfile(args.db, db_path)
            print(f"world: {args.db}")
        else:
            sim = simulate(root / "world", scale=args.scale, days=args.days, seed=args.seed)
            pipeline.run(root / "world", db_path, root / "out", settings)
            print(f"world: {args.scale}, {args.days} days, {sim.n_messages:,} messages")

        loaded = rules.load_rules(settings=settings)
        ids = [r.id for r in loaded]
        with Database.open(db_path, read_only=True, engine=ENGINE) as db:
            expected = rule_leads(db, ids)
            (sales,) = db.fetch_one("net sales", "select count(*) from screened_sales")
            (codes,) = db.fetch_one("codes", "select count(distinct code_id) from record_codes")
        duck_inputs, duck_rules, duck_rows = duckdb_stages(db_path, settings)
        started = time.perf_counter()
        with Database.open(db_path, read_only=True, engine=ENGINE) as db:
            counts = export_inputs(db, loaded, root / "inputs")
        export_s = time.perf_counter() - started
        bytes_in = sum(f.stat().st_size for f in (root / "inputs").rglob("*") if f.is_file())

        started = time.perf_counter()
        spark = spark_session(args.master, shuffle_partitions=args.partitions, conf={
            "spark.driver.memory": args.driver_memory, "spark.ui.enabled": "true",
            "spark.local.dir": str(root / "spark-local")})
        spark.sparkContext.setLogLevel("ERROR")
        start_s = time.perf_counter() - started
        screens, metrics = [], []
        for attempt in range(2):
            before = stage_metrics(spark)
            screens.append(screen_on_spark(spark, settings, root / "inputs",
                                           root / f"work{attempt}",
                                           partitions=args.partitions))
            after = stage_metrics(spark)
            metrics.append({k: after[k] - before[k] for k in after})
        cores = spark.sparkContext.defaultParallelism
        spark.stop()
        cold, warm = screens
        work_bytes = sum(f.stat().st_size for f in (root / "work1").rglob("*") if f.is_file())
        if warm.hits.num_rows != duck_rows:
            raise SystemExit(f"evidence differs: Spark {warm.hits.num_rows}, DuckDB {duck_rows}")
        parity = "not checked"
        if args.parity:
            with fold_leads(warm.hits, loaded, settings) as folded:
                got = rule_leads(folded, ids)
            same = [a == b for a, b in zip(got, expected, strict=True)]
            parity = (f"leads {'equal' if same[0] else 'DIFFER'} ({len(got[0]):,} vs "
                      f"{len(expected[0]):,}), evidence {'equal' if same[1] else 'DIFFER'} "
                      f"({len(got[1]):,} vs {len(expected[1]):,})")

        print(f"tables in: {sum(counts.values()):,} rows, {bytes_in / 2**20:.1f} MiB "
              f"Parquet (export from DuckDB {export_s:.1f}s); {codes:,} codes, {sales:,} "
              f"net-sale rows; computed inputs {work_bytes / 2**20:.1f} MiB")
        print(f"{'engine':<26} {'inputs':>8} {'ratio':>6} {'rules':>8} {'ratio':>6} "
              f"{'total':>8} {'ratio':>6}")
        duck_total = duck_inputs + duck_rules
        print(f"{'duckdb 6GB (best of 2)':<26} {duck_inputs:>7.1f}s {1:>6.1f} "
              f"{duck_rules:>7.1f}s {1:>6.1f} {duck_total:>7.1f}s {1:>6.1f}")
        for label, s in (("cold", cold), ("warm", warm)):
            total = s.inputs_seconds + s.rules_seconds
            print(f"{'spark ' + args.master + ' ' + label:<26} {s.inputs_seconds:>7.1f}s "
                  f"{s.inputs_seconds / duck_inputs:>6.1f} {s.rules_seconds:>7.1f}s "
                  f"{s.rules_seconds / duck_rules:>6.1f} {total:>7.1f}s "
                  f"{total / duck_total:>6.1f}")
        print(f"spark session start {start_s:.1f}s, driver memory {args.driver_memory}, "
              f"{cores} cores, {args.partitions} shuffle partitions; evidence rows "
              f"{duck_rows:,} on both; parity: {parity}")
        print("slowest on spark (warm): " + ", ".join(
            f"{r.name} {r.seconds:.1f}s" for r in sorted(warm.inputs, key=lambda r: -r.seconds)
            [:3]) + "; " + ", ".join(f"{r.rule_id} {r.seconds:.1f}s" for r in sorted(
                warm.rules, key=lambda r: -r.seconds)[:3]))

        m = metrics[1]
        tasks = max(m["numTasks"], 1)
        shuffle = m["shuffleWriteBytes"]
        print(f"measured (warm): {m['stages']:.0f} stages, {tasks:,.0f} tasks, input "
              f"{m['inputBytes'] / 2**20:.1f} MiB, shuffle written "
              f"{shuffle / 2**20:.1f} MiB, spilled {m['diskBytesSpilled'] / 2**20:.1f} MiB, "
              f"task time {m['executorRunTime'] / 1e3:.1f} core-s")
        print(f"per partition (task): {m['inputBytes'] / tasks / 2**20:.2f} MiB in, "
              f"{shuffle / tasks / 2**20:.3f} MiB shuffled, "
              f"{m['executorRunTime'] / tasks:.0f} ms; per net-sale row: "
              f"{shuffle / max(sales, 1):.0f} shuffle bytes, "
              f"{m['executorRunTime'] * 1e3 / max(sales, 1):.1f} core-us")
        scale = NATIONAL_YEAR_SALES / max(sales, 1)
        national_in = bytes_in * scale
        national_shuffle = shuffle * scale
        core_hours = m["executorRunTime"] / 1e3 * scale / 3600
        partitions = max(national_in, national_shuffle / len(PARTITION_KEYS)) / (
            TARGET_PARTITION_BYTES)
        print(f"a national year ({NATIONAL_YEAR_SALES:.0e} net-sale rows, ~"
              f"{codes * scale:.1e} codes; x{scale:,.0f} this data), scaled linearly: "
              f"tables ~{national_in / 2**40:.1f} TiB Parquet, shuffle ~"
              f"{national_shuffle / 2**40:.1f} TiB, ~{partitions:,.0f} partitions of "
              f"128 MiB, ~{core_hours:,.0f} core-hours of tasks (~{core_hours / 400:,.1f} h "
              "on 400 cores). Linear in rows: every shuffle is keyed by code, person or "
              "institution, whose histories stay small; a subject far larger than the "
              "rest (a placeholder psn_no) would skew one partition.")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
