"""Peak memory of `tracedamon replay`: a large region history, and many samples.

Trace directories with synthetic page-access samples are made on the fly (nothing big
is stored): one process, 80 % of the samples in a 4 MiB hot set that moves every
second, the rest uniform over its mapped range.

1. history: ``--samples`` samples over ``--seconds`` seconds; a fixed 4 KiB replay of
   the range writes every region of every snapshot,

       rows = (range / 4 KiB) x (seconds / 100 ms)      (10.5 M rows by default);

2. samples: ``--many`` samples (10 M) over 60 s in a 1 GiB heap, with the process's
   mappings (binary, heap, stack) as perf MMAP records; `replay DIR --start auto` at the
   default parameters (adaptive regions), samples streamed from the Parquet file.

Each command runs under ``/usr/bin/time -v`` (peak RSS = "Maximum resident set size",
wall time, CPU time = user + system: on a shared machine the CPU time is the steadier
figure); the output is checked (row count; no snapshot split across row
groups).  ``--code DIR`` runs the same command with another tracedamon source tree
first on ``PYTHONPATH`` (e.g. an older checkout, for before/after figures); each run is
limited to ``--limit-gb`` of address space, so an old version that holds every row
fails instead of taking the machine down.

    .venv/bin/python bench/bench_replay_memory.py [--rows 10_000_000] [--code OLD_TREE]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE = 4096
BASE = 0x7F0000000000


HEAP = 0x555555600000
MAPS = [
    (0x555555554000, 0x2000, "/usr/bin/workload"),
    (HEAP, 1 << 30, "[heap]"),
    (0x7FFFFFFDE000, 0x21000, "[stack]"),
]


def make_trace(
    dest: Path,
    seconds: float,
    span: int,
    n: int,
    seed: int = 0,
    base: int = None,
    mmaps: bool = False,
) -> None:
    from tracedamon.store.writer import TraceDirWriter

    rng = np.random.default_rng(seed)
    base = BASE if base is None else base
    with TraceDirWriter(dest) as w:
        if mmaps:
            w.write(
                "mmaps",
                pa.table(
                    {
                        "time_ns": pa.array(np.zeros(len(MAPS), np.int64)),
                        "pid": pa.array(np.full(len(MAPS), 4242, np.int32)),
                        "tid": pa.array(np.full(len(MAPS), 4242, np.int32)),
                        "start": pa.array(np.array([m[0] for m in MAPS], np.uint64)),
                        "length": pa.array(np.array([m[1] for m in MAPS], np.uint64)),
                        "filename": pa.array([m[2] for m in MAPS]),
                    }
                ),
            )
        done = 0
        batch = 1 << 20
        t_all = np.sort(rng.integers(0, int(seconds * 1e9), n))
        while done < n:
            k = min(batch, n - done)
            t = t_all[done : done + k]
            hot_base = ((t // 1_000_000_000) * 37 * 0x400000) % (span - 0x400000)
            hot = rng.random(k) < 0.8
            off = np.where(hot, hot_base + rng.integers(0, 0x400000, k), rng.integers(0, span, k))
            w.write(
                "samples",
                pa.table(
                    {
                        "time_ns": pa.array(t + 1_000_000_000, pa.int64()),
                        "pid": pa.array(np.full(k, 4242, np.int32)),
                        "tid": pa.array(np.full(k, 4242, np.int32)),
                        "event_id": pa.array(np.zeros(k, np.int32)),
                        "event": pa.DictionaryArray.from_arrays(
                            pa.array(np.zeros(k, np.int32)), pa.array(["page-faults"])
                        ),
                        "addr": pa.array((base + off).astype(np.uint64)),
                        "cpumode": pa.array(np.full(k, 2, np.uint8)),
                        "misc": pa.array(np.full(k, 2, np.uint16)),
                    }
                ),
            )
            done += k


def run(cmd: list[str], code: str | None, limit_gb: float, cwd: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = code or str(ROOT)
    full = ["/usr/bin/time", "-v", "prlimit", f"--as={int(limit_gb * (1 << 30))}", "--", *cmd]
    # (run elsewhere than in a source tree: `python -m` puts the working directory first)
    r = subprocess.run(full, env=env, capture_output=True, text=True, cwd=cwd)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr)
    secs = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            secs = secs * 60 + float(part)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr))
    err = [ln for ln in r.stderr.splitlines() if "error" in ln.lower() or "Error" in ln]
    return {
        "rc": r.returncode,
        "rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "wall_s": secs,
        "cpu_s": cpu,
        "err": err[-1] if err else "",
    }


def check(out: Path, rows: int) -> str:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(out)
    md = pf.metadata
    split = 0
    last = None
    for g in range(md.num_row_groups):
        s = pf.read_row_group(g, columns=["snapshot"]).column(0)
        if last is not None and s[0].as_py() == last:
            split += 1
        last = s[-1].as_py()
    ok = md.num_rows == rows
    return (
        f"{md.num_rows:,} rows ({'as expected' if ok else f'expected {rows:,}'}), "
        f"{md.num_row_groups} row groups, {split} snapshot(s) split across row groups, "
        f"{out.stat().st_size / 1e6:.0f} MB"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows",
        type=float,
        default=10.5e6,
        help="rows of the history (regions x snapshots), about",
    )
    ap.add_argument("--seconds", type=float, default=8.0, help="recorded time")
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument(
        "--many", type=int, default=10_000_000, help="samples of the second case (0: skip it)"
    )
    ap.add_argument(
        "--code",
        action="append",
        default=[],
        help="another source tree to measure too (repeatable)",
    )
    ap.add_argument("--limit-gb", type=float, default=6.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    snaps = int(args.seconds * 10)
    regions = int(args.rows) // snaps
    span = regions * PAGE
    rows = regions * snaps
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="bench_replay_memory."))
    try:
        td = tmp / "trace.td"
        make_trace(td, args.seconds, span, args.samples)
        size = sum(f.stat().st_size for f in td.iterdir()) / 1e6
        print(
            f"trace: {args.samples:,} samples over {args.seconds:g} s ({size:.0f} MB); fixed "
            f"4 KiB over {span >> 20} MiB = {regions:,} regions x {snaps} snapshots = "
            f"{rows:,} rows, every region written (--max-rows 0)"
        )
        for code in [None, *args.code]:
            out = tmp / "replay.parquet"
            cmd = [
                sys.executable,
                "-m",
                "tracedamon",
                "replay",
                str(td),
                "--ops",
                "fvaddr",
                "--range",
                f"{BASE:#x}-{BASE + span:#x}",
                "--min-region",
                "4096",
                "--max-region",
                "4096",
                "--max-rows",
                "0",
                "-o",
                str(out),
            ]
            r = run(cmd, code, args.limit_gb, tmp)
            who = code or "this tree"
            if r["rc"] != 0:
                print(
                    f"  {who}: FAILED (exit {r['rc']}) after {r['wall_s']:.1f} s, peak RSS "
                    f"{r['rss_mb'] or 0:.0f} MB: {r['err']}"
                )
                continue
            print(
                f"  {who}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS "
                f"{r['rss_mb']:.0f} MB; {check(out, rows)}"
            )
            out.unlink()
        if args.many:
            td2 = tmp / "many.td"
            make_trace(td2, 60.0, 1 << 30, args.many, seed=1, base=HEAP, mmaps=True)
            size = sum(f.stat().st_size for f in td2.iterdir()) / 1e6
            print(
                f"trace: {args.many:,} samples over 60 s ({size:.0f} MB), one process; "
                "replay --start auto at the default parameters"
            )
            for code in [None, *args.code]:
                out = tmp / "many.parquet"
                cmd = [
                    sys.executable,
                    "-m",
                    "tracedamon",
                    "replay",
                    str(td2),
                    "--start",
                    "auto",
                    "-q",
                    "-o",
                    str(out),
                ]
                r = run(cmd, code, args.limit_gb, tmp)
                who = code or "this tree"
                if r["rc"] != 0:
                    print(f"  {who}: FAILED (exit {r['rc']}): {r['err']}")
                    continue
                import pyarrow.parquet as pq

                print(
                    f"  {who}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS "
                    f"{r['rss_mb']:.0f} MB; {pq.ParquetFile(out).metadata.num_rows:,} rows"
                )
                out.unlink()
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
