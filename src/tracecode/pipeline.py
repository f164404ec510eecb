"""The whole batch, stage by stage: the one place the CLI and the Prefect flows call.

>>> summary = run(Path("sample_data"), Path("out/tracecode.duckdb"), Path("out"))  # doctest: +SKIP
>>> summary.leads_by_category                                                       # doctest: +SKIP
{'dup_same_institution': 3, ...}
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tracecode import anomaly, ingest, inputs, leads, reference, report, rules
from tracecode.db import Database
from tracecode.errors import InputError
from tracecode.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What ``run_summary.json`` holds. The counts are of this run's new files."""

    run_id: str
    landing: str
    started_at: str
    seconds: float
    lines_read: int
    records_stored: int
    records_replaced: int
    records_retracted: int
    lines_quarantined: int
    earlier_records_replaced: int
    codes_stored: int
    files_ingested: int
    files_skipped: int
    leads: int
    leads_by_category: dict[str, int]
    leads_dismissed: int
    reference: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    screen: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    return datetime.now().strftime("R%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


def ingest_stage(
    db_path: Path, landing: Path, run_id: str, *, encoding: str | None = None
) -> tuple[list[reference.ReferenceResult], ingest.IngestResult]:
    """Reference files, then new message files."""
    with Database.open(db_path) as db:
        refs = reference.load_reference(db, landing, run_id, encoding=encoding)
        result = ingest.ingest_messages(db, landing, run_id)
    return refs, result


@dataclass(frozen=True)
class ScreenResult:
    """What the screen did: each rule's run, how, and how long each step took."""

    rules: list[rules.RuleRun]
    rebuilt: bool                   # inputs and every rule over the whole history
    rules_on_touched: int           # rules that screened only the touched subjects
    touched_codes: int              # codes whose kept inputs were recomputed (0 if rebuilt)
    seconds: dict[str, float]       # inputs, rules, leads, model, commit

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["rules"]  # the summary lists them on their own
        return d


def screen_stage(
    db_path: Path, settings: Settings, run_id: str, *, incremental: bool = True
) -> ScreenResult:
    """Every rule, then the lead list, then the model, in one transaction.

    Incremental by default: the kept inputs (:mod:`tracecode.inputs`) are refreshed for
    the codes that data not yet screened touched, and a rule screens only the subjects
    whose inputs changed, unless it must see everything (see :func:`full_rules`). The
    leads are the same as a full rebuild's either way; ``incremental=False`` forces the
    full rebuild.
    """
    rule_list = rules.load_rules(settings=settings)
    models = Path(db_path).parent / "models"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 3)
        clock = now

    with Database.open(db_path, engine=settings.engine) as db, db.transaction():
        # a full rebuild recomputes the kept inputs too; so does a change of the views
        # that define them, which changes what every rule sees
        rebuild = not incremental or not inputs.is_current(db)
        full = {r.id for r in rule_list} if rebuild else full_rules(db, rule_list, settings)
        scoped = frozenset(r.id for r in rule_list if r.id not in full)
        params = settings.rule_params()
        waits = {r.subject_type: float(params[r.waits])
                 for r in rule_list if r.id in scoped and r.waits is not None}
        with inputs.open_scope(db, rebuild=rebuild, waits=waits) as scope:
            lap("inputs")
            runs = rules.run_rules(db, rule_list, settings, run_id, scope=scope, scoped=scoped)
            lap("rules")
            leads.build_leads(db, rule_list, settings, scope=scope, scoped=scoped)
            lap("leads")
        # the model sees the whole history each run; its fitted models are kept
        # beside the database, one folder per run, so every run's scores can be
        # reproduced
        with inputs.kept_inputs_as_views(db):
            anomaly.run_model(db, settings, models / run_id)
            leads.merge_anomalies(db, settings)
        lap("model")
        db.execute("mark screened",
                   "update runs set screened_at = now() where screened_at is null")
    lap("commit")
    anomaly.prune_models(models, settings.model.keep_model_runs)
    touched = scope.touched_codes
    result = ScreenResult(runs, rebuild, len(scoped), touched, seconds)
    log.info("screen: %s; %d rules on touched subjects, %d over the whole history; %s",
             "rebuilt from the whole history" if rebuild else f"{touched} codes touched",
             len(scoped), len(rule_list) - len(scoped),
             ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    return result


def full_rules(db: Database, rule_list: list[rules.Rule], settings: Settings) -> set[str]:
    """Rules that must screen the whole history this time: all of them when reference data
    changed since the last screening; else those that are new, whose SQL or settings
    changed, or that depend on the data as a whole (:attr:`Rule.scopable`)."""
    (ref_changed,) = db.fetch_one(
        "reference changed",
        """select count(*) > 0 from reference_files
           where run_id in (select run_id from runs where screened_at is null)""",
    )
    if ref_changed:
        return {r.id for r in rule_list}
    last = {
        row[0]: (row[1], row[2])
        for row in db.fetch_rows(
            "last rule runs",
            """select rr.rule_id, rr.sql_text, rr.params::varchar
               from rule_runs rr join runs r using (run_id)
               where r.screened_at is not null
               qualify row_number() over (partition by rr.rule_id
                                          order by r.started_at desc) = 1""",
        )
    }
    params = settings.rule_params()
    full = set()
    for rule in rule_list:
        now = (rule.sql, json.dumps({k: params[k] for k in rule.params}, sort_keys=True))
        if not rule.scopable or last.get(rule.id) != now:
            full.add(rule.id)
    return full


def export_stage(db_path: Path, out: Path, summary: RunSummary, *, unmask: bool = False) -> None:
    with Database.open(db_path) as db:
        report.write_outputs(db, out, summary.to_dict(), unmask=unmask)
        db.execute(
            "finish run",
            "update runs set finished_at = now(), summary = $summary where run_id = $run_id",
            {"summary": json.dumps(summary.to_dict(), default=str), "run_id": summary.run_id},
        )


def start_run(db_path: Path, landing: Path) -> tuple[str, str]:
    run_id = new_run_id()
    started = datetime.now()
    with Database.open(db_path) as db:
        db.execute(
            "start run", "insert into runs (run_id, started_at, landing) values ($id, $at, $l)",
            {"id": run_id, "at": started, "l": str(landing)},
        )
    return run_id, started.isoformat(timespec="seconds")


def summarize(
    db_path: Path, run_id: str, landing: Path, started_at: str, seconds: float,
    refs: list[reference.ReferenceResult], result: ingest.IngestResult,
    screen: ScreenResult,
) -> RunSummary:
    with Database.open(db_path) as db:
        by_category = dict(db.fetch_rows(
            "leads by category",
            """select category, count(*) from leads where status <> 'dismissed'
               group by category order by category""",
        ))
        (dismissed,) = db.fetch_one(
            "dismissed", "select count(*) from leads where status = 'dismissed'")
        totals = dict(zip(
            ("records", "current_records", "codes", "quarantined", "files"),
            db.fetch_one("totals", """select
                (select count(*) from records),
                (select count(*) from records where is_current),
                (select count(*) from record_codes),
                (select count(*) from quarantine),
                (select count(*) from ingested_files)"""),
            strict=True,
        ))
    return RunSummary(
        run_id=run_id, landing=str(landing), started_at=started_at, seconds=round(seconds, 2),
        lines_read=result.lines_read, records_stored=result.records_stored,
        records_replaced=result.records_replaced, records_retracted=result.records_retracted,
        lines_quarantined=result.lines_quarantined,
        earlier_records_replaced=result.earlier_records_replaced,
        codes_stored=result.codes_stored, files_ingested=len(result.files),
        files_skipped=result.files_skipped,
        leads=sum(by_category.values()), leads_by_category=by_category,
        leads_dismissed=int(dismissed),
        reference=[asdict(r) for r in refs],
        rules=[asdict(r) for r in screen.rules],
        screen=screen.to_dict(),
        files=[asdict(f) for f in result.files],
        totals={k: int(v) for k, v in totals.items()},
    )


def run(
    landing: Path, db_path: Path, out: Path, settings: Settings | None = None, *,
    encoding: str | None = None, incremental: bool = True, unmask: bool = False,
) -> RunSummary:
    """Ingest what is new under ``landing``, screen the whole history, write ``out``."""
    settings = settings or Settings()
    if not landing.is_dir():
        raise InputError(f"landing directory {landing} does not exist")
    began = time.perf_counter()
    run_id, started_at = start_run(db_path, landing)
    refs, result = ingest_stage(db_path, landing, run_id, encoding=encoding)
    screen = screen_stage(db_path, settings, run_id, incremental=incremental)
    summary = summarize(db_path, run_id, landing, started_at, time.perf_counter() - began,
                        refs, result, screen)
    export_stage(db_path, out, summary, unmask=unmask)
    log.info("run %s: %d leads, %s", run_id, summary.leads, summary.leads_by_category)
    return summary
