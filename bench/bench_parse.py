"""Where ingest's time goes against DuckDB's bare ``read_json``, on the same lines.

A ladder, each step measured in this process on the same block of upload lines (the
generator of ``bench_ingest.py``): ``read_json`` of the file (no validation); the lines
registered as Arrow and only checked to be JSON; the one ``json_transform`` that
``sql/ingest/parse_lines.sql`` starts with; the whole parse (validation, types, reasons,
habits); and tracecode's whole ingest of the file (parse, merge, registry). Each step
is the best of ``--repeat`` runs, and is printed as a multiple of ``read_json``.

    python bench/bench_parse.py [--messages 250000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench_ingest import GENERATE
from landing import Landing

from tracecode import ingest, message_lines
from tracecode.db import Database, read_sql, split_statements
from tracecode.message_files import discover


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracecode-parse-"))
    try:
        Landing(root).write_reference()
        day = root / "messages" / "2025-11-01"
        day.mkdir(parents=True)
        path = day / "part-0000.jsonl"
        con = duckdb.connect()
        con.execute("set enable_progress_bar = false")
        con.execute(GENERATE.replace("{path}", str(path)),
                    {"start": 0, "stop": args.messages, "insts": 20_000})
        [planned], _ = discover(root)
        packer = message_lines.LinePacker(1 << 40)
        for first, block, n in message_lines.read_lines(planned, 1 << 30,
                                                        message_lines.FileRead()):
            packer.add(0, first, block, n)
        batch = packer.take(np.asarray([1], dtype=np.int64), pa.array([planned.rel]))
        assert batch is not None
        con.register("batch_lines", batch)
        with Database.open(None) as scratch:  # the parse's macros and bounds, as ingest has them
            ingest._create_stage(scratch, ingest.IngestSettings())
            bounds = scratch.fetch_arrow("bounds", "select * from ingest_bounds")
        for stmt in split_statements(read_sql("ingest/parse_macros.sql")):
            con.execute(stmt)
        con.register("bounds_arrow", bounds)
        con.execute("create temp table ingest_bounds as select * from bounds_arrow")
        parse = read_sql("ingest/parse_lines.sql")
        transform = parse[parse.index("json_transform("):parse.index(") as m\n") + 1]
        steps: list[tuple[str, Callable[[], object]]] = [
            ("read_json of the file", lambda: con.execute(
                "create or replace temp table t as select * from read_json($f, "
                "format = 'newline_delimited', ignore_errors = true)", {"f": str(path)})),
            ("lines checked to be JSON", lambda: con.execute(
                "create or replace temp table t as select json_valid(txt) from batch_lines")),
            ("the parse's json_transform alone", lambda: con.execute(
                "create or replace temp table t as select "
                + transform.replace("line_text", "txt") + " as m from batch_lines")),
            ("the whole parse (parse_lines.sql)", lambda: con.execute(
                "create or replace temp table t as " + parse, {"run_id": "bench"})),
        ]
        seconds = {label: best(fn, args.repeat) for label, fn in steps}

        def whole_ingest() -> None:
            db_path = root / "ingest.duckdb"
            db_path.unlink(missing_ok=True)
            with Database.open(db_path) as db:
                ingest.ingest_messages(db, root, "bench")

        seconds["tracecode's whole ingest of the file"] = best(whole_ingest, args.repeat)
        base = seconds["read_json of the file"]
        print(f"{args.messages:,} upload lines, {path.stat().st_size / 1e6:,.0f} MB")
        print("| step | s | lines/s | × read_json |\n|---|--:|--:|--:|")
        for label, s in seconds.items():
            print(f"| {label} | {s:.2f} | {args.messages / s:,.0f} | {s / base:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
