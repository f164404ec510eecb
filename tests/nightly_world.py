"""A three-day landing (``messages/YYYY-MM-DD/``) with leads, a re-sent record and a bad
line: small enough for the flow, crash and concurrency tests to run it many times."""

from __future__ import annotations

from pathlib import Path

import duckdb
from landing import Landing

DAYS = ("2025-11-01", "2025-11-02", "2025-11-03")


def three_days(root: Path) -> Landing:
    world = Landing(root)
    d1, d2, d3 = (f"{d}/part-0000.jsonl" for d in DAYS)
    world.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", file=d1)
    world.sale("P44010600001", "S4", ["B:7"], "2025-11-01 11:00:00", person="p3", file=d1)
    world.add("not json", file=d1)
    world.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00", person="p2", file=d2)
    world.sale("P44010600002", "S5", ["B:7"], "2025-11-02 12:00:00", person="p4", file=d2)
    # S4 sent again with a later inf_time: it replaces the first version
    world.sale("P44010600001", "S4", ["B:7"], "2025-11-01 11:00:00", person="p3",
               inf_time="2025-11-03 09:00:00", file=d3)
    world.sale("P44030400005", "S6", ["A:1"], "2025-11-03 10:00:00", person="p2", file=d3)
    world.write()
    return world


def state(db: Path) -> dict[str, object]:
    """What a run leaves in a database: leads, records and counts (not run ids or times)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "leads": con.execute(
                """select lead_id, category, subject_id, n_events, amount, score, reason
                   from leads order by lead_id""").fetchall(),
            "records": con.execute(
                """select src_file, line_no, infno, fixmedins_bchno, is_current
                   from records order by src_file, line_no""").fetchall(),
            "files": con.execute(
                """select path, lines_read, records_stored, records_replaced,
                          lines_quarantined
                   from ingested_files order by path""").fetchall(),
            "quarantine": con.execute(
                "select src_file, line_no, reason from quarantine order by all").fetchall(),
            "codes": con.execute("select count(*) from record_codes").fetchone(),
        }
    finally:
        con.close()
