"""Ingest throughput on a generated landing directory of N upload messages.

The same lines are laid out twice: as a few large files, and one file per institution
per day as a province sends them (``messages/2025-11-01/P44010600123.jsonl``, ``--many``
files). For each layout it prints messages/s and codes/s of tracecode's ingest (parse,
validate, store, replace) against a baseline measured in the same run on the same files:
DuckDB's plain ``read_json`` of the messages into a table (no validation, no line
accounting); then the cost per extra file and the many/few ratio.

    python bench/bench_ingest.py [--messages 1000000] [--files 4] [--many 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from landing import Landing

from tracecode import ingest
from tracecode.db import Database

# One message per row of range(): a sale (85%) with 1-3 codes, a stock-in (10%) or a
# re-sent sale (5%); 1 line in 1000 is broken JSON, as real uploads are.
GENERATE = """
copy (
    select case when i % 1000 = 999 then '{"infno": "3505", "msgid": '
           else to_json(struct_pack(
        infno := case when i % 20 < 17 then '3505' when i % 20 < 19 then '3502' else '3505' end,
        msgid := 'M' || i,
        inf_time := strftime(timestamp '2025-11-01' + to_seconds(i % 86400 + 60), '%Y-%m-%d %H:%M:%S'),
        fixmedins_code := 'P44' || lpad(((case when i % 20 = 19 then i - 3 else i end) % $insts)::varchar, 9, '0'),
        fixmedins_name := '药房' || (i % $insts),
        input := case when i % 20 in (17, 18) then
            json_object('invinfo', json_object(
                'med_list_codg', 'XC10AAA123A00101010' || (i % 97),
                'fixmedins_bchno', 'K' || i, 'inv_chg_type', '108', 'cnt', 2, 'pric', 12.5,
                'inv_chg_time', strftime(timestamp '2025-11-01' + to_seconds(i % 86400), '%Y-%m-%d %H:%M:%S'),
                'drugtracinfo', [json_object('drug_trac_codg', '8123456' || lpad((i * 2)::varchar, 9, '0') || '0000'),
                                 json_object('drug_trac_codg', '8123456' || lpad((i * 2 + 1)::varchar, 9, '0') || '0000')]))
        else
            json_object('selinfo', json_object(
                'med_list_codg', 'XC10AAA123A00101010' || (i % 97),
                -- every 20th message re-sends the sale three messages before it
                'fixmedins_bchno', 'S' || (case when i % 20 = 19 then i - 3 else i end),
                'psn_no', '440000' || lpad((i % 2000000)::varchar, 8, '0'),
                'psn_cert_type', '01', 'certno', '440106199001011234', 'psn_name', '张三',
                'manu_lotnum', 'B2409011', 'manu_date', '2024-09-01', 'expy_end', '2026-08-31',
                'trdn_flag', '0', 'sel_retn_cnt', 28 * (1 + i % 3),
                'sel_retn_time', strftime(timestamp '2025-11-01' + to_seconds(i % 86400), '%Y-%m-%d %H:%M:%S'),
                'finl_trns_pric', 2.0, 'rtal_docno', 'R' || i, 'setl_id', 'ST' || i,
                'mdtrt_setl_type', '1',
                'drugtracinfo', list_transform(range(1 + i % 3),
                    lambda k: json_object('drug_trac_codg', '8234567' || lpad((i * 3 + k)::varchar, 9, '0') || '0000'))))
        end))::varchar end as line
    from range($start, $stop) t(i)
) to '{path}' (format csv, header false, quote '', delimiter '\x01')
"""


def generate(root: Path, n: int, files: int, many: int) -> None:
    """``root/few``: ``files`` files; ``root/many``: one file per institution (``many``)."""
    for layout in ("few", "many"):
        Landing(root / layout).write_reference()
    few = root / "few" / "messages" / "2025-11-01"
    few.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": "6GB"})
    per = -(-n // files)
    for k in range(files):
        path = few / f"part-{k:04d}.jsonl"
        con.execute(GENERATE.replace("{path}", str(path)),
                    {"start": k * per, "stop": min(n, (k + 1) * per), "insts": many})
    day = root / "many" / "messages" / "2025-11-01"
    day.mkdir(parents=True, exist_ok=True)
    by_inst = con.execute(
        f"""select coalesce(case when json_valid(line) then line ->> '$.fixmedins_code' end, 'broken') as inst,
                   string_agg(line, chr(10) order by n) || chr(10)
            from (select line, row_number() over () as n
                  from read_csv('{few}/*.jsonl', columns = {{'line': 'varchar'}},
                                header = false, delim = '\x01', quote = '', escape = ''))
            group by inst""")
    while rows := by_inst.fetchmany(1000):
        for inst, text in rows:
            (day / f"{inst}.jsonl").write_text(text, encoding="utf-8")


def measure(root: Path, label: str, n_files: int) -> tuple[float, float, ingest.IngestResult]:
    """Seconds of bare read_json and of tracecode's ingest of ``root/messages``."""
    con = duckdb.connect(str(root / "baseline.duckdb"), config={"memory_limit": "6GB"})
    t = time.perf_counter()
    con.execute("create or replace table m as select * from "
                f"read_json('{root}/messages/**/*.jsonl', "
                "format = 'newline_delimited', ignore_errors = true)")
    base_s = time.perf_counter() - t
    con.close()
    (root / "baseline.duckdb").unlink()
    db_path = root / "bench.duckdb"
    db_path.unlink(missing_ok=True)
    with Database.open(db_path, memory_limit="6GB") as db:
        t = time.perf_counter()
        result = ingest.ingest_messages(db, root, "bench")
        ingest_s = time.perf_counter() - t
    db_path.unlink()
    n = result.lines_read
    print(f"{label:>5} ({n_files:>6,} files)  read_json {base_s:6.1f}s {n / base_s:>9,.0f} msg/s"
          f"   tracecode {ingest_s:6.1f}s {n / ingest_s:>9,.0f} msg/s "
          f"{result.codes_stored / ingest_s:>9,.0f} codes/s   {ingest_s / base_s:.2f}x read_json")
    return base_s, ingest_s, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--many", type=int, default=20_000,
                    help="institutions, i.e. files in the one-file-per-institution layout")
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="tracecode-bench-"))
    try:
        if not (root / "many" / "messages").exists():
            t = time.perf_counter()
            generate(root, args.messages, args.files, args.many)
            print(f"generated {args.messages:,} messages in {time.perf_counter() - t:.1f}s")
        many_files = sum(1 for _ in (root / "many" / "messages").rglob("*.jsonl"))
        size = sum(p.stat().st_size for p in (root / "few" / "messages").rglob("*.jsonl"))
        print(f"input: {args.messages:,} lines, {size / 1e6:,.0f} MB")
        _, few_s, few = measure(root / "few", "few", args.files)
        _, many_s, many = measure(root / "many", "many", many_files)
        assert (few.records_stored, few.lines_quarantined) == (
            many.records_stored, many.lines_quarantined), "same lines, same outcome"
        per_file_ms = (many_s - few_s) / (many_files - args.files) * 1000
        print(f"many / few files: {many_s / few_s:.2f}x the time; "
              f"cost per extra file {per_file_ms:.2f} ms")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"stored {few.records_stored:,}, replaced {few.records_replaced:,}, "
              f"quarantined {few.lines_quarantined:,}, codes {few.codes_stored:,}; "
              f"peak RSS {rss_mb:,.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
