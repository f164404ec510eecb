"""The nightly Prefect flow end to end, under Prefect's test harness (a real local server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from landing import Landing

sys.path.insert(0, str(Path(__file__).parents[1] / "flows"))


@pytest.mark.usefixtures("prefect_harness")
def test_the_nightly_flow_ingests_screens_and_writes_the_lead_list(
    landing: Landing, tmp_path: Path
) -> None:
    from nightly import nightly

    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    landing.add("not json")
    landing.write()

    summary = nightly(landing.root, tmp_path / "db.duckdb", tmp_path / "out")

    assert summary["leads_by_category"] == {"dup_same_institution": 1}
    # one auto-stocked purchase-in, two sales, one bad line
    assert (summary["lines_read"], summary["lines_quarantined"]) == (4, 1)
    written = json.loads((tmp_path / "out" / "run_summary.json").read_text(encoding="utf-8"))
    assert written["run_id"] == summary["run_id"]
    assert (tmp_path / "out" / "leads.parquet").exists()

    again = nightly(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    assert again["lines_read"] == 0 and again["leads"] == 1
