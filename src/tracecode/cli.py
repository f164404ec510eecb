"""``tracecode``: the command line. The only place errors become exit codes."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tracecode.errors import TracecodeError

app = typer.Typer(
    help="Screen drug traceability-code uploads (药品追溯码, NHSA 35xx) for suspicious leads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
SettingsOpt = Annotated[
    Path | None,
    typer.Option("--settings", help="TOML file of thresholds and model settings "
                                    "(sections [rules], [model], [score]); defaults otherwise."),
]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


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
    landing: Annotated[Path, typer.Argument(help="Landing directory: reference/ and messages/.")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file (created if absent).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for leads.csv, leads.parquet, "
                                                    "quarantine.csv, run_summary.json.")],
    settings: SettingsOpt = None,
    encoding: Annotated[str | None, typer.Option(
        help="Encoding of the reference CSVs (e.g. gb18030); detected when not given.")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Screen the whole history with every rule (the default screens "
                       "only what new data touched; the leads are the same).")] = False,
    unmask: Annotated[bool, typer.Option(
        "--unmask-personal-data", help="Write ID numbers and names unmasked in the evidence "
                                       "exports. Only when you must, on purpose.")] = False,
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
        from tracecode.settings import load_settings

        summary = pipeline.run(landing, db, out, load_settings(settings), encoding=encoding,
                               incremental=not full, unmask=unmask)
        typer.echo(
            f"{summary.lines_read} lines read: {summary.records_stored} stored, "
            f"{summary.records_replaced} replaced, {summary.lines_quarantined} quarantined; "
            f"{summary.records_retracted} records retracted."
        )
        typer.echo(f"{summary.leads} leads -> {out / 'leads.csv'}")
        for category, n in summary.leads_by_category.items():
            typer.echo(f"  {category:<22} {n}")

    _guard(debug, go)


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Landing directory to write (plus truth.csv).")],
    scale: Annotated[str, typer.Option(help="demo, city, province-day, ...")] = "demo",
    days: Annotated[int, typer.Option(help="Days of history.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2025-11-01",
    habits: Annotated[bool, typer.Option(
        help="Plant real upload habits and capture gaps (habits.csv).")] = False,
    debug: DebugOpt = False,
) -> None:
    """Generate a simulated province: reference data, uploads and planted frauds (truth.csv)."""
    _setup_logging(False)

    def go() -> None:
        from tracecode.simulate import simulate as simulate_world

        result = simulate_world(out, scale=scale, days=days, seed=seed,
                                start=_parse_date(start), habits=habits)
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
    lead_ids: Annotated[list[str], typer.Argument(help="Lead ids (lead_id column).")],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the runs.")],
    status: Annotated[str, typer.Option(help="confirmed, dismissed or open.")],
    note: Annotated[str, typer.Option(help="Why: kept with the decision.")] = "",
    by: Annotated[str, typer.Option(help="Who decided.")] = "",
    debug: DebugOpt = False,
) -> None:
    """Record an investigator's decision on leads. Dismissed leads leave the exported list
    from the next run on (and stay in the database with their decision)."""

    def go() -> None:
        from tracecode.db import Database
        from tracecode.leads import STATUSES

        if status not in STATUSES:
            raise TracecodeError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        with Database.open(db) as database:
            known = {r[0] for r in database.fetch_rows("lead ids", "select lead_id from leads")}
            unknown = [i for i in lead_ids if i not in known]
            if unknown:
                raise TracecodeError(f"no such lead(s) in {db}: {', '.join(unknown)}")
            for lead_id in lead_ids:
                database.execute(
                    "decide", "insert or replace into lead_status values ($id, $s, $n, $b, $t)",
                    {"id": lead_id, "s": status, "n": note, "b": by, "t": datetime.now()})
                database.execute("apply decision",
                                 "update leads set status = $s where lead_id = $id",
                                 {"id": lead_id, "s": status})
        typer.echo(f"{len(lead_ids)} lead(s) marked {status}")

    _guard(debug, go)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise TracecodeError(f"--start must be YYYY-MM-DD, got {text!r}") from e


def main(argv: list[str] | None = None) -> Any:
    return app(argv)
