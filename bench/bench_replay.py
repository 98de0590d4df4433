"""Replay throughput: samples/s and replay time as a fraction of the recorded duration.

Synthetic samples are generated on the fly (nothing big is stored):

1. adaptive regions at DAMON's default parameters (5 ms / 100 ms / 60 s, 10..1000
   regions) over a 60 s recording of one process: a 1 GiB heap with a hot working
   set that moves every 10 s, plus uniform background accesses;
2. fixed 4 KiB granularity over 16 GiB (4 M regions) and over 1 TiB (268 M
   regions, the scale of a vaddr target's three regions) for thousands of sample
   intervals, written as "regions with accesses only" (writing every region of
   every snapshot would be millions of rows per snapshot); the sparse engine keeps
   state only for sampled regions (its peak slot count is printed);
3. sub-page granularity: fixed 64 B (a cache line) over 1 GiB (16 M regions) and
   16 GiB (268 M regions), against fixed 4 KiB over the same span and samples in the
   same run (the ratio is the cost of sub-page monitoring);
4. the numba engine against the pure-Python reference (tests/engine_reference.py)
   on a small input, same configuration and same random draws;
5. the kernel profiles: case 1's input replayed with ``--kernel released`` (the
   default) and ``--kernel mainline-2026``, perf-histogram and accessed-bit checks,
   each profile timed twice in alternation (the best of two is kept), and the
   mainline/released ratio of the two measured in this run.

Run:  .venv/bin/python bench/bench_replay.py [--samples N] [--quick]
Numbers are wall-clock on this machine (the first call of each kernel is excluded:
a warm-up replay compiles or loads the numba cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tracedamon.engine.config import MonitorConfig  # noqa: E402
from tracedamon.engine.core import AccessSamples, Monitor, Target  # noqa: E402
from tracedamon.engine.fixed import FixedMonitor  # noqa: E402

PAGE = 4096


def workload(n: int, duration_s: float, span: int, seed: int = 0, base: int = 0x7F0000000000):
    """n samples over duration_s seconds: 80 % in a 4 MiB hot set that moves every 10 s."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, int(duration_s * 1e9), n)).astype(np.int64)
    phase = t // 10_000_000_000
    hot_base = (phase * 37 * 0x400000) % (span - 0x400000)
    hot = rng.random(n) < 0.8
    off = np.where(hot, hot_base + rng.integers(0, 0x400000, n), rng.integers(0, span, n))
    return t, np.zeros(n, np.int64), base + off


CPU = {}


def timed(fn):
    """Run fn; return (result, wall seconds).  The process CPU seconds of the last call
    are kept in CPU["last"] (the machine may be shared: CPU time is what the replay
    itself cost)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    CPU["last"] = time.process_time() - c
    return out, time.perf_counter() - t


def rate(n, dt, duration_s):
    c = CPU["last"]
    return (
        f"{dt:.3f} s wall ({c:.3f} s CPU) = {n / dt / 1e6:.1f} M samples/s wall "
        f"({n / c / 1e6:.1f} M/s CPU) = {100 * dt / duration_s:.3f} % of the recorded "
        f"duration ({100 * c / duration_s:.3f} % CPU)"
    )


def bench_adaptive(n: int, duration_s: float = 60.0):
    span = 1 << 30
    t, tg, a = workload(n, duration_s, span)
    rg = np.array([(0x7F0000000000, 0x7F0000000000 + span)])
    cfg = MonitorConfig()
    tgt = [Target(lambda _t: rg, pid=1)]
    acc = AccessSamples(t, tg, a)
    Monitor(cfg, tgt).run(AccessSamples(t[:1000], tg[:1000], a[:1000]), 0, int(t[999]))
    h, dt = timed(lambda: Monitor(cfg, tgt).run(acc, 0, int(t[-1])))
    regions = np.bincount(h.snapshot)
    print(
        f"adaptive, default parameters: {n:,} samples over {duration_s:.0f} s, "
        f"{h.n_snapshots} snapshots, {regions.min()}-{regions.max()} regions/snapshot"
    )
    print(f"  engine: {rate(n, dt, duration_s)}")
    # the whole API path from an Arrow samples table (selection, pid matching, table build)
    import pyarrow as pa
    from tracedamon.pipeline.replay import replay

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
    rng = [f"{0x7F0000000000:#x}-{0x7F0000000000 + span:#x}"]
    r, dt2 = timed(lambda: replay(tbl, ops="fvaddr", ranges=rng, pids=[1]))
    print(f"  replay() from an Arrow table: {rate(n, dt2, duration_s)}; {len(r):,} rows")
    return n / dt, dt / duration_s


def bench_fixed(n: int, intervals: int, span: int = 16 << 30, size: int = PAGE):
    s_us = 5000
    duration_s = intervals * s_us / 1e6
    t, tg, a = workload(n, duration_s, span, seed=1, base=0x100000000)
    rg = np.array([(0x100000000, 0x100000000 + span)])
    cfg = MonitorConfig(min_region=size, max_region=size)
    tgt = [Target(lambda _t: rg, pid=1)]
    acc = AccessSamples(t, tg, a)
    # warm-up (numba cache load / compile) on a small input with several snapshots
    wt, wg, wa = workload(5000, 2.0, 1 << 20, seed=9, base=0)
    FixedMonitor(cfg, [Target(lambda _t: np.array([(0, 1 << 20)]))]).run(
        AccessSamples(wt, wg, wa), 0, int(wt[-1]), accessed_only=True
    )
    mon = FixedMonitor(cfg, tgt)
    h, dt = timed(lambda: mon.run(acc, 0, int(t[-1]), accessed_only=True))
    nreg = span // size
    what = f"{size} B" if size < 1024 else f"{size >> 10} KiB"
    print(
        f"fixed {what} over {span >> 30:,} GiB ({nreg:,} regions), {intervals:,} sample "
        f"intervals ({h.n_snapshots} snapshots, {duration_s:.0f} s), {n:,} samples, "
        "accessed-only rows:"
    )
    print(
        f"  sparse engine: {rate(n, dt, duration_s)}; {h.start.size:,} rows; "
        f"{mon.peak_slots:,} regions with state (regions x intervals would be "
        f"{nreg * intervals / 1e9:.1f} G region-updates)"
    )
    return dt


def bench_subpage(n: int, intervals: int):
    """Fixed 64 B against fixed 4 KiB on the same samples, over 1 GiB and 16 GiB."""
    out = {}
    for span in (1 << 30, 16 << 30):
        d4k = bench_fixed(n, intervals, span=span, size=PAGE)
        c4k = CPU["last"]
        d64 = bench_fixed(n, intervals, span=span, size=64)
        c64 = CPU["last"]
        print(f"  64 B / 4 KiB over {span >> 30} GiB: {d64 / d4k:.2f}x wall, {c64 / c4k:.2f}x CPU")
        out[span] = (d64, d4k)
    return out


def bench_reference(n: int = 20_000, duration_s: float = 4.0):
    from engine_reference import Reference

    span = 64 << 20
    t, tg, a = workload(n, duration_s, span, seed=2)
    rg = np.array([(0x7F0000000000, 0x7F0000000000 + span)])
    out = {}
    for access in ("perf", "abit"):
        cfg = MonitorConfig(seed=1)
        tgt = [Target(lambda _t: rg, pid=1)]
        Monitor(cfg, tgt, access=access).run(
            AccessSamples(t[:100], tg[:100], a[:100]), 0, int(t[99])
        )
        h, dt_fast = timed(
            lambda: Monitor(cfg, tgt, access=access).run(AccessSamples(t, tg, a), 0, int(t[-1]))
        )
        rows, dt_ref = timed(
            lambda: Reference(cfg, tgt, access=access).run(t, tg, a, 0, int(t[-1]))
        )
        same = rows == list(
            zip(
                *(
                    x.tolist()
                    for x in (
                        h.snapshot,
                        h.time_ns,
                        h.target,
                        h.start,
                        h.end,
                        h.nr_accesses,
                        h.age,
                        h.nr_accesses_bp,
                    )
                )
            )
        )
        print(
            f"numba engine vs Python reference ({access}, {n:,} samples, {duration_s:.0f} s): "
            f"{dt_fast * 1e3:.1f} ms vs {dt_ref:.2f} s wall = {dt_ref / dt_fast:.0f}x faster; "
            f"identical output: {same}"
        )
        out[access] = dt_ref / dt_fast
    return out


def bench_profiles(n: int, duration_s: float = 60.0):
    span = 1 << 30
    t, tg, a = workload(n, duration_s, span)
    rg = np.array([(0x7F0000000000, 0x7F0000000000 + span)])
    tgt = [Target(lambda _t: rg, pid=1)]
    acc = AccessSamples(t, tg, a)
    out = {}
    for access in ("perf", "abit"):
        best, regions = {}, {}
        for kernel in ("released", "mainline-2026"):  # warm-up (numba cache)
            Monitor(MonitorConfig(kernel=kernel), tgt, access=access).run(
                AccessSamples(t[:1000], tg[:1000], a[:1000]), 0, int(t[999])
            )
        for _ in range(2):
            for kernel in ("released", "mainline-2026"):
                cfg = MonitorConfig(kernel=kernel)
                h, _ = timed(lambda: Monitor(cfg, tgt, access=access).run(acc, 0, int(t[-1])))
                best[kernel] = min(best.get(kernel, np.inf), CPU["last"])
                regions[kernel] = np.bincount(h.snapshot).mean()
        ratio = best["mainline-2026"] / best["released"]
        print(
            f"kernel profiles, {access} check, {n:,} samples over {duration_s:.0f} s: "
            f"released {best['released']:.3f} s CPU ({regions['released']:.0f} regions/"
            f"snapshot on average), mainline-2026 {best['mainline-2026']:.3f} s CPU "
            f"({regions['mainline-2026']:.0f}): mainline/released = {ratio:.2f}"
        )
        out[access] = ratio
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--samples", type=int, default=5_000_000, help="samples in the 60 s adaptive case"
    )
    ap.add_argument("--fixed-samples", type=int, default=2_000_000)
    ap.add_argument("--fixed-intervals", type=int, default=4000)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.quick:
        args.samples, args.fixed_samples, args.fixed_intervals = 200_000, 100_000, 400
    bench_adaptive(args.samples)
    bench_fixed(args.fixed_samples, args.fixed_intervals)
    bench_fixed(args.fixed_samples, args.fixed_intervals, span=1 << 40)
    bench_subpage(args.fixed_samples, args.fixed_intervals)
    bench_reference(5_000 if args.quick else 20_000)
    bench_profiles(args.samples)


if __name__ == "__main__":
    main()
