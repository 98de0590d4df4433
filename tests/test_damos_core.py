"""DAMOS core: the spec's worked examples (damos-spec §9.1-9.2), the kernel's KUnit cases
re-expressed (mm/damon/tests/core-kunit.h), the score table (§3.3), quota arithmetic,
watermarks and the kernel's validation of scheme values."""

from __future__ import annotations

import numpy as np
import pytest

from tracedamon.engine.damos import (
    AccessPattern,
    Context,
    Filter,
    Quota,
    QuotaGoal,
    Scheme,
    Watermarks,
    apply_schemes,
    new_state,
    set_resume,
    update_watermarks,
)
from tracedamon.engine.damos.core import pattern_nr_accesses
from tracedamon.engine.damos.quota import effective_quota, feed_loop_next_input
from tracedamon.engine.damos.score import hot_score, region_score
from tracedamon.engine.damos.state import SchemeState
from tracedamon.engine.damos.scheme import PROFILES
from tracedamon.errors import ConfigError

MiB = 1 << 20
B = 0x100000000
CORPUS_SCHEME = Scheme(
    "pageout",
    AccessPattern(0, 2**64 - 1, 0, 1, 12, 2**32 - 1),
    Quota(ms=50, sz=134217728, reset_interval_ms=1000, weight_age=1000),
    filters=(Filter("anon", True, False), Filter("unmapped", True, True)),
)
CORPUS_CTX = Context("paddr", sample_us=500_000, aggr_us=5_000_000)

# §9.1: (offset MiB start, end, nr_accesses, age)
EXAMPLE = [
    (0, 24, 0, 8),
    (24, 56, 0, 60),
    (56, 76, 2, 90),
    (76, 116, 0, 30),
    (116, 130, 1, 200),
    (130, 178, 0, 13),
    (178, 214, 0, 45),
    (214, 250, 0, 70),
    (250, 286, 0, 31),
    (286, 300, 0, 120),
]


def regions(rows, base=0, unit=1, targets=None):
    start = np.array([base + a * unit for a, *_ in rows], np.int64)
    end = np.array([base + b * unit for _, b, *_ in rows], np.int64)
    nr = np.array([r[2] for r in rows], np.int64)
    age = np.array([r[3] for r in rows], np.int64)
    toff = np.array(targets if targets is not None else [0, len(rows)], np.int64)
    return {"start": start, "end": end, "nr": nr, "age": age, "toff": toff}


def trace(res):
    a = res.applications
    return [
        (
            int(a["nr_regions"][i]),
            int(a["start"][i]),
            int(a["end"][i]),
            int(a["nr_accesses"][i]),
            int(a["age"][i]),
        )
        for i in range(res.n_applications)
    ]


# -------------------------------------------------------------------------------------
# worked example (damos-spec §9.1, §9.2)
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["released", "released-nofix"])
def test_worked_example_application_1(kernel):
    st = new_state([CORPUS_SCHEME], CORPUS_CTX, kernel)
    res = apply_schemes(st, regions(EXAMPLE, B, MiB), sis=10, now_ns=10**10)
    assert res.esz == [134217728] and res.min_score == [63]
    assert trace(res) == [
        (10, 4320133120, 4353687552, 0, 60),
        (10, 4374659072, 4416602112, 0, 30),
        (10, 4481613824, 4519362560, 0, 45),
        (11, 4519362560, 4540334080, 0, 70),
    ]
    s = st.states[0]
    assert (s.nr_tried, s.sz_tried, s.charged_sz) == (4, 128 * MiB, 128 * MiB)
    assert s.charge_target_from == 0
    assert s.charge_addr_from == 4540334080 + (kernel == "released-nofix")
    # Bk, D, G, H1 now age 0; H2 (the quota split's right part) keeps age 70
    got = [
        (int(a - B) // MiB, int(b - B) // MiB, int(g))
        for a, b, g in zip(res.regions["start"], res.regions["end"], res.regions["age"])
    ]
    assert got == [
        (0, 24, 8),
        (24, 56, 0),
        (56, 76, 90),
        (76, 116, 0),
        (116, 130, 200),
        (130, 178, 13),
        (178, 214, 0),
        (214, 234, 0),
        (234, 250, 70),
        (250, 286, 31),
        (286, 300, 120),
    ]


def _application_2(kernel):
    st = new_state([CORPUS_SCHEME], CORPUS_CTX, kernel)
    r1 = apply_schemes(st, regions(EXAMPLE, B, MiB), sis=10, now_ns=10**10)
    regs = dict(r1.regions)
    regs["age"] = regs["age"] + 1  # next aggregation, boundaries unchanged
    r2 = apply_schemes(st, regs, sis=20, now_ns=15 * 10**9)
    return st, r2


def test_worked_example_application_2_fixed():
    st, r2 = _application_2("released")
    assert r2.windows == [True] and st.states[0].qt_exceeds == 1
    assert st.states[0].total_charged_sz == 128 * MiB
    assert r2.min_score == [35]
    assert trace(r2) == [
        (11, 4540334080, 4557111296, 0, 71),
        (11, 4557111296, 4594860032, 0, 32),
        (11, 4594860032, 4609540096, 0, 121),
    ]
    # 66 MiB < 128 MiB: no resume point is kept, the next window starts from 0
    assert st.states[0].charged_sz == 66 * MiB
    assert st.states[0].charge_target_from == -1


def test_worked_example_application_2_as_released():
    # `+ 1`: H2 starts exactly at the old end and loses its first page to a split
    st, r2 = _application_2("released-nofix")
    assert trace(r2)[0] == (12, 4540338176, 4557111296, 0, 71)
    assert [t[0] for t in trace(r2)] == [12, 12, 12]


def test_second_window_qt_exceeds_counts_only_at_the_next_window():
    st = new_state([CORPUS_SCHEME], CORPUS_CTX)
    apply_schemes(st, regions(EXAMPLE, B, MiB), sis=10, now_ns=10**10)
    assert st.states[0].qt_exceeds == 0  # lags one window (§3.2)


def test_window_not_reopened_within_reset_interval():
    s = CORPUS_SCHEME.replace(quota=Quota(sz=32 * MiB, reset_interval_ms=10_000, weight_age=1))
    st = new_state([s], CORPUS_CTX)
    r1 = apply_schemes(st, regions(EXAMPLE, B, MiB), sis=10, now_ns=10**10)
    assert trace(r1) == [(10, B + 24 * MiB, B + 56 * MiB, 0, 60)]  # exactly 32 MiB
    regs = dict(r1.regions)
    regs["age"] = regs["age"] + 1
    r2 = apply_schemes(st, regs, sis=20, now_ns=15 * 10**9)  # 5 s < 10 s
    assert r2.windows == [False] and r2.n_applications == 0  # quota still full
    r3 = apply_schemes(st, regs, sis=30, now_ns=21 * 10**9)  # 11 s later
    assert r3.windows == [True] and st.states[0].qt_exceeds == 1


# -------------------------------------------------------------------------------------
# scores (ops-common.c; the spec's table for weights (0, 0, w), aggr 5 s, max_nr 10)
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "age,cold0,cold1",
    [
        (0, 50, 50),
        (1, 55, 46),
        (12, 60, 41),
        (13, 61, 40),
        (25, 61, 40),
        (26, 63, 38),
        (51, 63, 38),
        (52, 65, 36),
        (102, 65, 36),
        (103, 66, 35),
        (204, 66, 35),
        (205, 68, 33),
        (409, 68, 33),
    ],
)
def test_cold_score_table(age, cold0, cold1):
    for w in (1, 1000):
        assert region_score(1, 0, age, 10, 5_000_000, 0, w) == cold0
        for nr in (1, 5, 10):
            assert region_score(1, nr, age, 10, 5_000_000, 0, w) == cold1


def test_hot_score_is_cold_complement_and_weight_sz_ignored():
    for nr in range(11):
        for age in (0, 3, 40, 900):
            h = hot_score(nr, age, 10, 5_000_000, 3, 7)
            assert region_score(2, nr, age, 10, 5_000_000, 3, 7) == h
            assert region_score(1, nr, age, 10, 5_000_000, 3, 7) == 99 - h
            assert region_score(0, nr, age, 10, 5_000_000, 3, 7) == 99


def test_hot_score_frequency_only():
    # weights (0, 1, 0): hotness = freq_subscore * 99 / 100
    assert [hot_score(n, 50, 20, 100_000, 1, 0) for n in (0, 1, 10, 20)] == [0, 4, 49, 99]
    # nr_accesses > 0 but freq_subscore 0 (nr * 100 < max_nr): the age term turns negative
    assert hot_score(1, 1000, 200, 100_000, 0, 1) == hot_score(0, 1000, 200, 100_000, 0, 1)


# -------------------------------------------------------------------------------------
# quota (damos_set_effective_quota, the goal feed loop)
# -------------------------------------------------------------------------------------
def test_effective_quota_time_and_size():
    st = SchemeState()
    prof = PROFILES["released"]
    assert effective_quota(CORPUS_SCHEME, st, CORPUS_CTX, prof) == 128 * MiB
    # 8 ms measured for 128 MiB: 16 MiB/ms -> 50 ms allows 800 MiB, the size quota binds
    st.total_charged_sz, st.total_charged_ns = 128 * MiB, 8_000_000
    s = CORPUS_SCHEME.replace(quota=Quota(ms=50))
    assert effective_quota(s, st, CORPUS_CTX, prof) == 838_860_800
    assert effective_quota(CORPUS_SCHEME, st, CORPUS_CTX, prof) == 128 * MiB
    # measured slower than 4 MiB/ms: the time quota binds
    st.total_charged_ns = 1_000_000_000  # 1 s for 128 MiB
    assert effective_quota(CORPUS_SCHEME, st, CORPUS_CTX, prof) == 134217 * 50
    # no time, no goals: exactly the size quota
    assert effective_quota(CORPUS_SCHEME.replace(quota=Quota(sz=7)), st, CORPUS_CTX, prof) == 7


def test_feed_loop_kunit():
    # damon_test_feed_loop_next_input
    last = 900000
    assert feed_loop_next_input(last, 200) > last
    assert feed_loop_next_input(last, 250000000) < last
    assert feed_loop_next_input(last, 200) > feed_loop_next_input(last, 2000)
    # exact arithmetic of the spec: at the goal unchanged; >= 2x the goal: minimum
    assert feed_loop_next_input(last, 10000) == last
    assert feed_loop_next_input(last, 20000) == 10000
    assert feed_loop_next_input(10000, 0) == 20000  # at most doubles


def test_goal_quota_starts_at_one_byte_and_grows():
    s = Scheme(
        "pageout", quota=Quota(goals=(QuotaGoal("user_input", 10000, 0),), reset_interval_ms=0)
    )
    st = SchemeState()
    prof = PROFILES["released"]
    sizes = [effective_quota(s, st, CORPUS_CTX, prof) for _ in range(4)]
    assert sizes == [2, 4, 8, 16]
    with pytest.raises(ConfigError, match="live memory state"):
        effective_quota(
            Scheme("pageout", quota=Quota(goals=(QuotaGoal("some_mem_psi_us", 1000),))),
            SchemeState(),
            CORPUS_CTX,
            prof,
        )


# -------------------------------------------------------------------------------------
# filters: damon_test_set_filters_default_reject, damos_test_filter_out
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filters,core,ops",
    [
        ((), False, False),
        ((Filter("target", True, True),), True, False),
        ((Filter("target", True, False),), False, False),
        ((Filter("target", True, False), Filter("anon", True, True)), False, True),
        ((Filter("target", True, True), Filter("anon", True, True)), False, True),
    ],
)
def test_filters_default_reject_kunit(filters, core, ops):
    s = Scheme("pageout", filters=filters)
    assert (s.core_filters_default_reject, s.ops_filters_default_reject) == (core, ops)


@pytest.mark.parametrize(
    "region,applied,after",
    [
        ((3, 5), [(3, 5)], [(3, 5)]),  # in the range
        ((1, 2), [], [(1, 2)]),  # before the range
        ((6, 8), [], [(6, 8)]),  # after the range
        ((1, 4), [], [(1, 2), (2, 4)]),  # starts before: split, left no match
        ((2, 8), [(2, 6)], [(2, 6), (6, 8)]),  # starts inside: split, left matches
    ],
)
def test_addr_filter_kunit(region, applied, after):
    # damos_test_filter_out: addr filter [2, 6), DAMON_MIN_REGION 1; an allow filter so
    # that a match shows as an application (unmatched regions: default reject)
    ctx = Context("paddr", 1, 10, min_region=1)
    s = Scheme("stat", filters=(Filter("addr", True, True, addr_start=2, addr_end=6),))
    st = new_state([s], ctx)
    res = apply_schemes(st, regions([(region[0], region[1], 0, 0)]), sis=10, now_ns=0)
    got = [(int(a), int(b)) for a, b in zip(res.applications["start"], res.applications["end"])]
    assert got == applied
    assert [(int(a), int(b)) for a, b in zip(res.regions["start"], res.regions["end"])] == after
    assert list(res.applications["core_allowed"]) == [1] * len(applied)


def test_target_filter_and_reject():
    ctx = Context("paddr", 1, 10, min_region=1)
    rows = [(0, 4, 0, 0), (4, 8, 0, 0), (10, 12, 0, 0)]
    s = Scheme("pageout", filters=(Filter("target", True, False, target_idx=1),))
    st = new_state([s], ctx)
    res = apply_schemes(st, regions(rows, targets=[0, 2, 3]), sis=10, now_ns=0)
    assert list(res.applications["target"]) == [0, 0]  # target 1 rejected
    assert list(res.regions["age"]) == [0, 0, 0]


def test_split_copies_counters_kunit():
    # damon_test_split_at: both parts keep nr_accesses, last_nr_accesses and age
    ctx = Context("paddr", 1, 10, min_region=1)
    s = Scheme("stat", quota=Quota(sz=25, reset_interval_ms=1000))
    st = new_state([s], ctx)
    regs = regions([(0, 100, 4, 10)])
    regs["last"] = np.array([15], np.int64)
    res = apply_schemes(st, regs, sis=10, now_ns=0)
    r = res.regions
    assert (list(r["start"]), list(r["end"])) == ([0, 25], [25, 100])
    assert list(r["nr"]) == [4, 4] and list(r["last"]) == [15, 15]
    assert list(r["age"]) == [10, 10]  # stat: no age reset


# -------------------------------------------------------------------------------------
# resume point (damos_skip_charged_region) and quota split
# -------------------------------------------------------------------------------------
def test_resume_split_inside_a_region():
    ctx = Context("paddr", 1, 10, min_region=4)
    s = Scheme("pageout", quota=Quota(sz=1000))
    st = new_state([s], ctx)
    set_resume(st, 0, 0, 50)
    res = apply_schemes(
        st, regions([(0, 40, 0, 0), (40, 80, 0, 0), (80, 120, 0, 0)]), sis=10, now_ns=0
    )
    # [0,40) ends before 50: skipped; [40,80) is split at ALIGN_DOWN(10, 4) = 8
    assert trace(res) == [(4, 48, 80, 0, 0), (4, 80, 120, 0, 0)]
    assert st.states[0].charge_target_from == -1


def test_resume_point_skips_the_last_region_and_does_not_wrap():
    ctx = Context("paddr", 1, 10, min_region=4)
    s = Scheme("pageout", quota=Quota(sz=1000))
    st = new_state([s], ctx)
    set_resume(st, 0, 0, 40)
    res = apply_schemes(st, regions([(0, 40, 0, 0), (40, 80, 0, 0)]), sis=10, now_ns=0)
    assert res.n_applications == 0  # the last region is skipped
    assert st.states[0].charge_target_from == -1
    # mainline-2026 processes the last region normally when it lies past the point
    st = new_state([s], ctx, "mainline-2026")
    set_resume(st, 0, 0, 40)
    res = apply_schemes(st, regions([(0, 40, 0, 0), (40, 80, 0, 0)]), sis=10, now_ns=0)
    assert trace(res) == [(2, 40, 80, 0, 0)]


def test_quota_remainder_below_one_page_counts_a_try_without_trace():
    ctx = Context("paddr", 1, 10, min_region=4096)
    s = Scheme("pageout", quota=Quota(sz=4096 + 100))
    st = new_state([s], ctx)
    res = apply_schemes(st, regions([(0, 4096, 0, 5), (4096, 8192, 0, 5)]), sis=10, now_ns=0)
    assert trace(res) == [(2, 0, 4096, 0, 5)]
    assert st.states[0].nr_tried == 2 and st.states[0].sz_tried == 4096
    assert list(res.regions["age"]) == [0, 5]


# -------------------------------------------------------------------------------------
# apply interval, watermarks, nr_accesses
# -------------------------------------------------------------------------------------
def test_apply_interval_and_due():
    ctx = Context("paddr", 100_000, 1_000_000)
    s = Scheme("stat", apply_interval_us=3_000_000)
    st = new_state([s], ctx)
    assert st.states[0].next_apply_sis == 30
    regs = regions([(0, 4096, 0, 0)])
    assert apply_schemes(st, regs, sis=20, now_ns=0).ran == [False]
    assert apply_schemes(st, regs, sis=30, now_ns=0).ran == [True]
    assert st.states[0].next_apply_sis == 60


def test_watermarks_hysteresis():
    s = Scheme("pageout", wmarks=Watermarks("free_mem_rate", 5_000_000, 500, 400, 200))
    st = new_state([s], CORPUS_CTX)
    seq = [(450, True), (600, False), (450, False), (300, True), (450, True), (100, False)]
    for metric, active in seq:
        wait = update_watermarks(st, metric)
        assert st.states[0].activated is active, metric
        assert wait == (0 if active else 5_000_000)
    with pytest.raises(ConfigError, match="free_mem_rate"):
        update_watermarks(st, None)
    # metric none: always active
    st2 = new_state([Scheme("pageout")], CORPUS_CTX)
    assert update_watermarks(st2, None) == 0 and st2.states[0].activated


def test_inactive_scheme_does_not_advance_next_apply():
    s = Scheme("pageout", wmarks=Watermarks("free_mem_rate", 1000, 500, 400, 200))
    st = new_state([s], CORPUS_CTX)
    update_watermarks(st, 900)
    res = apply_schemes(st, regions([(0, 4096, 0, 0)]), sis=10, now_ns=0)
    assert res.ran == [False] and st.states[0].next_apply_sis == 10


def test_nr_accesses_mvsum_kunit():
    # damon_test_nr_accesses_mvsum (sample 1, aggr 10): passed, next_aggr, nr, last, expect
    prof = PROFILES["mainline-2026"]
    for passed, nxt, nr, last, expect in [
        (0, 10, 5, 3, 3),
        (0, 10, 0, 7, 7),
        (5, 10, 3, 10, 8),
        (8, 10, 3, 10, 5),
        (10, 10, 42, 49, 42),
    ]:
        left_bp = (nxt - passed) * 10000 // 10
        got = pattern_nr_accesses(np.array([nr]), None, np.array([last]), prof, left_bp)
        assert int(got[0]) == expect
    # released kernels read nr_accesses_bp / 10000
    got = pattern_nr_accesses(np.array([3]), np.array([29999]), np.array([0]), PROFILES["released"])
    assert int(got[0]) == 2


# -------------------------------------------------------------------------------------
# validation (the kernel's own rules)
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Scheme("reclaim"), "unknown action"),
        (lambda: Scheme("pageout", AccessPattern(max_nr_accesses=2**32)), "unsigned int"),
        (lambda: Scheme("pageout", AccessPattern(min_age_region=-1)), "negative"),
        (lambda: Scheme("pageout", AccessPattern(max_sz_region=2**64)), "unsigned long"),
        (lambda: Scheme("pageout", quota=Quota(weight_age=2**32)), "unsigned int"),
        (lambda: Scheme("pageout", filters=(Filter("swapped"),)), "unknown filter type"),
        (
            lambda: Scheme("pageout", filters=(Filter("addr", addr_start=10, addr_end=5),)),
            "lies before",
        ),
        (lambda: Scheme("pageout", wmarks=Watermarks("active_mem_bp")), "unknown watermark"),
        (
            lambda: Scheme("pageout", quota=Quota(goals=(QuotaGoal("user_input", 0),))),
            "must not be 0",
        ),
        (
            lambda: Scheme("pageout", quota=Quota(goals=(QuotaGoal("free_pages", 1),))),
            "unknown quota goal",
        ),
        (lambda: Context("paddr", 100, 1000, min_region=3000), "power of two"),
        (lambda: Context("kvm", 100, 1000), "operations set"),
    ],
)
def test_validation(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
