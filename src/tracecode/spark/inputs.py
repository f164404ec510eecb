"""The rule inputs on Spark, from the same SQL as DuckDB's views.

``sql/views`` defines the inputs as table macros over named relations
(``sales_over(events, live)`` reads ``query_table(events)``...) and views that apply them
to the whole history (``create view sales as from sales_over('sale_events',
'live_records')``). :func:`view_query` reads a view as one query: each table macro it
calls replaced by the macro's body, each ``query_table(p)`` by the relation bound to
``p``. That query is what DuckDB computes for the view; :func:`compute_inputs` transpiles
it (:func:`tracecode.spark.portable.to_spark`) and runs it on Spark over the normalised
tables ingest writes (``records``, ``record_codes``, ``code_issuance``, reference tables),
in dependency order, writing each input to ``WORK/<name>.parquet``.

>>> plan(["sales", "code_activations"])  # doctest: +SKIP
Plan(computed=('code_activations', 'live_records', 'sale_events', 'sales'),
     tables=('code_issuance', 'record_codes', 'records'))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlglot import exp

from tracecode.db import read_sql
from tracecode.errors import TracecodeError
from tracecode.spark.portable import parse, relations, to_spark

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# the files defining the rule inputs, read in this order
VIEW_FILES = ("views/010_records.sql", "views/020_sales.sql", "views/030_stock.sql",
              "views/040_rule_inputs.sql")
_TABLE_MACRO = re.compile(
    r"create or replace macro (\w+)\(([^)]*)\) as table\s+(.*?);\s*(?:\n|$)", re.S)
_VIEW = re.compile(r"create or replace view (\w+) as\s+(.*?);\s*(?:\n|$)", re.S)


@dataclass(frozen=True)
class Plan:
    """What a Spark run computes (views, in dependency order) and what it reads (tables)."""

    computed: tuple[str, ...]
    tables: tuple[str, ...]


@dataclass(frozen=True)
class InputRun:
    name: str
    rows: int
    seconds: float


def _definitions() -> str:
    return re.sub(r"--[^\n]*", "", "\n".join(read_sql(f) for f in VIEW_FILES))


@cache
def table_macros() -> dict[str, tuple[tuple[str, ...], str]]:
    """The table macros of the view files: name -> (argument names, body)."""
    return {name: (tuple(a.strip() for a in args.split(",")), body.strip())
            for name, args, body in _TABLE_MACRO.findall(_definitions())}


@cache
def views() -> dict[str, str]:
    """The views of the view files: name -> body (DuckDB's dialect)."""
    return {name: body.strip() for name, body in _VIEW.findall(_definitions())}


def view_query(name: str) -> exp.Expression:
    """The view ``name`` as one query over tables and other views, its table macros
    applied."""
    return _apply_macros(parse(views()[name]), {})


def macro_query(name: str, bindings: Mapping[str, str]) -> exp.Expression:
    """The table macro ``name`` applied to relations: argument -> relation name."""
    return _apply_macros(parse(table_macros()[name][1]), dict(bindings))


def _apply_macros(tree: exp.Expression, bindings: Mapping[str, str]) -> exp.Expression:
    known = table_macros()

    def relation(arg: exp.Expression) -> str:
        # a view passes a name as a string ('sale_events'); a macro passes its argument on
        if isinstance(arg, exp.Literal) and arg.is_string:
            return str(arg.this)
        if isinstance(arg, exp.Column) and arg.name in bindings:
            return bindings[arg.name]
        raise ValueError(f"cannot bind the table argument {arg.sql()}")

    def expand(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Anonymous):
            return node
        call, alias = node.this, node.args.get("alias")
        name = str(call.this).lower()
        if name == "query_table":
            (arg,) = call.expressions
            return exp.Table(this=exp.to_identifier(relation(arg)), alias=alias)
        if name not in known:
            return node
        params, body = known[name]
        inner = dict(zip(params, (relation(a) for a in call.expressions), strict=True))
        query = _apply_macros(parse(body), inner)
        return exp.Subquery(this=query, alias=alias or exp.TableAlias(
            this=exp.to_identifier(name)))

    return tree.transform(expand)


def plan(names: Iterable[str]) -> Plan:
    """The views among ``names`` and all they read, in an order that computes each after
    what it reads, and the tables underneath."""
    computed: list[str] = []
    tables: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in computed or name in tables:
            return
        if name not in views():
            tables.add(name)
            return
        if name in path:
            raise ValueError(f"views read each other in a circle: {' -> '.join(path)}")
        for dep in sorted(relations(view_query(name))):
            visit(dep, (*path, name))
        computed.append(name)

    for name in sorted(set(names)):
        visit(name, ())
    return Plan(computed=tuple(computed), tables=tuple(sorted(tables)))


def compute_inputs(
    spark: SparkSession, names: Iterable[str], tables: Mapping[str, str], work: str,
) -> tuple[dict[str, str], list[InputRun]]:
    """Compute on Spark every view among ``names`` (and those they read) from the tables
    at ``tables`` (name -> Parquet path), each written to ``work/<view>.parquet``.

    Returns name -> Parquet path for every relation of the plan (the tables as given)
    and what each view took.
    """
    wanted = plan(names)
    missing = sorted(set(wanted.tables) - set(tables))
    if missing:
        raise TracecodeError(f"the Spark inputs lack {', '.join(missing)}: export them "
                             "from a database (`tracecode spark --db`) or add "
                             "<name>.parquet to the inputs folder")
    paths = {name: tables[name] for name in wanted.tables}
    for name, path in paths.items():
        try:
            spark.read.parquet(path).createOrReplaceTempView(name)
        except Exception as e:  # pyspark's AnalysisException: no such path, not Parquet
            raise TracecodeError(f"cannot read the table {name} at {path}: {e}\nGive "
                                 "--db to export it, or see the README's input layout "
                                 "(tracecode.spark.layout)") from e
    runs = []
    for name in wanted.computed:
        started = time.perf_counter()
        sql = to_spark(view_query(name))
        path = f"{work.rstrip('/')}/{name}.parquet"
        try:
            spark.sql(sql).write.mode("overwrite").parquet(path)
        except Exception as e:  # pyspark raises its own hierarchy, rooted in Exception
            raise TracecodeError(f"the input {name} (sql/views) failed on Spark: {e}\n"
                                 f"--- Spark SQL ---\n{sql}") from e
        frame = spark.read.parquet(path)
        frame.createOrReplaceTempView(name)
        paths[name] = path
        runs.append(InputRun(name, frame.count(), time.perf_counter() - started))
        log.info("spark input %s: %d rows in %.2fs", name, runs[-1].rows, runs[-1].seconds)
    return paths, runs
