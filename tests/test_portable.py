"""Every rule, and every macro a rule calls, stays in the SQL that means the same on DuckDB
and on Spark (tracecode.spark.portable); a construct that would change meaning fails."""

from __future__ import annotations

import pytest

from tracecode.rules import load_rules

pytest.importorskip("sqlglot")

from tracecode.spark.inputs import plan, view_query
from tracecode.spark.layout import needed_relations
from tracecode.spark.portable import findings, macros, to_spark

RULES = load_rules()
# the views the rules read and those they read in turn, computed on Spark from their text
INPUTS = plan(needed_relations(RULES)).computed


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_a_rule_uses_only_constructs_that_mean_the_same_on_spark(rule) -> None:
    assert [str(f) for f in findings(rule.sql)] == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_a_rule_transpiles_with_its_macros_inlined_and_its_parameters_named(rule) -> None:
    spark_sql = to_spark(rule.sql).lower()
    for name in macros():
        assert f"{name}(" not in spark_sql
    for param in rule.params:
        assert f":{param}" in spark_sql
    assert "to_seconds(" not in spark_sql


@pytest.mark.parametrize("name", INPUTS)
def test_a_rule_input_uses_only_constructs_that_mean_the_same_on_spark(name: str) -> None:
    assert [str(f) for f in findings(view_query(name))] == []


def test_the_rule_inputs_are_computed_from_the_tables_ingest_writes() -> None:
    assert {"sales", "sale_records", "sale_returns", "stock_moves", "code_activations",
            "live_records", "sale_events"} <= set(INPUTS)
    tables = set(plan(needed_relations(RULES)).tables)
    assert {"records", "record_codes", "code_issuance"} <= tables
    assert not tables & {"screened_sales", "screened_stock_moves", "screened_sale_records"}


def test_a_view_reads_its_table_macros_body_with_the_relations_bound() -> None:
    spark_sql = to_spark(view_query("sales")).lower()
    assert "query_table(" not in spark_sql and "sales_over(" not in spark_sql
    assert "from sale_events" in spark_sql and "from live_records" in spark_sql


@pytest.mark.parametrize(("sql", "construct"), [
    ("select epoch(max(t) - min(t)) from sales", "epoch"),
    ("select date_diff('hour', a, b) from sales", "date_diff('hour')"),
    ("select a::date - b::date from sales", "date - date"),
    ("select dayofweek(t) from sales", "dayofweek"),
    ("select isodow(t) from sales", "isodow"),
    ("select list(distinct x order by x) from sales", "array_agg"),
    ("select count(distinct x) over (partition by y) from sales", "count(distinct) over"),
    ("select quantile_cont(x, 0.5) from sales", "quantile_cont"),
    ("select try_strptime(x, '%Y%m%d') from sales", "try_strptime"),
    ("select regexp_full_match(x, '[0-9]+') from sales", "regexp_full_match"),
    ("select t::time from sales", "cast as time"),
    ("select * from a asof join b on a.k = b.k and a.t >= b.t", "asof join"),
    ("select date_sub('year', a, b) from persons", "date_sub"),
    ("select s.* exclude (a) from sales as s", "* exclude/replace"),
    ("select * replace (1 as a) from sales", "* exclude/replace"),
    ("select is_valid_resident_id(certno) from sales", None),  # the macro is portable
])
def test_the_lint_names_each_construct_that_changes_meaning(sql: str, construct) -> None:
    found = [f.construct for f in findings(sql)]
    if construct is None:
        assert found == []
    else:
        assert construct in found
