"""Heatmap address selection: summed heat, not mere coverage, decides what is drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from tracedamon.export.grid import heat_ranges, load_history
from tracedamon.export.heatmap import region_heatmap

TIB = 1 << 40
HOT = (0x200000000000, 0x200000020000)


def _history(rows):
    df = pd.DataFrame(rows, columns=["snapshot", "start", "end", "nr_accesses"])
    df["time_ns"] = (df["snapshot"] + 1) * 100_000_000
    df["run"] = 0
    df["target"] = 0
    df["age"] = 0
    return df


def _vaddr_like(n_snap=20):
    """One huge region accessed once in the first snapshot, a small area hot throughout."""
    rows = [(0, 0x100000000000, HOT[0], 1), (0, HOT[0], HOT[1], 10), (0, HOT[1], HOT[1] + TIB, 0)]
    for s in range(1, n_snap):
        rows += [
            (s, 0x100000000000, HOT[0], 0),
            (s, HOT[0], HOT[1], 10),
            (s, HOT[1], HOT[1] + TIB, 0),
        ]
    return _history(rows)


def test_hot_area_is_selected_not_the_once_touched_terabyte():
    got = heat_ranges(load_history(_vaddr_like()))
    assert got.tolist() == [[HOT[0], HOT[1]]]


def test_heatmap_axis_zooms_on_hot_area():
    hm = region_heatmap(_vaddr_like(), time_bins=20, addr_bins=64)
    assert int(hm.bin_start[0]) >= HOT[0] - (1 << 20)
    assert int(hm.bin_end[-1]) <= HOT[1] + (1 << 20)
    # the hot area is hot in every time row of the matrix
    assert (np.nanmax(hm.matrix, axis=1) >= 9.9).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 63), st.integers(1, 8), st.integers(0, 20)),
        min_size=1,
        max_size=30,
    )
)
def test_heat_ranges_equal_per_page_sum(regs):
    """Against a slow per-page sum: a page is kept iff its summed heat >= 2 % of the max."""
    rows, seen = [], set()
    for snap, pg, npg, nr in regs:
        # keep each snapshot's regions disjoint, as a region history requires
        pages = set(range(pg, pg + npg))
        if any((snap, p) in seen for p in pages):
            continue
        seen |= {(snap, p) for p in pages}
        rows.append((snap, pg * 4096, (pg + npg) * 4096, nr))
    df = _history(sorted(rows))
    heat = np.zeros(80)
    for _, s, e, nr in rows:
        heat[s // 4096 : e // 4096] += nr
    got = heat_ranges(load_history(df))
    keep = np.zeros(80, bool)
    for s, e in got.tolist():
        keep[s // 4096 : e // 4096] = True
    if heat.max() == 0:
        assert len(got) == 0
    else:
        assert (keep == (heat >= 0.02 * heat.max()) & (heat > 0)).all()
