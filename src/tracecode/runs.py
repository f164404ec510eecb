"""The run record: one row of ``runs`` per run, from its start to its outcome.

A run is ``running`` from its start; it ends ``succeeded`` or ``failed`` (with the error).
A run found still ``running`` by the next one (which holds the lock, so the first is gone)
was killed: it becomes ``crashed``. What a run that did not finish ingested is counted by
the summary of the next run that finishes (``reported_by``), so no line is left out of
every summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import sklearn

from tracecode import anomaly
from tracecode.db import Database
from tracecode.ingest import FileStats
from tracecode.rules import Rule
from tracecode.settings import Settings


def start(db: Database, run_id: str, landing: Path, settings: Settings,
          rule_list: list[Rule], flow_run_id: str | None) -> datetime:
    """Record the run as ``running``; first mark runs that were killed as ``crashed``."""
    db.execute(
        "crashed runs",
        """update runs set outcome = 'crashed'
           where outcome = 'running' or (outcome is null and finished_at is null)""",
    )
    started = datetime.now()
    db.execute(
        "start run",
        """insert into runs (run_id, started_at, landing, outcome, pid, host, flow_run_id,
                             rules_version, model_version, settings)
           values ($id, $at, $landing, 'running', $pid, $host, $flow_run_id,
                   $rules_version, $model_version, $settings)""",
        {"id": run_id, "at": started, "landing": str(landing), "pid": os.getpid(),
         "host": socket.gethostname(), "flow_run_id": flow_run_id,
         "rules_version": rules_version(rule_list, settings),
         "model_version": f"{anomaly.MODEL_VERSION} (scikit-learn {sklearn.__version__})",
         "settings": json.dumps(asdict(settings), sort_keys=True)},
    )
    return started


def rules_version(rule_list: list[Rule], settings: Settings) -> str:
    """12 hex digits over every rule's id and SQL and the rule settings."""
    h = hashlib.sha256()
    for rule in sorted(rule_list, key=lambda r: r.id):
        h.update(rule.id.encode() + b"\0" + rule.sql.encode() + b"\0")
    h.update(json.dumps(settings.rule_params(), sort_keys=True).encode())
    return h.hexdigest()[:12]


def unreported(db: Database, run_id: str) -> tuple[list[str], list[FileStats]]:
    """Earlier runs that did not finish and whose ingest no summary has counted yet, and
    the files they and this run ingested (in the order they were ingested: a stage that
    was retried counts what each attempt committed)."""
    runs = [r[0] for r in db.fetch_rows(
        "unreported runs",
        """select run_id from runs
           where reported_by is null and run_id <> $run_id and outcome <> 'running'
             and outcome <> 'succeeded'
           order by started_at""",
        {"run_id": run_id},
    )]
    files = [FileStats(*row) for row in db.fetch_rows(
        "files of unreported runs",
        """select path, lines_read, records_stored, records_replaced, lines_quarantined,
                  batch_records
           from ingested_files where list_contains($runs, run_id) order by file_id""",
        {"runs": [*runs, run_id]},
    )]
    return runs, files


def nothing_new(db: Database, run_id: str) -> bool:
    """True when a screen would find what the last one did: this run brought no message
    or reference file, every earlier run was screened, and the last successful run ran
    the same rules, settings and model version."""
    (same,) = db.fetch_one(
        "nothing new since the last screen",
        """with this as (select * from runs where run_id = $run_id),
           last as (
               select * from runs
               where outcome = 'succeeded' and screened_at is not null
               order by started_at desc limit 1
           )
           select
               not exists (select 1 from ingested_files where run_id = $run_id)
               and not exists (select 1 from reference_files where run_id = $run_id)
               and not exists (select 1 from runs
                               where screened_at is null and run_id <> $run_id)
               and exists (select 1 from this join last
                           on this.rules_version = last.rules_version
                          and this.model_version = last.model_version
                          and this.settings::varchar = last.settings::varchar)""",
        {"run_id": run_id},
    )
    return bool(same)


def finish(db: Database, run_id: str, summary: dict[str, Any]) -> None:
    """``succeeded``, with the counts; the unfinished runs it counted are reported by it."""
    db.execute(
        "finish run",
        """update runs set finished_at = now(), outcome = 'succeeded', summary = $summary,
                  files_ingested = $files, lines_read = $lines_read,
                  records_stored = $stored, records_replaced = $replaced,
                  lines_quarantined = $quarantined, leads = $leads
           where run_id = $run_id""",
        {"summary": json.dumps(summary, default=str), "run_id": run_id,
         "files": summary["files_ingested"], "lines_read": summary["lines_read"],
         "stored": summary["records_stored"], "replaced": summary["records_replaced"],
         "quarantined": summary["lines_quarantined"], "leads": summary["leads"]},
    )
    db.execute(
        "report unfinished runs",
        """update runs set reported_by = $run_id
           where reported_by is null and (run_id = $run_id or outcome in ('failed', 'crashed'))""",
        {"run_id": run_id},
    )


def fail(db: Database, run_id: str, error: BaseException) -> None:
    """``failed``, with the error's first line (the rest is in the log)."""
    message = (str(error) or type(error).__name__).splitlines()[0][:500]
    db.execute(
        "fail run",
        """update runs set outcome = 'failed', finished_at = now(), error = $error
           where run_id = $run_id""",
        {"run_id": run_id, "error": message},
    )
