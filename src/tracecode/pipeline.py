"""The whole batch, stage by stage: the one place the CLI and the Prefect flows call.

A run holds the database's run lock (:mod:`tracecode.runlock`) and one open connection
from start to end, runs the stages of :data:`STAGES` in order, and publishes the
read-only snapshot investigators query (:func:`tracecode.db.publish_snapshot`)::

    with open_run(landing, db_path, out, RunOptions(settings)) as ctx:
        for stage in STAGES:
            run_stage(ctx, stage)

>>> summary = run(Path("sample_data"), Path("out/tracecode.duckdb"), Path("out"))  # doctest: +SKIP
>>> summary.leads_by_category                                                       # doctest: +SKIP
{'dup_same_institution': 3, ...}
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tracecode import (
    anomaly,
    compliance,
    ingest,
    inputs,
    leads,
    quality,
    reference,
    report,
    rings,
    rules,
    runs,
)
from tracecode.db import Database, publish_snapshot
from tracecode.errors import DatabaseError, InputError
from tracecode.runlock import RunLock
from tracecode.settings import IngestSettings, Settings

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
    # records kept beside another under a reused key; records stored from batch lines
    key_collisions: int = 0
    batch_records: int = 0
    # earlier runs that did not finish, whose ingest this summary counts too
    recovered_runs: list[str] = field(default_factory=list)
    seconds_by_stage: dict[str, float] = field(default_factory=dict)
    flow_run_id: str | None = None
    # files refused, changed or disappeared: how many now by kind, and the new ones in full
    files_noticed: dict[str, int] = field(default_factory=dict)
    file_notices: list[dict[str, Any]] = field(default_factory=list)
    # data-quality findings by pattern, compliance findings by category, and the bureau's
    # headline figures (tracecode.compliance.headline)
    data_quality: dict[str, int] = field(default_factory=dict)
    compliance: dict[str, int] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    return datetime.now().strftime("R%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


def ingest_stage(
    db: Database | Path, landing: Path, run_id: str, *, encoding: str | None = None,
    select: Callable[[str], bool] | None = None,
    ingest_settings: IngestSettings | None = None,
) -> tuple[list[reference.ReferenceResult], ingest.IngestResult]:
    """Reference files, then new message files (those ``select`` keeps, if given)."""
    with _opened(db) as con:
        refs = reference.load_reference(con, landing, run_id, encoding=encoding)
        result = ingest.ingest_messages(con, landing, run_id, select=select,
                                        settings=ingest_settings)
    return refs, result


@contextmanager
def _opened(db: Database | Path, settings: Settings | None = None) -> Iterator[Database]:
    """The run's connection as it is, or a path opened for this call alone (benchmarks)."""
    if isinstance(db, Database):
        yield db
        return
    with Database.open(db, engine=(settings or Settings()).engine) as con:
        yield con


@dataclass(frozen=True)
class ScreenResult:
    """What the screen did: each rule's run, how, and how long each step took."""

    rules: list[rules.RuleRun]
    rebuilt: bool                   # inputs and every rule over the whole history
    rules_on_touched: int           # rules that screened only the touched subjects
    touched_codes: int              # codes whose kept inputs were recomputed (0 if rebuilt)
    seconds: dict[str, float]       # inputs, exemptions, rules, leads, quality, model, commit
    skipped: bool = False           # nothing new since the last screen: leads as they were

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["rules"]  # the summary lists them on their own
        return d


def screen_stage(
    db_path: Database | Path, settings: Settings, run_id: str, *, incremental: bool = True
) -> ScreenResult:
    """Every rule, then the lead list, then the model, in one transaction.

    Incremental by default: the kept inputs (:mod:`tracecode.inputs`) are refreshed for
    the codes that data not yet screened touched, and a rule screens only the subjects
    whose inputs changed, unless it must see everything (see :func:`full_rules`). The
    leads are the same as a full rebuild's either way; ``incremental=False`` forces the
    full rebuild.
    """
    rule_list = rules.load_rules(settings=settings)
    where = db_path.path if isinstance(db_path, Database) else Path(db_path)
    models = Path(where or ".").parent / "models"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 3)
        clock = now

    with _opened(db_path, settings) as db, db.transaction():
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
            # upload habits the rules stay out of; a rule whose exemptions changed
            # screens everything
            with inputs.kept_inputs_as_views(db):
                scoped = scoped - quality.prepare(db, settings, rule_list)
            lap("exemptions")
            runs = rules.run_rules(db, rule_list, settings, run_id, scope=scope, scoped=scoped)
            lap("rules")
            leads.build_leads(db, rule_list, settings, scope=scope, scoped=scoped)
            # collusion rings: cases made of the code leads that link institutions
            rings.build_rings(db, settings)
            lap("leads")
        with inputs.kept_inputs_as_views(db):
            quality.build_findings(db, settings)
            compliance.build_findings(db, settings)
            lap("quality")
            # the model sees the whole history each run, with a fit kept beside the
            # database (refitted on a schedule, models/kept); the fit each run used is
            # also saved in its own folder, so every run's scores can be reproduced
            anomaly.run_model(db, settings, models / run_id, kept_dir=models / "kept")
            anomaly.merge_anomalies(db, settings)
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


# -- one run: options, the context the stages share, the stages ----------------------------


@dataclass(frozen=True)
class RunOptions:
    """Everything ``tracecode run`` and the flows take besides the three paths."""

    settings: Settings = field(default_factory=Settings)
    encoding: str | None = None           # of the reference CSVs; detected when None
    incremental: bool = True              # False: screen the whole history (--full)
    unmask: bool = False                  # ID numbers and names unmasked in the exports
    wait_seconds: float = 0.0             # for a run holding the lock; 0 refuses at once
    select: Callable[[str], bool] | None = None  # message files to ingest (a backfill's day)
    flow_run_id: str | None = None        # Prefect's, recorded with the run


@dataclass
class RunContext:
    """A run in progress: what its stages share. Each stage fills in its part."""

    db: Database
    landing: Path
    out: Path
    options: RunOptions
    run_id: str
    started_at: str
    began: float = field(default_factory=time.perf_counter)
    refs: list[reference.ReferenceResult] = field(default_factory=list)
    ingested: ingest.IngestResult = field(default_factory=ingest.IngestResult)
    screen: ScreenResult | None = None
    summary: RunSummary | None = None
    snapshot: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A step of the run. Each commits whole or not at all, so after an I/O error it may
    simply run again (the flows retry it)."""

    name: str
    run: Callable[[RunContext], None]


def _ingest(ctx: RunContext) -> None:
    ctx.refs, ctx.ingested = ingest_stage(ctx.db, ctx.landing, ctx.run_id,
                                          encoding=ctx.options.encoding,
                                          select=ctx.options.select,
                                          ingest_settings=ctx.options.settings.ingest)


def _screen(ctx: RunContext) -> None:
    if (ctx.options.incremental and runs.nothing_new(ctx.db, ctx.run_id)
            and inputs.is_current(ctx.db)):
        # a re-run of a finished day: the same data, rules and model give the same leads
        ctx.db.execute("mark screened",
                       "update runs set screened_at = now() where run_id = $run_id",
                       {"run_id": ctx.run_id})
        log.info("screen: nothing new since the last screen; leads as they were")
        ctx.screen = ScreenResult([], False, 0, 0, {}, skipped=True)
        return
    ctx.screen = screen_stage(ctx.db, ctx.options.settings, ctx.run_id,
                              incremental=ctx.options.incremental)


def _export(ctx: RunContext) -> None:
    ctx.summary = summarize(ctx)
    report.write_outputs(ctx.db, ctx.out, ctx.summary.to_dict(), unmask=ctx.options.unmask)
    runs.finish(ctx.db, ctx.run_id, ctx.summary.to_dict())


def _publish(ctx: RunContext) -> None:
    ctx.snapshot = publish_snapshot(ctx.db)


# The stages of every run, in order: the CLI and the flows both run exactly these.
STAGES: tuple[Stage, ...] = (
    Stage("ingest", _ingest),
    Stage("screen", _screen),
    Stage("export", _export),
    Stage("publish", _publish),
)


def run_stage(ctx: RunContext, stage: Stage) -> None:
    """Run one stage and time it."""
    log.info("stage %s: started (run %s)", stage.name, ctx.run_id)
    began = time.perf_counter()
    stage.run(ctx)
    ctx.seconds[stage.name] = round(time.perf_counter() - began, 3)
    log.info("stage %s: done in %.1fs", stage.name, ctx.seconds[stage.name])


@contextmanager
def open_run(
    landing: Path, db_path: Path, out: Path, options: RunOptions | None = None
) -> Iterator[RunContext]:
    """Take the run lock, open the database once, record the run; record its outcome.

    A second run on the same database waits ``options.wait_seconds`` for the first, then
    raises :class:`~tracecode.errors.RunLockedError` naming it.
    """
    options = options or RunOptions()
    landing, db_path, out = Path(landing), Path(db_path), Path(out)
    if not landing.is_dir():
        raise InputError(f"landing directory {landing} does not exist")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the outputs")
    run_id = new_run_id()
    deadline = time.monotonic() + options.wait_seconds
    with RunLock.acquire(db_path, run_id, wait_seconds=options.wait_seconds), \
            _open_waiting(db_path, deadline, options.settings) as db:
        rule_list = rules.load_rules(settings=options.settings)
        started = runs.start(db, run_id, landing, options.settings, rule_list,
                             options.flow_run_id)
        ctx = RunContext(db, landing, out, options, run_id,
                         started.isoformat(timespec="seconds"))
        try:
            yield ctx
        except BaseException as e:
            try:
                runs.fail(db, run_id, e)
            except Exception:  # the database itself may be what failed
                log.exception("could not record the failure of run %s", run_id)
            raise


def _open_waiting(db_path: Path, deadline: float, settings: Settings) -> Database:
    """Open for the run; while another process (a reader of the live file) has it open,
    try again until ``deadline``."""
    while True:
        try:
            return Database.open(db_path, engine=settings.engine)
        except DatabaseError as e:
            if "lock" not in str(e).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def start_run(db: Database | Path, landing: Path) -> tuple[str, str]:
    """Record a run outside :func:`open_run` (benchmarks that call stages one by one)."""
    run_id = new_run_id()
    settings = Settings()
    with _opened(db) as con:
        started = runs.start(con, run_id, landing, settings,
                             rules.load_rules(settings=settings), None)
    return run_id, started.isoformat(timespec="seconds")


def summarize(ctx: RunContext) -> RunSummary:
    """The run's summary: its counts, plus those of earlier runs that did not finish."""
    db, result = ctx.db, ctx.ingested
    if ctx.screen is None:
        raise InputError("summarize needs the screen stage to have run")
    recovered, files = runs.unreported(db, ctx.run_id)
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
    if recovered:
        log.info("summary counts what unfinished run(s) %s ingested", ", ".join(recovered))
    data_quality = {str(k): int(v) for k, v in db.fetch_rows(
        "findings by pattern",
        "select pattern, count(*) from dq_findings group by all order by pattern")}
    by_compliance = {str(k): int(v) for k, v in db.fetch_rows(
        "compliance by category",
        "select category, count(*) from compliance_findings group by all order by 1")}
    headline = compliance.headline(db, ctx.options.settings)
    return RunSummary(
        run_id=ctx.run_id, landing=str(ctx.landing), started_at=ctx.started_at,
        seconds=round(time.perf_counter() - ctx.began, 2),
        lines_read=sum(f.lines_read for f in files),
        records_stored=sum(f.records_stored for f in files),
        records_replaced=sum(f.records_replaced for f in files),
        records_retracted=result.records_retracted,
        lines_quarantined=sum(f.lines_quarantined for f in files),
        earlier_records_replaced=result.earlier_records_replaced,
        codes_stored=result.codes_stored, files_ingested=len(files),
        files_skipped=result.files_skipped,
        leads=sum(by_category.values()), leads_by_category=by_category,
        leads_dismissed=int(dismissed),
        reference=[asdict(r) for r in ctx.refs],
        rules=[asdict(r) for r in ctx.screen.rules],
        screen=ctx.screen.to_dict(),
        files=[asdict(f) for f in files],
        totals={k: int(v) for k, v in totals.items()},
        key_collisions=result.key_collisions,
        batch_records=sum(f.batch_records for f in files),
        recovered_runs=recovered,
        seconds_by_stage=dict(ctx.seconds),
        flow_run_id=ctx.options.flow_run_id,
        files_noticed=result.notice_counts,
        file_notices=[asdict(n) for n in result.notices if n.new],
        data_quality=data_quality, compliance=by_compliance, headline=headline,
    )


def run(
    landing: Path, db_path: Path, out: Path, settings: Settings | None = None, *,
    encoding: str | None = None, incremental: bool = True, unmask: bool = False,
    wait_seconds: float = 0.0, select: Callable[[str], bool] | None = None,
) -> RunSummary:
    """Ingest what is new under ``landing``, screen the whole history, write ``out``,
    publish the snapshot."""
    options = RunOptions(settings or Settings(), encoding=encoding, incremental=incremental,
                         unmask=unmask, wait_seconds=wait_seconds, select=select)
    with open_run(landing, db_path, out, options) as ctx:
        for stage in STAGES:
            run_stage(ctx, stage)
    assert ctx.summary is not None
    log.info("run %s: %d leads, %s", ctx.run_id, ctx.summary.leads,
             ctx.summary.leads_by_category)
    return ctx.summary
