"""The independent reference (``tests/engine_reference.py``) on the kernel's own cases:
the spec's worked examples (§6 merge arithmetic, §7 split), the kernel's KUnit cases
(``damon_test_merge_regions_of``, ``damon_test_set_regions``), and its
``damon_set_regions`` against the engine's on random region lists.  (The engine against the
reference: ``test_engine_reference.py``.)"""

from __future__ import annotations

from types import SimpleNamespace

from engine_reference import Reference, Region
from hypothesis import given, settings
from hypothesis import strategies as st

from tracedamon.engine.core import Target, align_up, set_regions


def bare_reference(unit=1, max_region=None, **kw):
    """A one-target reference on a plain configuration (units below a page, as in the
    kernel's KUnit cases), to call its steps directly."""
    cfg = SimpleNamespace(
        min_region=unit,
        max_region=max_region,
        seed=0,
        fix_rand32=False,
        rng_streams="single",
        aggr_us=kw.pop("aggr_us", 20000),
        sample_us=1000,
        min_nr_regions=3,
        max_nr_regions=kw.pop("max_nr", 10),
        fix_age_once=False,
        age_zero_reset=True,
        merge_escalation=True,
        min_nr_regions_mode="legacy",
    )
    return Reference(cfg, [Target(lambda t: None)], **kw)


def load(ref, rows):
    """rows of (start, end[, nr, last, age]) into the reference's target 0."""
    for r in rows:
        s, e = r[:2]
        nr, last, age = (tuple(r[2:]) + (0, 0, 0))[:3]
        ref.spaces[0].assign(s, e, Region(nr, nr * 10000, last, age))


def test_reference_spec_17b_merge_arithmetic():
    ref = bare_reference(unit=4096, aggr_us=20000)
    load(
        ref,
        [
            (0x0000, 0x2000, 5, 5, 3),
            (0x2000, 0x6000, 6, 2, 7),
            (0x6000, 0x7000, 6, 6, 1),
            (0x8000, 0x9000, 6, 6, 0),
        ],
    )
    ref._merge(15, 65536)  # threshold 15 // 10 = 1
    assert ref.regions(0) == [(0x0, 0x7000, 5, 50000, 5, 1), (0x8000, 0x9000, 6, 60000, 6, 1)]


def test_reference_kunit_merge_regions_of():
    ref = bare_reference(max_nr=1000)
    sa = [0, 100, 114, 122, 130, 156, 170, 184, 230]
    ea = [100, 112, 122, 130, 156, 170, 184, 230, 10170]
    nrs = [0, 0, 10, 10, 20, 30, 1, 2, 5]
    load(ref, [(s, e, n) for s, e, n in zip(sa, ea, nrs)])
    ref._merge_pass(9, 9999, True)
    assert [r[:2] for r in ref.regions(0)] == [
        (0, 112),
        (114, 130),
        (130, 156),
        (156, 170),
        (170, 230),
        (230, 10170),
    ]


def test_reference_spec_7_split_three_pieces():
    ref = bare_reference(unit=4096, rand_inject=[8, 0])
    load(ref, [(0, 0x10000)])
    ref.last_nr_regions = 1  # one region twice in a row: three pieces
    ref._split()
    assert [r[:2] for r in ref.regions(0)] == [(0, 0x1000), (0x1000, 0xE000), (0xE000, 0x10000)]


def ref_set_regions(old, new, unit=1, max_region=None):
    ref = bare_reference(unit=unit, max_region=max_region)
    load(ref, old)
    ref._set_regions(0, new)
    return ref.regions(0)


def test_reference_kunit_set_regions():
    def sr(old, new):
        return [r[:2] for r in ref_set_regions(old, new)]

    assert sr([], [(5, 15), (15, 25)]) == [(5, 15), (15, 25)]
    assert sr([(4, 16), (24, 32)], [(18, 23)]) == [(18, 23)]
    assert sr([(4, 16), (24, 32)], [(8, 28)]) == [(8, 16), (16, 24), (24, 28)]
    assert sr([(0, 4), (4, 17)], [(0, 15), (25, 40)]) == [(0, 4), (4, 15), (25, 40)]
    assert sr([(0, 4), (42, 52)], [(0, 15), (25, 40), (44, 50)]) == [(0, 15), (25, 40), (44, 50)]
    old = [(10, 20), (20, 30), (50, 55), (55, 57), (57, 59), (70, 80), (80, 90), (90, 100)]
    assert sr(old, [(5, 27), (45, 55), (73, 104)]) == [
        (5, 20),
        (20, 27),
        (45, 55),
        (73, 80),
        (80, 90),
        (90, 104),
    ]
    assert sr(old, [(5, 7), (30, 32), (65, 68)]) == [(5, 7), (30, 32), (65, 68)]


@st.composite
def region_lists(draw):
    unit = draw(st.sampled_from([1, 2, 4]))
    maxsz = draw(st.sampled_from([0, 0, 4 * unit, 8 * unit]))
    old, cur = [], 0
    for _ in range(draw(st.integers(0, 6))):
        cur += draw(st.integers(0, 3)) * unit
        ln = draw(st.integers(1, 12)) * unit
        old.append(
            (
                cur,
                cur + ln,
                draw(st.integers(0, 9)),
                draw(st.integers(0, 9)),
                draw(st.integers(0, 20)),
            )
        )
        cur += ln
    new, cur = [], 0
    for _ in range(draw(st.integers(1, 4))):
        a = align_up(cur, unit) + draw(st.integers(0, 12))
        b = a + draw(st.integers(1, 40))
        new.append((a, b))
        cur = align_up(b, unit)  # aligned ranges never overlap
    return unit, maxsz, old, new


@settings(max_examples=300, deadline=None)
@given(region_lists())
def test_set_regions_equals_reference(case):
    """damon_set_regions, the engine's list version against the reference's unit-map one."""
    unit, maxsz, old, new = case
    rows = [[s, e, nr, nr * 10000, last, age] for s, e, nr, last, age in old]
    got = [tuple(r) for r in set_regions(rows, new, unit, maxsz)]
    assert got == ref_set_regions(old, new, unit, maxsz or None)
