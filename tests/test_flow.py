"""The flows end to end under Prefect's test harness (a real local server, one per session).

The daily flow on sample_data with its settings gives `make demo`'s leads; a re-run is a
no-op; a backfill of three days equals one run over all three; the deployment carries
its cron; each run has its artifacts and tracecode's log lines; a second run at once is
refused with who holds the database; and the CLI calls the README gives answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from uuid import UUID

import duckdb
import pytest
import yaml
from nightly_world import DAYS, state, three_days

from tracecode import pipeline
from tracecode.runlock import RunLock
from tracecode.settings import load_settings

REPO = Path(__file__).parents[1]
SAMPLE = REPO / "sample_data"
sys.path.insert(0, str(REPO / "flows"))

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _lead_ids(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("select lead_id from leads where status <> 'dismissed' order by 1")
        return [r[0] for r in rows.fetchall()]
    finally:
        con.close()


def test_the_daily_flow_on_sample_data_gives_the_demos_leads_artifacts_and_logs(
    tmp_path: Path,
) -> None:
    from nightly import daily
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    settings = SAMPLE / "tracecode.toml"
    demo = pipeline.run(SAMPLE, tmp_path / "demo.duckdb", tmp_path / "demo",
                        load_settings(settings))
    db = tmp_path / "db.duckdb"

    summary = daily(SAMPLE, db, tmp_path / "out", settings=settings)
    again = daily(SAMPLE, db, tmp_path / "out", settings=settings)
    APILogHandler().flush()  # logs go to the API in batches

    assert summary["leads_by_category"] == demo.leads_by_category and demo.leads > 0
    assert _lead_ids(db) == _lead_ids(tmp_path / "demo.duckdb")
    assert (again["lines_read"], again["files_ingested"], again["screen"]["skipped"]) == (
        0, 0, True)
    assert again["leads_by_category"] == summary["leads_by_category"]
    flow_run_id = UUID(summary["flow_run_id"])
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    kinds = {a.key: a.type for a in artifacts}
    # Prefect stores a link artifact as markdown: [text](link)
    assert kinds == {"tracecode-summary": "markdown", "tracecode-top-leads": "table",
                     "tracecode-report": "markdown"}
    link = next(a.data for a in artifacts if a.key == "tracecode-report")
    assert (tmp_path / "out" / "report.html").as_uri() in link
    markdown = next(a.data for a in artifacts if a.key == "tracecode-summary")
    assert "死亡人员购药" in markdown and "purchase after the person's death" in markdown
    assert f"{summary['lines_read']} lines read" in markdown and "Timings" in markdown
    loggers = {log.name for log in logs}
    assert {"tracecode.pipeline", "tracecode.ingest"} <= loggers, loggers
    con = duckdb.connect(str(db), read_only=True)
    record = con.execute("""select outcome, flow_run_id, leads, rules_version
                            from runs where run_id = $id""",
                         {"id": summary["run_id"]}).fetchone()
    con.close()
    assert record is not None and record[:3] == ("succeeded", str(flow_run_id), demo.leads)


def test_a_backfill_of_three_days_equals_one_run_over_all_three(tmp_path: Path) -> None:
    from nightly import backfill

    world = three_days(tmp_path / "landing")
    once = pipeline.run(world.root, tmp_path / "once.duckdb", tmp_path / "once")

    runs = backfill(world.root, tmp_path / "db.duckdb", tmp_path / "out",
                    first=DAYS[0], last=DAYS[-1])

    assert [r["files_ingested"] for r in runs] == [1, 1, 1]
    by_day, at_once = state(tmp_path / "db.duckdb"), state(tmp_path / "once.duckdb")
    # day 3 re-sends a record of day 1: in one run the first version is "replaced" at
    # ingest, in a backfill it was stored first and replaced by day 3's run
    by_day_files, once_files = by_day.pop("files"), at_once.pop("files")
    assert by_day == at_once
    assert [f[:2] for f in by_day_files] == [f[:2] for f in once_files]  # type: ignore[index]
    assert sum(r["lines_read"] for r in runs) == once.lines_read
    again = backfill(world.root, tmp_path / "db.duckdb", tmp_path / "out",
                     first=DAYS[1], last=DAYS[1])
    assert [r["lines_read"] for r in again] == [0]


def test_a_second_flow_run_on_the_same_database_is_refused_or_waits(tmp_path: Path) -> None:
    from nightly import daily

    world = three_days(tmp_path / "landing")
    db = tmp_path / "db.duckdb"
    with RunLock.acquire(db, "R-nightly-1"):
        refused = daily(world.root, db, tmp_path / "out", return_state=True)
    assert refused.is_failed()
    with pytest.raises(Exception, match=r"in use by run R-nightly-1 \(pid \d+ on .*\) since"):
        refused.result()
    first = RunLock.acquire(db, "R-nightly-2")
    threading.Timer(1.0, first.release).start()
    assert daily(world.root, db, tmp_path / "out", wait_seconds=60)["lines_read"] == 11


def test_the_deployment_carries_the_cron_and_the_readme_cli_calls_answer(
    tmp_path: Path,
) -> None:
    from nightly import CRON, daily
    from prefect.settings import PREFECT_API_URL

    # what the engine does with a deployment's parameters before a scheduled run
    params = daily.validate_parameters({"landing": "/l", "db": "/d.duckdb", "out": "/o",
                                        "day": "2025-11-02", "wait_seconds": 60})
    assert params["day"] == date(2025, 11, 2) and params["landing"] == Path("/l")
    deployment = daily.to_deployment(name="tracecode-daily", cron=CRON)
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    (daily_yaml,) = [d for d in declared["deployments"] if d["name"] == "tracecode-daily"]
    assert daily_yaml["entrypoint"] == "flows/nightly.py:daily"
    assert [s["cron"] for s in daily_yaml["schedules"]] == [CRON]
    deployment.apply()

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    prefect = str(Path(sys.executable).with_name("prefect"))
    listed = {}
    for command in ("deployment", "flow-run", "artifact"):
        done = subprocess.run([prefect, command, "ls"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        listed[command] = done.stdout
    assert "tracecode-daily" in listed["deployment"]


def test_the_summary_artifact_names_the_findings_and_the_headline() -> None:
    from nightly import summary_markdown

    summary = pipeline.RunSummary(
        run_id="R1", landing="l", started_at="t", seconds=1.0, lines_read=3,
        records_stored=3, records_replaced=0, records_retracted=0, lines_quarantined=0,
        earlier_records_replaced=0, codes_stored=3, files_ingested=1, files_skipped=0,
        leads=1, leads_by_category={"no_inbound": 1}, leads_dismissed=0,
        data_quality={"twelve_hour_clock": 2}, compliance={"upload_silence": 1},
        headline={"institutions_registered": 10, "institutions_connected": 9,
                  "codes_collected": 99, "capture_rate": 0.95, "institutions_proposed": 2,
                  "amount_at_risk": 1234.5})
    text = summary_markdown(summary)
    assert "| 疑似12小时制时间 | `twelve_hour_clock` | 2 |" in text
    assert "停止上传" in text and "(`upload_silence`) | 1 |" in text
    assert "9 of 10 institutions connected" in text and "95.0%" in text and "1,234.50" in text
