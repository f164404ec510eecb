"""How fast the simulator writes, and how much memory it takes at its peak.

Each scale runs in a fresh subprocess (so that its peak resident memory is its own,
read from ``resource.getrusage`` in the child) and writes under ``bench/out/``. Wall
time depends on what else the machine runs; CPU seconds (user + system, all threads)
much less so, hence both, and ``msg/CPU-s``: messages per CPU second, the rate one
otherwise idle core would reach. The simulator works on two threads besides its own, so
on an idle machine with two cores the wall rate can approach twice that. ``--repeat``
runs each scale several times: compare the best runs, not single ones.

    .venv/bin/python bench/bench_simulate.py                      # city (7 days), province-day
    .venv/bin/python bench/bench_simulate.py --scale city:30 --keep
    .venv/bin/python bench/bench_simulate.py --repeat 3 --load
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

CHILD = """
import json, resource, sys
from pathlib import Path
from tracecode.simulate import simulate
r = simulate(Path(sys.argv[1]), scale=sys.argv[2], days=int(sys.argv[3]), seed=int(sys.argv[4]))
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"messages": r.n_messages, "codes": r.n_codes, "truth": r.n_truth,
                  "seconds": r.seconds, "user": use.ru_utime, "sys": use.ru_stime,
                  "peak_mb": use.ru_maxrss / 1024}))
"""


def run(scale: str, days: int, seed: int) -> dict:
    out = OUT / f"{scale}-{days}d"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), scale, str(days), str(seed)],
                          check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"scale": scale, "days": days, **result, "cpu": result["user"] + result["sys"],
            "disk_mb": size / 2**20, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="append", metavar="NAME[:DAYS]",
                        help="scale and days to run (repeatable); default city:7 and "
                             "province-day:1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scale")
    parser.add_argument("--keep", action="store_true", help="keep the generated landings")
    parser.add_argument("--load", action="store_true",
                        help="print the machine's load average before each run")
    args = parser.parse_args()
    runs = args.scale or ["city:7", "province-day:1"]
    print(f"{'scale':14} {'days':>4} {'messages':>10} {'codes':>11} {'seconds':>8} "
          f"{'msg/s':>9} {'codes/s':>10} {'CPU s':>7} {'(sys)':>6} {'msg/CPU-s':>10} "
          f"{'peak RSS':>9} {'on disk':>8}")
    for spec in runs:
        name, _, days = spec.partition(":")
        for _ in range(args.repeat):
            if args.load:
                print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            r = run(name, int(days or 7), args.seed)
            print(f"{r['scale']:14} {r['days']:>4} {r['messages']:>10,} {r['codes']:>11,} "
                  f"{r['seconds']:>8.1f} {r['messages'] / r['seconds']:>9,.0f} "
                  f"{r['codes'] / r['seconds']:>10,.0f} {r['cpu']:>7.1f} {r['sys']:>6.1f} "
                  f"{r['messages'] / r['cpu']:>10,.0f} {r['peak_mb']:>7,.0f}MB "
                  f"{r['disk_mb']:>6,.0f}MB", flush=True)
            if not args.keep:
                shutil.rmtree(r["out"], ignore_errors=True)


if __name__ == "__main__":
    main()
