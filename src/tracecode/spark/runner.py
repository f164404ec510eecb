"""The rules on Spark: register the inputs, run each rule's transpiled SQL, fold the
evidence into leads the way DuckDB does.

The inputs (the normalised tables, :mod:`tracecode.spark.layout`, and what
:mod:`tracecode.spark.inputs` computed from them) are registered as temp views under the
names the rules read. Before a group of rules runs, each input that carries the group's subject
is repartitioned by it (a hash of ``code_id`` for code rules, of ``psn_no`` for person
rules, of ``fixmedins_code`` for institution rules), so that a subject's rows sit in one
partition and the joins and aggregations on it need no further shuffle of the big
inputs; reference tables stay as they are (Spark broadcasts the small ones).

The evidence (a small fraction of the input) is collected to the driver and folded into
leads by the same code as a DuckDB run (:func:`tracecode.leads.build_leads` on an
in-memory database: the lead_id macro, sql/leads/aggregate.sql, the reason templates).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tracecode.db import Database
from tracecode.errors import RuleError
from tracecode.inputs import Scope
from tracecode.leads import build_leads
from tracecode.rules import EVIDENCE_COLUMNS, Rule
from tracecode.settings import Settings
from tracecode.spark.layout import needed_relations
from tracecode.spark.portable import to_spark

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# the column a rule group's inputs are partitioned by
PARTITION_KEYS = {"code": "code_id", "person": "psn_no", "institution": "fixmedins_code"}

HITS_SCHEMA = pa.schema([
    ("rule_id", pa.string()), ("subject_id", pa.string()), ("rec_id", pa.int64()),
    ("fixmedins_code", pa.string()), ("event_time", pa.timestamp("us")),
    ("code", pa.string()), ("psn_no", pa.string()), ("amount", pa.float64()),
    ("metric", pa.float64()), ("threshold", pa.float64()), ("note", pa.string()),
])
_SPARK_TYPES = {
    "rec_id": "bigint", "event_time": "timestamp_ntz", "amount": "double",
    "metric": "double", "threshold": "double",
}


@dataclass(frozen=True)
class SparkRuleRun:
    rule_id: str
    rows: int
    seconds: float


# For small data in one short-lived local JVM (the tests): the JIT's quick tier, no code
# generation, no adaptive re-planning. Measured on the 14-day demo world: the first run of
# the rules 65 s instead of 100-180 s (the later runs a little slower).
QUICK_START_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
}


def spark_session(master: str = "local[2]", *, shuffle_partitions: int = 8,
                  app_name: str = "tracecode",
                  conf: Mapping[str, str] | None = None) -> SparkSession:
    """A session for the rules: UTC clock (timestamps carry no zone), ANSI mode kept on
    (a bad cast fails rather than turning null); ``conf`` adds or overrides settings.
    An existing session of this process is reused as it is."""
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def register_inputs(spark: SparkSession, paths: Mapping[str, str]) -> None:
    """Every Parquet input (name -> path) as the temp view ``<name>``."""
    for name, path in paths.items():
        spark.read.parquet(path).createOrReplaceTempView(name)


def partition_inputs(spark: SparkSession, names: Iterable[str], subject_type: str,
                     partitions: int) -> None:
    """Repartition by the subject key each registered input that has it."""
    key = PARTITION_KEYS[subject_type]
    for name in names:
        frame = spark.read.table(name)
        if key in frame.columns:
            # cached: the group's rules share one shuffle of each input
            frame.repartition(partitions, key).cache().createOrReplaceTempView(name)


def run_rules_on_spark(
    spark: SparkSession, rules: list[Rule], settings: Settings, paths: Mapping[str, str],
    *, partitions: int | None = None, partitioned: Iterable[str] | None = None,
) -> tuple[pa.Table, list[SparkRuleRun]]:
    """Every rule on its inputs (name -> Parquet path, as :func:`compute_inputs` gives
    them): their evidence (rule_hits' columns) and what each took. ``partitioned``: the
    inputs to repartition by each group's subject (default all that carry its key)."""
    names = needed_relations(rules)
    missing = sorted(set(names) - set(paths))
    if missing:
        raise ValueError(f"no Parquet path for the rule inputs {', '.join(missing)}")
    partitions = partitions or int(spark.conf.get("spark.sql.shuffle.partitions") or 8)
    params = settings.rule_params()
    tables, runs = [], []
    for subject_type in PARTITION_KEYS:
        group = [r for r in rules if r.subject_type == subject_type]
        if not group:
            continue
        spark.catalog.clearCache()
        register_inputs(spark, {name: paths[name] for name in names})
        partition_inputs(spark, [n for n in names if partitioned is None or n in partitioned],
                         subject_type, partitions)
        for rule in group:
            started = time.perf_counter()
            table = _run_one(spark, rule, params)
            runs.append(SparkRuleRun(rule.id, table.num_rows, time.perf_counter() - started))
            log.info("spark rule %s: %d evidence rows in %.2fs", rule.id, table.num_rows,
                     runs[-1].seconds)
            tables.append(table)
    spark.catalog.clearCache()
    hits = pa.concat_tables(tables) if tables else HITS_SCHEMA.empty_table()
    return hits, runs


def _run_one(spark: SparkSession, rule: Rule, params: Mapping[str, Any]) -> pa.Table:
    sql = to_spark(rule.sql)
    args = {k: params[k] for k in rule.params}
    try:
        frame = spark.sql(sql, args=args)
        present = set(frame.columns)
        columns = [
            f"cast({c} as {_SPARK_TYPES.get(c, 'string')}) as {c}" if c in present
            else f"cast(null as {_SPARK_TYPES.get(c, 'string')}) as {c}"
            for c in EVIDENCE_COLUMNS
        ]
        table = frame.selectExpr(*columns).toArrow()
    except Exception as e:  # pyspark raises its own hierarchy, rooted in Exception
        raise RuleError(f"rule {rule.id} (sql/{rule.source}) failed on Spark: {e}\n"
                        f"--- Spark SQL ---\n{sql}") from e
    rule_id = pa.array([rule.id] * table.num_rows, pa.string())
    table = table.add_column(0, "rule_id", rule_id)
    return table.cast(HITS_SCHEMA)


def fold_leads(hits: pa.Table, rules: list[Rule], settings: Settings,
               db_path: Path | None = None) -> Database:
    """A DuckDB database (in memory unless ``db_path``) holding the leads and evidence of
    ``hits``, built by :func:`tracecode.leads.build_leads` as in a DuckDB run."""
    db = Database.open(db_path)
    db.execute("rule hits table", """create or replace temp table rule_hits (
               rule_id varchar, subject_id varchar, rec_id bigint, fixmedins_code varchar,
               event_time timestamp, code varchar, psn_no varchar, amount double,
               metric double, threshold double, note varchar)""")
    db.register("spark_hits", hits)
    db.execute("spark hits", "insert into rule_hits by name select * from spark_hits")
    db.unregister("spark_hits")
    scope = Scope(rebuilt=True, touched_codes=0, clock_before=None, clock_after=None)
    build_leads(db, rules, settings, scope=scope)
    return db
