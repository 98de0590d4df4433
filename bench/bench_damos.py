"""Benchmark: DAMOS schemes over a real-sized region history.

The history: ``--snapshots`` snapshots of about ``--regions`` paddr regions each over
1.1 GiB (run 1 of the corpus has 1,400-1,650 regions in 1.1 GiB), made on the fly:
boundaries redrawn at every snapshot, most regions idle and ageing, some accessed; the
scheme is the corpus machine's (pageout, nr_accesses 0..1, age >= 12, 128 MiB/50 ms
quota, anon/unmapped filters), so every application walks every region, fills the score
histogram and charges the quota.  Cases:

1. ``tracedamon.damos()`` end to end on the history's Parquet file (read, per-snapshot
   reconstruction, walks, tables), best of ``--repeat``;
2. the DAMOS steps alone (``apply_schemes`` on every snapshot);
3. the same steps through the slow pure-Python reference (tests/damos_reference.py),
   checked equal application for application;
4. the ``tracedamon damos`` command as a whole process.

    .venv/bin/python bench/bench_damos.py [--regions 1500] [--snapshots 67] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from tracedamon.pipeline.damos import damos  # noqa: E402
from tracedamon.engine.damos import (  # noqa: E402
    AccessPattern,
    Context,
    Filter,
    Quota,
    Scheme,
    apply_schemes,
    new_state,
)
from tracedamon.store.writer import write_table_atomic  # noqa: E402
from tracedamon.schema import REGIONS  # noqa: E402

BASE = 4 << 30
SPAN = 1152 << 20
AGGR_US, SAMPLE_US = 5_000_000, 500_000
SCHEME = Scheme(
    "pageout",
    AccessPattern(0, 2**64 - 1, 0, 1, 12, 2**32 - 1),
    Quota(ms=50, sz=128 << 20, reset_interval_ms=1000, weight_age=1000),
    filters=(Filter("anon", True, False), Filter("unmapped", True, True)),
)


def history(S: int, R: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    pages = SPAN // 4096
    heat = rng.random(pages) < 0.08  # hot pages
    age_page = rng.integers(0, 40, pages)
    snaps = []
    for j in range(S):
        cuts = np.unique(rng.integers(1, pages, R - 1))
        b = np.concatenate([[0], cuts, [pages]])
        s, e = b[:-1], b[1:]
        hot = np.add.reduceat(heat.astype(np.int64), s) > 0
        nr = np.where(hot, rng.integers(1, 11, s.size), 0)
        age = np.minimum.reduceat(age_page, s) + j
        age = np.where(rng.random(s.size) < 0.05, 0, age)
        snaps.append({"start": BASE + s * 4096, "end": BASE + e * 4096, "nr": nr, "age": age})
    return snaps


def to_parquet(snaps, path: Path) -> int:
    cols = {k: [] for k in ("snapshot", "time_ns", "start", "end", "nr", "age")}
    for j, sn in enumerate(snaps):
        n = sn["start"].size
        cols["snapshot"].append(np.full(n, j))
        cols["time_ns"].append(np.full(n, (j + 1) * AGGR_US * 1000))
        for k in ("start", "end", "nr", "age"):
            cols[k].append(sn[k])
    c = {k: np.concatenate(v) for k, v in cols.items()}
    m = c["start"].size
    t = pa.table(
        {
            "run": pa.array(np.zeros(m, np.int32)),
            "snapshot": pa.array(c["snapshot"].astype(np.int64)),
            "time_ns": pa.array(c["time_ns"].astype(np.int64)),
            "target": pa.array(np.zeros(m, np.int32)),
            "pid": pa.nulls(m, pa.int32()),
            "start": pa.array(c["start"].astype(np.uint64)),
            "end": pa.array(c["end"].astype(np.uint64)),
            "nr_accesses": pa.array(c["nr"].astype(np.uint32)),
            "age": pa.array(c["age"].astype(np.uint32)),
            "nr_accesses_bp": pa.array((c["nr"] * 10000).astype(np.uint32)),
        },
        schema=REGIONS,
    )
    meta = {
        "replay": {
            "ops": "paddr",
            "config": {"sample_us": SAMPLE_US, "aggr_us": AGGR_US, "min_region": 4096},
        }
    }
    write_table_atomic(t, path, metadata=meta)
    return m


def steps_numba(snaps):
    ctx = Context("paddr", SAMPLE_US, AGGR_US)
    st = new_state([SCHEME], ctx)
    out = []
    t0 = time.perf_counter()
    for j, sn in enumerate(snaps):
        regs = dict(sn, toff=np.array([0, sn["start"].size], np.int64))
        r = apply_schemes(st, regs, sis=(j + 1) * 10, now_ns=(j + 1) * AGGR_US * 1000)
        out.append(
            list(
                zip(
                    r.applications["start"].tolist(),
                    r.applications["end"].tolist(),
                    r.applications["age"].tolist(),
                )
            )
        )
    return time.perf_counter() - t0, out


def steps_reference(snaps):
    import damos_reference as ref

    ctx = Context("paddr", SAMPLE_US, AGGR_US)
    from tracedamon.engine.damos import profile

    rc = ref.Ctx([SCHEME], ctx, profile("released"), [[]])
    out = []
    t0 = time.perf_counter()
    for j, sn in enumerate(snaps):
        rc.targets = [
            [
                ref.Region(int(a), int(b), int(n), int(n) * 10000, 0, int(g))
                for a, b, n, g in zip(sn["start"], sn["end"], sn["nr"], sn["age"])
            ]
        ]
        rc.passed_sample_intervals = (j + 1) * 10
        rc.trace = []
        ref.kdamond_apply_schemes(rc, (j + 1) * AGGR_US * 1000 * 250 // 10**9)
        out.append([(x[2], x[3], x[5]) for x in rc.trace])
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=1500)
    ap.add_argument("--snapshots", type=int, default=67)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    snaps = history(args.snapshots, args.regions)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "history.parquet"
        rows = to_parquet(snaps, src)
        print(
            f"history: {args.snapshots} snapshots, {rows:,} region rows "
            f"({rows / args.snapshots:.0f} per snapshot), paddr 1.1 GiB"
        )
        damos(src, [SCHEME])  # numba's first load, not timed
        best = min(_timed(lambda: damos(src, [SCHEME])) for _ in range(args.repeat))
        r = damos(src, [SCHEME])
        print(
            f"tracedamon.damos() end to end: {best:.3f} s "
            f"({len(r.applications):,} applications; load average "
            f"{os.getloadavg()[0]:.1f})"
        )
        t_nb, a_nb = min((steps_numba(snaps) for _ in range(args.repeat)), key=lambda x: x[0])
        print(f"DAMOS steps alone: {t_nb:.3f} s ({t_nb / args.snapshots * 1e3:.2f} ms a snapshot)")
        t_ref, a_ref = steps_reference(snaps)
        assert a_ref == a_nb, "reference and engine differ"
        print(
            f"pure-Python reference: {t_ref:.2f} s, equal applications; engine "
            f"{t_ref / t_nb:.0f}x faster"
        )
        cli = [
            str(ROOT / ".venv" / "bin" / "tracedamon"),
            "damos",
            str(src),
            "--scheme",
            "reclaim:wmarks=none",
            "-o",
            str(Path(d) / "out"),
            "-q",
            "--force",
        ]
        walls, cpus = [], []
        for _ in range(args.repeat):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cli, check=True, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        print(
            f"`tracedamon damos` whole process: {min(walls):.2f} s wall, {min(cpus):.2f} s "
            f"CPU (best of {args.repeat}; imports and numba's cache load included; the "
            f"load average was {os.getloadavg()[0]:.1f})"
        )
    return 0


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
