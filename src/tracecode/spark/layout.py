"""The data a Spark run reads: one Parquet file per relation the rules name.

A finished DuckDB database (``tracecode run``) holds the rule inputs kept between runs
(``screened_sales``...: :mod:`tracecode.inputs`) and the reference and data-quality
tables. :func:`export_inputs` writes each relation some rule reads, under the name the
rule reads it by, to ``FOLDER/<name>.parquet``::

    FOLDER/sales.parquet            screened_sales (net sales, one row per record and code)
    FOLDER/stock_moves.parquet      screened_stock_moves
    FOLDER/sale_records.parquet     screened_sale_records
    FOLDER/sale_returns.parquet     the view sale_returns
    FOLDER/code_activations.parquet the view code_activations
    FOLDER/records.parquet          records, only the columns the rules read
    FOLDER/catalog.parquet, persons, institutions, placeholder_identities, ...

Spark has no TIME type: a TIME column (``institutions.open_time``) is written as that time
on 1970-01-01, a timestamp. Rules read times of day with ``hour()``, ``minute()`` and
``second()``, which mean the same on both.

On a cluster the same layout may sit on HDFS or object storage (a folder of Parquet
files per name works as well as one file): Spark reads ``<name>.parquet`` for every name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from tracecode.db import Database
from tracecode.errors import TracecodeError
from tracecode.inputs import ALL_INPUTS
from tracecode.rules import Rule
from tracecode.spark.portable import relations

log = logging.getLogger(__name__)

# Relations exported narrower than the database holds them: the rules read only these
# columns, and the full records carry every upload's personal data.
NARROW = {
    "records": ("rec_id", "event_date_only"),
}


def needed_relations(rules: Iterable[Rule]) -> list[str]:
    """Every relation some rule reads (not its own CTEs), sorted."""
    return sorted({name for rule in rules for name in relations(rule.sql)})


def export_inputs(db: Database, rules: Iterable[Rule], folder: Path) -> dict[str, int]:
    """Write every relation the rules read to ``folder/<name>.parquet``; rows per name.

    An input the rules read by name (``sales``) is written from the table that keeps it
    (``screened_sales``), so Spark screens what DuckDB's last run screened.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    started = time.perf_counter()
    for name in needed_relations(rules):
        source = ALL_INPUTS.get(name, name)
        if not _exists(db, source):
            raise TracecodeError(
                f"the database has no {source!r}: run `tracecode run` on it first, so that "
                "the rule inputs exist")
        columns = ", ".join(_spark_column(c, t) for c, t in _columns(db, source)
                            if c in NARROW.get(name, (c,)))
        db.copy_to_parquet(f"export {name}", f"select {columns} from {source}",
                           folder / f"{name}.parquet")
        (rows[name],) = db.fetch_one(f"rows of {name}", f"select count(*) from {source}")
    log.info("spark inputs: %d relations, %d rows written to %s in %.1fs", len(rows),
             sum(rows.values()), folder, time.perf_counter() - started)
    return rows


def _columns(db: Database, name: str) -> list[tuple[str, str]]:
    return [(c, t) for c, t in db.fetch_rows(
        "relation columns",
        """select column_name, data_type from duckdb_columns()
           where table_name = $name and database_name = current_database()
             and schema_name = 'main'
           order by column_index""",
        {"name": name})]


def _spark_column(column: str, data_type: str) -> str:
    # Spark has no TIME: a time of day travels as that time on 1970-01-01, which
    # hour(), minute() and second() read alike on both engines
    quoted = '"' + column.replace('"', '""') + '"'
    if data_type == "TIME":
        return f"date '1970-01-01' + {quoted} as {quoted}"
    return quoted


def _exists(db: Database, name: str) -> bool:
    (n,) = db.fetch_one(
        "relation exists",
        """select (select count(*) from duckdb_tables() where table_name = $name)
                + (select count(*) from duckdb_views() where view_name = $name)""",
        {"name": name},
    )
    return bool(n)
