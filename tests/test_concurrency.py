"""One run at a time per database, and readers that never block the batch (or it them).

Readers query the read-only snapshot each run publishes; the run holds the run lock from
start to end. Real processes throughout: DuckDB's own file locks are per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from nightly_world import DAYS, state, three_days

from tracecode import pipeline
from tracecode.days import only_day, parse_day
from tracecode.db import snapshot_path
from tracecode.errors import RunLockedError
from tracecode.runlock import RunLock, lock_path, read_holder

TRACECODE = str(Path(sys.executable).with_name("tracecode"))

# a reader as an investigator's DuckDB client would be: open, query, close, again
READER = r"""
import json, os, sys, duckdb
snapshot, stop = sys.argv[1:]
ok, errors = 0, []
while not os.path.exists(stop) or ok == 0:
    try:
        con = duckdb.connect(snapshot, read_only=True)
        con.execute("select count(*), max(score) from leads").fetchone()
        con.execute("select count(*) from records").fetchone()
        con.close()
        ok += 1
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
print(json.dumps({"ok": ok, "errors": errors[:5], "n_errors": len(errors)}))
"""


def test_readers_of_the_snapshot_and_the_batch_never_block_each_other(tmp_path: Path) -> None:
    world = three_days(tmp_path / "landing")
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    pipeline.run(world.root, db, out, select=only_day(parse_day(DAYS[0])))
    assert snapshot_path(db).exists()
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(snapshot_path(db)),
                                 str(stop)], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        # two batches while the readers loop: each publishes a new snapshot under them
        for day in DAYS[1:]:
            pipeline.run(world.root, db, out, select=only_day(parse_day(day)))
    finally:
        stop.touch()
        results = [json.loads(r.communicate(timeout=60)[0]) for r in readers]
    assert all(r["n_errors"] == 0 and r["ok"] > 0 for r in results), results
    assert state(snapshot_path(db)) == state(db)


def test_a_second_run_is_refused_with_who_holds_the_database_and_since_when(
    tmp_path: Path,
) -> None:
    world = three_days(tmp_path / "landing")
    db = tmp_path / "db.duckdb"
    with RunLock.acquire(db, "R-first"):
        with pytest.raises(RunLockedError) as refused:
            pipeline.run(world.root, db, tmp_path / "out")
        cli = subprocess.run([TRACECODE, "run", str(world.root), "--db", str(db),
                              "--out", str(tmp_path / "out")], capture_output=True, text=True)
    message = str(refused.value)
    assert f"run R-first (pid {os.getpid()} on " in message and " since 20" in message
    assert str(lock_path(db)) in message and "--wait SECONDS" in message
    assert cli.returncode == 2 and "run R-first" in cli.stderr
    assert not db.exists()  # refused before it opened (or created) anything


def test_a_second_run_with_wait_runs_when_the_first_releases_the_lock(tmp_path: Path) -> None:
    world = three_days(tmp_path / "landing")
    db = tmp_path / "db.duckdb"
    first = RunLock.acquire(db, "R-first")
    threading.Timer(1.0, first.release).start()
    summary = pipeline.run(world.root, db, tmp_path / "out", wait_seconds=60)
    assert summary.lines_read == 11 and read_holder(db) is None


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path: Path) -> None:
    world = three_days(tmp_path / "landing")
    db = tmp_path / "db.duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(db).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                         "run_id": "R-killed", "started_at": "2025-11-01"}))
    assert read_holder(db) is not None and read_holder(db).is_dead()  # type: ignore[union-attr]
    assert pipeline.run(world.root, db, tmp_path / "out").lines_read == 11


def test_two_writers_at_once_both_finish_and_leave_the_state_of_one_run(
    tmp_path: Path,
) -> None:
    world = three_days(tmp_path / "landing")
    clean = tmp_path / "clean.duckdb"
    pipeline.run(world.root, clean, tmp_path / "clean_out")
    db = tmp_path / "db.duckdb"
    writers = [subprocess.Popen([TRACECODE, "run", str(world.root), "--db", str(db),
                                 "--out", str(tmp_path / f"out{i}"), "--wait", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    done = [w.communicate(timeout=180) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], done
    assert state(db) == state(clean)


def test_the_snapshot_is_replaced_whole_while_a_reader_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracecode import db as tdb

    world = three_days(tmp_path / "landing")
    db = tmp_path / "db.duckdb"
    pipeline.run(world.root, db, tmp_path / "out", select=only_day(parse_day(DAYS[0])))
    reader = duckdb.connect(str(snapshot_path(db)), read_only=True)
    copy = tdb.shutil.copyfile

    def copy_elsewhere(src: Path, dst: Path) -> None:
        # while the new copy is written, the published snapshot is the old one, whole
        assert Path(dst) != snapshot_path(db)
        check = duckdb.connect(str(snapshot_path(db)), read_only=True)
        assert check.execute("select count(*) from runs").fetchone() == (1,)
        check.close()
        copy(src, dst)

    monkeypatch.setattr(tdb.shutil, "copyfile", copy_elsewhere)
    pipeline.run(world.root, db, tmp_path / "out", select=only_day(parse_day(DAYS[1])))
    assert reader.execute("select count(*) from runs").fetchone() == (1,)
    reader.close()
    assert state(snapshot_path(db)) == state(db)
