"""Ingest throughput on a generated landing directory of N upload messages.

Prints messages/s and codes/s of tracecode's ingest (parse, validate, store, replace),
against a baseline measured in the same run on the same files: DuckDB's plain
``read_json`` of the messages into a table (no validation, no line accounting).

    python bench/bench_ingest.py [--messages 1000000] [--files 4] [--keep DIR]
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
        fixmedins_code := 'P440106' || lpad(((case when i % 20 = 19 then i - 3 else i end) % 5000)::varchar, 5, '0'),
        fixmedins_name := '药房' || (i % 5000),
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


def generate(root: Path, n: int, files: int) -> None:
    Landing(root).write_reference()
    messages = root / "messages" / "2025-11-01"
    messages.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    per = -(-n // files)
    for k in range(files):
        path = messages / f"part-{k:04d}.jsonl"
        con.execute(GENERATE.replace("{path}", str(path)),
                    {"start": k * per, "stop": min(n, (k + 1) * per)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="tracecode-bench-"))
    try:
        if not (root / "messages").exists():
            t = time.perf_counter()
            generate(root, args.messages, args.files)
            print(f"generated {args.messages:,} messages in {time.perf_counter() - t:.1f}s")
        size = sum(p.stat().st_size for p in (root / "messages").rglob("*.jsonl"))

        # baseline: DuckDB's own reader straight into a table, nothing checked
        con = duckdb.connect(str(root / "baseline.duckdb"))
        t = time.perf_counter()
        con.execute("create or replace table m as select * from "
                    f"read_json('{root}/messages/**/*.jsonl', "
                    "format = 'newline_delimited', ignore_errors = true)")
        base_s = time.perf_counter() - t
        (base_rows,) = con.execute("select count(*) from m").fetchone()  # type: ignore[misc]
        con.close()

        db_path = root / "bench.duckdb"
        db_path.unlink(missing_ok=True)
        with Database.open(db_path) as db:
            t = time.perf_counter()
            result = ingest.ingest_messages(db, root, "bench")
            ingest_s = time.perf_counter() - t
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"input: {result.lines_read:,} lines, {size / 1e6:,.0f} MB in {args.files} files")
        print(f"baseline read_json:   {base_s:6.1f}s  {base_rows / base_s:>10,.0f} msg/s  "
              f"{size / 1e6 / base_s:6.0f} MB/s")
        print(f"tracecode ingest:     {ingest_s:6.1f}s  "
              f"{result.lines_read / ingest_s:>10,.0f} msg/s  {size / 1e6 / ingest_s:6.0f} MB/s  "
              f"{result.codes_stored / ingest_s:>10,.0f} codes/s")
        print(f"ingest / baseline:    {ingest_s / base_s:.2f}x the time")
        print(f"stored {result.records_stored:,}, replaced {result.records_replaced:,}, "
              f"quarantined {result.lines_quarantined:,}, codes {result.codes_stored:,}; "
              f"peak RSS {rss_mb:,.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
