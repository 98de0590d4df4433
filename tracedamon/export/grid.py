"""Region histories on a time × address grid.

A *region history* is a table with the REGIONS schema (``tracedamon.schema``):
one row per DAMON region per aggregation snapshot, from ``tracedamon replay`` or
from an ingested DAMON trace. Everything in ``tracedamon.export`` reads it
through :func:`load_history` and turns it into matrices with :func:`raster`.

Time. A row's ``time_ns`` is the end of its aggregation; the snapshot covers
``[previous snapshot's time_ns, time_ns)`` within the same (run, target). The
first snapshot of a run gets the run's mean snapshot spacing (damo's estimate),
or one aggregation interval (from the source's metadata, else the median spacing
of all snapshots) when the run has one snapshot. A window is never longer than
1.5 aggregation intervals, so a lost snapshot shows as a hole instead of
stretching stale data over it.

Rasterising. :func:`raster` (:func:`raster_stream` for a streamed history)
integrates ``value × overlap bytes × overlap ns`` of every region over every cell
of a grid of time bins × address bins, in one compiled pass over the regions that
visits only the cells each region overlaps. The result is exact (area-weighted),
so e.g. the mean of an accessed-indicator over a cell times its bytes is that
cell's exact time-averaged working set.

Address bins are any sorted, disjoint ``[start, end)`` intervals: equal-size
bins over the address ranges that hold data (:func:`uniform_bins`), or the
ranges of a ground-truth file.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd
from numba import njit

from ..units import PAGE_SIZE
from .history import HistorySource, open_history
from .history import find_key as _find_key, intervals_from_meta  # noqa: F401  (kept importable here)
from .history_frame import History, HistoryFrame  # noqa: F401  (History: deprecated name)

_REQUIRED = ("snapshot", "time_ns", "start", "end", "nr_accesses")


# ----------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------
def load_history(
    src,
    *,
    name: str | None = None,
    sample_us: float | None = None,
    aggr_us: float | None = None,
    fill_sparse: bool = True,
) -> HistoryFrame:
    """Read a whole region history into memory: a trace directory, a ``.parquet`` file,
    a replay result, an Arrow table or a DataFrame with the REGIONS columns, validated,
    with its snapshot windows. A sparse history is filled (``fill_sparse``, see
    :mod:`tracedamon.export.history`). Analyses of large histories stream with
    :func:`tracedamon.export.history.open_history` instead."""
    if isinstance(src, HistoryFrame):
        return src

    hs = (
        src
        if isinstance(src, HistorySource)
        else open_history(src, name=name, sample_us=sample_us, aggr_us=aggr_us)
    )
    return hs.to_history(fill_sparse=fill_sparse)


# ----------------------------------------------------------------------------------
# address intervals
# ----------------------------------------------------------------------------------
def merge_intervals(starts, ends, *, gap: int = 0) -> np.ndarray:
    """Union of ``[start, end)`` intervals as an (n, 2) uint64 array, merging
    neighbours closer than or equal to ``gap`` bytes."""
    s = np.asarray(starts, dtype=np.uint64)
    e = np.asarray(ends, dtype=np.uint64)
    if len(s) == 0:
        return np.zeros((0, 2), np.uint64)
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    # a new segment starts where this start lies beyond the running end (+gap)
    new[1:] = s[1:] > run_end[:-1] + np.uint64(gap)
    idx = np.flatnonzero(new)
    seg_s = s[idx]
    seg_e = np.maximum.reduceat(e, idx)
    return np.stack([seg_s, seg_e], axis=1)


def intersect_intervals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted, disjoint interval lists."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(int(a[i, 0]), int(b[j, 0]))
        hi = min(int(a[i, 1]), int(b[j, 1]))
        if lo < hi:
            out.append((lo, hi))
        if int(a[i, 1]) < int(b[j, 1]):
            i += 1
        else:
            j += 1
    return np.array(out, dtype=np.uint64).reshape(-1, 2)


def coverage(h: HistoryFrame) -> np.ndarray:
    """Address ranges covered by at least one region in any snapshot."""
    return merge_intervals(h.df["start"].to_numpy(), h.df["end"].to_numpy())


def active_ranges(h: HistoryFrame, *, gap: int = 0) -> np.ndarray:
    """Address ranges of regions that were accessed (nr_accesses > 0) at least once."""
    m = h.df["nr_accesses"].to_numpy() > 0
    return merge_intervals(h.df["start"].to_numpy()[m], h.df["end"].to_numpy()[m], gap=gap)


def heat_ranges(h: HistoryFrame, *, min_fraction: float = 0.02, gap: int = 0) -> np.ndarray:
    """Address ranges whose heat summed over all snapshots is at least ``min_fraction``
    of the hottest address's.

    Per byte, the summed heat is the sum of ``nr_accesses`` of the regions covering it,
    one per snapshot. A huge region that saw one access in one aggregation (common in
    a vaddr space of terabytes before the monitor has split it) then does not pull a
    picture's address axis away from the small area that was hot all along.
    """
    df = h.df
    m = df["nr_accesses"].to_numpy() > 0
    if not m.any():
        return np.empty((0, 2), dtype=np.uint64)
    st = df["start"].to_numpy()[m].astype(np.uint64)
    en = df["end"].to_numpy()[m].astype(np.uint64)
    nr = df["nr_accesses"].to_numpy()[m].astype(np.float64)
    pts = np.concatenate([st, en])
    delta = np.concatenate([nr, -nr])
    order = np.argsort(pts, kind="stable")
    pts, delta = pts[order], delta[order]
    uniq, first = np.unique(pts, return_index=True)
    level = np.cumsum(np.add.reduceat(delta, first))  # heat on [uniq[i], uniq[i+1])
    seg_heat = level[:-1]
    keep = seg_heat >= min_fraction * seg_heat.max()
    return merge_intervals(uniq[:-1][keep], uniq[1:][keep], gap=gap)


def guide_ranges(
    held: np.ndarray,
    active: np.ndarray | None = None,
    *,
    max_fraction: float = 0.5,
    gap_fraction: float = 0.05,
    min_gap: int = 1 << 20,
) -> np.ndarray:
    """The address ranges worth drawing in a sparse space.

    ``held`` are the ranges that hold data (covered by regions, or pages with
    samples). Gaps between them are always collapsed. When ``active`` (ranges that
    saw an access) covers less than ``max_fraction`` of ``held``, the picture is
    restricted further to the active ranges, merging neighbours whose gap is
    below ``max(min_gap, gap_fraction × active bytes)`` so that nearby activity
    stays together and only big idle stretches are collapsed.
    """
    held = np.asarray(held, dtype=np.uint64).reshape(-1, 2)
    if active is None or len(active) == 0 or len(held) == 0:
        return held
    active = np.asarray(active, dtype=np.uint64).reshape(-1, 2)
    held_b = float((held[:, 1] - held[:, 0]).sum())
    act_b = float((active[:, 1] - active[:, 0]).sum())
    if held_b == 0 or act_b >= max_fraction * held_b:
        return held
    gap = int(max(min_gap, gap_fraction * act_b))
    merged = merge_intervals(active[:, 0], active[:, 1], gap=gap)
    # pad each range by a little idle context, inside what is held
    pad = np.uint64(max(PAGE_SIZE, int(0.02 * act_b)) // PAGE_SIZE * PAGE_SIZE)
    lo = np.where(merged[:, 0] > pad, merged[:, 0] - pad, np.uint64(0))
    hi = merged[:, 1] + pad
    padded = merge_intervals(lo, hi)
    return intersect_intervals(padded, held)


def uniform_bins(segments: np.ndarray, bin_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size address bins laid over each segment (the last bin of a segment
    may be shorter); returns (bin_start, bin_end) as uint64 arrays."""
    segments = np.asarray(segments, dtype=np.uint64).reshape(-1, 2)
    if len(segments) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    bb = np.uint64(max(1, int(bin_bytes)))
    lens = segments[:, 1] - segments[:, 0]
    n = ((lens + bb - np.uint64(1)) // bb).astype(np.int64)
    seg = np.repeat(np.arange(len(segments)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    bs = segments[seg, 0] + k.astype(np.uint64) * bb
    be = np.minimum(bs + bb, segments[seg, 1])
    return bs, be


def auto_bin_bytes(total_bytes: int, max_bins: int, unit: int = PAGE_SIZE) -> int:
    """The smallest ``unit × 2^k`` that lays at most ``max_bins`` bins over ``total_bytes``."""
    b = max(1, int(unit))
    while total_bytes / b > max_bins:
        b *= 2
    return b


def address_unit(*hs: HistoryFrame) -> int:
    """PAGE_SIZE when every region boundary is page aligned, else 1."""
    for h in hs:
        st = h.df["start"].to_numpy()
        en = h.df["end"].to_numpy()
        if (st % np.uint64(PAGE_SIZE)).any() or (en % np.uint64(PAGE_SIZE)).any():
            return 1
    return PAGE_SIZE


def time_edges(t_start: int, t_end: int, bin_ns: float) -> np.ndarray:
    """Edges ``t_start, t_start + bin, ...`` up to (and past) ``t_end``."""
    bin_ns = max(1, int(round(bin_ns)))
    n = max(1, int(math.ceil((t_end - t_start) / bin_ns)))
    return t_start + np.arange(n + 1, dtype=np.int64) * bin_ns


# ----------------------------------------------------------------------------------
# rasterising
# ----------------------------------------------------------------------------------
def raster(
    h: HistoryFrame,
    t_edges: np.ndarray,
    bin_start: np.ndarray,
    bin_end: np.ndarray,
    values: Iterable[np.ndarray] | np.ndarray,
    *,
    chunk_rows: int = 400_000,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Integrate per-region values over a time × address grid.

    Parameters
    ----------
    h : HistoryFrame (one address space: call ``h.for_key(k)`` first when it has several)
    t_edges : int64 array (nt + 1), ascending time bin edges in ns
    bin_start, bin_end : uint64 arrays (nb), sorted disjoint address bins
    values : one float array per quantity, aligned with ``h.df`` rows

    Returns
    -------
    sums : list of (nt, nb) float arrays, Σ value × overlap_bytes × overlap_ns
    cover : (nt, nb) float array, Σ overlap_bytes × overlap_ns (the area the regions cover)

    ``sums[k] / cover`` is the area-weighted mean of quantity k over the covered part
    of each cell.
    """
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = [values]
    values = [np.asarray(v, dtype=np.float64) for v in values]
    acc = Raster(
        t_edges,
        bin_start,
        bin_end,
        h.snaps["t0"].to_numpy(np.int64),
        h.snaps["t1"].to_numpy(np.int64),
        len(values),
    )
    snap_all = h.df["snap"].to_numpy(np.int64)
    st_all = h.df["start"].to_numpy(np.uint64)
    en_all = h.df["end"].to_numpy(np.uint64)
    n = len(snap_all)
    for c0 in range(0, n, chunk_rows):
        c1 = min(n, c0 + chunk_rows)
        acc.add(snap_all[c0:c1], st_all[c0:c1], en_all[c0:c1], [v[c0:c1] for v in values])
    return acc.result()


def raster_stream(
    hs,
    t_edges: np.ndarray,
    bin_start: np.ndarray,
    bin_end: np.ndarray,
    values,
    n_values: int,
    *,
    key=None,
    offset_ns: int = 0,
    fill_sparse: bool = True,
    chunk_rows: int = 400_000,
    age: bool = True,
) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`raster` over a :class:`tracedamon.export.history.HistorySource`, one batch
    of snapshots at a time: ``values(batch)`` returns ``n_values`` float arrays aligned
    with the batch's rows; ``key`` restricts to one address space (default: all,
    summed); ``offset_ns`` is added to every snapshot window; ``age=False`` leaves the
    age column unread."""
    off = int(offset_ns)
    acc = Raster(
        t_edges,
        bin_start,
        bin_end,
        hs.snaps["t0"].to_numpy(np.int64) + off,
        hs.snaps["t1"].to_numpy(np.int64) + off,
        n_values,
    )
    for b in hs.iter_batches(key=key, fill_sparse=fill_sparse, age=age, time_ns=False):
        vals = [np.asarray(v, np.float64) for v in values(b)]
        snap = b.row_snap
        for c0 in range(0, len(snap), chunk_rows):
            c1 = min(len(snap), c0 + chunk_rows)
            acc.add(snap[c0:c1], b.start[c0:c1], b.end[c0:c1], [v[c0:c1] for v in vals])
    return acc.result()


class Raster:
    """Accumulates Σ value × overlap bytes × overlap ns per cell (see :func:`raster`)."""

    def __init__(self, t_edges, bin_start, bin_end, T0, T1, nvalues):
        self.t_edges = np.asarray(t_edges, dtype=np.int64)
        self.bs = np.asarray(bin_start, dtype=np.uint64)
        self.be = np.asarray(bin_end, dtype=np.uint64)
        self.nt, self.nb = len(self.t_edges) - 1, len(self.bs)
        self.T0, self.T1 = np.asarray(T0, np.int64), np.asarray(T1, np.int64)
        self.sums = (
            None
            if nvalues is None
            else [np.zeros(max(self.nt, 0) * self.nb) for _ in range(nvalues)]
        )
        self.cover = np.zeros(max(self.nt, 0) * self.nb)
        if self.nt > 0:
            # time bins of every snapshot window
            self.i0 = np.maximum(np.searchsorted(self.t_edges, self.T0, side="right") - 1, 0)
            i1 = np.minimum(np.searchsorted(self.t_edges, self.T1, side="left"), self.nt)
            self.tcnt = np.maximum(i1 - self.i0, 0)

    def result(self):
        nt, nb = max(self.nt, 0), self.nb
        sums = self.sums or []
        return [s.reshape(nt, nb) for s in sums], self.cover.reshape(nt, nb)

    def add(self, snap, st, en, vals):
        if self.sums is None:
            self.sums = [np.zeros(max(self.nt, 0) * self.nb) for _ in vals]
        if self.nt <= 0 or self.nb == 0 or len(snap) == 0:
            return
        v = (
            np.stack([np.asarray(x, np.float64) for x in vals])
            if len(vals)
            else np.zeros((0, len(snap)))
        )
        sums = np.zeros((len(vals), self.nt * self.nb))
        _raster_rows(
            np.asarray(snap, np.int64),
            np.asarray(st, np.uint64),
            np.asarray(en, np.uint64),
            v,
            self.T0,
            self.T1,
            self.t_edges,
            self.bs,
            self.be,
            sums,
            self.cover,
        )
        for k in range(len(vals)):
            self.sums[k] += sums[k]


@njit(cache=True)
def _raster_rows(snap, st, en, vals, T0, T1, t_edges, bs, be, sums, cover):
    """Σ value × overlap bytes × overlap ns of each row over the cells it overlaps."""
    nt = len(t_edges) - 1
    nb = len(bs)
    nv = vals.shape[0]
    for r in range(len(snap)):
        s = snap[r]
        a = T0[s]
        b = T1[s]
        i0 = np.searchsorted(t_edges, a, side="right") - 1
        if i0 < 0:
            i0 = 0
        i1 = np.searchsorted(t_edges, b, side="left")
        if i1 > nt:
            i1 = nt
        if i1 <= i0:
            continue
        lo = st[r]
        hi = en[r]
        j0 = np.searchsorted(be, lo, side="right")
        j1 = np.searchsorted(bs, hi, side="left")
        for j in range(j0, j1):
            x0 = lo if lo > bs[j] else bs[j]
            x1 = hi if hi < be[j] else be[j]
            if x1 <= x0:
                continue
            ob = float(x1 - x0)
            for i in range(i0, i1):
                u0 = a if a > t_edges[i] else t_edges[i]
                u1 = b if b < t_edges[i + 1] else t_edges[i + 1]
                if u1 <= u0:
                    continue
                w = ob * float(u1 - u0)
                c = i * nb + j
                cover[c] += w
                for k in range(nv):
                    sums[k, c] += vals[k, r] * w


def cell_area(t_edges: np.ndarray, bin_start: np.ndarray, bin_end: np.ndarray) -> np.ndarray:
    """(nt, nb) array of cell areas in bytes × ns."""
    dt = np.diff(np.asarray(t_edges, dtype=np.int64)).astype(np.float64)
    db = (np.asarray(bin_end, dtype=np.uint64) - np.asarray(bin_start, dtype=np.uint64)).astype(
        np.float64
    )
    return dt[:, None] * db[None, :]


def mean_grid(h: HistoryFrame, t_edges, bs, be, values) -> tuple[list[np.ndarray], np.ndarray]:
    """Area-weighted means of each quantity per cell (NaN where nothing covers the
    cell) and the covered fraction of each cell."""
    sums, cover = raster(h, t_edges, bs, be, values)
    area = cell_area(t_edges, bs, be)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.where(cover > 0, s / cover, np.nan) for s in sums]
        frac = np.where(area > 0, cover / area, 0.0)
    return means, frac


def snapshot_stats(h: HistoryFrame) -> pd.DataFrame:
    """One row per snapshot: key, run, snapshot, t0, t1, nr_regions, total bytes."""
    df = h.df
    size = (df["end"].to_numpy() - df["start"].to_numpy()).astype(np.float64)
    g = pd.DataFrame({"snap": df["snap"].to_numpy(), "size": size})
    agg = g.groupby("snap").agg(nr_regions=("size", "size"), total_bytes=("size", "sum"))
    out = h.snaps.copy()
    out["nr_regions"] = agg["nr_regions"].reindex(range(len(out))).fillna(0).to_numpy(np.int64)
    out["total_bytes"] = agg["total_bytes"].reindex(range(len(out))).fillna(0).to_numpy()
    return out
