"""What the rules and the model read, kept between runs and refreshed code by code, and the
:class:`Scope` a screen works on.

Net sales (``sales``, sql/views/020_sales.sql) walk every code's history at every
institution to pair returns with sales; computing them afresh each night would cost the
whole history. The screen keeps them, the stock moves and the sales by record in
tables::

    screened_sales          = sales         as of the last screening
    screened_stock_moves    = stock_moves   as of the last screening
    screened_sale_records   = sale_records  as of the last screening

and refreshes only the rows of the codes the new data touched (sql/screen/scope.sql,
then sql/screen/refresh.sql, which applies the views' own table macros to the touched
codes' records). The kept tables remember the digest of the schema and views that built
them (``screen_state``); when those change, they are rebuilt from the views.

A rule reads its inputs by name (``sales``, ``stock_moves``, ``sale_records``...); the
runner binds each name to the relation the rule's group screens, as
:meth:`Scope.inputs` gives it. Nothing shadows the database's views.

>>> with open_scope(db, rebuild=False) as scope:        # doctest: +SKIP
...     scope.inputs("person")["sales"]
'person_sales'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from tracecode.db import Database, schema_digest

log = logging.getLogger(__name__)

# view -> the table keeping it between runs
KEPT = {
    "sales": "screened_sales",
    "stock_moves": "screened_stock_moves",
    "sale_records": "screened_sale_records",
}

# what rules screening every subject read, by input name
ALL_INPUTS: Mapping[str, str] = KEPT
# and in a rebuilt scope: the activation of every code, computed once for the rules that
# look codes up in the register (the view would compute it once per rule)
REBUILT_INPUTS: Mapping[str, str] = {**KEPT, "code_activations": "all_code_activations"}
# and rules screening only touched subjects (temp tables and views of sql/screen)
SCOPED_INPUTS: Mapping[str, Mapping[str, str]] = {
    "code": {
        "sale_events": "touched_sale_events",
        "sales": "touched_sales",
        "sale_returns": "code_sale_returns",
        "stock_moves": "touched_stock_moves",
        "code_activations": "code_activations_touched",
    },
    "person": {
        "sales": "person_sales",
        "sale_records": "person_sale_records",
        "stock_moves": "screened_stock_moves",  # stock belongs to institutions
    },
    "institution": {
        "sales": "institution_sales",
        "sale_records": "institution_sale_records",
        "stock_moves": "institution_stock_moves",
    },
}

# every temp relation a scope creates, dropped when it closes
_TEMP_TABLES = (
    "touched_records", "scope_code", "scope_person", "scope_institution", "scope_rec_ids",
    "touched_live_records", "touched_sale_events", "touched_sales", "touched_stock_moves",
    "touched_kept_sales", "touched_sale_rec_ids", "code_activations_touched",
    "all_code_activations",
)
_TEMP_VIEWS = (
    "scoped_records", "scoped_record_codes", "touched_record_sales", "code_sale_returns",
    "person_sales", "person_sale_records", "institution_sales",
    "institution_sale_records", "institution_stock_moves",
)


@dataclass(frozen=True)
class Scope:
    """What one screen works on, once the kept inputs are current.

    ``rebuilt``: everything was recomputed and every rule screens the whole history.
    Otherwise ``subjects`` names, per subject type, the temp table of the touched
    subjects (one column, ``subject_id``); a scoped rule screens those only, reading the
    relations :meth:`inputs` names.
    """

    rebuilt: bool
    touched_codes: int               # codes recomputed (0 when rebuilt)
    clock_before: datetime | None    # the data clock at the previous screening
    clock_after: datetime | None     # and now
    subjects: Mapping[str, str] = field(default_factory=dict)
    # what rules screening every subject read (Spark binds its own computed inputs)
    every: Mapping[str, str] = field(default_factory=lambda: ALL_INPUTS)

    def inputs(self, subject_type: str | None) -> Mapping[str, str]:
        """Input name -> relation, for rules screening touched subjects of
        ``subject_type``, or (``None``) every subject."""
        if subject_type is None:
            return self.every
        if self.rebuilt:
            raise ValueError("a rebuilt scope screens every subject")
        return SCOPED_INPUTS[subject_type]

    def subject_table(self, subject_type: str) -> str:
        """The temp table of the touched subjects of a type."""
        return self.subjects[subject_type]


def is_current(db: Database) -> bool:
    """Whether the kept tables exist and were built by this schema and these views."""
    (n_tables,) = db.fetch_one(
        "kept tables",
        """select count(*) from duckdb_tables()
           where database_name = current_database() and schema_name = 'main'
             and list_contains($tables, table_name)""",
        {"tables": list(KEPT.values())},
    )
    if n_tables < len(KEPT):
        return False
    return db.fetch_rows("kept digest", "select inputs_digest from screen_state") == [
        (schema_digest(),)
    ]


@contextmanager
def open_scope(
    db: Database, *, rebuild: bool, waits: Mapping[str, float] | None = None
) -> Iterator[Scope]:
    """Bring the kept tables up to the data ingested so far and yield what to screen.

    ``rebuild``: recompute them from the whole history. Otherwise recompute the codes that
    data not yet screened touched and widen the person and institution scopes to every
    subject whose kept rows changed (a return on one person's card can take back another's
    sale). ``waits`` (subject type -> lag in days) adds, for rules that wait on the data
    clock, the subjects whose sales the clock's move brought into judgement. Every temp
    relation made here is dropped when the block ends.
    """
    try:
        yield _refresh(db, rebuild=rebuild, waits=waits or {})
    finally:
        for name in _TEMP_VIEWS:
            db.execute(f"drop {name}", f"drop view if exists temp.main.{name}")
        for name in _TEMP_TABLES:
            db.execute(f"drop {name}", f"drop table if exists temp.main.{name}")


def _refresh(db: Database, *, rebuild: bool, waits: Mapping[str, float]) -> Scope:
    started = time.perf_counter()
    if rebuild:
        db.run_file("screen/rebuild.sql", {"digest": schema_digest()})
        log.info("inputs: rebuilt from the whole history in %.1fs",
                 time.perf_counter() - started)
        return Scope(rebuilt=True, touched_codes=0, clock_before=None, clock_after=_clock(db),
                     every=REBUILT_INPUTS)

    (before,) = db.fetch_one("clock before", "select max(clock_as_of) from screen_state")
    db.run_file("screen/scope.sql")
    db.run_file("screen/refresh.sql")
    after = _clock(db)
    for subject_type, lag_days in sorted(waits.items()):
        if subject_type not in ("person", "institution"):
            raise ValueError(f"a rule on {subject_type}s cannot wait on the data clock")
        db.run_file("screen/wait_on_clock.sql", {
            "subject_type": subject_type, "lag_days": lag_days,
            "before": before, "after": after})
    db.run_file("screen/inputs.sql")
    (n_codes,) = db.fetch_one("touched codes", "select count(*) from scope_code")
    log.info("inputs: %d touched codes refreshed in %.1fs", n_codes,
             time.perf_counter() - started)
    return Scope(
        rebuilt=False, touched_codes=int(n_codes), clock_before=before, clock_after=after,
        subjects={t: f"scope_{t}" for t in ("code", "person", "institution")},
    )


@contextmanager
def kept_inputs_as_views(db: Database) -> Iterator[None]:
    """Inside the block, ``sales`` and ``stock_moves`` read the kept tables.

    Only for readers that name the views and cannot be given relations yet (the model's
    sql/features and sql/leads/anomaly_leads.sql): right after a refresh the kept tables
    equal the views, and reading them is much cheaper. The rules never see this.
    """
    main = _main(db)
    try:
        for view in ("sales", "stock_moves"):
            db.execute(f"kept {view}", f"create or replace temp view {view} as "
                                       f"select * from {main}.{KEPT[view]}")
        yield
    finally:
        for view in ("sales", "stock_moves"):
            db.execute(f"unkept {view}", f"drop view if exists temp.main.{view}")


def _clock(db: Database) -> datetime | None:
    return db.fetch_one("data clock", "select as_of from data_clock")[0]


def _main(db: Database) -> str:
    """The database's own schema, spelled so that a temporary view cannot shadow it."""
    (name,) = db.fetch_one("database name", "select current_database()")
    return '"' + name.replace('"', '""') + '".main'
