"""Benchmark: the reports and the damo export on a large region history.

Makes, on the fly, a region history the size of a long fixed 4 KiB replay
(``--snapshots`` × ``--regions`` rows, 10.24 M by default: 2,500 aggregations of a
16 MiB area at 4 KiB, a hot, a warm and a cold part, ages by DAMON's rule), written
as ``tracedamon replay`` writes it (Parquet, row groups of whole snapshots), and its
sparse form (only the regions with accesses, as ``--accessed-only`` writes).
Then runs, each as a separate process under ``/usr/bin/time -v``:

* ``tracedamon report heatmap --png``, ``report wss``, ``report access``,
  ``report summary`` and ``export damo`` on the dense and on the sparse file;
* the real damo 3.4.3 reading the exported record (``damo report wss``), the
  reference the export must be at least as fast as;
* with ``--old DIR`` (a checkout of an older tracedamon, e.g. ``git worktree``
  or ``git archive main``), the same commands with that code, under an address-space
  limit (``--limit-gb``) and a timeout: the old code loads the whole history and
  can use tens of GB.

Prints wall-clock seconds and peak RSS per command, and the export / damo ratio.

    .venv/bin/python bench/bench_reports.py [--snapshots 2500] [--regions 4096]
        [--old /tmp/tracedamon-main] [--limit-gb 6] [--timeout 900] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))
from tracedamon.schema import METADATA_KEY, REGIONS  # noqa: E402

SAMPLE_US, AGGR_US = 5000, 100000
MAX_NR = AGGR_US // SAMPLE_US
BASE = 0x7F0000000000


def make_history(path: Path, sparse_path: Path, snapshots: int, regions: int, seed: int = 0):
    """A fixed 4 KiB history: the first 1/16 of the pages hot (nr 16-20), the next 1/4
    warm (nr 0-3), the rest cold (accessed once, in the first aggregation)."""
    rng = np.random.default_rng(seed)
    hot, warm = regions // 16, regions // 4
    start = (BASE + np.arange(regions, dtype=np.uint64) * 4096).astype(np.uint64)
    end = start + np.uint64(4096)
    last = np.zeros(regions, np.int64)
    age = np.zeros(regions, np.int64)
    per_group = max(1, (1 << 20) // regions)  # about 1 M rows a row group
    t0 = 10**12
    cover = [[0, 0, int(start[0]), int(end[-1])]]
    meta = {
        "replay": {
            "ops": "fvaddr",
            "access": "perf",
            "snapshots": snapshots,
            "t0_ns": t0,
            "config": {
                "sample_us": SAMPLE_US,
                "aggr_us": AGGR_US,
                "min_region": 4096,
                "max_region": 4096,
                "age_zero_reset": True,
            },
            "tune_events": [],
            "coverage": cover,
        }
    }
    dmeta = json.loads(json.dumps(meta))
    dmeta["replay"].update(accessed_only=False, sparse=False)
    smeta = json.loads(json.dumps(meta))
    smeta["replay"].update(accessed_only=True, sparse=True)
    wd = pq.ParquetWriter(path, REGIONS.with_metadata({METADATA_KEY: json.dumps(dmeta)}))
    ws = pq.ParquetWriter(sparse_path, REGIONS.with_metadata({METADATA_KEY: json.dumps(smeta)}))
    rows = sparse_rows = 0
    try:
        for g0 in range(0, snapshots, per_group):
            cols = {k: [] for k in ("snapshot", "time_ns", "nr", "age")}
            for s in range(g0, min(snapshots, g0 + per_group)):
                nr = np.zeros(regions, np.int64)
                nr[:hot] = rng.integers(16, MAX_NR + 1, size=hot)
                nr[hot : hot + warm] = rng.integers(0, 4, size=warm)
                if s == 0:
                    nr[hot + warm :] = 1
                thres = int(nr.max()) // 10
                reset = (np.abs(nr - last) > thres) | ((nr == 0) != (last == 0))
                age = np.where(reset, 0, age + 1) if s else np.where(nr > 0, 0, 1)
                last = nr
                cols["snapshot"].append(np.full(regions, s, np.int64))
                cols["time_ns"].append(np.full(regions, t0 + (s + 1) * AGGR_US * 1000, np.int64))
                cols["nr"].append(nr.copy())
                cols["age"].append(age.copy())
            n = len(cols["snapshot"])
            snap = np.concatenate(cols["snapshot"])
            nr = np.concatenate(cols["nr"])
            table = pa.table(
                {
                    "run": pa.array(np.zeros(len(snap), np.int32)),
                    "snapshot": pa.array(snap.astype(np.int32)),
                    "time_ns": pa.array(np.concatenate(cols["time_ns"])),
                    "target": pa.array(np.zeros(len(snap), np.int32)),
                    "pid": pa.nulls(len(snap), pa.int32()),
                    "start": pa.array(np.tile(start, n)),
                    "end": pa.array(np.tile(end, n)),
                    "nr_accesses": pa.array(nr.astype(np.uint32)),
                    "age": pa.array(np.concatenate(cols["age"]).astype(np.uint32)),
                    "nr_accesses_bp": pa.nulls(len(snap), pa.uint32()),
                }
            ).cast(REGIONS)
            wd.write_table(table, row_group_size=len(snap))
            acc = table.filter(pa.array(nr > 0))
            ws.write_table(acc, row_group_size=max(1, len(acc)))
            rows += len(snap)
            sparse_rows += len(acc)
    finally:
        wd.close()
        ws.close()
    return rows, sparse_rows


def timed(cmd, *, env=None, cwd=None, limit_gb=None, timeout=None):
    """(wall s, peak RSS MiB, exit code, stderr tail) of one process under /usr/bin/time -v."""
    full = ["/usr/bin/time", "-v"]
    if limit_gb:
        full += ["prlimit", f"--as={int(limit_gb * 1024**3)}", "--"]
    full += [str(c) for c in cmd]
    try:
        r = subprocess.run(full, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float(timeout), float("nan"), "timeout", ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr)
    secs = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            secs = secs * 60 + float(part)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("\t") and "Command" not in ln]
    return (
        secs,
        (int(rss.group(1)) / 1024 if rss else float("nan")),
        r.returncode,
        (err[-1] if err else ""),
    )


def commands(src: Path, out: Path, tag: str):
    return [
        ("report heatmap --png", ["report", "heatmap", src, "--png", out / f"{tag}.png"]),
        ("report heatmap --damo", ["report", "heatmap", src, "--damo"]),
        ("report wss", ["report", "wss", src]),
        ("report access", ["report", "access", src]),
        ("report summary", ["report", "summary", src]),
        ("export damo", ["export", "damo", src, "-o", out / f"{tag}.damo", "--force"]),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=2500)
    ap.add_argument("--regions", type=int, default=4096)
    ap.add_argument("--old", type=Path, help="root of an older tracedamon checkout")
    ap.add_argument("--limit-gb", type=float, default=6.0, help="address-space limit, old code")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--keep", type=Path, help="write the inputs and outputs here")
    ap.add_argument("--quick", action="store_true", help="250 snapshots (1 M rows)")
    ap.add_argument(
        "--damo-timeout",
        type=float,
        default=1800.0,
        help="damo reading a 10 M-region record takes hours: give up after this",
    )
    ap.add_argument(
        "--damo-limit-gb",
        type=float,
        default=8.0,
        help="address-space limit for damo (it holds the whole JSON in memory)",
    )
    ap.add_argument("--no-damo", action="store_true", help="skip damo reading the records")
    args = ap.parse_args()
    if args.quick:
        args.snapshots = 250
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench_reports."))
    tmp.mkdir(parents=True, exist_ok=True)
    dense, sparse = tmp / "dense.parquet", tmp / "sparse.parquet"
    rows, srows = make_history(dense, sparse, args.snapshots, args.regions)
    print(
        f"history: {rows:,} rows ({dense.stat().st_size / 2**20:.1f} MiB Parquet), sparse "
        f"form {srows:,} rows ({sparse.stat().st_size / 2**20:.1f} MiB); "
        f"{args.snapshots} snapshots × {args.regions} regions of 4 KiB"
    )
    td = VENV / "tracedamon"
    results = {}
    print(f"{'command':<24} {'input':<7} {'wall s':>8} {'peak RSS':>10}")
    for tag, src in (("dense", dense), ("sparse", sparse)):
        for name, cmd in commands(src, tmp, tag):
            wall, rss, rc, err = timed([td, *cmd], timeout=args.timeout)
            results[(name, tag)] = (wall, rss)
            print(
                f"{name:<24} {tag:<7} {wall:>8.2f} {rss:>7.0f} MiB"
                + ("" if rc == 0 else f"  FAILED ({rc}): {err}"),
                flush=True,
            )
    damo = VENV / "damo"
    if damo.exists() and shutil.which("file") and not args.no_damo:
        for tag in ("dense", "sparse"):
            rec = tmp / f"{tag}.damo"
            wall, rss, rc, err = timed(
                [damo, "report", "wss", "--input", rec, "--exclude_samples", "0", "--raw_number"],
                limit_gb=args.damo_limit_gb,
                timeout=args.damo_timeout,
            )
            ours = results[("export damo", tag)][0]
            ratio = f"; export / damo = {ours / wall:.3f}" if wall > 0 else ""
            if rc == "timeout":
                ratio = f"; gave up after {wall:.0f} s (export / damo < {ours / wall:.3f})"
            print(
                f"{'damo report wss':<24} {tag:<7} {wall:>8.2f} {rss:>7.0f} MiB"
                + ("" if rc == 0 else f"  FAILED ({rc}): {err}")
                + ratio,
                flush=True,
            )
    if args.old:
        env = dict(os.environ, PYTHONPATH=str(args.old))
        py = VENV / "python"
        print(f"old code ({args.old}), under a {args.limit_gb:g} GB address-space limit:")
        for name, cmd in commands(dense, tmp, "old"):
            wall, rss, rc, err = timed(
                [py, "-m", "tracedamon", *cmd],
                env=env,
                cwd="/",
                limit_gb=args.limit_gb,
                timeout=args.timeout,
            )
            print(
                f"{name:<24} {'dense':<7} {wall:>8.2f} {rss:>7.0f} MiB"
                + ("" if rc == 0 else f"  FAILED ({rc}): {err[:120]}"),
                flush=True,
            )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
