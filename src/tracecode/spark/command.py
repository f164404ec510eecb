"""``tracecode spark``: the normalised records (exported from a finished database, or a
folder of Parquet tables), their rule inputs and rules computed on Spark.

>>> run_spark(Path("tracecode.duckdb"), Path("spark_out"), settings)  # doctest: +SKIP
SparkResult(leads=41, evidence=118, ...)
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracecode.db import Database
from tracecode.errors import TracecodeError
from tracecode.exports import atomic_file, prepare_out
from tracecode.report import TIME_FORMAT, lead_frame
from tracecode.rules import load_rules
from tracecode.safe_cells import neutralise_frame
from tracecode.settings import Settings
from tracecode.spark.inputs import InputRun, compute_inputs
from tracecode.spark.layout import export_inputs, needed_relations, needed_tables
from tracecode.spark.runner import SparkRuleRun, fold_leads, run_rules_on_spark, spark_session

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# the evidence as Spark's run writes it: the rule's own evidence rows under their lead
EVIDENCE_SQL = """select e.lead_id, l.category, e.rule_id, e.subject_id, e.rec_id,
                         e.fixmedins_code, e.event_time, e.code, e.psn_no, e.amount,
                         e.metric, e.threshold, e.note
                  from lead_evidence as e
                  join leads as l using (lead_id)
                  order by l.score desc, e.lead_id, e.event_time, e.rec_id"""


@dataclass(frozen=True)
class SparkResult:
    leads: int
    evidence: int
    export_seconds: float   # DuckDB tables to Parquet (0 when given --inputs alone)
    inputs_seconds: float   # the rule inputs, computed on Spark
    rules_seconds: float
    fold_seconds: float


@dataclass(frozen=True)
class SparkScreen:
    """The evidence of every rule on Spark, and what each input and rule took."""

    hits: pa.Table
    inputs: list[InputRun]
    rules: list[SparkRuleRun]
    inputs_seconds: float
    rules_seconds: float


def screen_on_spark(
    spark: SparkSession, settings: Settings, tables: Path | str, work: Path | str,
    *, partitions: int | None = None,
) -> SparkScreen:
    """Compute the rule inputs from the tables in ``tables`` (``<name>.parquet``) into
    ``work``, then run every rule on them."""
    rules = load_rules(settings=settings)
    source = str(tables).rstrip("/")
    started = time.perf_counter()
    paths, input_runs = compute_inputs(
        spark, needed_relations(rules),
        {name: f"{source}/{name}.parquet" for name in needed_tables(rules)}, str(work))
    computed = time.perf_counter()
    # the inputs Spark computed are the big per-subject ones; the tables as given are
    # reference (broadcast) or read by rec_id (records), not by the group's subject
    hits, rule_runs = run_rules_on_spark(spark, rules, settings, paths,
                                         partitions=partitions,
                                         partitioned={r.name for r in input_runs})
    return SparkScreen(hits=hits, inputs=input_runs, rules=rule_runs,
                       inputs_seconds=computed - started,
                       rules_seconds=time.perf_counter() - computed)


def run_spark(
    db_path: Path | None, out: Path, settings: Settings, *, master: str = "local[2]",
    inputs: Path | None = None, work: Path | None = None, shuffle_partitions: int = 8,
) -> SparkResult:
    """Run every rule on Spark and write ``out/leads.csv``, ``out/leads.parquet`` and
    ``out/evidence.parquet``.

    ``db_path``: a finished database whose normalised tables are exported to ``inputs``
    (kept; default a temp folder, removed after). Without it, ``inputs`` must hold them
    already (:mod:`tracecode.spark.layout`). ``work``: where the computed rule inputs go
    (default a temp folder, removed after). On a cluster both must be paths every
    executor reads (HDFS, object storage).
    """
    if db_path is None and inputs is None:
        raise TracecodeError("give --db (a database to export) or --inputs (a folder of "
                             "the normalised tables as Parquet)")
    if db_path is not None and not db_path.is_file():
        raise TracecodeError(f"no database at {db_path}: run `tracecode run` first")
    prepare_out(out)
    rules = load_rules(settings=settings)
    folder = inputs or Path(tempfile.mkdtemp(prefix="tracecode-spark-"))
    scratch = work or Path(tempfile.mkdtemp(prefix="tracecode-spark-work-"))
    try:
        started = time.perf_counter()
        if db_path is not None:
            with Database.open(db_path, read_only=True) as db:
                export_inputs(db, rules, folder)
        exported = time.perf_counter()
        spark = spark_session(master, shuffle_partitions=shuffle_partitions)
        screen = screen_on_spark(spark, settings, folder, scratch)
        ruled = time.perf_counter()
        with fold_leads(screen.hits, rules, settings) as leads_db:
            leads = lead_frame(leads_db, include_dismissed=True)
            evidence = leads_db.fetch_polars("spark evidence", EVIDENCE_SQL)
        atomic_file(out / "leads.csv", lambda p: neutralise_frame(leads).write_csv(
            p, include_bom=True, datetime_format=TIME_FORMAT))
        atomic_file(out / "leads.parquet", lambda p: leads.write_parquet(p))
        atomic_file(out / "evidence.parquet", lambda p: evidence.write_parquet(p))
        done = time.perf_counter()
    finally:
        if inputs is None:
            shutil.rmtree(folder, ignore_errors=True)
        if work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    result = SparkResult(leads=leads.height, evidence=evidence.height,
                         export_seconds=exported - started,
                         inputs_seconds=screen.inputs_seconds,
                         rules_seconds=screen.rules_seconds, fold_seconds=done - ruled)
    log.info("spark: %d leads from %d evidence rows (export %.1fs, inputs %.1fs, rules "
             "%.1fs, leads %.1fs)", result.leads, result.evidence, result.export_seconds,
             result.inputs_seconds, result.rules_seconds, result.fold_seconds)
    return result
