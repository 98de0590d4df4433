"""The sparse fixed-granularity engine over huge spaces, and the row limit.

A vaddr target's three regions can span terabytes; at 4 KiB that is hundreds of
millions of regions.  The sparse engine keeps state only for regions that were
ever sampled, so its memory follows the samples, not the space: the tests below
replay a 1 TiB range (268 M regions; a single int64 per region would be 2 GiB)
under a tracemalloc bound far below that, and compare with an independent count
(pandas: per region and aggregation, the number of sample intervals with a sample
in it).  Writing every region of every snapshot for such spaces is impossible, so
past ``max_rows`` the replay writes only regions with accesses, with a warning and
the reason in the metadata; the result equals an ``accessed_only`` replay.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.fixed import FixedMonitor, _overlay, expected_snapshots, grid_regions
from tracedamon.pipeline.replay import replay
from tracedamon.errors import ConfigError

from helpers.arrays import assert_rows_equal

PAGE = 4096
TIB = 1 << 40
BASE = 0x100000000000


def rows_of(h):
    return list(
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


def huge_samples(n=3000, seed=0, s_us=5000, n_intervals=400):
    """n samples over a 1 TiB space: half on 50 hot pages, half anywhere."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, n_intervals * s_us * 1000, n)).astype(np.int64)
    hot = rng.random(n) < 0.5
    page = np.where(hot, rng.integers(0, 50, n) * 7919, rng.integers(0, TIB // PAGE, n))
    addr = BASE + page * PAGE + rng.integers(0, PAGE, n)
    return t, addr


def direct_count(t, addr, t0, s_us, n_aggr, n_snap, lo, hi, size=PAGE):
    df = pd.DataFrame({"t": t, "a": addr})
    df = df[(df.a >= lo) & (df.a < hi) & (df.t >= t0)]
    df["interval"] = (df.t - t0) // (s_us * 1000)
    df["snapshot"] = df.interval // n_aggr
    df["region"] = df.a // size * size
    d = df[df.snapshot < n_snap].groupby(["snapshot", "region"]).interval.nunique()
    return d.sort_index()


def test_one_tib_fvaddr_replay_is_bounded_and_counts_directly():
    t, addr = huge_samples()
    tbl = pa.table(
        {
            "time_ns": t,
            "pid": pa.array(np.full(t.size, 7, np.int32)),
            "event": pa.array(["page-faults"] * t.size),
            "addr": pa.array(addr.astype(np.uint64)),
            "phys_addr": pa.nulls(t.size, pa.uint64()),
        }
    )
    rng = [f"{BASE:#x}-{BASE + TIB:#x}"]
    tracemalloc.start()
    try:
        h = replay(tbl, ops="fvaddr", ranges=rng, min_region=PAGE, max_region=PAGE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # one int64 per region would already be 2 GiB
    m = h.metadata
    n_snap = h.n_snapshots
    assert n_snap == (int(t[-1] - t[0]) // 5_000_000 + 1) // 20 and n_snap > 10
    # too many rows for every region of every snapshot: accessed-only, said so
    assert m["accessed_only"] is True and m["rows"].startswith("regions with")
    assert "268,435,456 regions" in m["accessed_only_reason"]
    assert any("only regions with accesses" in w for w in m["warnings"])
    df = h.df
    got = df.set_index(["snapshot", "start"]).nr_accesses.sort_index()
    want = direct_count(t, addr, int(t[0]), 5000, 20, n_snap, BASE, BASE + TIB)
    assert_rows_equal(
        list(zip(got.index.tolist(), got.tolist())), list(zip(want.index.tolist(), want.tolist()))
    )
    assert ((df.end - df.start) == PAGE).all()
    # ages follow the kernel's rule; every row has accesses, so bp is at least 10000*nr
    assert (df.nr_accesses_bp >= 10000 * df.nr_accesses.astype(np.int64)).all()


def test_sparse_engine_state_follows_the_samples_not_the_space():
    t, addr = huge_samples(n=2000, seed=3)
    cfg = MonitorConfig(min_region=PAGE, max_region=PAGE)
    rg = np.array([(BASE, BASE + TIB)])
    mon = FixedMonitor(cfg, [Target(lambda _t: rg, pid=1)])
    acc = AccessSamples(t, np.zeros(t.size, np.int64), addr)
    h = mon.run(acc, 0, int(t[-1]), accessed_only=True)
    assert mon.n_regions() == TIB // PAGE == grid_regions([Target(lambda _t: rg)], 0, PAGE)
    assert mon.run_start.size == 1  # the grid is one run
    n_snap = h.n_snapshots
    # complete aggregations from t0 = 0: the last one's last sample interval (the
    # (k * aggr_samples)-th, starting at (k * aggr_samples - 1) * S) starts by t[-1]
    S = cfg.sample_us * 1000
    assert n_snap == (int(t[-1]) // S + 1) // cfg.aggr_samples > 0
    assert expected_snapshots(cfg, 0, int(t[-1])) == n_snap  # what replay's row limit uses
    replayed = t < n_snap * cfg.aggr_samples * cfg.sample_us * 1000
    assert mon.peak_slots == np.unique(addr[replayed] // PAGE).size  # a slot per sampled page


def test_row_limit_switches_to_accessed_only_and_equals_it():
    """On a small space the output is every region of every snapshot; past max_rows the
    replay writes exactly the accessed-only rows."""
    rng = np.random.default_rng(5)
    n = 4000
    t = np.sort(rng.integers(0, 2_000_000_000, n))
    addr = 0x7F0000000000 + rng.integers(0, 512, n) * PAGE
    tbl = {"time_ns": t, "pid": np.full(n, 3, np.int32), "addr": addr.astype(np.uint64)}
    kw = dict(
        ops="fvaddr", ranges=["0x7f0000000000-0x7f0000400000"], min_region=PAGE, max_region=PAGE
    )
    full = replay(tbl, **kw)  # 1024 x 20 rows: below the limit
    assert len(full) == 1024 * full.n_snapshots and full.metadata["accessed_only"] is False
    assert full.metadata["accessed_only_reason"] is None
    capped = replay(tbl, max_rows=1024 * full.n_snapshots - 1, **kw)
    asked = replay(tbl, accessed_only=True, **kw)
    assert capped.table.equals(asked.table)
    assert capped.metadata["accessed_only"] is True
    assert asked.metadata["accessed_only_reason"] == "asked for"
    assert "1,024 regions x 20 snapshots" in capped.metadata["accessed_only_reason"]
    f = full.df
    assert asked.df.reset_index(drop=True).equals(f[f.nr_accesses > 0].reset_index(drop=True))
    unlimited = replay(tbl, max_rows=None, **kw)
    assert unlimited.table.equals(full.table)
    with pytest.raises(ConfigError) as ei:
        replay(tbl, max_rows=-1, **kw)
    assert re.search("max-rows", ei.value.cli_message)
    with pytest.raises(ConfigError, match="only regions with accesses.*max_rows"):
        list(capped.damon_trace_lines())


def test_grid_growing_at_an_ops_update_is_foreseen_and_equals_accessed_only():
    """The grid grows at an ops update: the rows of every snapshot are planned before the
    first one, so the switch to accessed-only covers the whole output."""
    cfg = MonitorConfig(
        sample_us=1000, aggr_us=10_000, update_us=30_000, min_region=PAGE, max_region=PAGE
    )
    small = np.array([(0x10000, 0x10000 + 16 * PAGE)])
    big = np.array([(0x10000, 0x10000 + 4096 * PAGE)])

    def ranges_at(time):
        return small if time < 25_000_000 else big

    rng = np.random.default_rng(1)
    n = 3000
    t = np.sort(rng.integers(0, 100_000_000, n))
    a = 0x10000 + rng.integers(0, 64, n) * PAGE
    acc = AccessSamples(t, np.zeros(n, np.int64), a)
    tg = [Target(ranges_at, pid=1)]
    full = FixedMonitor(cfg, tg, ops="vaddr")
    hf = full.run(acc, 0, int(t[-1]))
    assert full.auto_accessed_only is None and hf.start.size > 16 * 10
    mon = FixedMonitor(cfg, tg, ops="vaddr")
    h = mon.run(acc, 0, int(t[-1]), max_rows=2000)  # 16 x 10 up front: fits
    assert mon.auto_accessed_only is not None and "ops updates" in mon.auto_accessed_only
    ha = FixedMonitor(cfg, tg, ops="vaddr").run(acc, 0, int(t[-1]), accessed_only=True)
    assert_rows_equal(rows_of(h), rows_of(ha))
    keep = hf.nr_accesses > 0
    assert_rows_equal(rows_of(h), [r for r, k in zip(rows_of(hf), keep) if k])
    # the dense engine agrees with the sparse one on the full output
    assert_rows_equal(rows_of(Monitor(cfg, tg, ops="vaddr").run(acc, 0, int(t[-1]))), rows_of(hf))


def test_dense_fixed_granularity_refuses_huge_spaces():
    t, addr = huge_samples(n=100)
    tbl = {"time_ns": t, "pid": np.full(t.size, 7, np.int32), "addr": addr.astype(np.uint64)}
    with pytest.raises(ConfigError) as ei:
        replay(
            tbl,
            ops="fvaddr",
            ranges=[f"{BASE:#x}-{BASE + TIB:#x}"],
            access="abit",
            min_region=PAGE,
            max_region=PAGE,
        )
    assert re.search("abit.*--access perf", ei.value.cli_message)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 10), st.integers(-1, 5)), max_size=6),
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 10)), max_size=6),
    st.integers(0, 9),
)
def test_overlay_keeps_births_of_surviving_regions(old_raw, new_raw, birth):
    """Region by region: inside the new spans, a region keeps its old birth if it was in
    the old grid, else it is born now; nothing outside the new spans."""

    def norm(raw, with_birth):
        out, cur = [], 0
        for x in raw:
            s = cur + x[0]
            e = s + x[1]
            out.append((s, e, x[2]) if with_birth else (s, e))
            cur = e
        return out

    old = norm(old_raw, True)
    new = norm(new_raw, False)
    got = _overlay(old, new, birth)
    per = {}
    for s, e, b in got:
        assert e > s
        for r in range(s, e):
            assert r not in per
            per[r] = b
    want = {}
    ob = {r: b for s, e, b in old for r in range(s, e)}
    for s, e in new:
        for r in range(s, e):
            want[r] = ob.get(r, birth)
    assert per == want
    assert all(not (a[1] == b[0] and a[2] == b[2]) for a, b in zip(got, got[1:]))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([1, 2, 3]), st.booleans())
def test_sparse_equals_dense_with_many_slots_and_regrids(data_seed, ntgt, age_zero_reset):
    """Thousands of sampled regions (hash-table growth) and grids that shrink and grow at
    ops updates (slots dropped, kept and renumbered): the sparse engine's every-region
    output equals the dense Monitor's."""
    cfg = MonitorConfig(
        sample_us=1000,
        aggr_us=5000,
        update_us=7000,
        min_region=PAGE,
        max_region=PAGE,
        age_zero_reset=age_zero_reset,
    )
    rng = np.random.default_rng(data_seed)
    targets = []
    for k in range(ntgt):
        base = 0x40000000 * (k + 1)
        sizes = rng.integers(64, 1024, 4)

        def ranges_at(time, base=base, sizes=sizes, moves=k % 2 == 0):
            # every other target keeps its first ranges (an update then changes nothing)
            e = int(sizes[(time // 9_000_000) % 4 if moves else 0])
            return np.array(
                [(base, base + 256 * PAGE), (base + 300 * PAGE, base + (300 + e) * PAGE)]
            )

        targets.append(Target(ranges_at, pid=k + 1))
    n = 12000
    t = np.sort(rng.integers(0, 80_000_000, n))
    tg = rng.integers(0, ntgt, n)
    a = 0x40000000 * (tg + 1) + rng.integers(0, 1400, n) * PAGE
    acc = AccessSamples(t, tg, a)
    mon = FixedMonitor(cfg, targets, ops="vaddr")
    sparse = mon.run(acc, 0, int(t[-1]))
    assert mon.peak_slots > 200  # the table grew from 64 slots
    dense = Monitor(cfg, targets, ops="vaddr").run(acc, 0, int(t[-1]))
    assert_rows_equal(rows_of(sparse), rows_of(dense))
