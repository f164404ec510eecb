"""A daily run screens only what new data touched, and its leads equal a full rebuild's."""

from __future__ import annotations

import random
from pathlib import Path

from landing import INSTITUTIONS, PERSONS, Landing

from tracecode import inputs, pipeline, rules
from tracecode.db import Database

LEAD_SQL = """select lead_id, rule_id, category, subject_id, fixmedins_codes, first_time,
                     last_time, n_events, amount, score, reason
              from leads order by lead_id"""
EVIDENCE_SQL = """select lead_id, rec_id, fixmedins_code, event_time, code, psn_no, amount
                  from lead_evidence order by all"""


def messy_history(landing: Landing, days: int, seed: int) -> None:
    """Sales over several days with every kind of trouble: duplicates, cross-institution
    re-sales, split packs, returns, deletions, late and re-sent uploads, sales listing no
    code and their later returns and deletions."""
    rng = random.Random(seed)
    insts = [i[0] for i in INSTITUTIONS]
    persons = [p for p in PERSONS if p != "p5"]
    serial = 0
    sold: list[tuple[str, str, str]] = []  # (inst, bchno, code)
    codeless: list[tuple[str, str]] = []  # sales listing no code: (inst, bchno)
    for day in range(days):
        date = f"2025-11-{day + 1:02d}"
        file = f"{date}/part-0.jsonl"
        # an earlier day's sale listing no code, taken back or deleted today
        for inst, bchno in codeless:
            chance = rng.random()
            if chance < 0.4:
                landing.sale_return(inst, f"R{bchno}", [], f"{date} 08:30:00", of=bchno,
                                    drug="A", file=file)
            elif chance < 0.55:
                landing.delete(inst, bchno, f"{date} 08:45:00", file=file)
        codeless.clear()
        for k in range(25):
            inst = rng.choice(insts)
            time = f"{date} {9 + k % 10:02d}:{rng.randrange(60):02d}:00"
            bchno = f"S{day}-{k}"
            kind = rng.random()
            if kind < 0.55 or not sold:
                serial += 1
                c = f"{rng.choice('AB')}:{serial}"
            else:
                c = rng.choice(sold)[2]  # the same code again: a duplicate of some kind
            late = rng.random() < 0.15 and day + 1 < days
            landing.sale(inst, bchno, [c], time, person=rng.choice(persons),
                         file=f"2025-11-{day + 2:02d}/late.jsonl" if late else file,
                         inf_time=f"2025-11-{day + 2:02d} 08:00:00" if late else None)
            sold.append((inst, bchno, c))
            if rng.random() < 0.1:
                landing.sale_return(inst, f"T{day}-{k}", [c], f"{date} 21:00:00", of=bchno,
                                    file=file)
            if rng.random() < 0.08:
                landing.delete(inst, bchno, f"{date} 23:00:00", file=file)
            if rng.random() < 0.08:
                # no code scanned, on anyone's card, the dead man's too
                person = "p5" if rng.random() < 0.3 else rng.choice(persons)
                landing.sale(inst, f"N{day}-{k}", [], time, drug="A", person=person,
                             file=file)
                codeless.append((inst, f"N{day}-{k}"))
            if rng.random() < 0.05:
                h = "H44010600004"
                landing.sale(h, f"X{day}-{k}", [f"A:{900 + day}"], time, split=True,
                             qty=rng.choice([7, 14]), file=file)
        if day > 0 and rng.random() < 0.7:
            # yesterday's record re-sent today, with a later inf_time
            inst, bchno, c = rng.choice(sold)
            landing.sale(inst, bchno, [c], f"2025-11-{day:02d} 12:00:00", stock=False,
                         inf_time=f"{date} 07:00:00", file=file)


def screen(db_path: Path, landing: Path, out: Path, *, incremental: bool) -> tuple:
    pipeline.run(landing, db_path, out, incremental=incremental)
    with Database.open(db_path, read_only=True) as db:
        return db.fetch_rows("leads", LEAD_SQL), db.fetch_rows("evidence", EVIDENCE_SQL)


def test_daily_incremental_runs_give_the_leads_of_a_full_rebuild(tmp_path: Path) -> None:
    days = 6
    world = Landing(tmp_path / "all")
    messy_history(world, days, seed=11)
    world.write()

    # day by day: each run sees one more day's folder
    daily = Landing(tmp_path / "daily")
    daily.write_reference()
    messages = sorted((world.root / "messages").iterdir())
    db_daily = tmp_path / "daily.duckdb"
    for folder in messages:
        target = daily.root / "messages" / folder.name
        target.mkdir(parents=True)
        for f in folder.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
        incremental = screen(db_daily, daily.root, tmp_path / "out_daily", incremental=True)

    full = screen(tmp_path / "full.duckdb", world.root, tmp_path / "out_full", incremental=False)
    assert len(full[0]) >= 5, "the history should raise leads of several kinds"
    assert incremental[0] == full[0]
    assert incremental[1] == full[1]

    with Database.open(db_daily, read_only=True) as db:
        scoped = db.fetch_rows(
            "runs", "select count(*) from runs where screened_at is not null")[0][0]
        # the kept inputs, refreshed code by code, equal the views over the whole history
        for view, table in inputs.KEPT.items():
            (rows,) = db.fetch_one("kept rows", f"select count(*) from {table}")
            assert rows > 0
            for a, b in ((view, table), (table, view)):
                assert db.fetch_rows("differ", f"""select count(*) from (
                    select * from {a} except all select * from {b})""") == [(0,)], (a, b)
    assert scoped == len(messages)


def test_a_change_of_the_views_rebuilds_the_kept_inputs(tmp_path: Path) -> None:
    world = Landing(tmp_path / "w")
    world.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    world.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00")
    world.write()
    db_path = tmp_path / "db.duckdb"
    first = pipeline.run(world.root, db_path, tmp_path / "out")
    assert first.screen["rebuilt"]
    again = pipeline.run(world.root, db_path, tmp_path / "out")
    assert not again.screen["rebuilt"] and again.screen["touched_codes"] == 0
    with Database.open(db_path) as db:
        # as if these tables had been built by an earlier version of the views
        db.execute("age the inputs", "update screen_state set inputs_digest = 'older'")
        db.execute("spoil the inputs", "delete from screened_sales")
    after = pipeline.run(world.root, db_path, tmp_path / "out")
    assert after.screen["rebuilt"] and after.screen["rules_on_touched"] == 0
    assert after.leads_by_category == first.leads_by_category == {"dup_same_institution": 1}


def test_a_run_that_crashed_after_ingest_is_screened_by_the_next(
    tmp_path: Path, monkeypatch
) -> None:
    import pytest

    from tracecode import leads

    world = Landing(tmp_path / "w")
    world.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    world.write()
    db = tmp_path / "db.duckdb"
    pipeline.run(world.root, db, tmp_path / "out")
    later = Landing(world.root, auto_stock=False)
    later.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00", file="day2.jsonl")
    later.write()
    monkeypatch.setattr(leads, "build_leads", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    with pytest.raises(OSError):
        pipeline.run(world.root, db, tmp_path / "out")
    monkeypatch.undo()
    summary = pipeline.run(world.root, db, tmp_path / "out")
    # the failed run ingested day2's line; the run that finished the work counts it
    assert (summary.lines_read, summary.files_ingested, len(summary.recovered_runs)) == (1, 1, 1)
    assert summary.leads_by_category == {"dup_same_institution": 1}


def test_a_return_on_another_card_withdraws_the_sale_from_its_buyers_leads(
    tmp_path: Path,
) -> None:
    """A return that names no sale takes back the latest sale of its code at its
    institution, whoever's card it carries: the buyer of that sale was not in the new data,
    yet their person leads must change as in a full rebuild."""
    world = Landing(tmp_path / "w")
    # sold on the card of a person who died on 2025-10-01: a deceased_person lead
    world.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00", person="p5")
    world.write()
    db = tmp_path / "daily.duckdb"
    first = pipeline.run(world.root, db, tmp_path / "out")
    assert first.leads_by_category == {"deceased_person": 1}

    later = Landing(world.root, auto_stock=False)
    later.sale_return("P44010600001", "T1", ["A:1"], "2025-11-02 09:00:00", person="p1",
                      file="day2.jsonl")
    later.write()
    daily = screen(db, world.root, tmp_path / "out", incremental=True)
    full = screen(tmp_path / "full.duckdb", world.root, tmp_path / "out_full",
                  incremental=False)
    assert full[0] == []
    assert daily == full


def test_a_rule_waiting_on_the_clock_judges_untouched_institutions_as_it_moves(
    tmp_path: Path,
) -> None:
    """no_inbound judges a sale once the data clock is the upload lag past it. When only
    other institutions' data arrives, the clock still moves, and an institution whose
    sales it brought into judgement gets its lead, as in a full rebuild."""
    world = Landing(tmp_path / "w", auto_stock=False)
    # six codes sold with no stock-in: a no_inbound lead, but not before the lag (2 days)
    for k in range(6):
        world.sale("P44010600002", f"S{k}", [f"A:{k + 1}"], f"2025-11-01 1{k}:00:00")
    world.write()
    db = tmp_path / "daily.duckdb"
    assert pipeline.run(world.root, db, tmp_path / "out").leads_by_category == {}

    # three days later, news from another institution only: it moves the clock
    later = Landing(world.root, auto_stock=False)
    later.purchase("P44030400005", "B1", "2025-11-04 09:00:00", file="day4.jsonl")
    later.write()
    summary = pipeline.run(world.root, db, tmp_path / "out")
    assert summary.screen["rules_on_touched"] == len(rules.load_rules())
    assert summary.leads_by_category == {"no_inbound": 1}
    daily = screen(db, world.root, tmp_path / "out", incremental=True)
    full = screen(tmp_path / "full.duckdb", world.root, tmp_path / "out_full",
                  incremental=False)
    assert daily == full
