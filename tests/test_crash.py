"""SIGKILL a real ``tracecode run`` at several points, run again: the state of one clean run.

The run is killed by itself (``os.kill(getpid(), SIGKILL)``: no cleanup, no exit handler,
as the OOM killer or a power cut would) at a chosen point of each stage: after the
reference files committed, inside the message transaction, inside the screen's
transaction, between two output files, after the outputs but before the run record, and
halfway through copying the snapshot.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from nightly_world import state, three_days

from tracecode import pipeline
from tracecode.db import snapshot_path

# Runs the CLI with one kill point armed. Points are DB labels (Database.execute and
# fetch_* see every statement), the n-th output file, or the snapshot copy.
KILLER = r"""
import os, shutil, signal, sys
from tracecode import db as tdb, report
kind, arg = sys.argv[1].split(":", 1)
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if kind == "label":
    run = tdb.Database._run
    def _run(self, label, *a, **k):
        if label.startswith(arg):
            die()
        return run(self, label, *a, **k)
    tdb.Database._run = _run
elif kind == "output":
    atomic, seen = report.atomic_file, []
    def _atomic(target, write):
        seen.append(target)
        if len(seen) == int(arg):
            die()
        return atomic(target, write)
    report.atomic_file = _atomic
elif kind == "snapshot":
    def copyfile(src, dst):
        data = open(src, "rb").read()
        with open(dst, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
        die()
    tdb.shutil.copyfile = copyfile
from tracecode.cli import main
main(sys.argv[2:])
"""

POINTS = {
    "ingest: references in, messages not": "label:parse ",
    "ingest: inside the message transaction": "label:register file",
    "screen: inside its transaction": "label:mark screened",
    "export: between two output files": "output:3",
    "export: outputs written, run not recorded": "label:finish run",
    "publish: halfway through the snapshot copy": "snapshot:",
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """One clean run over the world: its database state and its summary."""
    tmp = tmp_path_factory.mktemp("clean")
    world = three_days(tmp / "landing")
    summary = pipeline.run(world.root, tmp / "db.duckdb", tmp / "out")
    return state(tmp / "db.duckdb"), summary.to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS.values(), ids=list(POINTS))
def test_a_run_killed_at_any_point_and_run_again_equals_one_clean_run(
    point: str, clean: tuple[dict, dict], tmp_path: Path
) -> None:
    world = three_days(tmp_path / "landing")
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, point, "run", str(world.root), "--db", str(db),
         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    summary = pipeline.run(world.root, db, out)

    clean_state, clean_summary = clean
    assert state(db) == clean_state
    assert state(snapshot_path(db)) == clean_state
    written = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert written["run_id"] == summary.run_id
    con = duckdb.connect(str(db), read_only=True)
    outcomes = con.execute("select outcome from runs order by started_at").fetchall()
    con.close()
    if point.startswith("snapshot"):
        # killed after its run record and summary were final: only the snapshot was left
        assert outcomes == [("succeeded",), ("succeeded",)] and summary.lines_read == 0
        return
    assert outcomes == [("crashed",), ("succeeded",)]
    # the run that finished the work counts what the killed one ingested
    for key in ("lines_read", "records_stored", "records_replaced", "lines_quarantined",
                "files_ingested", "leads", "leads_by_category"):
        assert summary.to_dict()[key] == clean_summary[key], key
    # nothing half-written is left beside the database
    assert not list(tmp_path.glob(".*.tmp"))
