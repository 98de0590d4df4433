"""The DAMON engine's pieces against the spec's worked examples and the kernel's unit tests.

Oracles: docs/damon-engine-spec.md §7 and §17 (worked examples, exact), and the
cases of the kernel's own KUnit tests (mm/damon/tests/core-kunit.h and
vaddr-kunit.h), re-expressed here: merge arithmetic, merge of a region list,
split bounds, set_regions, three regions, even split, counter rescaling.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from engine_reference import Draws, Reference, pcg32
from tracedamon.engine import core
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import (
    AccessSamples,
    Monitor,
    Target,
    evenly_split,
    merge_regions,
    set_regions,
    update_monitoring_result,
)
from tracedamon.engine.ops.fvaddr import normalize_ranges
from tracedamon.units import parse_range
from tracedamon.engine.ops.vaddr import three_regions
from tracedamon.engine.rng import new_rng, next_u32, rand_below
from tracedamon.errors import ConfigError


def arrays(rows):
    """rows of (start, end, nr, last, age[, bp]) → dict of int64 arrays."""
    rows = [tuple(r) + (r[2] * 10000,) * (len(r) == 5) for r in rows]
    m = np.array(rows, np.int64).reshape(-1, 6)
    return {
        "start": m[:, 0].copy(),
        "end": m[:, 1].copy(),
        "nr": m[:, 2].copy(),
        "last": m[:, 3].copy(),
        "age": m[:, 4].copy(),
        "bp": m[:, 5].copy(),
    }


def run_merge(rows, threshold, sz_limit, max_nr_regions=10, max_thres=20, **kw):
    a = arrays(rows)
    toff = np.array([0, len(rows)], np.int64)
    n = merge_regions(
        a["start"],
        a["end"],
        a["nr"],
        a["bp"],
        a["last"],
        a["age"],
        toff,
        threshold,
        np.array([sz_limit], np.int64),
        max_nr_regions,
        max_thres,
        kw.get("fix_age_once", False),
        kw.get("age_zero_reset", True),
        kw.get("escalate", True),
    )
    return [
        tuple(int(a[k][i]) for k in ("start", "end", "nr", "last", "age", "bp")) for i in range(n)
    ]


# -- §17 B: merge arithmetic -----------------------------------------------------------
def test_spec_17b_merge_arithmetic():
    rows = [
        (0x0000, 0x2000, 5, 5, 3),
        (0x2000, 0x6000, 6, 2, 7),
        (0x6000, 0x7000, 6, 6, 1),
        (0x8000, 0x9000, 6, 6, 0),
    ]
    out = run_merge(rows, threshold=15 // 10, sz_limit=65536)
    assert out == [(0x0, 0x7000, 5, 5, 1, 50000), (0x8000, 0x9000, 6, 6, 1, 60000)]


# -- kernel KUnit cases (re-expressed) -------------------------------------------------
def test_kunit_merge_two_weighted_average():
    # [0,100) nr 10 age 9 merged with [100,300) nr 20 age 21 -> nr 16, age 17.  The age
    # rule runs first and adds 1 to both (|nr - last| = 0), so feed ages one lower.
    out = run_merge([(0, 100, 10, 10, 8), (100, 300, 20, 20, 20)], threshold=100, sz_limit=1000)
    assert out == [(0, 300, 16, 10, 17, 160000)]


def test_kunit_merge_regions_of():
    sa = [0, 100, 114, 122, 130, 156, 170, 184, 230]
    ea = [100, 112, 122, 130, 156, 170, 184, 230, 10170]
    nrs = [0, 0, 10, 10, 20, 30, 1, 2, 5]
    rows = [(s, e, n, 0, 0) for s, e, n in zip(sa, ea, nrs)]
    out = run_merge(rows, threshold=9, sz_limit=9999, max_nr_regions=1000)
    assert [(r[0], r[1]) for r in out] == [
        (0, 112),
        (114, 130),
        (130, 156),
        (156, 170),
        (170, 230),
        (230, 10170),
    ]


def split_rows(rows, nr_subs, minsz, seed=0, inject=()):
    a = arrays([(s, e, 0, 0, 0) for s, e in rows])
    toff = np.array([0, len(rows)], np.int64)
    cap = len(rows) * nr_subs
    out = {k: np.empty(cap, np.int64) for k in core.FIELDS}
    ooff = np.empty_like(toff)
    w = core._split_regions(
        a["start"],
        a["end"],
        a["nr"],
        a["bp"],
        a["last"],
        a["age"],
        toff,
        nr_subs,
        minsz,
        0,
        new_rng(seed),
        False,
        np.array(inject, np.int64),
        np.zeros(1, np.int64),
        out["start"],
        out["end"],
        out["nr"],
        out["bp"],
        out["last"],
        out["age"],
        ooff,
    )
    return list(zip(out["start"][:w].tolist(), out["end"][:w].tolist()))


@pytest.mark.parametrize("seed", range(20))
def test_kunit_split_regions_of_bounds(seed):
    assert len(split_rows([(0, 22)], 2, 1, seed)) <= 2
    assert len(split_rows([(0, 220)], 4, 1, seed)) <= 4
    out = split_rows([(0, 220), (300, 400), (500, 700)], 4, 5, seed)
    assert len(out) <= 12
    # pieces tile the input exactly, and cut points are multiples of min size from the start
    assert out[0][0] == 0 and out[-1][1] == 700
    for (s1, e1), (s2, e2) in zip(out, out[1:]):
        assert e1 == s2 or (e1, s2) in ((220, 300), (400, 500))


def test_spec_7_split_three_pieces_example():
    # 64 KiB region, min 4 KiB, draws 8 then 0: k=9 -> 57344; k=1 -> 4096
    assert split_rows([(0, 0x10000)], 3, 4096, inject=[8, 0]) == [
        (0, 0x1000),
        (0x1000, 0xE000),
        (0xE000, 0x10000),
    ]


def test_split_never_cuts_two_page_regions():  # quirk Q6: strictly greater than 2*min
    for seed in range(10):
        assert split_rows([(0, 8192)], 3, 4096, seed) == [(0, 8192)]


def sr(old, new, minsz=1):
    regs = [[s, e, 0, 0, 0, 0] for s, e in old]
    return [(r[0], r[1]) for r in set_regions(regs, new, minsz)]


def test_kunit_set_regions():
    assert sr([], [(5, 15), (15, 25)]) == [(5, 15), (15, 25)]
    assert sr([(4, 16), (24, 32)], [(18, 23)]) == [(18, 23)]
    assert sr([(4, 16), (24, 32)], [(8, 28)]) == [(8, 16), (16, 24), (24, 28)]
    assert sr([(0, 4), (4, 17)], [(0, 15), (25, 40)]) == [(0, 4), (4, 15), (25, 40)]
    assert sr([(0, 4), (42, 52)], [(0, 15), (25, 40), (44, 50)]) == [(0, 15), (25, 40), (44, 50)]


OLD3 = [(10, 20), (20, 30), (50, 55), (55, 57), (57, 59), (70, 80), (80, 90), (90, 100)]


@pytest.mark.parametrize(
    "new, expected",
    [
        (
            [(5, 27), (45, 55), (73, 104)],
            [(5, 20), (20, 27), (45, 55), (73, 80), (80, 90), (90, 104)],
        ),
        (
            [(5, 27), (56, 57), (65, 104)],
            [(5, 20), (20, 27), (56, 57), (65, 80), (80, 90), (90, 104)],
        ),
        (
            [(5, 27), (61, 63), (65, 104)],
            [(5, 20), (20, 27), (61, 63), (65, 80), (80, 90), (90, 104)],
        ),
        ([(5, 7), (30, 32), (65, 68)], [(5, 7), (30, 32), (65, 68)]),
    ],
)
def test_kunit_apply_three_regions(new, expected):
    assert sr(OLD3, new) == expected


def test_set_regions_keeps_counters_of_kept_regions():
    regs = [[10, 20, 3, 30000, 2, 7], [20, 30, 4, 40000, 4, 1]]
    out = set_regions(regs, [(5, 27)], 1)
    assert out == [[5, 20, 3, 30000, 2, 7], [20, 27, 4, 40000, 4, 1]]


def test_kunit_three_regions_in_vmas():
    vmas = np.array([(10, 20), (20, 25), (200, 210), (210, 220), (300, 305), (307, 330)])
    assert three_regions(vmas, align=1).tolist() == [[10, 25], [200, 220], [300, 330]]


def test_three_regions_needs_two_gaps():
    assert three_regions(np.array([(0, 10), (10, 20), (30, 40)]), align=1) is None
    assert three_regions(np.array([(0, 10), (20, 30)]), align=1) is None


def test_three_regions_tie_keeps_earlier_gap():
    # gaps 10, 10, 5: the two first (equal) gaps are cut out
    vmas = np.array([(0, 10), (20, 30), (40, 50), (55, 60)])
    assert three_regions(vmas, align=1).tolist() == [[0, 10], [20, 30], [40, 60]]


@pytest.mark.parametrize("s, e, n", [(0, 100, 10), (5, 59, 5), (4, 6, 1), (0, 3, 2)])
def test_kunit_split_evenly_success(s, e, n):
    out = evenly_split(s, e, n, 1)
    width = (e - s) // n
    assert len(out) == n
    for i, r in enumerate(out):
        assert r[0] == s + i * width
        assert r[1] == (e if i == n - 1 else s + (i + 1) * width)


@pytest.mark.parametrize("s, e, n", [(0, 100, 0), (5, 6, 2)])
def test_kunit_split_evenly_failure_keeps_region(s, e, n):
    assert [r[:2] for r in evenly_split(s, e, n, 1)] == [[s, e]]


def test_kunit_update_monitoring_result():
    nr, bp, age = update_monitoring_result([15], [20], 10, 1000, 100, 10000)
    assert (nr[0], age[0], bp[0]) == (15, 2, 150000)
    nr, _, age = update_monitoring_result(nr, age, 10, 1000, 1, 1000)
    assert (nr[0], age[0]) == (150, 2)
    nr, _, age = update_monitoring_result(nr, age, 10, 1000, 1, 100)
    assert (nr[0], age[0]) == (150, 20)


def test_kunit_aggregate_reset_zeroes_counts():
    cfg = MonitorConfig(sample_us=1000, aggr_us=3000, min_nr_regions=3, max_nr_regions=3)
    rg = np.array([(0x10000, 0x11000), (0x12000, 0x13000), (0x14000, 0x15000)])
    mon = Monitor(cfg, [Target(lambda t: rg)], access="perf")
    pages = [0x10000, 0x12000, 0x10000, 0x14000]
    times = [0, 0, 1_000_000, 2_000_000]
    h = mon.run(AccessSamples(times, [0] * 4, pages), 0, 2_000_000)
    assert h.nr_accesses.tolist() == [2, 1, 1]
    assert mon.regions()[:, 2].tolist() == [0, 0, 0]  # nr reset
    assert mon.regions()[:, 4].tolist() == [2, 1, 1]  # last_nr_accesses


# -- §17 A: three sample intervals, one aggregation, PTE mode ---------------------------
SPEC_A = dict(
    sample_us=5000, aggr_us=15000, update_us=60_000_000, min_nr_regions=3, max_nr_regions=10
)
A_DRAWS = [0x1000, 0x2000, 0x3000, 0x0, 0x2FFF, 0x7000, 2, 6]
A_RANGES = np.array([(0x10000, 0x14000), (0x14000, 0x1C000)])
A_SAMPLES = AccessSamples(
    [0, 5_000_000, 5_000_001, 10_000_000], [0, 0, 0, 0], [0x11000, 0x13000, 0x14000, 0x1B000]
)


def test_spec_17a_worked_example_engine():
    mon = Monitor(
        MonitorConfig(**SPEC_A),
        [Target(lambda t: A_RANGES, pid=1)],
        access="abit",
        rand_inject=A_DRAWS,
    )
    h = mon.run(A_SAMPLES, 0, 10_000_000)
    assert h.n_snapshots == 1
    rows = list(
        zip(
            h.target.tolist(),
            h.start.tolist(),
            h.end.tolist(),
            h.nr_accesses.tolist(),
            h.age.tolist(),
            h.nr_accesses_bp.tolist(),
        )
    )
    assert rows == [(0, 65536, 81920, 2, 0, 20000), (0, 81920, 114688, 2, 0, 20000)]
    # after reset and split: four regions, nr 0, last 2, bp 20000, age 0
    assert mon.regions().tolist() == [
        [0x10000, 0x11000, 0, 20000, 2, 0],
        [0x11000, 0x14000, 0, 20000, 2, 0],
        [0x14000, 0x19000, 0, 20000, 2, 0],
        [0x19000, 0x1C000, 0, 20000, 2, 0],
    ]
    assert mon.last_nr_regions == 2
    assert mon.injpos[0] == len(A_DRAWS)


def test_spec_17a_worked_example_reference():
    ref = Reference(
        MonitorConfig(**SPEC_A),
        [Target(lambda t: A_RANGES, pid=1)],
        access="abit",
        rand_inject=A_DRAWS,
    )
    rows = ref.run(A_SAMPLES.time_ns, A_SAMPLES.target, A_SAMPLES.page, 0, 10_000_000)
    assert [r[3:] for r in rows] == [(65536, 81920, 2, 0, 20000), (81920, 114688, 2, 0, 20000)]
    assert ref.regions(0) == [
        (0x10000, 0x11000, 0, 20000, 2, 0),
        (0x11000, 0x14000, 0, 20000, 2, 0),
        (0x14000, 0x19000, 0, 20000, 2, 0),
        (0x19000, 0x1C000, 0, 20000, 2, 0),
    ]


def test_spec_17a_bp_residue_of_second_aggregation():
    """Intervals 4-6 see nothing: unmerged regions end at bp 20000 - 3*6666 = 2 (Q4)."""
    mon = Monitor(
        MonitorConfig(**SPEC_A),
        [Target(lambda t: A_RANGES, pid=1)],
        access="abit",
        rand_inject=A_DRAWS,
    )
    h = mon.run(A_SAMPLES, 0, 25_000_000)
    assert h.n_snapshots == 2
    second = [
        (s, e, nr, bp)
        for sn, s, e, nr, bp in zip(h.snapshot, h.start, h.end, h.nr_accesses, h.nr_accesses_bp)
        if sn == 1
    ]
    # merge (threshold 0, limit 16384): the two left pieces merge (bp := 0); the right
    # ones are too big to merge and keep the moving-sum residue
    assert second == [(0x10000, 0x14000, 0, 0), (0x14000, 0x19000, 0, 2), (0x19000, 0x1C000, 0, 2)]
    assert mon.regions()[:, 3].max() == 0  # reset resynced bp to nr * 10000


def test_spec_17a_apply_mode_delta():
    cfg = MonitorConfig(**SPEC_A, min_nr_regions_mode="apply")
    mon = Monitor(cfg, [Target(lambda t: A_RANGES, pid=1)])
    mon.ops_init(0)
    assert mon.apply_min_nr_regions() == 16384
    assert mon.regions()[:, :2].tolist() == [
        [0x10000, 0x14000],
        [0x14000, 0x18000],
        [0x18000, 0x1C000],
    ]


# -- the generator ------------------------------------------------------------------------
def test_pcg32_published_vector():
    # pcg32_srandom(42, 54) then six outputs, as printed by the PCG reference demo
    st = np.zeros(2, np.uint64)
    st[1] = np.uint64((54 << 1) | 1)
    next_u32(st)
    st[0] = st[0] + np.uint64(42)
    next_u32(st)
    assert [int(next_u32(st)) for _ in range(6)] == [
        0xA15C02B7,
        0x7B47F409,
        0xBA1D3330,
        0x83D2F293,
        0xBFA4784B,
        0xCBED606E,
    ]


def test_pcg32_matches_reference():
    st = new_rng(42)
    ref = pcg32(42)
    assert [int(next_u32(st)) for _ in range(50)] == [next(ref) for _ in range(50)]


@pytest.mark.parametrize(
    "n", [1, 2, 9, 10, 4096, 2**31 + 5, 2**32 - 1, 2**32, 2**32 + 7, 3 * 2**32 + 100]
)
def test_rand_below_matches_reference(n):
    st = new_rng(7)
    ref = Draws(pcg32(7), deque(), wide=False)
    got = [int(rand_below(st, n, False)) for _ in range(30)]
    assert got == [ref.below(n) for _ in range(30)]
    m = n & 0xFFFFFFFF
    assert all(0 <= v < (m or 2**32) for v in got)  # quirk Q1: range truncated to 32 bits


def test_rand_below_fixed_covers_wide_ranges():
    st = new_rng(3)
    ref = Draws(pcg32(3), deque(), wide=True)
    n = 5 * 2**32 + 3
    got = [int(rand_below(st, n, True)) for _ in range(200)]
    assert got == [ref.below(n) for _ in range(200)]
    assert max(got) >= 2**32 and all(0 <= v < n for v in got)


# -- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(min_nr_regions=2), "at least 3"),
        (dict(min_nr_regions=20, max_nr_regions=10), "must not exceed"),
        (dict(sample_us=200_000), "must not exceed the aggregation"),
        (dict(sample_us=0), "sample_us must be > 0"),
        (dict(min_region=6000), "power of two"),
        (dict(min_region=32), "at least 64 \\(a cache line\\)"),
        (dict(max_region=8192, min_region=16384), "must not exceed max_region"),
        (dict(max_region=12288), "power of two"),
        (dict(min_nr_regions_mode="strict"), "legacy, apply"),
        (
            dict(
                goal_aggrs=3,
                goal_access_bp=400,
                goal_min_sample_us=10_000,
                goal_max_sample_us=5_000,
            ),
            "exceeds max_sample_us",
        ),
        (
            dict(
                goal_aggrs=3,
                goal_access_bp=400,
                goal_min_sample_us=6_000,
                goal_max_sample_us=10_000,
            ),
            "must lie within",
        ),
        (dict(seed=-1), "must not be negative"),
    ],
)
def test_config_rejects_invalid_values(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        MonitorConfig(**kw)


def test_config_defaults_are_the_kernel_defaults():
    c = MonitorConfig()
    assert (
        c.sample_us,
        c.aggr_us,
        c.update_us,
        c.min_nr_regions,
        c.max_nr_regions,
        c.min_region,
        c.aggr_samples,
    ) == (5000, 100000, 60_000_000, 10, 1000, 4096, 20)
    assert MonitorConfig.from_dict(c.to_dict()) == c
    assert MonitorConfig(min_region=8192, max_region=8192).fixed_granularity


def test_ranges_parse_decimal_and_hex():
    assert parse_range("0x1000-8192") == (4096, 8192)
    assert normalize_ranges(["0x3000-0x4000", (0, 4096)]).tolist() == [[0, 4096], [0x3000, 0x4000]]
    for bad in ("12", "a-b", "0x10-0x10", "1-2-3"):
        with pytest.raises(ValueError):  # units' parse errors; callers re-raise
            parse_range(bad)
        with pytest.raises(ConfigError):  # as the engine's ConfigError
            normalize_ranges([bad])
    with pytest.raises(ConfigError, match="overlap"):
        normalize_ranges(["0-8192", "4096-12288"])


# -- VMA timeline (vaddr ops) -------------------------------------------------------------
def test_vma_timeline_from_mmaps_grows_and_unites():
    import pandas as pd
    from tracedamon.engine.ops.vaddr import VmaTimeline

    mm = pd.DataFrame(
        {
            "time_ns": [0, 10, 20, 30, 40],
            "pid": [5, 5, 5, 6, 5],
            "start": np.array([0x1000, 0x1800, 0x100000, 0x0, 0x7F0000], np.uint64),
            "length": np.array([0x1000, 0x1000, 0x2000, 0x1000, 0x1000], np.uint64),
        }
    )
    tl = VmaTimeline(5, mm, None)
    assert tl.source == "mmaps"
    assert tl.vmas_at(15).tolist() == [[0x1000, 0x2800]]  # overlapping records united
    assert tl.ranges_at(25) is None  # two VMAs: no three regions
    assert tl.vmas_at(45).tolist() == [[0x1000, 0x2800], [0x100000, 0x102000], [0x7F0000, 0x7F1000]]
    assert tl.ranges_at(45).tolist() == [
        [0x1000, 0x3000],
        [0x100000, 0x102000],
        [0x7F0000, 0x7F1000],
    ]  # bounds aligned up to pages


def test_vma_timeline_prefers_maps_snapshots():
    import pandas as pd
    from tracedamon.engine.ops.vaddr import VmaTimeline

    maps = pd.DataFrame(
        {
            "snapshot": [0, 0, 0, 1, 1, 1],
            "time_ns": [100] * 3 + [200] * 3,
            "pid": [5] * 6,
            "start": [0x1000, 0x10000, 0x90000, 0x1000, 0x20000, 0x90000],
            "end": [0x2000, 0x11000, 0x91000, 0x2000, 0x21000, 0x91000],
        }
    )
    tl = VmaTimeline(5, None, maps)
    assert tl.source == "maps"
    assert tl.ranges_at(50).tolist()[1] == [0x10000, 0x11000]  # before: the first snapshot
    assert tl.ranges_at(150).tolist()[1] == [0x10000, 0x11000]
    assert tl.ranges_at(250).tolist()[1] == [0x20000, 0x21000]  # munmap/mmap seen


def test_ops_update_moves_vaddr_regions():
    """A target whose middle mapping moves: after the ops update the regions follow it,
    kept regions keep their counters (set_regions), new ones start at zero."""
    cfg = MonitorConfig(
        sample_us=1000, aggr_us=4000, update_us=8000, min_nr_regions=3, max_nr_regions=30
    )

    def ranges_at(t):
        mid = (0x100000, 0x110000) if t < 8_000_000 else (0x200000, 0x208000)
        return np.array([(0x1000, 0x5000), mid, (0x900000, 0x904000)])

    tg = Target(ranges_at, pid=1)
    times = np.arange(0, 16_000_000, 500_000)
    pages = np.where(times < 8_000_000, 0x100000, 0x200000)
    h = Monitor(cfg, [tg], ops="vaddr").run(
        AccessSamples(times, np.zeros(times.size), pages), 0, int(times[-1])
    )
    for snap in range(h.n_snapshots):
        sel = h.snapshot == snap
        s, e = h.start[sel], h.end[sel]
        mid = (0x100000, 0x110000) if snap < 2 else (0x200000, 0x208000)
        covered = sum(int(b - a) for a, b in zip(s, e) if a >= mid[0] and b <= mid[1])
        assert covered == mid[1] - mid[0]
        if snap >= 2:
            assert not ((s >= 0x100000) & (e <= 0x110000)).any()
            hot = (s <= 0x200000) & (e > 0x200000)
            assert h.nr_accesses[sel][hot][0] == 4  # every interval sees a sample


def test_age_counted_on_every_escalation_pass_quirk_q3():
    # four adjacent regions alternating 0 / 5 accesses, max_nr_regions 1: passes run at
    # thresholds 0, 1, 2, 4 (nothing merges) and 8 (everything merges): five age updates
    rows = [(i * 4096, (i + 1) * 4096, 5 * (i % 2), 5 * (i % 2), 3) for i in range(4)]
    out = run_merge(rows, threshold=0, sz_limit=1 << 20, max_nr_regions=1, max_thres=20)
    assert [(r[0], r[1], r[4]) for r in out] == [(0, 16384, 3 + 5)]
    fixed = run_merge(
        rows, threshold=0, sz_limit=1 << 20, max_nr_regions=1, max_thres=20, fix_age_once=True
    )
    assert [(r[0], r[1], r[4]) for r in fixed] == [(0, 16384, 3 + 1)]
    single = run_merge(
        rows, threshold=0, sz_limit=1 << 20, max_nr_regions=1, max_thres=20, escalate=False
    )  # kernels before mid-2024
    assert len(single) == 4 and all(r[4] == 4 for r in single)


def test_age_resets_when_zeroness_changes_v6_18():
    rows = [(0, 4096, 1, 0, 7), (8192, 12288, 0, 2, 7), (16384, 20480, 3, 3, 7)]
    out = run_merge(rows, threshold=5, sz_limit=4096)
    assert [r[4] for r in out] == [0, 0, 8]
    old = run_merge(rows, threshold=5, sz_limit=4096, age_zero_reset=False)
    assert [r[4] for r in old] == [8, 8, 8]
