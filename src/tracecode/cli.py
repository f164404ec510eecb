"""``tracecode``: the command line. The only place errors become exit codes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tracecode.errors import TracecodeError

app = typer.Typer(
    help="Screen drug traceability-code uploads (药品追溯码, NHSA 35xx) for suspicious leads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich markup would eat "[rules]" and print "<bool>" after flags
    rich_markup_mode=None,
)

T = TypeVar("T")

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
SettingsOpt = Annotated[
    Path | None,
    typer.Option("--settings", help="TOML file of thresholds and model settings "
                                    "(sections [rules], [model], [score]); defaults otherwise."),
]


def _setup_logging(verbose: bool) -> None:
    from tracecode.progress import setup_logging

    setup_logging(verbose)


def _version(value: bool) -> None:
    if value:
        from tracecode import __version__

        typer.echo(f"tracecode {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Screen drug traceability-code uploads (药品追溯码, NHSA 35xx) for suspicious leads."""


def _guard(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; a TracecodeError exits 2 with its message, anything else 1."""
    try:
        return action()
    except TracecodeError as e:
        if debug:
            raise
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except Exception as e:
        if debug:
            raise
        typer.secho(f"internal error: {type(e).__name__}: {e}\n"
                    "Run again with --debug for the traceback.", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


@app.command()
def run(
    landing: Annotated[Path, typer.Argument(help="Landing directory: reference/ and messages/.",
                                            metavar="LANDING")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file (created if absent).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for leads.csv, leads.parquet, "
                                                    "quarantine.csv, run_summary.json, "
                                                    "leads.xlsx and report.html.")],
    settings: SettingsOpt = None,
    encoding: Annotated[str | None, typer.Option(
        help="Encoding of the reference CSVs (e.g. gb18030); detected when not given.")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Screen the whole history with every rule (the default screens "
                       "only what new data touched; the leads are the same).")] = False,
    unmask: Annotated[bool, typer.Option(
        "--unmask-personal-data", help="Write ID numbers and names unmasked in the evidence "
                                       "exports. Only when you must, on purpose.")] = False,
    wait: Annotated[float, typer.Option(
        "--wait", metavar="SECONDS",
        help="When another run holds the database, wait up to this long for it to finish "
             "(default: refuse at once, naming the run that holds it).")] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every query.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Ingest what is new under LANDING into --db, run every check, write the leads to --out.

    Re-running on the same landing directory changes nothing; after new files arrive, only
    they are ingested and the lead list covers the whole history. Exit status 0 when the
    run completed, whatever it found; 2 when it could not run (the message says why).
    """
    _setup_logging(verbose)

    def go() -> None:
        from tracecode import pipeline
        from tracecode.exports import check_out
        from tracecode.progress import run_progress
        from tracecode.settings import load_settings

        check_out(out)
        with run_progress():
            summary = pipeline.run(landing, db, out, load_settings(settings),
                                   encoding=encoding, incremental=not full, unmask=unmask,
                                   wait_seconds=wait)
        typer.echo(
            f"{summary.lines_read} lines read: {summary.records_stored} stored, "
            f"{summary.records_replaced} replaced, {summary.lines_quarantined} quarantined; "
            f"{summary.records_retracted} records retracted."
        )
        typer.echo(f"{summary.leads} leads:")
        for category, n in summary.leads_by_category.items():
            typer.echo(f"  {category:<22} {n}")
        _echo_outputs(out)
        from tracecode.db import snapshot_path

        typer.echo(f"read-only snapshot for investigators -> {snapshot_path(db)}")

    _guard(debug, go)


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Landing directory to write (plus truth.csv).")],
    scale: Annotated[str, typer.Option(help="demo, city, province-day, ...")] = "demo",
    days: Annotated[int, typer.Option(help="Days of history.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2025-11-01",
    layout: Annotated[str, typer.Option(
        help="Message files: 'parts' (messages/<day>/part-NNNN.jsonl) or 'per-institution' "
             "(messages/<day>/<fixmedins_code>.jsonl, one file per institution per day)."
    )] = "parts",
    habits: Annotated[bool, typer.Option(
        help="Plant real upload habits and capture gaps (habits.csv).")] = False,
    debug: DebugOpt = False,
) -> None:
    """Generate a simulated province: reference data, uploads and planted frauds (truth.csv)."""
    _setup_logging(False)

    def go() -> None:
        from tracecode.simulate import simulate as simulate_world

        result = simulate_world(out, scale=scale, days=days, seed=seed,
                                start=_parse_date(start), layout=layout, habits=habits)
        typer.echo(f"{result.n_messages} messages, {result.n_codes} codes, "
                   f"{result.n_truth} planted frauds -> {out} ({result.seconds:.1f}s)")

    _guard(debug, go)


@app.command()
def evaluate(
    truth: Annotated[Path, typer.Option("--truth", help="truth.csv of a simulation.")],
    leads: Annotated[Path, typer.Option("--leads", help="leads.csv of a run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Precision and recall per category of a lead list against the simulator's truth."""

    def go() -> None:
        from tracecode import evaluate as ev

        result = ev.evaluate(truth, leads)
        # a simulation with --habits, and a run that wrote its findings beside the leads
        habits = truth.with_name("habits.csv")
        dq, comp = leads.with_name("data_quality.csv"), leads.with_name("compliance.csv")
        scores = (ev.evaluate_habits(habits, dq, comp)
                  if habits.is_file() and dq.is_file() and comp.is_file() else None)
        if as_json:
            out = ev.to_dict(result)
            if scores is not None:
                out["habits"] = [dataclasses.asdict(s) for s in scores]
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        else:
            typer.echo(ev.render_table(result))
            if result.false_positives:
                typer.echo("\nFalse positives by category:\n" + ev.render_false_positives(result))
            if scores is not None:
                typer.echo("\nData-quality and compliance findings against habits.csv:\n"
                           + ev.render_habits_table(scores))

    _guard(debug, go)


@app.command("rules")
def list_rules(
    markdown: Annotated[bool, typer.Option(help="Print the README's catalogue table.")] = False,
    debug: DebugOpt = False,
) -> None:
    """The rule catalogue: id, category, subject, severity and the settings each reads."""

    def go() -> None:
        from tracecode.rules import catalogue_markdown, load_rules
        from tracecode.settings import Settings

        rule_list = load_rules(settings=Settings())
        if markdown:
            typer.echo(catalogue_markdown(rule_list))
            return
        for r in rule_list:
            typer.echo(f"{r.id:<22} {r.subject_type:<12} sev {r.severity}  "
                       f"{', '.join(r.params) or '-'}")

    _guard(debug, go)


@app.command()
def mark(
    lead_ids: Annotated[list[str], typer.Argument(help="Lead ids (lead_id column).",
                                                  metavar="LEAD_ID...")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs (must exist).")],
    status: Annotated[str, typer.Option(help="confirmed, dismissed or open (or 属实, 排除, "
                                             "待核查).")],
    note: Annotated[str, typer.Option(help="Why: kept with the decision.")] = "",
    by: Annotated[str, typer.Option(help="Who decided (default: your login name).")] = "",
    debug: DebugOpt = False,
) -> None:
    """Record an investigator's decision on leads, in the audit trail (lead_reviews).

    A dismissed lead leaves the exported lists and is not raised again for the same
    evidence; it comes back as reopened when new evidence arrives. Confirmed stays
    confirmed.
    """

    def go() -> None:
        from tracecode.review import Decision, parse_decision, record_decisions

        decision = parse_decision(status)
        with _deciding(db, "tracecode mark") as database:
            result = record_decisions(
                database, [Decision(i, decision, note, by) for i in lead_ids], source="mark")
        typer.echo(f"{result.recorded} decision(s) recorded ({decision}); "
                   f"{result.unchanged} unchanged")

    _guard(debug, go)


review_app = typer.Typer(help="Investigators' decisions: read them back from the workbook.",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(review_app, name="review")


@review_app.command("import")
def review_import(
    file: Annotated[Path, typer.Argument(help="The edited leads.xlsx (sheet 线索), or a CSV "
                                              "with 线索编号, 核查结论, 核查说明, 核查人.",
                                         metavar="FILE")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs (must exist).")],
    by: Annotated[str, typer.Option(help="Reviewer for rows whose 核查人 is empty "
                                         "(default: your login name).")] = "",
    debug: DebugOpt = False,
) -> None:
    """Record every decision filled in (核查结论: 属实, 排除 or 待核查) with who and when.

    Rows left empty are skipped; a decision equal to the lead's latest is not recorded
    twice, so importing the same file again adds nothing. All or nothing: a lead id the
    database does not know fails the whole import.
    """

    def go() -> None:
        from dataclasses import replace

        from tracecode.review import read_review_file, record_decisions

        decisions = [d if d.decided_by or not by else replace(d, decided_by=by)
                     for d in read_review_file(file)]
        with _deciding(db, "tracecode review import") as database:
            result = record_decisions(database, decisions, source=file.name)
        typer.echo(f"{file}: {len(decisions)} decision(s) read, {result.recorded} recorded, "
                   f"{result.unchanged} unchanged")

    _guard(debug, go)


@app.command()
def export(
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs (must exist).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to (re)write the outputs in.")],
    unmask: Annotated[bool, typer.Option(
        "--unmask-personal-data", help="Write ID numbers and names unmasked. Only when you "
                                       "must, on purpose.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Rewrite the outputs (lead list, workbook, report) from the database, without a run:
    after review decisions, or to get a fresh workbook."""
    _setup_logging(False)

    def go() -> None:
        from tracecode.exports import check_out
        from tracecode.report import export_from_db

        check_out(out)
        with _open_existing(db) as database:
            n = export_from_db(database, out, unmask=unmask)
        typer.echo(f"{n} leads")
        _echo_outputs(out)

    _guard(debug, go)


@app.command("spark")
def spark_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for leads.csv, leads.parquet "
                                                    "and evidence.parquet.")],
    db: Annotated[Path | None, typer.Option(
        "--db", help="DuckDB file a run finished (or its read-only snapshot): its "
                     "normalised tables are exported to --inputs. None: --inputs holds "
                     "them already.")] = None,
    master: Annotated[str, typer.Option(
        help="spark.master: local[N] on this machine, or a cluster's "
             "(spark://HOST:7077, yarn, k8s://...).")] = "local[2]",
    inputs: Annotated[Path | None, typer.Option(
        help="Folder of the normalised tables as Parquet (<name>.parquet): written from "
             "--db and kept, or read when no --db (default: a temp folder). On a cluster, "
             "a path every executor reads.")] = None,
    work: Annotated[Path | None, typer.Option(
        help="Folder for the rule inputs Spark computes (net sales...), kept (default: a "
             "temp folder). On a cluster, a path every executor reads.")] = None,
    partitions: Annotated[int, typer.Option(
        help="spark.sql.shuffle.partitions, and the partitions of each rule input.")] = 8,
    settings: SettingsOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the rules on Apache Spark: the rule inputs (net sales, stock moves...) computed
    there from the normalised records, then every rule; write the rule leads and their
    evidence (the same SQL files; model and ring leads are DuckDB's)."""
    _setup_logging(False)

    def go() -> None:
        from tracecode.settings import load_settings
        from tracecode.spark.command import run_spark

        result = run_spark(db, out, load_settings(settings), master=master, inputs=inputs,
                           work=work, shuffle_partitions=partitions)
        typer.echo(f"{result.leads} leads from {result.evidence} evidence rows on Spark "
                   f"(export {result.export_seconds:.1f}s, inputs "
                   f"{result.inputs_seconds:.1f}s, rules {result.rules_seconds:.1f}s, "
                   f"leads {result.fold_seconds:.1f}s) -> {out}")

    _guard(debug, go)


@app.command("sql")
def sql_command(
    query_text: Annotated[str | None, typer.Argument(
        help="One SQL statement; none: an interactive prompt.", metavar="QUERY")] = None,
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs; its published "
                                                  "snapshot is read when there is one.")] = Path(
        "tracecode.duckdb"),
    file: Annotated[Path | None, typer.Option(
        "--file", help="Run the statement in this file (see sql/investigations/).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="NAME=VALUE for a $NAME in the query; repeat as needed.")] = None,
    to: Annotated[Path | None, typer.Option(
        "--to", help="Write the whole result to a .csv, .parquet or .xlsx file.")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in the terminal.")] = 50,
    unmask: Annotated[bool, typer.Option(
        "--unmask-personal-data", help="Show ID numbers and names unmasked. Only when you "
                                       "must, on purpose.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Query the database read-only (never blocking or breaking a run): a table in the
    terminal, or the whole result to a file. ID numbers and names are masked.

    Example: tracecode sql --db tracecode.duckdb --file sql/investigations/code_history.sql
    --param code=81234560000000070001
    """

    def go() -> None:
        from rich.console import Console

        from tracecode import investigate as iv

        if query_text and file:
            raise TracecodeError("give a QUERY or --file, not both")
        params = iv.parse_params(param or [])
        console = Console()
        with iv.open_for_reading(db) as database:
            _reading(database)
            if query_text is None and file is None:
                iv.prompt_loop(database, params, console, unmask=unmask, max_rows=max_rows)
                return
            text = iv.read_query_file(file) if file else str(query_text)
            frame = iv.query(database, text, params, source=str(file) if file else None)
        frame = frame if unmask else iv.mask_frame(frame)
        if to:
            iv.write_result(frame, to)
            typer.echo(f"{frame.height} rows -> {to}")
        else:
            console.print(iv.render_table(frame, max_rows=max_rows))

    _guard(debug, go)


@app.command()
def show(
    lead_id: Annotated[str, typer.Argument(help="The lead's id (lead_id column).",
                                           metavar="LEAD_ID")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs.")] = Path(
        "tracecode.duckdb"),
    max_rows: Annotated[int, typer.Option(help="Evidence rows shown.")] = 200,
    unmask: Annotated[bool, typer.Option(
        "--unmask-personal-data", help="Show ID numbers and names unmasked.")] = False,
    debug: DebugOpt = False,
) -> None:
    """A lead in full: what it says, its review history and its evidence."""

    def go() -> None:
        from rich.console import Console

        from tracecode import investigate as iv

        with iv.open_for_reading(db) as database:
            _reading(database)
            d = iv.lead_details(database, lead_id, unmask=unmask)
        Console().print(*iv.render_lead(d, max_rows=max_rows))

    _guard(debug, go)


def _reading(database: Any) -> None:
    """Say on stderr which file answers: the snapshot is as of the last run's end."""
    from datetime import datetime

    path = database.path
    when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    typer.secho(f"reading {path} (read-only, as of {when})", err=True, dim=True)


@contextmanager
def _deciding(db: Path, what: str) -> Iterator[Any]:
    """The database for recording decisions: under the run lock, so a running batch is
    named rather than interleaved with; afterwards the investigators' snapshot is
    published again, so that ``tracecode sql`` and ``show`` see the decisions."""
    from tracecode.db import publish_snapshot
    from tracecode.runlock import RunLock

    _require_db(db)  # before the lock, which would create a file beside a mistyped path
    with RunLock.acquire(db, what), _open_existing(db) as database:
        yield database
        publish_snapshot(database)


def _open_existing(db: Path) -> Any:
    """The database for writing decisions; a path that does not exist is an error, never a
    new empty database."""
    from tracecode.db import Database

    _require_db(db)
    return Database.open(db)


def _require_db(db: Path) -> None:
    if not db.is_file():
        raise TracecodeError(f"no database at {db}: give the --db your runs write to")


def _echo_outputs(out: Path) -> None:
    """The run's last lines: every output file, with its size."""
    from tracecode.report import OUTPUT_NAMES

    typer.echo(f"outputs in {out}:")
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            typer.echo(f"  {name}/ ({sum(1 for _ in path.iterdir())} pages)")
        elif path.exists():
            typer.echo(f"  {name} ({path.stat().st_size:,} bytes)")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise TracecodeError(f"--start must be YYYY-MM-DD, got {text!r}") from e


def main(argv: list[str] | None = None) -> Any:
    return app(argv)
