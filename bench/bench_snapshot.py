"""Benchmark: cost of one pagemap snapshot of a process with 1 GiB touched.

Starts ``tests/helpers/pagemap_target.c`` (compiled here) mapping and writing
``--mib`` MiB of anonymous memory (4 KiB pages, MADV_NOHUGEPAGE; ``--thp`` maps
it with MADV_HUGEPAGE instead), then takes ``--count`` snapshots with
:class:`tracedamon.ingest.pagemap_capture.PagemapCapture` and prints, best and median
over the snapshots:

* ms per snapshot (maps + pagemap of every VMA + maps again + run encoding),
  with and without /proc/kpageflags (THP flags),
* MB/s of pagemap entries read,
* the number of runs (rows) per snapshot,
* translation throughput over the captured snapshots (``Translator``: 2M random
  virtual addresses of the buffer → physical and back),
* the same pagemap decoded by a straightforward reference (one ``struct.unpack``
  and Python-level run building per page, like a page-by-page reader) on the
  bytes of one snapshot, and the ratio reference / tracedamon.

    .venv/bin/python bench/bench_snapshot.py [--mib 1024] [--count 5] [--thp]

Run as root to read frames (otherwise they read as 0 and runs are far fewer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tracedamon.engine.translate import Translator  # noqa: E402
from tracedamon.ingest.pagemap_capture import PagemapCapture  # noqa: E402

HELPER = ROOT / "tests" / "helpers" / "pagemap_target.c"


def reference_decode(data: bytes, start: int):
    """Page-by-page decoding and run building in plain Python (the baseline)."""
    runs = []
    cur = None
    for i in range(len(data) // 8):
        (e,) = struct.unpack_from("<Q", data, 8 * i)
        present = e >> 63 & 1
        flags = (
            present
            | (e >> 62 & 1) << 1
            | (e >> 61 & 1) << 2
            | (e >> 56 & 1) << 3
            | (e >> 55 & 1) << 4
        )
        pfn = e & ((1 << 55) - 1) if present else 0
        va = start + i * 4096
        if (
            cur
            and cur[3] == flags
            and (
                (pfn == 0 and cur[2] == 0)
                or (pfn and cur[2] and pfn == cur[2] + (va - cur[0]) // 4096)
            )
        ):
            cur[1] = va + 4096
            continue
        cur = [va, va + 4096, pfn, flags]
        runs.append(cur)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--thp", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "pagemap_target"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(HELPER)], check=True)
        npages = args.mib * 256
        proc = subprocess.Popen(
            [str(exe), "thp" if args.thp else "fill", str(npages)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        buf = None
        for line in proc.stdout:
            if line.startswith("buf "):
                buf = int(line.split()[1], 16)
            if line.strip() == "ready":
                break
        try:
            results = {}
            tables = []
            for kflags in (False, True):
                times, sizes, rows = [], [], []
                with PagemapCapture(proc.pid, kpageflags=kflags) as cap:
                    note = cap.kpageflags_note
                    for k in range(args.count):
                        t0 = time.perf_counter()
                        snap = cap.snapshot(k)
                        times.append(time.perf_counter() - t0)
                        sizes.append(snap.info["pagemap_bytes_read"])
                        rows.append(snap.pagemap.num_rows)
                        if not kflags:
                            tables.append(snap.pagemap)
                results[kflags] = (times, sizes, rows, note)
            with open(f"/proc/{proc.pid}/pagemap", "rb", buffering=0) as f:
                f.seek(buf // 4096 * 8)
                data = f.read(npages * 8)
            t0 = time.perf_counter()
            ref_runs = reference_decode(data, buf)
            t_ref = time.perf_counter() - t0
        finally:
            proc.stdin.write("q")
            proc.stdin.close()
            proc.wait()
    print(
        f"process: {args.mib} MiB touched ({'MADV_HUGEPAGE' if args.thp else '4 KiB pages'}), "
        f"euid {os.geteuid()}, {args.count} snapshots each"
    )
    for kflags, (times, sizes, rows, note) in results.items():
        best, med = min(times), statistics.median(times)
        mb = sizes[0] / 1e6
        print(
            f"  kpageflags {'on ' if kflags else 'off'} ({note}): "
            f"{best * 1e3:8.1f} ms best, {med * 1e3:8.1f} ms median per snapshot; "
            f"{mb:.1f} MB pagemap read -> {mb / best:8.1f} MB/s (best), "
            f"{args.mib / 1024 / best:.1f} GiB of touched memory/s; {rows[0]} runs"
        )
    import numpy as np
    import pyarrow as pa

    table = pa.concat_tables(tables)
    t0 = time.perf_counter()
    tr = Translator.from_tables(table)
    t_build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    n = 2_000_000
    va = (buf + rng.integers(0, npages * 4096, n)).astype(np.uint64)
    when = rng.integers(int(tr.snapshot_times[0]), int(tr.snapshot_times[-1]) + 1, n)
    t0 = time.perf_counter()
    paddr = tr.virt_to_phys(proc.pid, va, when)
    t_v2p = time.perf_counter() - t0
    t0 = time.perf_counter()
    pids, back = tr.phys_to_virt(paddr, when)
    t_p2v = time.perf_counter() - t0
    ok = paddr != 0
    print(
        f"  translation over {table.num_rows} runs ({args.count} snapshots; build "
        f"{t_build * 1e3:.1f} ms): virt->phys {n / t_v2p / 1e6:.2f} M/s, phys->virt "
        f"{n / t_p2v / 1e6:.2f} M/s; round trip exact: {bool((back[ok] == va[ok]).all())} "
        f"({ok.mean():.1%} of addresses had frames)"
    )
    best_off = min(results[False][0])
    print(
        f"  reference page-by-page decode of the buffer alone: {t_ref * 1e3:.1f} ms "
        f"({len(ref_runs)} runs) -> tracedamon whole snapshot (kpageflags off) is "
        f"{t_ref / best_off:.1f}x faster"
    )


if __name__ == "__main__":
    main()
