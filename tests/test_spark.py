"""The same rule SQL on Spark (local mode) raises the same leads on the same evidence as on
DuckDB, row for row: on sample_data and on a simulated city slice. Spark is given only the
normalised tables and computes the rule inputs (net sales...) itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tracecode import pipeline
from tracecode.db import Database
from tracecode.errors import TracecodeError
from tracecode.rules import load_rules
from tracecode.settings import Settings, load_settings
from tracecode.simulate import simulate

pyspark = pytest.importorskip("pyspark")

from tracecode.spark.command import run_spark, screen_on_spark  # noqa: E402
from tracecode.spark.layout import export_inputs  # noqa: E402
from tracecode.spark.runner import QUICK_START_CONF, fold_leads, spark_session  # noqa: E402

# minutes of JVM time: not in make test, in make test-spark (CI runs both)
pytestmark = [pytest.mark.slow, pytest.mark.spark]

SAMPLE = Path(__file__).parents[1] / "sample_data"
LEAD_COLUMNS = ["lead_id", "rule_id", "category", "subject_type", "subject_id",
                "fixmedins_codes", "first_time", "last_time", "n_events", "amount", "score",
                "reason"]
EVIDENCE_COLUMNS = ["lead_id", "rec_id", "fixmedins_code", "event_time", "code", "psn_no",
                    "amount"]


@pytest.fixture(scope="module")
def spark() -> Any:
    """One local-mode session for these tests: two cores, few shuffle partitions."""
    session = spark_session("local[2]", shuffle_partitions=2, conf=QUICK_START_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def duckdb_rule_leads(db_path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rule leads (no model or ring leads) and their evidence, as DuckDB made them."""
    ids = [r.id for r in load_rules()]
    with Database.open(db_path, read_only=True) as db:
        leads = db.fetch_polars("duckdb leads", f"select {', '.join(LEAD_COLUMNS)} from leads "
                                "where list_contains($ids, rule_id)", {"ids": ids})
        evidence = db.fetch_polars(
            "duckdb evidence", f"select {', '.join(EVIDENCE_COLUMNS)} from lead_evidence "
            "where list_contains($ids, rule_id)", {"ids": ids})
    return leads, evidence


def canonical(frame: pl.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows to compare: amounts to the cent, sorted (nulls first)."""
    frame = frame.select(columns).with_columns(pl.col("amount").round(2))
    return sorted(frame.rows(), key=lambda row: tuple((v is not None, v) for v in row))


def assert_same(spark_frame: pl.DataFrame, duck_frame: pl.DataFrame,
                columns: list[str]) -> None:
    ours, theirs = canonical(spark_frame, columns), canonical(duck_frame, columns)
    only_spark = sorted(set(ours) - set(theirs), key=str)[:5]
    only_duck = sorted(set(theirs) - set(ours), key=str)[:5]
    assert ours == theirs, f"Spark only: {only_spark}\nDuckDB only: {only_duck}"


def test_sample_data_leads_and_evidence_on_spark_equal_duckdbs(
    spark: Any, tmp_path: Path
) -> None:
    settings = load_settings(SAMPLE / "tracecode.toml")
    db_path = tmp_path / "sample.duckdb"
    pipeline.run(SAMPLE, db_path, tmp_path / "out", settings)
    result = run_spark(db_path, tmp_path / "spark_out", settings, shuffle_partitions=2)

    leads = pl.read_parquet(tmp_path / "spark_out" / "leads.parquet")
    evidence = pl.read_parquet(tmp_path / "spark_out" / "evidence.parquet")
    duck_leads, duck_evidence = duckdb_rule_leads(db_path)
    assert result.leads == duck_leads.height > 10
    assert duck_leads["category"].n_unique() >= 10  # most rules have something to say
    assert_same(leads, duck_leads, LEAD_COLUMNS)
    assert_same(evidence, duck_evidence, EVIDENCE_COLUMNS)
    csv = pl.read_csv(tmp_path / "spark_out" / "leads.csv")
    assert set(LEAD_COLUMNS) <= set(csv.columns) and csv.height == leads.height


def test_a_simulated_city_slice_screens_the_same_on_spark(
    spark: Any, tmp_path: Path
) -> None:
    landing = tmp_path / "world"
    simulate(landing, scale="demo", days=14, seed=3)
    db_path = tmp_path / "world.duckdb"
    settings = Settings()
    pipeline.run(landing, db_path, tmp_path / "out", settings)
    rules = load_rules(settings=settings)
    with Database.open(db_path, read_only=True) as db:
        exported = export_inputs(db, rules, tmp_path / "inputs")
    # only what ingest writes: Spark computes net sales, stock moves, activations itself
    assert {"records", "record_codes", "code_issuance"} <= set(exported)
    assert not {"sales", "sale_records", "stock_moves", "code_activations"} & set(exported)
    screen = screen_on_spark(spark, settings, tmp_path / "inputs", tmp_path / "work",
                             partitions=2)
    assert {r.rule_id for r in screen.rules} == {r.id for r in rules}
    assert {"sales", "sale_records", "sale_returns", "stock_moves",
            "code_activations"} <= {r.name for r in screen.inputs}
    with fold_leads(screen.hits, rules, settings) as folded:
        leads = folded.fetch_polars("spark leads", f"select {', '.join(LEAD_COLUMNS)} "
                                    "from leads")
        evidence = folded.fetch_polars("spark evidence",
                                       f"select {', '.join(EVIDENCE_COLUMNS)} "
                                       "from lead_evidence")
    duck_leads, duck_evidence = duckdb_rule_leads(db_path)
    assert duck_leads.height > 20
    assert_same(leads, duck_leads, LEAD_COLUMNS)
    assert_same(evidence, duck_evidence, EVIDENCE_COLUMNS)


def test_spark_given_no_tables_says_which_it_cannot_read(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(TracecodeError, match="cannot read the table catalog"):
        screen_on_spark(spark, Settings(), tmp_path / "nothing", tmp_path / "work")
