"""The data a Spark run reads: one Parquet file per table ingest writes.

A Spark run computes the rule inputs itself (:mod:`tracecode.spark.inputs`: net sales,
stock moves, activations... from the views' own SQL) and reads only the normalised
tables underneath, each as ``FOLDER/<name>.parquet``::

    FOLDER/records.parquet          records, the columns RECORD_COLUMNS names (every
                                    version: is_current marks the one that stands)
    FOLDER/record_codes.parquet     one row per code of a record
    FOLDER/code_issuance.parquet    the activated serial ranges (reference)
    FOLDER/catalog.parquet, persons, institutions     the reference CSVs as loaded
    FOLDER/placeholder_identities, resident_id_regions, twelve_hour_clocks,
    FOLDER/dispensing_as_inbound    the data-quality tables the rules read (a DuckDB
                                    run's findings; sql/quality)

:func:`export_inputs` writes them from a finished DuckDB database; on a cluster the same
layout may sit on HDFS or object storage (a folder of Parquet part files per name works
as well as one file), written by whatever loads the bureau's data.

Spark has no TIME type: a TIME column (``institutions.open_time``) is written as that time
on 1970-01-01, a timestamp. Rules read times of day with ``hour()``, ``minute()`` and
``second()``, which mean the same on both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from tracecode.db import Database
from tracecode.errors import TracecodeError
from tracecode.rules import Rule
from tracecode.spark.inputs import plan
from tracecode.spark.portable import relations

log = logging.getLogger(__name__)

# The columns of `records` the inputs and rules read: not the upload's other fields
# (habits, extra_fields), which only the data-quality checks need.
RECORD_COLUMNS = (
    "rec_id", "src_file", "line_no", "infno", "inf_time", "fixmedins_code",
    "fixmedins_bchno", "event_time", "med_list_codg", "psn_no", "psn_cert_type", "certno",
    "psn_name", "manu_lotnum", "manu_date", "expy_end", "trdn_flag", "qty", "price",
    "rtal_docno", "setl_id", "mdtrt_setl_type", "medins_prod_sel_no", "inv_chg_type",
    "spler_name", "purc_invo_no", "inv_data_type", "n_codes", "event_date_only",
    "is_current",
)
NARROW = {"records": RECORD_COLUMNS}


def needed_relations(rules: Iterable[Rule]) -> list[str]:
    """Every relation some rule reads (not its own CTEs), sorted."""
    return sorted({name for rule in rules for name in relations(rule.sql)})


def needed_tables(rules: Iterable[Rule]) -> list[str]:
    """The tables underneath what the rules read: what a Spark run is given."""
    return list(plan(needed_relations(rules)).tables)


def export_inputs(db: Database, rules: Iterable[Rule], folder: Path) -> dict[str, int]:
    """Write every table the rules' inputs are computed from to ``folder/<name>.parquet``;
    rows per name."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    started = time.perf_counter()
    for name in needed_tables(rules):
        if not _exists(db, name):
            raise TracecodeError(
                f"the database has no {name!r}: run `tracecode run` on it first")
        wanted = NARROW.get(name)
        columns = ", ".join(_spark_column(c, t) for c, t in _columns(db, name)
                            if wanted is None or c in wanted)
        db.copy_to_parquet(f"export {name}", f"select {columns} from {name}",
                           folder / f"{name}.parquet")
        (rows[name],) = db.fetch_one(f"rows of {name}", f"select count(*) from {name}")
    log.info("spark inputs: %d tables, %d rows written to %s in %.1fs", len(rows),
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
