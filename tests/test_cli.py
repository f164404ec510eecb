"""The command line as an investigator meets it: help that reads, errors before damage,
the outputs listed, read-only SQL with masking, a lead shown in full."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from landing import PERSONS, Landing
from typer.testing import CliRunner

from tracecode import __version__
from tracecode.cli import app
from tracecode.db import Database

runner = CliRunner()
INST = "P44010600001"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run: db.duckdb and out/ in the returned folder (read, never changed)."""
    tmp = tmp_path_factory.mktemp("cli")
    landing = Landing(tmp / "landing")
    landing.sale(INST, "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale(INST, "S2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    landing.write()
    result = runner.invoke(app, ["run", str(landing.root), "--db", str(tmp / "db.duckdb"),
                                 "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    (tmp / "run_output.txt").write_text(result.output, encoding="utf-8")
    return tmp


def test_help_keeps_bracketed_text_and_has_no_bool_noise() -> None:
    result = runner.invoke(app, ["run", "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "[rules], [model], [score]" in result.output
    assert "<bool>" not in result.output
    assert runner.invoke(app, ["--version"]).output.strip() == f"tracecode {__version__}"


def test_the_run_lists_every_output_it_wrote(ran: Path) -> None:
    output = (ran / "run_output.txt").read_text(encoding="utf-8")
    for name in ("leads.csv", "leads.parquet", "evidence.parquet", "leads.xlsx", "report/",
                 "report.html", "quarantine.csv", "run_summary.json"):
        assert f"  {name}" in output, name


def test_an_out_that_is_a_file_fails_before_anything_is_ingested(tmp_path: Path) -> None:
    landing = Landing(tmp_path / "landing")
    landing.write()
    (tmp_path / "out").write_text("not a folder")
    result = runner.invoke(app, ["run", str(landing.root), "--db", str(tmp_path / "db.duckdb"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "is a file" in result.output
    assert not (tmp_path / "db.duckdb").exists()


def test_mark_on_a_mistyped_db_fails_without_creating_it(ran: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["mark", "L0", "--db", str(tmp_path / "typo.duckdb"),
                                 "--status", "dismissed"])
    assert result.exit_code == 2 and "no database" in result.output
    assert not (tmp_path / "typo.duckdb").exists()


def test_mark_review_import_and_export_go_through_the_audit_trail(
    ran: Path, tmp_path: Path
) -> None:
    import shutil

    db = tmp_path / "db.duckdb"
    shutil.copy(ran / "db.duckdb", db)
    lead_id = pl.read_csv(ran / "out" / "leads.csv")["lead_id"][0]
    result = runner.invoke(app, ["mark", lead_id, "--db", str(db), "--status", "属实",
                                 "--note", "现场核实", "--by", "张科"])
    assert result.exit_code == 0, result.output
    csv = tmp_path / "r.csv"
    csv.write_text(f"线索编号,核查结论,核查说明,核查人\n{lead_id},排除,误报,\n", encoding="utf-8")
    result = runner.invoke(app, ["review", "import", str(csv), "--db", str(db), "--by", "李科"])
    assert result.exit_code == 0 and "1 recorded" in result.output, result.output
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert lead_id not in set(pl.read_csv(tmp_path / "o" / "leads.csv")["lead_id"])
    # every output of a run, the findings kept apart from the leads included
    assert {"data_quality.csv", "compliance.csv", "leads.xlsx", "report.html"} <= {
        p.name for p in (tmp_path / "o").iterdir()}
    shown = runner.invoke(app, ["show", lead_id, "--db", str(db)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "张科" in shown.output and "李科" in shown.output and "排除" in shown.output


def test_sql_is_read_only_masked_and_writes_files(ran: Path, tmp_path: Path) -> None:
    db = str(ran / "db.duckdb")
    certno = PERSONS["p1"].certno
    query = "select psn_no, certno, psn_name, 'ID ' || certno as note from records " \
            "where psn_no is not null order by rec_id"
    result = runner.invoke(app, ["sql", query, "--db", db], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert certno not in result.output and PERSONS["p1"].name not in result.output
    assert certno[:6] + "********" + certno[-4:] in result.output

    out = tmp_path / "r.xlsx"
    assert runner.invoke(app, ["sql", query, "--db", db, "--to", str(out)]).exit_code == 0
    frame = pl.read_excel(out)
    assert certno not in " ".join(frame["note"]) and frame.height >= 2

    unmasked = tmp_path / "u.csv"
    runner.invoke(app, ["sql", query, "--db", db, "--to", str(unmasked),
                        "--unmask-personal-data"])
    assert certno in unmasked.read_text(encoding="utf-8-sig")

    result = runner.invoke(app, ["sql", "delete from leads", "--db", db])
    assert result.exit_code == 2 and "read-only" in result.output.lower()


def test_investigation_queries_run_with_their_parameters(ran: Path) -> None:
    from landing import code

    root = Path(__file__).parents[1] / "sql" / "investigations"
    lead_id = pl.read_csv(ran / "out" / "leads.csv")["lead_id"][0]
    for file, params in (("code_history.sql", [f"code={code('A:1')}"]),
                         ("institution_month.sql", [f"fixmedins_code={INST}", "month=2025-11"]),
                         ("person_purchases.sql", [f"psn_no={PERSONS['p2'].psn_no}"]),
                         ("lead_evidence.sql", [f"lead_id={lead_id}"])):
        args = ["sql", "--db", str(ran / "db.duckdb"), "--file", str(root / file)]
        for p in params:
            args += ["--param", p]
        result = runner.invoke(app, args, terminal_width=250)
        assert result.exit_code == 0, (file, result.output)
        assert "0 rows" not in result.output, file
    missing = runner.invoke(app, ["sql", "--db", str(ran / "db.duckdb"), "--file",
                                  str(root / "code_history.sql")])
    assert missing.exit_code == 2 and "code" in missing.output


def test_sql_on_a_database_held_for_writing_says_so_clearly(ran: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    db = tmp_path / "held.duckdb"
    shutil.copy(ran / "db.duckdb", db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["sql", "select 1", "--db", str(db)])
        assert result.exit_code == 2
        assert "held for writing" in result.output and "snapshot" in result.output
    finally:
        holder.kill()
        holder.wait()


def test_a_decision_reaches_the_snapshot_and_waits_for_no_running_batch(
    ran: Path, tmp_path: Path
) -> None:
    import shutil

    from tracecode.db import publish_snapshot, snapshot_path
    from tracecode.runlock import RunLock

    db = tmp_path / "db.duckdb"
    shutil.copy(ran / "db.duckdb", db)
    with Database.open(db) as database:
        publish_snapshot(database)
    lead_id = pl.read_csv(ran / "out" / "leads.csv")["lead_id"][0]
    # while a run holds the database, a decision is refused with who holds it
    with RunLock.acquire(db, "R-nightly"):
        held = runner.invoke(app, ["mark", lead_id, "--db", str(db), "--status", "排除"])
    assert held.exit_code != 0 and "R-nightly" in held.output, held.output
    result = runner.invoke(app, ["mark", lead_id, "--db", str(db), "--status", "排除",
                                 "--note", "误报", "--by", "张科"])
    assert result.exit_code == 0, result.output
    # show and sql read the snapshot, which now has the decision
    assert snapshot_path(db).is_file()
    shown = runner.invoke(app, ["show", lead_id, "--db", str(db)], terminal_width=200)
    assert "snapshot" in shown.output and "排除" in shown.output and "张科" in shown.output
