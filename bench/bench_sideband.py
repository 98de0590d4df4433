"""Benchmark: side-band records (MMAP2) in bulk against record by record.

A system-wide `perf mem record -a` starts with a synthesized MMAP2 record for every
mapping of every process: hundreds of thousands of records before the first sample.
This writes such a file with the test writer (tests/perfdata_writer.py; `perf script`
must read it), then measures, each as a whole process (/usr/bin/time):

1. ``tracedamon ingest`` (MMAP2/COMM/FORK/EXIT decoded in bulk by numba),
2. the same with the bulk path switched off (every record through Python),
3. ``perf script -F pid,tid,time,addr > /dev/null``,

and checks that 1 and 2 wrote equal tables.

    .venv/bin/python bench/bench_sideband.py                 # 200 k MMAP2, 200 k samples
    .venv/bin/python bench/bench_sideband.py --mmaps 20000 --samples 20000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from bench_ingest import VENV_BIN, shlex_quote, timed  # noqa: E402

PYTHON_PATH_INGEST = r"""
import sys
from tracedamon.ingest import perf_data
perf_data._PassState.SIDEBAND_BULK = 1 << 62          # every record through Python
from tracedamon.cli import main
sys.exit(main(["ingest", sys.argv[1], "-o", sys.argv[2], "--force"]))
"""


def _same(a, b) -> bool:
    return a.equals(b) or a.to_pylist() == b.to_pylist()


def make_file(path: Path, n_mmaps: int, n_samples: int) -> None:
    from perfdata_writer import S, Comm, Event, Mmap2, Sample, assign_ids, write_perf_data

    ev = Event("page-faults", type=1, config=2, sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.ID)
    assign_ids([ev])
    t0 = 10**9
    recs = []
    for i in range(n_mmaps):
        pid = 100 + i // 50
        if i % 50 == 0:
            recs.append(
                Comm(
                    ev, pid=pid, tid=pid, comm=f"task{pid}", sid=dict(pid=pid, tid=pid, time=t0 + i)
                )
            )
        recs.append(
            Mmap2(
                ev,
                pid=pid,
                tid=pid,
                start=0x400000 + (i % 50) * 0x10000,
                len=0x10000,
                pgoff=0,
                maj=8,
                min=1,
                ino=i,
                prot=5,
                flags=2,
                filename=f"/usr/lib/x86_64-linux-gnu/lib{i % 300}.so",
                sid=dict(pid=pid, tid=pid, time=t0 + i),
            )
        )
    for i in range(n_samples):
        recs.append(
            Sample(
                ev,
                ip=0x401000,
                pid=100,
                tid=100,
                time=t0 + n_mmaps + i,
                addr=0x7000 + 64 * i,
                id=ev.ids[0],
            )
        )
    write_perf_data(path, [ev], recs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmaps", type=int, default=200_000)
    ap.add_argument("--samples", type=int, default=200_000)
    a = ap.parse_args(argv)
    if not shutil.which("perf"):
        print("perf is not installed: nothing to compare with", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tracedamon-bench-sideband-"))
    try:
        data = work / "sideband.data"
        make_file(data, a.mmaps, a.samples)
        bulk = timed(
            f"{VENV_BIN / 'tracedamon'} ingest {data} -o {work / 'bulk.td'} --force > /dev/null"
        )
        slow = timed(
            f"{sys.executable} -c {shlex_quote(PYTHON_PATH_INGEST)} {data} "
            f"{work / 'python.td'} > /dev/null"
        )
        perf = timed(f"perf script -i {data} -F pid,tid,time,addr > /dev/null")
        from tracedamon.store.trace import open_trace

        # equal rows (dictionary columns may hold their values in another order)
        same = all(
            _same(open_trace(work / "bulk.td").table(n), open_trace(work / "python.td").table(n))
            for n in ("mmaps", "tasks", "samples")
        )
        print(
            f"input: {a.mmaps:,} MMAP2 + {a.mmaps // 50:,} COMM + {a.samples:,} samples "
            f"({data.stat().st_size / 1e6:.0f} MB)"
        )
        print(f"{'':40} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
        for name, r in (
            ("tracedamon ingest (side-band in bulk)", bulk),
            ("  the same, record by record", slow),
            ("perf script -F pid,tid,time,addr", perf),
        ):
            print(f"{name:40} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss_mb']:12.0f}")
        print(
            f"bulk vs record by record: {slow['wall'] / bulk['wall']:.1f}x; "
            f"vs perf script: {perf['wall'] / bulk['wall']:.2f}x; tables equal: {same}"
        )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
