"""Run every tracedamon benchmark in turn (`make bench`); each prints its own figures.

    .venv/bin/python bench/run_all.py            # the full sizes quoted in README
    .venv/bin/python bench/run_all.py --quick    # small sizes, a smoke run of every bench

Benchmarks are CPU-heavy: run them on an otherwise idle machine, one at a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["bench_ingest.py"],
    ["bench_sideband.py"],
    ["bench_replay.py"],
    ["bench_replay_memory.py"],
    ["bench_damon_ingest.py"],
    ["bench_snapshot.py"],
    ["bench_compare.py"],
    ["bench_reports.py", "--no-damo"],
    ["bench_reports.py", "--snapshots", "250"],
    ["bench_damos.py"],
    ["bench_report_html.py"],
    ["bench_sweep.py"],
]
QUICK = [
    ["bench_ingest.py", "--samples", "500000", "--skip-pipeline", "--repeat", "1"],
    ["bench_sideband.py", "--mmaps", "20000", "--samples", "20000"],
    ["bench_replay.py", "--quick"],
    ["bench_replay_memory.py", "--rows", "1e6", "--samples", "200000", "--many", "500000"],
    ["bench_damon_ingest.py", "--repeat", "1", "--scale", "1"],
    ["bench_snapshot.py", "--mib", "64", "--count", "2"],
    ["bench_compare.py", "--repeat", "1", "--rows", "1000000"],
    ["bench_reports.py", "--snapshots", "25", "--no-damo"],
    ["bench_damos.py", "--regions", "300", "--snapshots", "20", "--repeat", "1"],
    ["bench_report_html.py", "--quick", "--repeat", "1"],
    ["bench_sweep.py", "--quick", "--repeat", "1"],
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    args = ap.parse_args()
    failed = []
    for cmd in QUICK if args.quick else FULL:
        print(f"\n===== {' '.join(cmd)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]])
        if r.returncode:
            failed.append(cmd[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
