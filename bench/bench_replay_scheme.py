"""The cost of DAMOS inside the replay: ``replay --scheme`` against the same replay without.

Input (made on the fly, nothing stored): bench_replay.py's adaptive workload -- samples
over 60 s of one process, a 1 GiB heap with a 4 MiB hot set that moves every 10 s plus
uniform background accesses -- replayed at DAMON's default parameters (5 ms / 100 ms,
10..1000 regions, fvaddr over the heap).

Schemes:

* ``reclaim``: the DAMON_RECLAIM preset without watermarks, min_age 2 s, a 16 MiB quota
  per 1 s window (quota splits, resume splits, age resets: the history changes);
* ``stat-all``: action ``stat`` on every region (the walk visits every region of every
  aggregation, the most work a scheme without splits makes);
* ``stat-150ms``: ``stat-all`` applied every 150 ms (between aggregations: the loop
  ends a segment at each ``next_apply_sis``).

Each configuration is timed ``--rounds`` times in alternation with the replay without
schemes (best of the rounds kept; CPU seconds of the process, the machine is shared),
for the engine alone (``Monitor.run``) and for the whole ``replay()`` from an Arrow
table; the ratio with/without is of the two measured in this run.

Run:  .venv/bin/python bench/bench_replay_scheme.py [--samples N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracedamon.engine.config import MonitorConfig  # noqa: E402
from tracedamon.engine.core import AccessSamples, Monitor, Target  # noqa: E402
from tracedamon.engine.damos import AccessPattern, Context, Scheme  # noqa: E402
from tracedamon.engine.damos.inloop import InLoop  # noqa: E402

BASE = 0x7F0000000000
SPAN = 1 << 30
LMAX, UMAX = 2**64 - 1, 2**32 - 1
SCHEMES = {
    "reclaim": "reclaim:wmarks=none,min_age=2s,quota_sz=16M,quota_ms=0",
    "stat-all": Scheme("stat", AccessPattern(0, LMAX, 0, UMAX, 0, UMAX)),
    "stat-150ms": Scheme(
        "stat", AccessPattern(0, LMAX, 0, UMAX, 0, UMAX), apply_interval_us=150_000
    ),
}


def workload(n: int, duration_s: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, int(duration_s * 1e9), n)).astype(np.int64)
    phase = t // 10_000_000_000
    hot_base = (phase * 37 * 0x400000) % (SPAN - 0x400000)
    hot = rng.random(n) < 0.8
    off = np.where(hot, hot_base + rng.integers(0, 0x400000, n), rng.integers(0, SPAN, n))
    return t, np.zeros(n, np.int64), BASE + off


def cpu(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=5_000_000)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.samples
    t, tg, a = workload(n, args.duration)
    rg = np.array([(BASE, BASE + SPAN)])
    cfg = MonitorConfig()
    tgt = [Target(lambda _t: rg, pid=1)]
    ctx = Context("fvaddr", cfg.sample_us, cfg.aggr_us)

    from tracedamon.damos_replay import in_loop, scheme_files

    def schemes_of(name):
        return [
            s
            for f in scheme_files([SCHEMES[name]], sample_us=cfg.sample_us, aggr_us=cfg.aggr_us)
            for s in f.schemes
        ]

    def engine(name):
        il = InLoop(schemes_of(name), ctx) if name else None
        h = Monitor(cfg, tgt).run(AccessSamples(t, tg, a), 0, int(t[-1]), damos=il)
        return h, il

    import pyarrow as pa
    from tracedamon.engine.replay import replay

    tbl = pa.table(
        {
            "time_ns": t,
            "pid": pa.array(np.ones(n, np.int32)),
            "event": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array(["cpu/mem-loads/"])
            ),
            "addr": pa.array(a.astype(np.uint64)),
            "phys_addr": pa.nulls(n, pa.uint64()),
        }
    )
    rng_s = [f"{BASE:#x}-{BASE + SPAN:#x}"]

    def whole(name):
        return replay(
            tbl,
            ops="fvaddr",
            ranges=rng_s,
            pids=[1],
            damos=in_loop([SCHEMES[name]]) if name else None,
        )

    # warm-up: numba cache load / compile of every kernel, both paths
    for name in (None, *SCHEMES):
        engine(name)
        whole(name)
    print(
        f"{n:,} samples over {args.duration:.0f} s, default parameters, fvaddr over "
        f"1 GiB; best of {args.rounds} alternated rounds (CPU s; wall in brackets)"
    )
    for name in SCHEMES:
        for label, fn in (("engine (Monitor.run)", engine), ("replay() from a table", whole)):
            best0 = best1 = (float("inf"), 0.0)
            for _ in range(args.rounds):
                _, c0, w0 = cpu(lambda: fn(None))
                out, c1, w1 = cpu(lambda: fn(name))
                best0 = min(best0, (c0, w0))
                best1 = min(best1, (c1, w1))
            if label.startswith("engine"):
                h, il = out
                extra = (
                    f"; {il.steps} DAMOS steps, {len(il.apps['start']):,} "
                    f"applications, {h.n_snapshots} snapshots"
                )
            else:
                extra = f"; {out.damos.applications.num_rows:,} applications"
            print(
                f"  {name:11s} {label:22s}: {best1[0]:.3f} s ({best1[1]:.3f}) vs "
                f"{best0[0]:.3f} s ({best0[1]:.3f}) without: "
                f"{best1[0] / best0[0]:.2f}x CPU ({best1[1] / best0[1]:.2f}x wall){extra}"
            )


if __name__ == "__main__":
    main()
