"""What the rules and the model read, kept between runs and refreshed code by code.

Net sales (``sales``, sql/views/020_sales.sql) walk every code's history at every
institution to pair returns with sales; computing them afresh each night would cost the
whole history. The screen keeps them, the stock moves and the sales by record in
tables::

    screened_sales          = sales         as of the last screening
    screened_stock_moves    = stock_moves   as of the last screening
    screened_sale_records   = sale_records  as of the last screening

and refreshes only the rows of the codes the new data touched (``scope_code``, from
sql/leads/scope.sql), and the sale records holding those codes. That is exact: a code's
net sales and stock moves depend only on the records listing it, on 3507 deletions and
on codeless returns, and scope.sql counts a deletion or a codeless return as touching
the record it acts on and its codes; a sale record is the sum of its codes' net sales,
or, for a sale listing no code, the sale itself while no deletion or return took it back.
The kept tables remember the digest of the schema and views that built them
(``screen_state``); when those change, they are rebuilt from the views.

While a screen runs, rules see their inputs through temporary views of the same names
(``sales``, ``stock_moves``, ...), which shadow the database's views for the rules and
for the views built on them (``sale_records``, ``sale_returns``). :func:`use_scope`
points them at the rows one group of rules screens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from tracecode.db import Database, schema_digest

log = logging.getLogger(__name__)

# view -> the table keeping it between runs
KEPT = {
    "sales": "screened_sales",
    "stock_moves": "screened_stock_moves",
    "sale_records": "screened_sale_records",
}
# the column of the kept sales naming a subject of each type
SUBJECT_COLUMN = {"code": "code_id", "person": "psn_no", "institution": "fixmedins_code"}
# every name a screen may shadow with a temporary view
SHADOWS = ("records", "record_codes", "sale_events", "sales", "stock_moves", "sale_records")


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


@dataclass(frozen=True)
class Refreshed:
    touched_codes: int              # codes recomputed (0 when rebuilt)
    clock_before: datetime | None   # the data clock at the previous refresh
    clock_after: datetime | None    # and now


def refresh(db: Database, *, rebuild: bool) -> Refreshed:
    """Bring the kept tables up to the data ingested so far.

    ``rebuild``: recompute them from the whole history. Otherwise recompute the codes that
    data not yet screened touched, leaving their rows in ``touched_*`` temp tables for the
    code rules, and widen ``scope_person`` and ``scope_institution`` to every subject whose
    kept rows changed (a return on one person's card can take back another's sale).
    """
    started = time.perf_counter()
    main = _main(db)
    before = None if rebuild else db.fetch_one("clock before",
                                               "select max(clock_as_of) from screen_state")[0]
    if rebuild:
        drop_shadows(db)
        for view in ("sales", "stock_moves"):
            db.execute(f"rebuild {KEPT[view]}",
                       f"create or replace table {KEPT[view]} as select * from {view}")
        _shadow(db, "sales", f"select * from {main}.screened_sales")
        try:
            db.execute("rebuild screened_sale_records",
                       "create or replace table screened_sale_records as "
                       f"select * from {main}.sale_records")
        finally:
            drop_shadows(db)
        db.execute("kept digest", "delete from screen_state")
        db.execute("kept digest",
                   "insert into screen_state select $digest, now(), as_of from data_clock",
                   {"digest": schema_digest()})
        log.info("inputs: rebuilt from the whole history in %.1fs",
                 time.perf_counter() - started)
        return Refreshed(0, None, _clock(db))

    db.run_file("leads/scope.sql")
    db.execute("touched records",
               f"""create or replace temp table scope_rec_ids as
                   select distinct rec_id from {main}.record_codes
                   where code_id in (select subject_id from scope_code)""")
    _shadow_records(db, main)
    try:
        # each computed over the touched codes' records; `sales` reads the shadowed
        # sale_events, as the views do
        for view in ("sale_events", "sales", "stock_moves"):
            db.execute(
                f"touched {view}",
                f"create or replace temp table touched_{view} as select * from {main}.{view}",
            )
            _shadow(db, view, f"select * from touched_{view}")
    finally:
        drop_shadows(db)

    codes = "select subject_id from scope_code"
    # the touched codes' kept sales before the refresh: whose they were, and where
    db.execute("touched kept sales",
               f"""create or replace temp table touched_kept_sales as
                   select rec_id, psn_no, fixmedins_code
                   from screened_sales where code_id in ({codes})""")
    db.execute(
        "widen person scope",
        """insert into scope_person
            select distinct psn_no from (
                select psn_no from touched_kept_sales
                union all
                select psn_no from touched_sales
            )
            where psn_no is not null
              and psn_no not in (select subject_id from scope_person)""",
    )
    db.execute(
        "widen institution scope",
        f"""insert into scope_institution
            select distinct fixmedins_code from (
                select fixmedins_code from touched_kept_sales
                union all
                select fixmedins_code from touched_sales
                union all
                select fixmedins_code from screened_stock_moves where code_id in ({codes})
                union all
                select fixmedins_code from touched_stock_moves
            )
            where fixmedins_code not in (select subject_id from scope_institution)""",
    )
    # the sale records holding a touched code, before and after, and the touched sales
    # that list no code (new, replaced, deleted, or named by a new codeless return)
    db.execute(
        "touched sale records",
        f"""create or replace temp table touched_sale_rec_ids as
            select rec_id from touched_kept_sales
            union
            select rec_id from touched_sales
            union
            select rec_id from {main}.records
            where rec_id in (select rec_id from touched_records)
              and infno = '3505' and n_codes = 0""",
    )
    for view in ("sales", "stock_moves"):
        table = KEPT[view]
        db.execute(f"refresh {table}", f"delete from {table} where code_id in ({codes})")
        db.execute(f"refresh {table}", f"insert into {table} select * from touched_{view}")
    recs = "select rec_id from touched_sale_rec_ids"
    db.execute("refresh screened_sale_records",
               f"delete from screened_sale_records where rec_id in ({recs})")
    _shadow(db, "sales", f"select * from {main}.screened_sales where rec_id in ({recs})")
    try:
        db.execute("refresh screened_sale_records",
                   f"""insert into screened_sale_records
                       select * from {main}.sale_records where rec_id in ({recs})""")
    finally:
        drop_shadows(db)
    db.execute("clock", """update screen_state set
                               refreshed_at = now(),
                               clock_as_of = (select as_of from data_clock)""")
    (n_codes,) = db.fetch_one("touched codes", "select count(*) from scope_code")
    log.info("inputs: %d touched codes refreshed in %.1fs", n_codes,
             time.perf_counter() - started)
    return Refreshed(int(n_codes), before, _clock(db))


def wait_on_clock(db: Database, subject_type: str, lag_days: float, refreshed: Refreshed) -> None:
    """Add to ``scope_<subject_type>`` the subjects with a sale that the clock's move since
    the last screening brought into judgement: sold at most ``lag_days`` before the clock
    now, and more than that before the clock then (a rule with ``waits``)."""
    column = SUBJECT_COLUMN[subject_type]
    db.execute(
        f"judged since the last screen ({subject_type})",
        f"""insert into scope_{subject_type}
            select distinct {column}
            from screened_sales
            where {column} is not null
              and sel_time + to_seconds($lag_days * 86400) <= $after
              and ($before is null or sel_time + to_seconds($lag_days * 86400) > $before)
              and {column} not in (select subject_id from scope_{subject_type})""",
        {"lag_days": lag_days, "before": refreshed.clock_before,
         "after": refreshed.clock_after},
    )


@contextmanager
def screening(db: Database) -> Iterator[None]:
    """For the rest of a screen, ``sales``, ``stock_moves`` and ``sale_records`` read the
    kept tables."""
    use_scope(db, None)
    try:
        yield
    finally:
        drop_shadows(db)


def use_scope(db: Database, scope_type: str | None) -> None:
    """Point the inputs at what a group of rules screens.

    ``None``: the whole history. ``code``: the touched codes' records and their freshly
    computed rows. ``person`` / ``institution``: the kept rows of the touched persons or
    institutions, which are all of those subjects' rows.
    """
    drop_shadows(db)
    main = _main(db)
    if scope_type == "code":
        _shadow_records(db, main)
        for view in ("sale_events", "sales", "stock_moves"):
            _shadow(db, view, f"select * from touched_{view}")
    elif scope_type is None:
        for view, table in KEPT.items():
            _shadow(db, view, f"select * from {main}.{table}")
    else:
        column = SUBJECT_COLUMN[scope_type]
        subjects = f"select subject_id from scope_{scope_type}"
        for view in ("sales", "sale_records"):
            _shadow(db, view,
                    f"select * from {main}.{KEPT[view]} where {column} in ({subjects})")
        # stock moves belong to institutions, not persons
        where = f" where fixmedins_code in ({subjects})" if scope_type == "institution" else ""
        _shadow(db, "stock_moves", f"select * from {main}.screened_stock_moves{where}")


def drop_shadows(db: Database) -> None:
    for name in SHADOWS:
        db.execute(f"unshadow {name}", f"drop view if exists temp.main.{name}")


def _shadow(db: Database, name: str, select: str) -> None:
    db.execute(f"shadow {name}", f"create or replace temp view {name} as {select}")


def _shadow_records(db: Database, main: str) -> None:
    """Records and their codes, cut down to the touched codes' (``scope_code``, whose
    records are ``scope_rec_ids``)."""
    codes = "select subject_id from scope_code"
    recs = "select rec_id from scope_rec_ids"
    _shadow(
        db, "records",
        f"""select * from {main}.records where rec_id in ({recs})
            union all
            -- deletions and codeless returns carry no code but act on records that do
            select * from {main}.records
            where infno in ('3506', '3507') and (infno = '3507' or n_codes = 0)""",
    )
    _shadow(db, "record_codes",
            f"""select * from {main}.record_codes
                where rec_id in ({recs}) and code_id in ({codes})""")


def _clock(db: Database) -> datetime | None:
    return db.fetch_one("data clock", "select as_of from data_clock")[0]


def _main(db: Database) -> str:
    """The database's own schema, spelled so that a temporary view cannot shadow it."""
    (name,) = db.fetch_one("database name", "select current_database()")
    return '"' + name.replace('"', '""') + '".main'
