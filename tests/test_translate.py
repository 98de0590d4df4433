"""Translator against a slow, obviously correct per-page reference (hypothesis-driven)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from tracedamon.engine.translate import (
    POLICIES,
    Translator,
    merge_intervals,
    nearest_index,
    snapshot_index,
)
from tracedamon.errors import InputError
from tracedamon.schema import PAGEMAP, PAGEMAP_FLAG_PRESENT, PAGEMAP_FLAG_THP

PS = 4096


def table(rows):
    """rows: (snapshot, time, pid, vstart, vend, pfn|None, flags) → Arrow pagemap table."""
    cols = list(zip(*rows)) if rows else [[]] * 7
    return pa.table(
        {n: pa.array(list(c), PAGEMAP.field(n).type) for n, c in zip(PAGEMAP.names, cols)},
        schema=PAGEMAP,
    )


# ---- the slow reference -------------------------------------------------------------


def ref_nearest(times, t, policy="nearest"):
    """The (time, id) answering t: nearest (ties to the earlier), or the latest at or
    before t (else the first), or the earliest at or after t (else the last)."""
    times = sorted(times)
    if policy == "before":
        ok = [x for x in times if x[0] <= t]
        if not ok:
            return times[0][1]
        return min(x for x in times if x[0] == ok[-1][0])[1]
    if policy == "after":
        ok = [x for x in times if x[0] >= t]
        return (ok[0] if ok else min(x for x in times if x[0] == times[-1][0]))[1]
    best = None
    for tm, sid in times:
        d = abs(tm - t)
        if best is None or d < best[0]:
            best = (d, sid)
    return best[1]


def ref_model(rows):
    snap_time = {}
    pid_snaps = {}
    page = {}  # (snap, pid, vpage) -> pfn
    owners = {}  # (snap, pfn) -> [(pid, vaddr)]
    for s, t, pid, vs, ve, pfn, fl in rows:
        snap_time[s] = min(snap_time.get(s, t), t)
        pid_snaps.setdefault(pid, set()).add(s)
        if pfn and fl & PAGEMAP_FLAG_PRESENT:
            for i, va in enumerate(range(vs, ve, PS)):
                page[(s, pid, va // PS)] = pfn + i
                owners.setdefault((s, pfn + i), []).append((pid, va))
    return snap_time, pid_snaps, page, owners


def ref_virt(model, pid, va, t, policy="nearest"):
    snap_time, pid_snaps, page, _ = model
    if pid not in pid_snaps:
        return 0
    s = ref_nearest([(snap_time[x], x) for x in pid_snaps[pid]], t, policy)
    f = page.get((s, pid, va // PS))
    return 0 if f is None else f * PS + va % PS


def ref_phys(model, pa_, t, hint=None, policy="nearest"):
    snap_time, _, _, owners = model
    if not snap_time:
        return -1, 0
    s = ref_nearest([(tm, x) for x, tm in snap_time.items()], t, policy)
    o = owners.get((s, pa_ // PS))
    if not o:
        return -1, 0
    mine = [x for x in o if x[0] == hint]
    pid, va = min(mine or o)
    return pid, va + pa_ % PS


# ---- generated pagemap tables -----------------------------------------------------------


@st.composite
def pagemaps(draw):
    nsnap = draw(st.integers(1, 3))
    # times on a 10-step grid and query times on a 5-step grid: exact ties are frequent
    times = [10 * x for x in draw(st.lists(st.integers(0, 5), min_size=nsnap, max_size=nsnap))]
    rows = []
    for s in range(nsnap):
        for pid in draw(st.sets(st.sampled_from([7, 8, 9]), min_size=2, max_size=3)):
            vp = draw(st.integers(0, 4))
            for _ in range(draw(st.integers(0, 4))):
                n = draw(st.integers(1, 4))
                present = draw(st.booleans())
                pfn = draw(st.integers(1, 10)) if present else None  # small: frames get shared
                fl = PAGEMAP_FLAG_PRESENT if present else 0
                if present and draw(st.integers(0, 4)) == 0:
                    pfn = 0  # present, frame hidden (captured without CAP_SYS_ADMIN)
                rows.append((s, times[s], pid, vp * PS, (vp + n) * PS, pfn, fl))
                vp += n + draw(st.integers(0, 2))
    return rows


@settings(max_examples=150, deadline=None)
@given(pagemaps(), st.data())
def test_against_reference(rows, data):
    policy = data.draw(st.sampled_from(POLICIES))
    tr = Translator.from_tables(table(rows), policy=policy)
    model = ref_model(rows)
    q = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from([7, 8, 9, 10]),
                st.integers(0, 40 * PS),
                st.integers(-2, 12).map(lambda x: 5 * x),
            ),
            min_size=1,
            max_size=40,
        )
    )
    pids, vas, ts = map(np.array, zip(*q))
    got = tr.virt_to_phys(pids, vas, ts)
    assert got.tolist() == [ref_virt(model, p, v, t, policy) for p, v, t in q]
    pq = data.draw(
        st.lists(
            st.tuples(st.integers(0, 16 * PS), st.integers(-2, 12).map(lambda x: 5 * x)),
            min_size=1,
            max_size=40,
        )
    )
    paddrs, pts = map(np.array, zip(*pq))
    gp, gv = tr.phys_to_virt(paddrs, pts)
    exp = [ref_phys(model, a, t, policy=policy) for a, t in pq]
    assert list(zip(gp.tolist(), gv.tolist())) == exp
    # with each query's preferred pid (a sample's own pid)
    hints = np.array(
        data.draw(st.lists(st.sampled_from([7, 8, 9, 10]), min_size=len(pq), max_size=len(pq)))
    )
    gp, gv = tr.phys_to_virt(paddrs, pts, pids=hints)
    exp = [ref_phys(model, a, t, h, policy) for (a, t), h in zip(pq, hints.tolist())]
    assert list(zip(gp.tolist(), gv.tolist())) == exp


def test_nearest_ties_go_to_the_earlier():
    times = np.array([100, 200, 300])
    got = nearest_index(times, np.array([0, 100, 149, 150, 151, 250, 299, 1000]))
    assert got.tolist() == [0, 0, 0, 0, 1, 1, 2, 2]


def test_before_and_after_policies():
    times = np.array([100, 200, 200, 300])
    q = np.array([0, 100, 150, 200, 250, 300, 400])
    assert snapshot_index(times, q, "before").tolist() == [0, 0, 0, 1, 1, 3, 3]
    assert snapshot_index(times, q, "after").tolist() == [0, 0, 1, 1, 3, 3, 3]
    with pytest.raises(InputError, match="policy"):
        Translator.from_tables(table([]), policy="latest")


def test_snapshot_without_present_pages_answers_unmapped():
    # snapshot 0 (t=0): nothing present yet; snapshot 1 (t=100): populated
    rows = [
        (0, 0, 5, 0x10000, 0x20000, None, 0),
        (1, 100, 5, 0x10000, 0x20000, 0x500, PAGEMAP_FLAG_PRESENT),
    ]
    tr = Translator.from_tables(table(rows))
    got = tr.virt_to_phys([5, 5, 5], [0x10010, 0x10010, 0x10010], [10, 50, 51])
    assert got.tolist() == [0, 0, 0x500 * PS + 0x10]


def test_huge_page_run_and_flags():
    # one PMD-mapped THP: 512 contiguous frames at a 2 MiB boundary
    rows = [(0, 0, 1, 0x200000, 0x400000, 0x40000, PAGEMAP_FLAG_PRESENT | PAGEMAP_FLAG_THP)]
    tr = Translator.from_tables(pd.DataFrame(rows, columns=PAGEMAP.names))
    va = np.array([0x200000, 0x2FFFFF, 0x3FF123])
    r = tr.virt_lookup(1, va, 0)
    assert r.paddr.tolist() == [0x40000 * PS, 0x40000 * PS + 0xFFFFF, 0x40000 * PS + 0x1FF123]
    assert (r.flags & PAGEMAP_FLAG_THP).all()
    pid, back = tr.phys_to_virt(r.paddr, 0)
    assert pid.tolist() == [1, 1, 1] and back.tolist() == va.tolist()


def test_shared_frame_lowest_pid_and_owned_frames():
    rows = [
        (0, 0, 9, 0x1000, 0x3000, 100, 1),
        (0, 0, 4, 0x8000, 0x9000, 101, 1),
        (0, 0, 4, 0x20000, 0x21000, 101, 1),
    ]  # pid 4 maps frame 101 twice
    tr = Translator.from_tables(table(rows))
    pid, va = tr.phys_to_virt([100 * PS, 101 * PS + 8], 0)
    assert pid.tolist() == [9, 4] and va.tolist() == [0x1000, 0x8008]
    tr9 = Translator.from_tables(table(rows + [(0, 0, 9, 0x5000, 0x6000, 101, 1)]))
    pid, va = tr9.phys_to_virt([101 * PS + 8] * 3, 0, pids=[9, 4, 5])
    assert pid.tolist() == [9, 4, 4] and va.tolist() == [0x2008, 0x8008, 0x8008]  # 9: lowest va
    own = tr.owned_frames(0)
    assert list(zip(own["pid"].tolist(), own["pfn_start"].tolist(), own["pfn_end"].tolist())) == [
        (4, 101, 102),
        (9, 100, 102),
    ]


def test_bad_tables():
    with pytest.raises(InputError, match="overlapping"):
        Translator.from_tables(
            table([(0, 0, 1, 0x1000, 0x3000, 5, 1), (0, 0, 1, 0x2000, 0x4000, 9, 1)])
        )
    with pytest.raises(InputError, match="no column"):
        Translator.from_tables(pd.DataFrame({"snapshot": [0]}))
    empty = Translator.from_tables(table([]))
    assert empty.virt_to_phys([1], [0x1000], [0]).tolist() == [0]
    assert empty.phys_to_virt([0x1000], [0])[0].tolist() == [-1]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(1, 10)),
        min_size=1,
        max_size=30,
    )
)
def test_merge_intervals_is_the_union(iv):
    keys = np.array([k for k, _, _ in iv])
    s = np.array([a for _, a, _ in iv], np.uint64)
    e = s + np.array([n for _, _, n in iv], np.uint64)
    k2, s2, e2 = merge_intervals(keys, s, e)
    for key in set(keys.tolist()):
        want = set()
        for k, a, n in iv:
            if k == key:
                want |= set(range(a, a + n))
        m = k2 == key
        got = set()
        for a, b in zip(s2[m].tolist(), e2[m].tolist()):
            assert not (got & set(range(a, b)))
            got |= set(range(a, b))
        assert got == want
        # maximal: no two merged intervals touch
        assert all(b < a for a, b in zip(s2[m][1:].tolist(), e2[m][:-1].tolist())) or m.sum() < 2
