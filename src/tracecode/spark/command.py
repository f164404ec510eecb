"""``tracecode spark``: a finished database's rule inputs, screened on Spark.

>>> run_spark(Path("tracecode.duckdb"), Path("spark_out"), master="local[2]")  # doctest: +SKIP
SparkResult(leads=41, evidence=118, ...)
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tracecode.db import Database
from tracecode.errors import TracecodeError
from tracecode.exports import atomic_file, prepare_out
from tracecode.report import TIME_FORMAT, lead_frame
from tracecode.rules import load_rules
from tracecode.safe_cells import neutralise_frame
from tracecode.settings import Settings
from tracecode.spark.layout import export_inputs
from tracecode.spark.runner import fold_leads, run_rules_on_spark, spark_session

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
    export_seconds: float
    rules_seconds: float
    fold_seconds: float


def run_spark(
    db_path: Path, out: Path, settings: Settings, *, master: str = "local[2]",
    inputs: Path | None = None, shuffle_partitions: int = 8,
) -> SparkResult:
    """Export the rule inputs of ``db_path``, run every rule on Spark, write
    ``out/leads.csv``, ``out/leads.parquet`` and ``out/evidence.parquet``.

    ``inputs``: the folder for the Parquet inputs (kept; default a temp folder, removed
    after). On a cluster it must be a path every executor reads (HDFS, object storage).
    """
    if not db_path.is_file():
        raise TracecodeError(f"no database at {db_path}: run `tracecode run` first")
    prepare_out(out)
    rules = load_rules(settings=settings)
    folder = inputs or Path(tempfile.mkdtemp(prefix="tracecode-spark-"))
    try:
        started = time.perf_counter()
        with Database.open(db_path, read_only=True) as db:
            export_inputs(db, rules, folder)
        exported = time.perf_counter()
        spark = spark_session(master, shuffle_partitions=shuffle_partitions)
        hits, _ = run_rules_on_spark(spark, rules, settings, str(folder))
        ruled = time.perf_counter()
        with fold_leads(hits, rules, settings) as leads_db:
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
    result = SparkResult(leads=leads.height, evidence=evidence.height,
                         export_seconds=exported - started, rules_seconds=ruled - exported,
                         fold_seconds=done - ruled)
    log.info("spark: %d leads from %d evidence rows (export %.1fs, rules %.1fs, leads %.1fs)",
             result.leads, result.evidence, result.export_seconds, result.rules_seconds,
             result.fold_seconds)
    return result
