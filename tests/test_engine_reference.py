"""The numba engine against the independent pure-Python reference, draw for draw, plus
invariants.

* ``Monitor`` (and, for fixed granularity, ``FixedMonitor``) must produce exactly the
  rows of ``tests/engine_reference.Reference`` -- a separate program written from the
  kernel's description, with per-unit state -- on random configurations (up to the
  kernel's defaults: 5 ms / 100 ms, 10 / 1000 regions), up to five targets (static,
  growing and shrinking, addresses above 4 GiB, regions of several GiB), samples, both
  access checks, both min_nr_regions modes, the quirk switches and intervals
  auto-tuning; and on explicit examples that reach the max_nr_regions escalation.
* (The reference itself on the kernel's KUnit cases and the spec's worked examples:
  ``test_reference_kernel_cases.py``.)
* Fixed granularity: the output does not depend on the seed and equals a direct count
  (per region and aggregation, the number of sample intervals with at least one sample
  in the region), computed here with pandas.
* Invariants of every snapshot: regions sorted, non-overlapping, aligned to the minimum
  region size, covering the target ranges, sizes within bounds, and after every merge
  that ends above max_nr_regions, no two neighbours that could still merge.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from engine_reference import Reference
from helpers.arrays import assert_rows_equal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target, align_down, align_up
from tracedamon.engine.fixed import FixedMonitor

PAGE = 4096
MIB = 1 << 20
GIB = 1 << 30
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


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


# ---------------------------------------------------------------------------------------
# scenarios: a configuration, targets and samples
# ---------------------------------------------------------------------------------------
def make_targets(specs):
    """Targets from specs: ``ranges`` [(start, end)...] and optionally ``grow`` = (up,
    down, period_ns): every period the last range's end moves up by ``up`` and the first
    range's start down by ``down`` (cycling through 0, 1, 2 steps), ``three``: legacy
    vaddr init from three regions, ``exit``: (mm_exit_ns, exit_ns) of the target's process
    (its leader exits, then the last thread; exit_ns None: a thread lives on).  (Which of
    these the monitor uses is its operations set's business: see :func:`scenario_ops`.)"""
    targets = []
    for i, sp in enumerate(specs):
        r = np.array(sp["ranges"], np.int64)
        grow = sp.get("grow")
        if grow:
            up, down, period = grow

            def ranges_at(time, r=r, up=up, down=down, period=period):
                k = (time // period) % 3
                out = r.copy()
                out[-1, 1] += k * up
                out[0, 0] -= k * down
                return out
        else:

            def ranges_at(time, r=r):
                return r

        mm_exit, gone = sp.get("exit", (None, None))
        targets.append(Target(ranges_at, pid=i + 1, exit_ns=gone, mm_exit_ns=mm_exit))
    return targets


def scenario_ops(specs, physical: bool) -> str:
    """The operations set of a scenario: paddr for physical memory, vaddr when a target's
    ranges grow or come from three regions (every target is then re-read at ops updates
    and, in legacy mode, split evenly at start), else fvaddr."""
    if physical:
        return "paddr"
    return "vaddr" if any(sp.get("grow") or sp.get("three") for sp in specs) else "fvaddr"


def fixed_ranges(target, ops: str) -> bool:
    """Whether the target's ranges never change in the run: fvaddr and paddr read them
    once; a vaddr target re-reads them, and those that do not grow keep them."""
    rg = target.ranges_at(0)
    return ops != "vaddr" or all(
        np.array_equal(target.ranges_at(x), rg)
        for x in (1_000_000, 3_000_000, 5_000_000, 20_000_000, 40_000_000)
    )


def make_scenario(
    cfg,
    specs,
    *,
    access="perf",
    physical=False,
    n=200,
    aggregations=4,
    data_seed=0,
    t0=0,
    hot_share=0.5,
    hot_step=PAGE,
):
    """Samples drawn from ``data_seed``: ``n`` over ``aggregations`` aggregation intervals,
    a share of them on the first four ``hot_step`` units (pages; cache lines for sub-page
    monitoring) of a target's first range (so merges and high counts happen), the rest
    anywhere in (and a little around) the target's ranges, at any byte."""
    targets = make_targets(specs)
    ntgt = len(targets)
    spans = [(sp["ranges"][0][0] - 2 * PAGE, sp["ranges"][-1][1] + 8 * PAGE) for sp in specs]
    rng = np.random.default_rng(data_seed)
    horizon = aggregations * cfg.aggr_us * 1000 + int(rng.integers(0, cfg.aggr_us * 1000))
    times = np.sort(rng.integers(0, horizon, n)) + t0
    tg = rng.integers(0, ntgt, n)
    lo = np.array([spans[t][0] for t in tg], np.int64)
    hi = np.array([spans[t][1] for t in tg], np.int64)
    pages = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    if n:
        hot = rng.random(n) < hot_share
        first = np.array([specs[t]["ranges"][0][0] for t in tg], np.int64)
        pages[hot] = (
            first[hot]
            + hot_step * rng.integers(0, 4, int(hot.sum()))
            + rng.integers(0, hot_step, int(hot.sum()))
        )
    if physical:
        tg = np.zeros(n, np.int64)
    t_last = int(times[-1]) if n else 0
    return cfg, targets, access, scenario_ops(specs, physical), times, tg, pages, t0, t_last


@st.composite
def configs(draw, fixed=False, tuning=True, huge=False, subpage=False):
    s = draw(st.sampled_from([1000, 2000, 5000]))
    n_aggr = draw(st.sampled_from([2, 3, 4, 5, 6, 8, 20]))
    aggr = s * n_aggr + draw(st.sampled_from([0, 0, s // 2]))
    upd = draw(st.sampled_from([aggr * 3, aggr * 5 + s, s * 7, 10**9]))
    min_nr = draw(st.integers(3, 10))
    max_nr = draw(st.one_of(st.integers(min_nr, 40), st.just(min_nr), st.just(1000)))
    minsz = MIB if huge else draw(st.sampled_from([64, 128, 1024] if subpage else [PAGE, 2 * PAGE]))
    if fixed:
        maxsz = minsz
    else:
        maxsz = draw(st.sampled_from([None, None, None, minsz * 4, minsz * 8]))
    kernel = draw(st.sampled_from(["released", "mainline-2026"]))
    mode = None if kernel == "mainline-2026" else draw(st.sampled_from(["legacy", "apply"]))
    kw = dict(
        sample_us=s,
        aggr_us=aggr,
        update_us=upd,
        min_nr_regions=min_nr,
        max_nr_regions=max_nr,
        min_region=minsz,
        max_region=maxsz,
        min_nr_regions_mode=mode,
        kernel=kernel,
        seed=draw(st.integers(0, 2**32)),
        fix_age_once=draw(st.booleans()),
        fix_pa_cache=draw(st.booleans()),
        age_zero_reset=draw(st.booleans()),
        merge_escalation=draw(st.booleans()),
        fix_rand32=draw(st.booleans()),
        rng_streams=draw(st.sampled_from(["single", "split"])),
    )
    if tuning and draw(st.integers(0, 3)) == 0:
        kw.update(
            goal_aggrs=draw(st.integers(1, 2)),
            goal_access_bp=draw(st.integers(50, 6000)),
            goal_min_sample_us=500,
            goal_max_sample_us=8000,
        )
    return MonitorConfig(**kw)


BASES = (
    lambda t: 0x100000 * (t + 1),  # low addresses
    lambda t: 0x1_0000_0000 * (t + 1),  # above 4 GiB
    lambda t: 0x7F00_0000_0000 + 0x1000_0000 * t,
)  # where mmap puts things


@st.composite
def scenarios(draw, fixed=False, tuning=True, allow_abit=True):
    huge = not fixed and draw(st.integers(0, 9)) == 0  # MiB units, regions of GiBs
    # sub-page monitoring (cache-line units): the perf checks only
    subpage = not huge and draw(st.integers(0, 3)) == 0
    cfg = draw(configs(fixed=fixed, tuning=tuning, huge=huge, subpage=subpage))
    unit = cfg.min_region
    physical = draw(st.booleans())
    access = draw(st.sampled_from(["perf", "abit"] if allow_abit and not subpage else ["perf"]))
    ntgt = 1 if physical else draw(st.integers(1, 2 if huge else 5))
    base_of = draw(st.sampled_from(BASES))
    specs = []
    for t in range(ntgt):
        base = (
            (0x10_0000_0000 * (t + 1) if huge else base_of(t))
            + draw(st.integers(0, 3)) * 0x800
            + 8 * unit
        )
        ranges = []
        cur = base
        for _ in range(draw(st.integers(1, 2 if huge else 4))):
            # gaps of at least two units, so ranges stay apart once aligned to the
            # minimum region size (touching ranges: see the set_regions tests)
            cur += draw(st.integers(1, 3)) * 2 * unit
            if huge:  # 1 to 6 GiB: 2**32 and more, or less
                ln = draw(st.integers(1, 6)) * GIB + draw(st.integers(0, 3)) * unit
            elif subpage:  # up to a few hundred units
                ln = draw(st.integers(1, 300)) * unit
            else:
                ln = draw(st.integers(1, 40)) * PAGE
            ln += draw(st.sampled_from([0, 0, 100]))
            ranges.append((cur, cur + ln))
            cur += ln
        spec = {"ranges": ranges}
        if not physical and draw(st.booleans()):
            spec["grow"] = (
                draw(st.integers(1, 6)) * PAGE,
                draw(st.sampled_from([0, 0, unit, 3 * PAGE])),
                draw(st.sampled_from([5_000_000, 20_000_000])),
            )
            spec["three"] = draw(st.booleans())
        if not physical and draw(st.integers(0, 2)) == 0:
            # the process exits: its leader at an interval boundary or inside an
            # interval, the last thread then or later (or never, in the trace)
            S = cfg.sample_us * 1000
            mm_exit = (
                draw(st.integers(0, 12 * cfg.aggr_samples)) * S
                + draw(st.sampled_from([0, 1, S // 2, S - 1]))
                + draw(st.sampled_from([0, -300_000]))
            )
            later = draw(st.sampled_from([0, 0, 1, S, 7 * S, None]))
            spec["exit"] = (mm_exit, None if later is None else mm_exit + later)
        specs.append(spec)
    return make_scenario(
        cfg,
        specs,
        access=access,
        physical=physical,
        n=draw(st.integers(0, 400)),
        aggregations=draw(st.integers(1, 10)),
        data_seed=draw(st.integers(0, 2**31)),
        t0=draw(st.sampled_from([0, -300_000])),
        hot_step=unit if subpage else PAGE,
    )


# explicit examples: each reaches a part of the loop random draws reach rarely
def _gapped(n_ranges, base, size=2 * PAGE, gap=4 * PAGE):
    return [(base + i * (size + gap), base + i * (size + gap) + size) for i in range(n_ranges)]


ESCALATING = dict(sample_us=1000, aggr_us=4000, update_us=10**9, min_nr_regions=3, max_nr_regions=3)
EXAMPLES = [
    # more regions than max_nr_regions in several targets, apply mode: gaps stop every
    # merge, so each aggregation runs the passes up to threshold == max_thres (4)
    make_scenario(
        MonitorConfig(**ESCALATING, min_nr_regions_mode="apply", seed=11),
        [
            {"ranges": _gapped(3, 0x1_0000_0000)},
            {"ranges": _gapped(2, 0x7F00_0000_0000, size=5 * PAGE)},
        ],
        access="abit",
        n=300,
        aggregations=6,
        data_seed=1,
    ),
    # the same with touching ranges (neighbours that merge only at higher thresholds)
    # and a three-regions legacy target
    make_scenario(
        MonitorConfig(**{**ESCALATING, "max_nr_regions": 4}, seed=12),
        [
            {"ranges": [(0x100000 + i * PAGE, 0x100000 + (i + 1) * PAGE) for i in range(6)]},
            {
                "ranges": _gapped(3, 0x5_0000_0000, size=8 * PAGE),
                "three": True,
                "grow": (2 * PAGE, 0, 3_000_000),
            },
        ],
        access="perf",
        n=400,
        aggregations=8,
        data_seed=2,
        hot_share=0.2,
    ),
    # exactly max_nr_regions regions: one pass
    make_scenario(
        MonitorConfig(**{**ESCALATING, "max_nr_regions": 5}, min_nr_regions_mode="apply"),
        [{"ranges": _gapped(2, 0x2000000, size=4 * PAGE)}, {"ranges": _gapped(3, 0x3000000)}],
        n=250,
        aggregations=5,
        data_seed=3,
    ),
    # kernel defaults (5 ms / 100 ms, 10 / 1000 regions), five targets above 4 GiB, abit
    make_scenario(
        MonitorConfig(seed=5),
        [
            {"ranges": _gapped(3, 0x1_0000_0000 * (t + 1), size=24 * PAGE, gap=16 * PAGE)}
            for t in range(5)
        ],
        access="abit",
        n=400,
        aggregations=4,
        data_seed=4,
    ),
    # a vaddr target growing down and up with max_region set (set_regions cuts grown
    # regions), legacy three-regions start
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=5000,
            update_us=7000,
            min_nr_regions=4,
            max_nr_regions=20,
            max_region=4 * PAGE,
            seed=6,
        ),
        [
            {
                "ranges": _gapped(3, 0x7FFF_0000_0000, size=12 * PAGE),
                "grow": (3 * PAGE, 5 * PAGE, 4_000_000),
                "three": True,
            }
        ],
        n=300,
        aggregations=8,
        data_seed=5,
    ),
    # regions of several GiB in 1 MiB units: the accessed-bit check's sampling range is
    # cut to 32 bits (quirk Q1), or drawn over the full width (two words a draw): the
    # split draws that follow differ
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=3000,
            min_nr_regions=3,
            max_nr_regions=12,
            min_region=MIB,
            seed=7,
        ),
        [{"ranges": [(0x10_0000_0000, 0x10_0000_0000 + 5 * GIB + 3 * MIB)]}],
        access="abit",
        n=300,
        aggregations=5,
        data_seed=6,
    ),
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=3000,
            min_nr_regions=3,
            max_nr_regions=12,
            min_region=MIB,
            seed=7,
            fix_rand32=True,
        ),
        [{"ranges": [(0x10_0000_0000, 0x10_0000_0000 + 5 * GIB + 3 * MIB)]}],
        access="abit",
        n=300,
        aggregations=5,
        data_seed=6,
    ),
    # paddr's accessed-bit cache has no same-target guard: a one-page region (always the
    # same sampled page) reuses the previous interval's verdict (quirk Q5), or not
    make_scenario(
        MonitorConfig(sample_us=1000, aggr_us=4000, min_nr_regions=3, max_nr_regions=10, seed=9),
        [{"ranges": [(0x4000_0000, 0x4000_1000)]}],
        access="abit",
        physical=True,
        n=120,
        aggregations=6,
        data_seed=8,
    ),
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=4000,
            min_nr_regions=3,
            max_nr_regions=10,
            seed=9,
            fix_pa_cache=True,
        ),
        [{"ranges": [(0x4000_0000, 0x4000_1000)]}],
        access="abit",
        physical=True,
        n=120,
        aggregations=6,
        data_seed=8,
    ),
    # mainline-2026: more than max_nr_regions / 2 regions in two targets, abit: the
    # partial split (one region in every max / (max - n), rotating offset) draws from the
    # lfsr113 stream that also draws the sampling addresses
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=4000,
            update_us=10**9,
            min_nr_regions=3,
            max_nr_regions=10,
            seed=21,
            kernel="mainline-2026",
        ),
        [
            {"ranges": _gapped(3, 0x1_0000_0000, size=16 * PAGE)},
            {"ranges": _gapped(3, 0x7F00_0000_0000, size=9 * PAGE)},
        ],
        access="abit",
        n=400,
        aggregations=8,
        data_seed=21,
    ),
    # mainline-2026 with regions of GiBs (two-word draws for spans of 2**32 and more) and
    # the merge escalating above max_nr_regions (threshold capped at aggr / sample)
    make_scenario(
        MonitorConfig(
            sample_us=1000,
            aggr_us=3000,
            min_nr_regions=3,
            max_nr_regions=4,
            min_region=MIB,
            seed=22,
            kernel="mainline-2026",
        ),
        [
            {"ranges": [(0x10_0000_0000, 0x10_0000_0000 + 5 * GIB + 3 * MIB)]},
            {"ranges": _gapped(4, 0x40_0000_0000, size=3 * MIB, gap=MIB)},
        ],
        access="abit",
        n=300,
        aggregations=6,
        data_seed=22,
    ),
    # two processes, abit: the first's leader exits inside an interval of the third
    # aggregation and its last thread two intervals later (its draws stop, the other's
    # go on); the second exits at an interval boundary in the sixth aggregation, which
    # ends the loop
    make_scenario(
        MonitorConfig(sample_us=1000, aggr_us=4000, min_nr_regions=3, max_nr_regions=12, seed=9),
        [
            {"ranges": _gapped(3, 0x100000), "exit": (9_500_000, 11_500_000)},
            {"ranges": _gapped(2, 0x900000), "exit": (21_000_000, 21_000_000)},
        ],
        access="abit",
        n=400,
        aggregations=8,
        data_seed=5,
    ),
    # intervals auto-tuning with several targets
    make_scenario(
        MonitorConfig(
            sample_us=2000,
            aggr_us=8000,
            update_us=24000,
            min_nr_regions=3,
            max_nr_regions=8,
            goal_aggrs=1,
            goal_access_bp=300,
            goal_min_sample_us=500,
            goal_max_sample_us=8000,
            seed=8,
        ),
        [{"ranges": _gapped(2, 0x100000)}, {"ranges": _gapped(2, 0x900000)}],
        access="abit",
        n=300,
        aggregations=6,
        data_seed=7,
    ),
]


def with_examples(f):
    for sc in EXAMPLES:
        f = example(sc)(f)
    return f


@SETTINGS
@given(scenarios())
@with_examples
def test_engine_equals_reference(sc):
    cfg, targets, access, ops, times, tg, pages, t0, t_last = sc
    acc = AccessSamples(times, tg, pages)
    want = Reference(cfg, targets, ops=ops, access=access).run(times, tg, pages, t0, t_last)
    got = rows_of(Monitor(cfg, targets, ops=ops, access=access).run(acc, t0, t_last))
    assert_rows_equal(got, want)
    some = rows_of(
        Monitor(cfg, targets, ops=ops, access=access).run(acc, t0, t_last, accessed_only=True)
    )
    assert_rows_equal(some, [r for r in want if r[5] > 0])


@SETTINGS
@given(scenarios(fixed=True, tuning=False, allow_abit=False))
def test_fixed_engine_equals_monitor_and_reference(sc):
    cfg, targets, access, ops, times, tg, pages, t0, t_last = sc
    acc = AccessSamples(times, tg, pages)
    ref = Reference(cfg, targets, ops=ops).run(times, tg, pages, t0, t_last)
    dense = rows_of(Monitor(cfg, targets, ops=ops).run(acc, t0, t_last))
    assert_rows_equal(dense, ref)
    for accessed_only in (False, True):
        sparse = rows_of(
            FixedMonitor(cfg, targets, ops=ops).run(acc, t0, t_last, accessed_only=accessed_only)
        )
        assert_rows_equal(sparse, [r for r in ref if r[5] > 0 or not accessed_only])


# ---------------------------------------------------------------------------------------
# fixed granularity and invariants
# ---------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(0, 2**32),
    st.sampled_from([64, 256, 4096, 8192, 16384]),
    st.integers(2, 10),
    st.integers(0, 2**31),
)
def test_fixed_granularity_is_a_direct_count(seed_a, seed_b, size, n_aggr, data_seed):
    rng = np.random.default_rng(data_seed)
    s_us = 1000
    cfg = MonitorConfig(
        sample_us=s_us, aggr_us=s_us * n_aggr, min_region=size, max_region=size, seed=seed_a
    )
    base, span = 0x40000000, 64 * size
    rg = np.array([(base, base + span)])
    n = 2000
    times = np.sort(rng.integers(0, 200 * s_us * 1000, n))
    pages = base - size + rng.integers(0, span + 2 * size, n)
    acc = AccessSamples(times, np.zeros(n, np.int64), pages)
    tgt = [Target(lambda t: rg, pid=7)]
    h_a = Monitor(cfg, tgt).run(acc, 0, int(times[-1]))
    h_b = Monitor(cfg.replace(seed=seed_b), tgt).run(acc, 0, int(times[-1]))
    assert_rows_equal(rows_of(h_a), rows_of(h_b))  # whatever the seed
    # direct count with pandas
    df = pd.DataFrame({"t": times, "a": pages})
    df = df[(df.a >= base) & (df.a < base + span)]
    df["interval"] = df.t // (s_us * 1000)
    df["snapshot"] = df.interval // n_aggr
    df["region"] = base + (df.a - base) // size * size
    direct = df.groupby(["snapshot", "region"]).interval.nunique()
    got = (
        pd.DataFrame({"snapshot": h_a.snapshot, "region": h_a.start, "nr": h_a.nr_accesses})
        .set_index(["snapshot", "region"])
        .nr
    )
    n_snap = h_a.n_snapshots
    assert n_snap == (int(times[-1]) // (s_us * 1000) + 1) // n_aggr
    assert len(got) == n_snap * 64  # every region of every snapshot
    want = direct[direct.index.get_level_values(0) < n_snap].reindex(got.index, fill_value=0)
    assert (got == want).all()
    assert (h_a.end - h_a.start == size).all()


@SETTINGS
@given(scenarios(tuning=False))
def test_snapshot_invariants(sc):
    cfg, targets, access, ops, times, tg, pages, t0, t_last = sc
    acc = AccessSamples(times, tg, pages)
    h = Monitor(cfg, targets, ops=ops, access=access).run(acc, t0, t_last)
    df = pd.DataFrame(
        {
            "snap": h.snapshot,
            "t": h.target,
            "s": h.start,
            "e": h.end,
            "nr": h.nr_accesses,
            "time": h.time_ns,
        }
    )
    minsz = cfg.min_region
    n_aggr = cfg.aggr_samples
    assert (df.nr <= n_aggr).all() and (df.nr >= 0).all()
    for snap, g in df.groupby("snap"):
        assert g.time.nunique() == 1
        assert g.time.iloc[0] == t0 + (snap + 1) * n_aggr * cfg.sample_us * 1000
        for t, gt in g.groupby("t"):
            s, e = gt.s.to_numpy(), gt.e.to_numpy()
            assert (e > s).all()
            assert (s[1:] >= e[:-1]).all()  # sorted, non-overlapping
            assert (s % minsz == 0).all() and (e % minsz == 0).all()
            if fixed_ranges(targets[t], ops):
                # coverage: exactly the ranges, aligned out to the minimum region size
                rg = targets[t].ranges_at(0)
                want = sum(align_up(int(b), minsz) - align_down(int(a), minsz) for a, b in rg)
                assert int((e - s).sum()) == want
                for a, b in rg:
                    lo, hi = align_down(int(a), minsz), align_up(int(b), minsz)
                    inside = (s >= lo) & (e <= hi)
                    assert int((e[inside] - s[inside]).sum()) == hi - lo
            if cfg.fixed_granularity:
                assert (e - s == cfg.max_region).all()
        if cfg.min_nr_regions_mode == "apply" and not cfg.fixed_granularity:
            total = int((g.e - g.s).sum())
            lim = align_up(max(total // cfg.min_nr_regions, minsz), minsz)
            assert ((g.e - g.s) <= lim).all()  # apply mode: split to the limit
            assert len(g) >= -(-total // lim)


@st.composite
def crowded(draw):
    """More groups of touching ranges than max_nr_regions, in one to three targets: gaps
    keep the count above max_nr_regions whatever merges, so every merge runs its passes
    up to threshold max_thres and no split ever happens."""
    min_nr = 3
    max_nr = draw(st.integers(3, 6))
    n_aggr = draw(st.sampled_from([2, 3, 4, 5, 8]))
    ntgt = draw(st.integers(1, 3))
    n_groups = max_nr + draw(st.integers(1, 3))
    groups = [[] for _ in range(ntgt)]
    for g in range(n_groups):
        groups[g % ntgt].append([draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))])
    cfg = MonitorConfig(
        sample_us=1000,
        aggr_us=1000 * n_aggr,
        update_us=10**9,
        min_nr_regions=min_nr,
        max_nr_regions=max_nr,
        seed=draw(st.integers(0, 2**32)),
        fix_age_once=draw(st.booleans()),
    )
    specs = []
    for t, gl in enumerate(groups):
        ranges, cur = [], 0x10_0000_0000 * (t + 1)
        for sizes in gl:
            for pages in sizes:  # touching ranges: one region each
                ranges.append((cur, cur + pages * PAGE))
                cur += pages * PAGE
            cur += 16 * PAGE  # the gap between groups
        specs.append({"ranges": ranges})
    sc = make_scenario(
        cfg,
        specs,
        access=draw(st.sampled_from(["perf", "abit"])),
        n=draw(st.integers(50, 400)),
        aggregations=draw(st.integers(1, 6)),
        data_seed=draw(st.integers(0, 2**31)),
        hot_share=0.1,
    )
    return sc, n_groups


@settings(max_examples=60, deadline=None)
@given(crowded())
def test_merge_above_max_nr_regions_leaves_no_mergeable_neighbours(case):
    """Legacy mode (the trace shows the merged regions): a merge that ends above
    max_nr_regions has run its last pass at a threshold of at least max_thres, which
    every nr_accesses difference passes, so every two touching neighbours left are too
    big together for the size limit."""
    (cfg, targets, access, ops, times, tg, pages, t0, t_last), n_groups = case
    h = Monitor(cfg, targets, ops=ops, access=access).run(
        AccessSamples(times, tg, pages), t0, t_last
    )
    total = sum(int(b - a) for t in targets for a, b in t.ranges_at(0))
    sz_limit = max(total // cfg.min_nr_regions, cfg.min_region)
    counts = np.bincount(h.snapshot, minlength=h.n_snapshots)
    assert (counts >= n_groups).all() and (counts > cfg.max_nr_regions).all()
    for snap in range(h.n_snapshots):
        for t in range(len(targets)):
            sel = (h.snapshot == snap) & (h.target == t)
            s, e = h.start[sel], h.end[sel]
            touching = e[:-1] == s[1:]
            sizes = e - s
            assert (sizes[:-1][touching] + sizes[1:][touching] > sz_limit).all(), (snap, t)
