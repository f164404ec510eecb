"""The nightly batch as a Prefect flow: each stage of tracecode.pipeline is a task.

Serve it on a schedule (02:00 every night) with::

    python flows/nightly.py /data/landing /data/tracecode.duckdb /data/out

or run it once from Python: ``nightly(landing, db, out)``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

# tracecode's own log lines (counts per stage) go to the Prefect run logs too
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tracecode")

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from tracecode import pipeline
from tracecode.settings import load_settings

# Ingest is idempotent (files are registered in the same transaction as their records),
# so a retry after a transient failure (disk, lock held by a reader) is safe.
RETRIES = dict(retries=2, retry_delay_seconds=30)


@task(name="start run", **RETRIES)
def start(db: Path, landing: Path) -> tuple[str, str]:
    return pipeline.start_run(db, landing)


@task(name="ingest", **RETRIES)
def ingest(db: Path, landing: Path, run_id: str, encoding: str | None) -> Any:
    return pipeline.ingest_stage(db, landing, run_id, encoding=encoding)


@task(name="rules and leads", **RETRIES)
def screen(db: Path, settings_path: Path | None, run_id: str) -> Any:
    return pipeline.screen_stage(db, load_settings(settings_path), run_id)


@task(name="write outputs", **RETRIES)
def export(db: Path, out: Path, summary: pipeline.RunSummary) -> None:
    pipeline.export_stage(db, out, summary)


@flow(name="tracecode-nightly")
def nightly(
    landing: Path, db: Path, out: Path, settings: Path | None = None,
    encoding: str | None = None,
) -> dict[str, Any]:
    """Ingest what is new, screen the whole history, write the lead list."""
    began = time.perf_counter()
    if not Path(landing).is_dir():
        raise FileNotFoundError(f"landing directory {landing} does not exist")
    run_id, started_at = start(db, landing)
    refs, result = ingest(db, landing, run_id, encoding)
    screened = screen(db, settings, run_id)
    summary = pipeline.summarize(db, run_id, landing, started_at,
                                 time.perf_counter() - began, refs, result, screened)
    export(db, out, summary)
    create_markdown_artifact(key="tracecode-leads", markdown=_lead_summary(summary, out),
                             description="Leads of the nightly tracecode run")
    return summary.to_dict()


def _lead_summary(summary: pipeline.RunSummary, out: Path) -> str:
    rows = "\n".join(f"| {c} | {n} |" for c, n in summary.leads_by_category.items())
    return (
        f"## tracecode run {summary.run_id}\n\n"
        f"{summary.lines_read} lines read: {summary.records_stored} stored, "
        f"{summary.records_replaced} replaced, {summary.lines_quarantined} quarantined.\n\n"
        f"**{summary.leads} leads** in `{Path(out) / 'leads.csv'}`\n\n"
        f"| category | leads |\n|---|---|\n{rows}\n"
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python flows/nightly.py LANDING DB OUT")
    landing_dir, db_path, out_dir = (Path(a).resolve() for a in sys.argv[1:])
    nightly.serve(
        name="tracecode-nightly",
        cron="0 2 * * *",
        parameters={"landing": landing_dir, "db": db_path, "out": out_dir},
    )
