"""tracecode as Prefect flows a scheduler can own: ``daily`` and ``backfill``.

Both are thin over :mod:`tracecode.pipeline`: each stage of ``pipeline.STAGES`` (ingest,
screen, export, publish) runs as a task, under the same run lock as ``tracecode run``.

- ``daily``: what landed since the last run (or one day's folder, ``day``), screened,
  exported, and the read-only snapshot published. A re-run of a finished day ingests
  nothing and leaves the leads as they are.
- ``backfill``: the day folders ``LANDING/messages/YYYY-MM-DD/`` from ``first`` to
  ``last``, one ``daily`` run each, in date order.

Serve ``daily`` on its cron (02:00) against a Prefect server (``PREFECT_API_URL``)::

    python flows/nightly.py LANDING DB OUT --settings tracecode.toml

or deploy it to a work pool with ``prefect deploy`` (see prefect.yaml and the README).
"""

# No `from __future__ import annotations`: Prefect builds the parameter model from the
# annotations, and a served run cannot resolve them as strings (`date` not defined).
import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.logging.handlers import APILogHandler
from prefect.runtime import flow_run

from tracecode import pipeline
from tracecode.categories import CATEGORIES, COMPLIANCE_CATEGORIES, DQ_PATTERNS
from tracecode.days import landing_days, only_day, parse_day
from tracecode.settings import load_settings

CRON = "0 2 * * *"
TOP_LEADS = 20


def _io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a stage only after an I/O error (disk, network share): every stage commits
    whole or not at all, so running it again is safe. A bad input or a bug is not retried."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, OSError)


def _stage_task(stage: pipeline.Stage) -> Any:
    def run(ctx: pipeline.RunContext) -> None:
        pipeline.run_stage(ctx, stage)

    return task(name=stage.name, retries=2, retry_delay_seconds=10,
                retry_condition_fn=_io_error, cache_policy=NO_CACHE, persist_result=False)(run)


# one task per stage of the pipeline's one list
STAGE_TASKS = [_stage_task(stage) for stage in pipeline.STAGES]


@flow(name="tracecode-daily", log_prints=False)
def daily(
    landing: Path,
    db: Path,
    out: Path,
    settings: Path | None = None,
    encoding: str | None = None,
    full: bool = False,
    unmask_personal_data: bool = False,
    wait_seconds: float = 0.0,
    day: date | None = None,
) -> dict[str, Any]:
    """One run: ingest what is new under ``landing`` (only ``day``'s folder if given),
    screen the whole history, write ``out``, publish the snapshot. The parameters are
    ``tracecode run``'s (``settings`` is the TOML file; ``wait_seconds`` is ``--wait``)."""
    options = pipeline.RunOptions(
        load_settings(settings), encoding=encoding, incremental=not full,
        unmask=unmask_personal_data, wait_seconds=wait_seconds,
        select=None if day is None else only_day(parse_day(day)),
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )
    with _logs_to_prefect(), pipeline.open_run(landing, db, out, options) as ctx:
        for stage_task in STAGE_TASKS:
            stage_task(ctx)
        assert ctx.summary is not None
        _artifacts(ctx)
    return ctx.summary.to_dict()


@flow(name="tracecode-backfill")
def backfill(
    landing: Path,
    db: Path,
    out: Path,
    first: date,
    last: date,
    settings: Path | None = None,
    encoding: str | None = None,
    full: bool = False,
    unmask_personal_data: bool = False,
    wait_seconds: float = 0.0,
) -> list[dict[str, Any]]:
    """The day folders from ``first`` to ``last`` (inclusive), one daily run each, oldest
    first. Days already ingested ingest nothing; the last run's outputs cover them all."""
    days = landing_days(Path(landing), parse_day(first, "first"), parse_day(last, "last"))
    get_run_logger().info("backfill %s..%s: %d day folder(s) %s", first, last, len(days),
                          ", ".join(d.isoformat() for d in days))
    return [
        daily(landing, db, out, settings=settings, encoding=encoding, full=full,
              unmask_personal_data=unmask_personal_data, wait_seconds=wait_seconds, day=d)
        for d in days
    ]


@contextmanager
def _logs_to_prefect() -> Iterator[None]:
    """tracecode's own log lines (one INFO line per stage) into this flow run's logs.

    ``PREFECT_LOGGING_EXTRA_LOGGERS`` only works when set before Prefect configures
    logging, which a worker or the test harness has done before this module loads; a
    handler attached for the duration of the run works however the flow was started.
    """
    logger = logging.getLogger("tracecode")
    if any(isinstance(h, APILogHandler) for h in logger.handlers):
        yield
        return
    handler = APILogHandler()
    handler.setLevel(logging.INFO)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- what a run shows in the Prefect UI ---------------------------------------------------


def _artifacts(ctx: pipeline.RunContext) -> None:
    summary = ctx.summary
    assert summary is not None
    create_markdown_artifact(key="tracecode-summary", markdown=summary_markdown(summary),
                             description=f"tracecode run {summary.run_id}")
    create_table_artifact(key="tracecode-top-leads", table=_top_leads(ctx),
                          description=f"The {TOP_LEADS} highest-scored open leads (masked)")
    report = Path(ctx.out).resolve() / "report.html"
    create_link_artifact(key="tracecode-report", link=report.as_uri(),
                         link_text=f"report.html of run {summary.run_id}",
                         description=f"Lead report ({summary.leads} leads)")


def summary_markdown(summary: pipeline.RunSummary) -> str:
    """The run in a few lines: what was read, what became of it, the leads by category."""
    lines = [
        f"## tracecode run `{summary.run_id}`",
        "",
        f"{summary.files_ingested} new file(s), {summary.lines_read} lines read: "
        f"**{summary.records_stored} stored**, {summary.records_replaced} replaced, "
        f"{summary.lines_quarantined} quarantined; {summary.records_retracted} records "
        f"retracted; {summary.files_skipped} file(s) already in.",
    ]
    if summary.recovered_runs:
        lines += ["", "Counts include what unfinished run(s) ingested: "
                  + ", ".join(f"`{r}`" for r in summary.recovered_runs)]
    lines += ["", f"### {summary.leads} leads 线索", "", "| 类别 | category | leads |",
              "|---|---|--:|"]
    for category, n in summary.leads_by_category.items():
        label = CATEGORIES.get(category)
        lines.append(f"| {label.zh if label else ''} | {label.en if label else category} "
                     f"(`{category}`) | {n} |")
    if summary.data_quality:
        lines += ["", "### 数据质量 data quality (institutions by pattern)", "",
                  "| 问题 | pattern | institutions |", "|---|---|--:|"]
        for pattern, n in summary.data_quality.items():
            known = DQ_PATTERNS.get(pattern)
            lines.append(f"| {known.zh if known else ''} | `{pattern}` | {n} |")
    if summary.compliance:
        lines += ["", "### 合规 capture compliance (institutions by category)", "",
                  "| 类别 | category | institutions |", "|---|---|--:|"]
        for category, n in summary.compliance.items():
            label = COMPLIANCE_CATEGORIES.get(category)
            lines.append(f"| {label.zh if label else ''} | {label.en if label else ''} "
                         f"(`{category}`) | {n} |")
    head = summary.headline
    if head:
        rate = head.get("capture_rate")
        lines += ["", "### 总体情况 headline", "",
                  f"{head.get('institutions_connected')} of "
                  f"{head.get('institutions_registered')} institutions connected; "
                  f"{head.get('codes_collected')} codes collected"
                  + (f", capture rate {rate:.1%}" if rate is not None else "")
                  + f"; {head.get('institutions_proposed')} institutions proposed for "
                  f"inspection; amount at risk {head.get('amount_at_risk', 0):,.2f} yuan."]
    lines += ["", "### Timings (s)", "",
              ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds_by_stage.items())
              + f"; total {summary.seconds:.1f}"]
    if summary.screen.get("seconds"):
        lines.append("screen: " + ", ".join(
            f"{k} {v:.1f}" for k, v in summary.screen["seconds"].items()))
    return "\n".join(lines) + "\n"


def _top_leads(ctx: pipeline.RunContext) -> list[dict[str, Any]]:
    """The top open leads; person numbers masked like ID numbers (Prefect's database is
    not the investigators')."""
    rows = ctx.db.fetch_rows(
        "top leads for prefect",
        """select lead_id, score, category_zh, subject_type,
                  case when subject_type = 'person' then mask_certno(subject_id)
                       else subject_id end,
                  fixmedins_codes, round(amount, 2), reason
           from leads where status <> 'dismissed'
           order by score desc, lead_id limit $n""",
        {"n": TOP_LEADS},
    )
    keys = ("lead_id", "score", "类别", "subject_type", "subject", "institutions",
            "amount", "reason")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Serve the daily flow on its cron against the Prefect server of "
                    "PREFECT_API_URL (start one with `prefect server start`).")
    parser.add_argument("landing", type=Path)
    parser.add_argument("db", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--cron", default=CRON)
    args = parser.parse_args()
    daily.serve(
        name="tracecode-daily",
        cron=args.cron,
        parameters={"landing": str(args.landing.resolve()), "db": str(args.db.resolve()),
                    "out": str(args.out.resolve()),
                    "settings": str(args.settings.resolve()) if args.settings else None},
    )


if __name__ == "__main__":
    main()
