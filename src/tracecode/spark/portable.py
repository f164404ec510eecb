"""One rule source, two engines: DuckDB's SQL read by sqlglot and written for Spark.

The rules are written in DuckDB's dialect. :func:`to_spark` parses one with sqlglot,
inlines the scalar macros of ``sql/views/000_macros.sql`` it calls (Spark has no
``create macro``), spells the few functions Spark names differently, and writes Spark
SQL. What sqlglot cannot carry over with the same meaning must not be in a rule at all:
:func:`findings` lists those constructs, and ``tests/test_portable.py`` fails on any of
them in ``sql/rules`` or in the macros the rules call. The portable subset, in short:

* time between two timestamps: ``date_diff('microsecond', a, b)`` (exact in both;
  ``epoch()`` of an interval and other units count calendar boundaries in DuckDB and
  elapsed units in Spark); days between two dates: ``date_diff('day', a, b)``;
* a timestamp moved by seconds: ``ts + to_seconds(n)`` (written ``make_dt_interval``);
* no ``date - date``, ``dayofweek``/``isodow``, ``::time``, ``epoch``, ``list``/
  ``list_contains``, ``count(distinct) over``, ``quantile_cont``, ``try_strptime``,
  ``regexp_full_match`` (use ``regexp_matches`` anchored with ``^...$``), ``asof join``,
  lambdas, ``date_sub``/``date_part`` units other than day, ``* exclude``/``* replace``.

The rule inputs (``sql/views``: net sales, stock moves, activations) keep to the same
subset: :mod:`tracecode.spark.inputs` runs their text on Spark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import sqlglot
from sqlglot import exp

from tracecode.db import read_sql

MACRO_FILE = "views/000_macros.sql"
_MACRO = re.compile(
    r"create or replace macro (\w+)\(([^)]*)\) as\s+(?!table\b)(.*?);\s*(?:\n|$)", re.S)

# DuckDB functions whose meaning differs on Spark, or that Spark lacks: name -> why
FORBIDDEN_FUNCTIONS = {
    "epoch": "seconds of an interval or timestamp: Spark's unix_timestamp drops sub-seconds;"
             " use date_diff('microsecond', a, b)",
    "dayofweek": "Sunday is 0 in DuckDB, 1 in Spark",
    "isodow": "off by one against Spark's dayofweek",
    "list": "list(distinct x order by x) loses its order on Spark; join instead",
    "array_agg": "order is not kept on Spark; join instead",
    "list_contains": "no list functions in the portable subset; join instead",
    "quantile_cont": "no quantile_cont on Spark",
    "try_strptime": "Spark's formats differ; use try_cast(... as date)",
    "strptime": "Spark's formats differ; use try_cast(... as date)",
    "regexp_full_match": "use regexp_matches(x, '^...$') (Spark: rlike)",
    "date_sub": "counts whole parts in DuckDB; Spark's date_sub subtracts days",
    "date_part": "dow/isodow/week parts differ; use year(), month(), day()",
    "time_bucket": "no time_bucket on Spark",
    "to_minutes": "use to_seconds",
    "to_hours": "use to_seconds",
    "to_days": "use to_seconds",
}
# units date_diff may count in: microseconds (exact on both) and days of dates
DATE_DIFF_UNITS = {"microsecond", "day"}


@dataclass(frozen=True)
class Finding:
    """A construct that would change meaning (or fail) on Spark."""

    construct: str
    why: str

    def __str__(self) -> str:
        return f"{self.construct}: {self.why}"


@cache
def macros() -> dict[str, tuple[tuple[str, ...], str]]:
    """The scalar macros of sql/views/000_macros.sql: name -> (argument names, body)."""
    text = re.sub(r"--[^\n]*", "", read_sql(MACRO_FILE))
    return {name: (tuple(a.strip() for a in args.split(",")), body.strip())
            for name, args, body in _MACRO.findall(text)}


def parse(sql: str | exp.Expression) -> exp.Expression:
    """A rule's query as sqlglot reads it in DuckDB's dialect (a tree: a copy of it)."""
    if isinstance(sql, exp.Expression):
        return sql.copy()
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert tree is not None
    return tree


def relations(sql: str | exp.Expression) -> set[str]:
    """The tables and views a query reads, less its own CTEs."""
    tree = parse(sql)
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table)} - ctes


def inline_macros(tree: exp.Expression) -> exp.Expression:
    """Every call of a macro of 000_macros.sql replaced by its body, arguments in place."""
    known = macros()

    def expand(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous) or str(node.this).lower() not in known:
            return node
        names, body = known[str(node.this).lower()]
        if len(names) != len(node.expressions):
            raise ValueError(f"macro {node.this} takes {len(names)} arguments")
        values = dict(zip(names, node.expressions, strict=True))
        inlined = sqlglot.parse_one(body, read="duckdb").transform(
            lambda n: values[n.name].copy()
            if isinstance(n, exp.Column) and not n.table and n.name in values else n)
        return exp.Paren(this=inline_macros(inlined))

    return tree.transform(expand)


def findings(sql: str | exp.Expression) -> list[Finding]:
    """The constructs of ``sql`` (DuckDB's dialect, macros inlined) outside the portable
    subset; empty when it means the same on Spark."""
    tree = inline_macros(parse(sql))
    found: list[Finding] = []
    for node in tree.walk():
        name = _function_name(node)
        if name in FORBIDDEN_FUNCTIONS:
            found.append(Finding(name, FORBIDDEN_FUNCTIONS[name]))
        if isinstance(node, exp.DateDiff):
            unit = (node.text("unit") or "day").lower()
            if unit not in DATE_DIFF_UNITS:
                found.append(Finding(f"date_diff('{unit}')", "counts calendar boundaries in "
                                     "DuckDB, elapsed units in Spark"))
        if isinstance(node, exp.Sub) and (_is_date(node.this) or _is_date(node.expression)):
            found.append(Finding("date - date", "an integer in DuckDB, an interval in "
                                 "Spark; use date_diff('day', a, b)"))
        if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIME):
            found.append(Finding("cast as time", "Spark reads it as a timestamp"))
        if isinstance(node, exp.Window) and isinstance(node.this, exp.Count) and (
                node.this.find(exp.Distinct)):
            found.append(Finding("count(distinct) over", "Spark refuses it; self-join "
                                 "and count instead"))
        if isinstance(node, exp.Join) and "ASOF" in (
                f"{node.args.get('method') or ''} {node.args.get('kind') or ''}".upper()):
            found.append(Finding("asof join", "Spark has none"))
        if isinstance(node, exp.Star) and (
                node.args.get("except_") or node.args.get("replace")):
            found.append(Finding("* exclude/replace", "Spark has neither; name the columns"))
        if isinstance(node, exp.Lambda):
            found.append(Finding("lambda", "no lambdas in the portable subset"))
    return found


def to_spark(sql: str | exp.Expression) -> str:
    """A rule's query (DuckDB's dialect) as Spark SQL; ``$name`` becomes ``:name``."""
    tree = inline_macros(parse(sql)).transform(_spell_for_spark)
    return tree.sql(dialect="spark")


def _spell_for_spark(node: exp.Expression) -> exp.Expression:
    # to_seconds(n): an interval of n seconds; Spark builds it with make_dt_interval
    if _function_name(node) == "to_seconds":
        (seconds,) = node.expressions
        zero = exp.Literal.number(0)
        return exp.Anonymous(this="make_dt_interval",
                             expressions=[zero, zero.copy(), zero.copy(), seconds])
    return node


def _function_name(node: exp.Expression) -> str | None:
    """A function call's name as DuckDB spells it (sqlglot's epoch is TimeToUnix)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func) and not isinstance(node, exp.Cast):
        return node.sql(dialect="duckdb").split("(", 1)[0].strip().lower() or None
    return None


def _is_date(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.DATE)
