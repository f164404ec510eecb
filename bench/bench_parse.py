"""Where ingest's time goes against DuckDB's bare ``read_json``, on the same lines.

A ladder, each step measured in this process on the same block of upload lines (the
generator of ``bench_ingest.py``): ``read_json`` of the file (no validation); the lines
registered as Arrow and only checked to be JSON; the one ``json_transform`` that
``sql/ingest/parse_lines.sql`` starts with; the whole parse (validation, types, reasons,
habits); and tracecode's whole ingest of the file (parse, merge, registry). Each step
is the best of ``--repeat`` runs, and is printed as a multiple of ``read_json``.

``--against REF`` runs the same steps with the ``sql/`` of a git revision too (e.g.
``main``), alternating the two in every repeat, so that a change to the parse is measured
against its base at the same load; then checks that both parses give the same rows (every
column, ``except all`` both ways) on these lines and on a simulated city day with upload
habits.

    python bench/bench_parse.py [--messages 250000] [--repeat 5] [--against main]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench_ingest import GENERATE
from landing import Landing

from tracecode import db as tracecode_db
from tracecode import ingest, message_lines
from tracecode.db import Database, read_sql, split_statements
from tracecode.message_files import discover
from tracecode.simulate import simulate

HERE = "this tree"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sql_of(ref: str, into: Path) -> Path:
    """The ``sql/`` folder of git revision ``ref``, written under ``into``."""
    repo = Path(__file__).parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "sql"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "sql"


def packed(root: Path) -> pa.Table:
    """Every message line under ``root`` in one ``batch_lines`` table, as ingest packs them."""
    planned, _ = discover(root)
    packer = message_lines.LinePacker(1 << 40)
    for i, f in enumerate(planned):
        for first, block, n in message_lines.read_lines(f, 1 << 30, message_lines.FileRead()):
            packer.add(i, first, block, n)
    batch = packer.take(np.arange(1, len(planned) + 1, dtype=np.int64),
                        pa.array([f.rel for f in planned]))
    assert batch is not None
    return batch


@contextlib.contextmanager
def sql_from(folder: Path | None) -> Iterator[None]:
    """tracecode reads its SQL from ``folder`` (None: its own) inside the block."""
    if folder is None:
        yield
        return
    own = tracecode_db.sql_dir
    tracecode_db.sql_dir = lambda: folder  # type: ignore[assignment]
    try:
        yield
    finally:
        tracecode_db.sql_dir = own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", metavar="REF", help="also time the sql/ of this git revision")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracecode-parse-"))
    try:
        Landing(root).write_reference()
        day = root / "messages" / "2025-11-01"
        day.mkdir(parents=True)
        path = day / "part-0000.jsonl"
        con = duckdb.connect(config={"memory_limit": "6GB"})
        con.execute("set enable_progress_bar = false")
        con.execute(GENERATE.replace("{path}", str(path)),
                    {"start": 0, "stop": args.messages, "insts": 20_000})
        batch = packed(root)
        con.register("batch_lines", batch)
        with Database.open(None) as scratch:  # the parse's bounds, as ingest has them
            ingest._create_stage(scratch, ingest.IngestSettings())
            bounds = scratch.fetch_arrow("bounds", "select * from ingest_bounds")
        con.register("bounds_arrow", bounds)
        con.execute("create temp table ingest_bounds as select * from bounds_arrow")
        trees: dict[str, Path | None] = {HERE: None}
        if args.against:
            trees[args.against] = sql_of(args.against, root / "against")

        def rungs(tree: Path | None) -> list[tuple[str, Callable[[], object]]]:
            with sql_from(tree):
                macros = read_sql("ingest/parse_macros.sql")
                parse = read_sql("ingest/parse_lines.sql")
            transform = parse[parse.index("json_transform("):parse.index(") as m\n") + 1]

            def with_macros(sql: str, params: dict[str, str] | None = None) -> None:
                for stmt in split_statements(macros):  # this tree's macros, each time
                    con.execute(stmt)
                con.execute(sql, params or {})

            def whole_ingest() -> None:
                db_path = root / "ingest.duckdb"
                db_path.unlink(missing_ok=True)
                with sql_from(tree), Database.open(db_path) as db:
                    ingest.ingest_messages(db, root, "bench")

            return [
                ("the parse's json_transform alone", lambda: with_macros(
                    "create or replace temp table t as select "
                    + transform.replace("line_text", "txt") + " as m from batch_lines")),
                ("the whole parse (parse_lines.sql)", lambda: with_macros(
                    "create or replace temp table t as " + parse, {"run_id": "bench"})),
                ("tracecode's whole ingest of the file", whole_ingest),
            ]

        steps = {
            ("read_json of the file", HERE): lambda: con.execute(
                "create or replace temp table t as select * from read_json($f, "
                "format = 'newline_delimited', ignore_errors = true)", {"f": str(path)}),
            ("lines checked to be JSON", HERE): lambda: con.execute(
                "create or replace temp table t as select json_valid(txt) from batch_lines"),
        }
        for name, tree in trees.items():
            steps.update({(label, name): fn for label, fn in rungs(tree)})
        times: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
        for _ in range(args.repeat):  # alternating: every repeat runs every step once
            for key, fn in steps.items():
                times[key].append(timed(fn))
        seconds = {key: min(ts) for key, ts in times.items()}
        base = seconds[("read_json of the file", HERE)]
        print(f"{args.messages:,} upload lines, {path.stat().st_size / 1e6:,.0f} MB, "
              f"best of {args.repeat}")
        cols = list(trees)
        print("| step | " + " | ".join(f"s ({c}) | × read_json ({c})" for c in cols)
              + " |\n|---|" + "--:|--:|" * len(cols))
        for label in dict.fromkeys(label for label, _ in steps):
            cells = []
            for c in cols:
                s = seconds.get((label, c), seconds.get((label, HERE)))
                cells.append("" if s is None else f"{s:.2f} | {s / base:.2f}")
            print(f"| {label} | " + " | ".join(cells) + " |")
        if args.against:
            simulate(root / "sim", scale="city", days=1, seed=3, habits=True)
            same_rows(con, trees, {"these lines": batch, "a simulated city day with habits":
                                   packed(root / "sim")})
    finally:
        shutil.rmtree(root, ignore_errors=True)


def same_rows(con: duckdb.DuckDBPyConnection, trees: dict[str, Path | None],
              batches: dict[str, pa.Table]) -> None:
    """Each tree's parse of each batch into a table; the tables must hold the same rows."""
    for name, batch in batches.items():
        con.register("batch_lines", batch)
        for k, tree in enumerate(trees.values()):
            with sql_from(tree):
                for stmt in split_statements(read_sql("ingest/parse_macros.sql")):
                    con.execute(stmt)
                con.execute(f"create or replace temp table parsed_{k} as "
                            + read_sql("ingest/parse_lines.sql"), {"run_id": "bench"})
        [(only_0, only_1)] = con.execute(
            """select (select count(*) from (from parsed_0 except all from parsed_1)),
                      (select count(*) from (from parsed_1 except all from parsed_0))"""
        ).fetchall()
        if only_0 or only_1:
            raise SystemExit(f"the parses differ on {name}: {only_0:,} rows only in "
                             f"{HERE}, {only_1:,} only in the other")
        print(f"same rows from both parses on {name} ({batch.num_rows:,} lines)")


if __name__ == "__main__":
    main()
