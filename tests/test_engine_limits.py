"""The region-count and region-size limits, on scenarios worked out by hand.

Each scenario runs a few aggregations with the perf-histogram check (deterministic
given the region boundaries) and, where splits happen, the split draws given
explicitly; the expected region list of every snapshot is worked out in the comments
from the kernel's code (mm/damon/core.c: kdamond_merge_regions, damon_merge_regions_of,
kdamond_split_regions, damon_apply_min_nr_regions; vaddr.c: __damon_va_init_regions),
as docs/damon-engine-spec.md §4-§8 describes it.  The engine and the independent
reference (tests/engine_reference.py) must both produce exactly these lists.

Common setting: sample interval 1 ms, aggregation 4 ms, so ``aggr_samples`` =
``max_thres`` = 4 and the merge threshold of every aggregation is ``4 // 10 = 0``; with
more than max_nr_regions regions the merge passes run at thresholds 0, 1, 2, 4 and stop
after the pass at 4 (the doubled threshold 8 has ``8 // 2 == max_thres``).  Every pass
updates ages (quirk Q3).  Rows are (target, start, end, nr_accesses, age, nr_accesses_bp).
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_reference import Reference

from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target, set_regions

K = 1024
MS = 1_000_000
BASE = dict(sample_us=1000, aggr_us=4000, update_us=10**9, min_region=4096)


def hits(target, addr, intervals):
    """One sample in each given (1-based) sample interval, mid-interval."""
    return [((j - 1) * MS + MS // 2, target, addr) for j in intervals]


def run_both(cfg, targets, samples, inject=(), ops="fvaddr"):
    """Snapshots (lists of rows) from the engine and from the reference, which must agree."""
    samples = sorted(samples)
    t = np.array([s[0] for s in samples], np.int64)
    tg = np.array([s[1] for s in samples], np.int64)
    a = np.array([s[2] for s in samples], np.int64)
    mon = Monitor(cfg, targets, ops=ops, rand_inject=list(inject))
    h = mon.run(AccessSamples(t, tg, a), 0, int(t[-1]))
    got: list[list[tuple]] = [[] for _ in range(h.n_snapshots)]
    for sn, ti, s, e, nr, age, bp in zip(
        *(
            x.tolist()
            for x in (h.snapshot, h.target, h.start, h.end, h.nr_accesses, h.age, h.nr_accesses_bp)
        )
    ):
        got[sn].append((ti, s, e, nr, age, bp))
    ref = Reference(cfg, targets, ops=ops, rand_inject=list(inject))
    rows = ref.run(t, tg, a, 0, int(t[-1]))
    want: list[list[tuple]] = [[] for _ in range(h.n_snapshots)]
    for sn, _time, ti, s, e, nr, age, bp in rows:
        want[sn].append((ti, s, e, nr, age, bp))
    assert len(rows) == len(h.start)
    assert got == want
    assert int(mon.injpos[0]) == len(inject) and not ref.draw.forced  # every draw used
    return got


# ---------------------------------------------------------------------------------------
# A, B: two targets, five regions after apply-mode splitting, four gaps: nothing can merge
# ---------------------------------------------------------------------------------------
# Target 0: R0 = [A0, A0+20K), R1 = [A1, A1+8K).  Target 1: R2 = [B0, B0+8K),
# R3 = [B1, B1+4K).  All above 4 GiB.  Total 40 KiB, min_nr_regions 3.
# apply mode: lim = ALIGN(40960 // 3 = 13653, 4096) = 16384, so R0 is cut into
# R0a = [A0, A0+16K) and R0b = [A0+16K, A0+20K): five regions.  R0a+R0b = 20K > lim and
# the rest are separated by gaps, so no merge ever happens; with max_nr_regions below
# five, no split happens either (5 > max // 2).
A0, A1 = 0x5_0000_0000, 0x5_0001_0000
B0, B1 = 0x7F00_0000_0000, 0x7F00_0001_0000
TWO_TARGETS = [
    Target(lambda t: np.array([(A0, A0 + 20 * K), (A1, A1 + 8 * K)]), pid=1),
    Target(lambda t: np.array([(B0, B0 + 8 * K), (B1, B1 + 4 * K)]), pid=2),
]
# accesses per aggregation: R0a 4 and 4 (every interval), R0b none, R1 2 then 3,
# R2 none, R3 1 then 4; the last sample (7.5 ms) completes the second aggregation only
TWO_TARGET_SAMPLES = (
    hits(0, A0, range(1, 9)) + hits(0, A1, [1, 2, 5, 6, 7]) + hits(1, B1 + 100, [3, 5, 6, 7, 8])
)


def _two_target_rows(ages0, ages1, split_r0=True):
    r0 = (
        [(0, A0, A0 + 16 * K), (0, A0 + 16 * K, A0 + 20 * K)]
        if split_r0
        else [(0, A0, A0 + 20 * K)]
    )
    where = r0 + [(0, A1, A1 + 8 * K), (1, B0, B0 + 8 * K), (1, B1, B1 + 4 * K)]
    # nr and bp per region (R0b only when R0 is split).  bp: a moving sum over 4
    # intervals, reset to nr * 10000 after each aggregation: R1's second one is
    # 20000 - 4 * (2 * 10000 // 4) + 3 * 10000 = 30000, R3's 10000 - 4 * 2500 + 40000
    nr_bp0 = [(4, 40000)] + [(0, 0)] * split_r0 + [(2, 20000), (0, 0), (1, 10000)]
    nr_bp1 = [(4, 40000)] + [(0, 0)] * split_r0 + [(3, 30000), (0, 0), (4, 40000)]
    snap0 = [w + (nr, age, bp) for w, (nr, bp), age in zip(where, nr_bp0, ages0)]
    snap1 = [w + (nr, age, bp) for w, (nr, bp), age in zip(where, nr_bp1, ages1)]
    return [snap0, snap1]


def test_more_regions_than_max_nr_regions_several_targets_apply_mode():
    """max_nr_regions 3 < 5 regions: every aggregation runs passes at 0, 1, 2 and 4.

    Aggregation 0 (last_nr_accesses 0 everywhere): R0a |4-0| > 0, 1, 2, and at 4 the
    zero-ness differs -> age 0; R0b, R2 (0 and 0) +1 on each of the 4 passes -> 4;
    R1 |2-0| > 0, 1, then zero-ness differs -> 0; R3 likewise -> 0.
    Aggregation 1: R0a |4-4| = 0 -> +4 = 4; R0b, R2 -> 8; R1 |3-2| = 1 > 0, then +1 at
    1, 2, 4 -> 3; R3 |4-1| = 3 > 0, 1, 2, then +1 at 4 -> 1."""
    cfg = MonitorConfig(**BASE, min_nr_regions=3, max_nr_regions=3, min_nr_regions_mode="apply")
    assert run_both(cfg, TWO_TARGETS, TWO_TARGET_SAMPLES) == _two_target_rows(
        [0, 4, 0, 4, 0], [4, 8, 3, 8, 1]
    )


def test_more_regions_than_max_nr_regions_legacy_mode():
    """Legacy mode does not split R0 to the limit (four regions, still above 3): the same
    passes and ages, R0 whole."""
    cfg = MonitorConfig(**BASE, min_nr_regions=3, max_nr_regions=3)
    assert run_both(cfg, TWO_TARGETS, TWO_TARGET_SAMPLES) == _two_target_rows(
        [0, 0, 4, 0], [4, 3, 8, 1], split_r0=False
    )


def test_more_regions_than_max_nr_regions_ages_counted_once():
    """fix_age_once (the mid-2026 mm tree): ages change on the first pass only.
    Aggregation 0: R0a 0, R0b 1, R1 0, R2 1, R3 0.  Aggregation 1: R0a |4-4| <= 0 -> 1,
    R0b 2, R1 |3-2| > 0 -> 0, R2 2, R3 |4-1| > 0 -> 0."""
    cfg = MonitorConfig(
        **BASE, min_nr_regions=3, max_nr_regions=3, min_nr_regions_mode="apply", fix_age_once=True
    )
    assert run_both(cfg, TWO_TARGETS, TWO_TARGET_SAMPLES) == _two_target_rows(
        [0, 1, 0, 1, 0], [1, 2, 0, 2, 0]
    )


def test_exactly_max_nr_regions_stops_after_one_pass():
    """max_nr_regions 5 == 5 regions: the loop ends after the first pass (threshold 0),
    with the ages of a single pass (those of the fix_age_once case above)."""
    cfg = MonitorConfig(**BASE, min_nr_regions=3, max_nr_regions=5, min_nr_regions_mode="apply")
    assert run_both(cfg, TWO_TARGETS, TWO_TARGET_SAMPLES) == _two_target_rows(
        [0, 1, 0, 1, 0], [1, 2, 0, 2, 0]
    )


def test_without_escalation_one_pass_whatever_the_count():
    """Kernels before the mid-2024 escalation make one pass even with 5 > 3 regions."""
    cfg = MonitorConfig(
        **BASE,
        min_nr_regions=3,
        max_nr_regions=3,
        min_nr_regions_mode="apply",
        merge_escalation=False,
    )
    assert run_both(cfg, TWO_TARGETS, TWO_TARGET_SAMPLES) == _two_target_rows(
        [0, 1, 0, 1, 0], [1, 2, 0, 2, 0]
    )


# ---------------------------------------------------------------------------------------
# C: a merge that only the last pass (threshold == max_thres) makes
# ---------------------------------------------------------------------------------------
# One target given four touching ranges: r0 = [C, C+4K), r1 = [C+4K, C+8K),
# r2 = [C+8K, C+12K), r3 = [C+12K, C+32K), one region each (set_regions).  Legacy,
# min_nr_regions 3: sz_limit = 32768 // 3 = 10922, so only two 4 KiB neighbours fit
# together; max_nr_regions 3 < 4.
C = 0x10_0000_0000


def test_merge_at_the_last_pass_threshold_equal_to_max_thres():
    """Aggregation 0: nr r0 4, r1 0, r2 3, r3 0.
    Pass 0: ages r0 0, r1 1, r2 0, r3 1; r1-r2 differ by 3: nothing merges.  Passes 1, 2:
    r1, r3 +1 each (3); r0 (4 > 2) and r2 (3 > 2) stay 0; still nothing merges.
    Pass 4: r0 |4-0| <= 4 but zero-ness differs -> 0; r1 -> 4, then r1 merges into r0
    (|4-0| <= 4, 8K <= 10922): nr (4*4K + 0)/8K = 2, age (0 + 4*4K)/8K = 2, bp 20000;
    r2: |2-3| <= 4 but 8K + 4K > 10922, no merge, age 0 (zero-ness); r3 -> 4, 4K + 20K
    too big.  Three regions: the loop ends (and 3 > 3 // 2: no split).
    Aggregation 1: nr [C, C+8K) 2, r2 4, r3 0.  One pass (3 == max_nr_regions): ages
    3 (|2-2| <= 0), 0 (|4-3| > 0), 5; bp 20000 - 4*5000 + 20000 = 20000 and
    30000 - 4*7500 + 40000 = 40000."""
    cfg = MonitorConfig(**BASE, min_nr_regions=3, max_nr_regions=3)
    ranges = np.array(
        [(C, C + 4 * K), (C + 4 * K, C + 8 * K), (C + 8 * K, C + 12 * K), (C + 12 * K, C + 32 * K)]
    )
    samples = (
        hits(0, C, range(1, 5))
        + hits(0, C + 8 * K, [1, 2, 3])
        + hits(0, C + 4 * K, [5, 6])
        + hits(0, C + 8 * K, range(5, 9))
    )
    assert run_both(cfg, [Target(lambda t: ranges, pid=1)], samples) == [
        [
            (0, C, C + 8 * K, 2, 2, 20000),
            (0, C + 8 * K, C + 12 * K, 3, 0, 30000),
            (0, C + 12 * K, C + 32 * K, 0, 4, 0),
        ],
        [
            (0, C, C + 8 * K, 2, 3, 20000),
            (0, C + 8 * K, C + 12 * K, 4, 0, 40000),
            (0, C + 12 * K, C + 32 * K, 0, 5, 0),
        ],
    ]


# ---------------------------------------------------------------------------------------
# D: a vaddr target's start from its three regions, then splits, merges, and a skipped split
# ---------------------------------------------------------------------------------------
X, Y, Z = 0x7FFF_0001_0000, 0x7FFF_0004_0000, 0x7FFF_0008_0000


def test_three_regions_start_then_split_and_merge():
    """Legacy init (__damon_va_init_regions): three regions X (44K), Y (8K), Z (16K);
    total 68K // min_nr_regions 4 = 17408 = sz, also sz_limit.  X: 45056 // 17408 = 2
    pieces of ALIGN_DOWN(22528) = 20K, the last one taking the rest: [X, X+20K),
    [X+20K, X+44K); Y and Z: 0 pieces -> whole.  max_nr_regions 10.

    Aggregation 0: nr X0 4, X1 0, Y 0, Z 2; ages 0, 1, 1, 0; nothing merges (thres 0).
    Split (4 <= 5, last_nr_regions 0: two pieces), draws 8, 3, 0:
      X0 k=9: ALIGN_DOWN(9*20480//10 = 18432) = 16K -> a [X, X+16K), b [X+16K, X+20K);
      X1 k=4: 9830 -> 8K -> c [X+20K, X+28K), d [X+28K, X+44K);  Y (8K) is not > 8K;
      Z k=1: 1638 -> 0, no split (the draw is used anyway).
    Aggregation 1: nr a 4, b 0, c 0, d 1, Y 0, Z 2.  a |4-4| -> age 1; b |0-4| -> 0;
      c 0/0 -> 2, merges into b (0 == 0, 12K <= 17408): b' = [X+16K, X+28K), nr 0,
      age (0*4K + 2*8K) // 12K = 1; d 1 > 0 -> 0; Y -> 2; Z -> 1.  Five regions.
    Split (5 <= 5, 4 != 5: two pieces), draws 4, 0, 8, 1:
      a k=5: 8192 -> a1 [X, X+8K), a2 [X+8K, X+16K); b' k=1: 1228 -> 0;
      d k=9: 14745 -> 12K -> d1 [X+28K, X+40K), d2 [X+40K, X+44K); Z k=2: 3276 -> 0.
    Aggregation 2: nr a1 4, a2 2, others 0.  a1 -> 2; a2 |2-4| -> 0; b' -> 2;
      d1 |0-1| -> 0, no merge with b' (24K > 17408); d2 -> 0, merges into d1 (16K):
      d' = [X+28K, X+44K), age 0; Y -> 3; Z |0-2| -> 0.  Six regions: no split
      (6 > 5; last_nr_regions stays 5)."""
    cfg = MonitorConfig(**BASE, min_nr_regions=4, max_nr_regions=10)
    tg = Target(lambda t: np.array([(X, X + 44 * K), (Y, Y + 8 * K), (Z, Z + 16 * K)]), pid=9)
    samples = (
        hits(0, X, range(1, 5))
        + hits(0, Z + 12 * K, [1, 2])  # aggregation 0
        + hits(0, X + 4 * K, range(5, 9))
        + hits(0, X + 40 * K, [5])
        + hits(0, Z, [5, 6])  # aggregation 1
        + hits(0, X, range(9, 13))
        + hits(0, X + 12 * K, [9, 10])
    )  # aggregation 2
    rows = run_both(cfg, [tg], samples, inject=[8, 3, 0, 4, 0, 8, 1], ops="vaddr")
    assert rows == [
        [
            (0, X, X + 20 * K, 4, 0, 40000),
            (0, X + 20 * K, X + 44 * K, 0, 1, 0),
            (0, Y, Y + 8 * K, 0, 1, 0),
            (0, Z, Z + 16 * K, 2, 0, 20000),
        ],
        # bp: a 40000 - 4*10000 + 40000; d 0 + 10000; Z 20000 - 4*5000 + 20000
        [
            (0, X, X + 16 * K, 4, 1, 40000),
            (0, X + 16 * K, X + 28 * K, 0, 1, 0),
            (0, X + 28 * K, X + 44 * K, 1, 0, 10000),
            (0, Y, Y + 8 * K, 0, 2, 0),
            (0, Z, Z + 16 * K, 2, 1, 20000),
        ],
        # bp: a2 40000 - 4*10000 + 2*10000; Z 20000 - 4*5000
        [
            (0, X, X + 8 * K, 4, 2, 40000),
            (0, X + 8 * K, X + 16 * K, 2, 0, 20000),
            (0, X + 16 * K, X + 28 * K, 0, 2, 0),
            (0, X + 28 * K, X + 44 * K, 0, 0, 0),
            (0, Y, Y + 8 * K, 0, 3, 0),
            (0, Z, Z + 16 * K, 0, 0, 0),
        ],
    ]


# ---------------------------------------------------------------------------------------
# E: three pieces a region only while the count stays below max_nr_regions / 3
# ---------------------------------------------------------------------------------------
P = 0x2_0000_0000


@pytest.mark.parametrize(
    "max_nr, draws, pieces",
    [
        (9, [0] * 6, 1),  # 3 == 9 // 3: two pieces a region (one draw each)
        (12, [0] * 3 + [8, 0] * 3, 2),  # 3 < 12 // 3: three pieces (two draws each)
    ],
)
def test_three_pieces_only_below_a_third_of_max_nr_regions(max_nr, draws, pieces):
    """Three 16 KiB regions with gaps (legacy, min_nr_regions 3: sz_limit 16K), no
    sample until aggregation 2.  Aggregation 0: ages 1; split (3 <= max // 2,
    last_nr_regions 0: two pieces), draws 0 -> k=1: 1638 -> 0, no split;
    last_nr_regions = 3.  Aggregation 1: ages 2; split with 3 == last_nr_regions:
    max 9: 3 < 9 // 3 fails, two pieces, draws 0: no split;
    max 12: 3 < 4, three pieces: draw 8 (k=9: 14745 -> 12K) cuts [P, P+12K) +
    [P+12K, P+16K) and so on, draw 0 then fails on the 12K left piece.
    Aggregation 2: every interval hits the page at +12K of each region: a whole region
    counts 4 (age 0, zero-ness changed); split pieces: the left one 0 (age 3), the right
    one 4 (age 0); no merge (|0-4| > 0)."""
    cfg = MonitorConfig(**BASE, min_nr_regions=3, max_nr_regions=max_nr)
    bases = [P, P + 64 * K, P + 128 * K]
    tg = Target(lambda t: np.array([(b, b + 16 * K) for b in bases]), pid=3)
    samples = [s for b in bases for s in hits(0, b + 12 * K, range(9, 13))]
    rows = run_both(cfg, [tg], samples, inject=draws)
    assert rows[0] == [(0, b, b + 16 * K, 0, 1, 0) for b in bases]
    assert rows[1] == [(0, b, b + 16 * K, 0, 2, 0) for b in bases]
    if pieces == 1:
        assert rows[2] == [(0, b, b + 16 * K, 4, 0, 40000) for b in bases]
    else:
        assert rows[2] == [
            r
            for b in bases
            for r in ((0, b, b + 12 * K, 0, 3, 0), (0, b + 12 * K, b + 16 * K, 4, 0, 40000))
        ]


# ---------------------------------------------------------------------------------------
# max_region (the perf-access RFC's region_sz/max) in damon_set_regions
# ---------------------------------------------------------------------------------------
def _set(regs, ranges, maxsz):
    return [tuple(r) for r in set_regions([list(r) for r in regs], ranges, 4096, maxsz)]


def test_set_regions_cuts_a_grown_region_in_max_size_pieces():
    """The RFC's damon_set_regions(split=true): a first region that grew downwards (or a
    last one that grew upwards) is cut by damon_evenly_split_region into max-size pieces;
    the region keeps the first piece and its counters, the other pieces are new (zero).
    One region [64K, 80K) fitted to [32K, 128K) with max 8K: grown both ways, cut whole
    into 12 pieces."""
    got = _set([(0x10000, 0x14000, 3, 30000, 2, 7)], [(0x8000, 0x20000)], 8 * K)
    assert got == [(0x8000, 0xA000, 3, 30000, 2, 7)] + [
        (a, a + 0x2000, 0, 0, 0, 0) for a in range(0xA000, 0x20000, 0x2000)
    ]


def test_set_regions_cuts_grown_first_and_last_and_fills_the_hole():
    """Regions [64K, 80K) and [96K, 112K) fitted to [32K, 144K), max 8K: the first grows
    down to [32K, 80K) (6 pieces), the last up to [96K, 144K) (6 pieces), the hole
    [80K, 96K) becomes a new region cut in 2 pieces."""
    got = _set(
        [(0x10000, 0x14000, 1, 10000, 1, 5), (0x18000, 0x1C000, 2, 20000, 2, 6)],
        [(0x8000, 0x24000)],
        8 * K,
    )
    zero = (0, 0, 0, 0)
    assert got == (
        [(0x8000, 0xA000, 1, 10000, 1, 5)]
        + [(a, a + 0x2000) + zero for a in range(0xA000, 0x14000, 0x2000)]
        + [(0x14000, 0x16000) + zero, (0x16000, 0x18000) + zero]
        + [(0x18000, 0x1A000, 2, 20000, 2, 6)]
        + [(a, a + 0x2000) + zero for a in range(0x1A000, 0x24000, 0x2000)]
    )


@pytest.mark.parametrize("maxsz", [0, 8 * K])
def test_set_regions_keeps_a_trimmed_region_whole(maxsz):
    """Only growth cuts: a region trimmed on both sides keeps its size and counters (with
    or without max_region); without max_region a grown region stays whole too."""
    assert _set([(0x10000, 0x30000, 4, 40000, 4, 9)], [(0x12000, 0x2E000)], maxsz) == [
        (0x12000, 0x2E000, 4, 40000, 4, 9)
    ]
    if not maxsz:
        assert _set([(0x10000, 0x14000, 3, 30000, 2, 7)], [(0x8000, 0x20000)], 0) == [
            (0x8000, 0x20000, 3, 30000, 2, 7)
        ]
