"""The exact overlay of two region histories, and weighted statistics over it.

A region history says, for every byte ``x`` and every instant ``t`` inside one of
its snapshot windows ``[t0, t1)``, what the monitor reported for ``x``: the
``nr_accesses`` and ``age`` of the region holding ``x`` in that snapshot.

Time pairing. Two histories A and B of one address space each are put side by side
by pairing every snapshot of A with every snapshot of B whose window overlaps it
(after B's times are shifted by the offset applied to B): the pair counts for the
overlap ``[max(t0_a, t0_b), min(t1_a, t1_b))`` (further cut to the compared time
range). Different intervals, clocks that tick at different instants, lost
snapshots: nothing is rounded to a common grid; time where either side has no
window is simply not compared.

Address pairing. Within a pair, the union of both snapshots' region boundaries cuts
the address space into elementary intervals; those inside a region of A *and* a
region of B form the pair's *pieces*, each with A's and B's nr_accesses and age and
a weight ``bytes × overlap ns``. A sweep over the sorted boundaries: O(regions) per
pair (after the sort).

Every metric of :func:`tracedamon.export.compare.compare` is a weighted statistic
over the pieces, accumulated as a joint distribution of value pairs (nr_accesses
are small integers, so the distribution has few distinct pairs whatever the input's
size), so none depends on a grid.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
from numba import njit

#: hot-set thresholds θ (hot: at least θ × the largest nr_accesses)
DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75)


# ----------------------------------------------------------------------------------
# grouped sums and joint distributions
# ----------------------------------------------------------------------------------
def group_sum(keys: Sequence[np.ndarray], weights: Sequence[np.ndarray]):
    """Distinct key tuples (sorted) and the sums of each weight array over them.

    ``keys``: arrays of equal length (no NaN); returns (list of key arrays, list of
    summed weight arrays)."""
    n = len(keys[0])
    if n == 0:
        return [np.asarray(k)[:0] for k in keys], [np.zeros(0) for _ in weights]
    o = np.lexsort(tuple(keys[::-1]))
    ks = [np.asarray(k)[o] for k in keys]
    ch = np.zeros(n, bool)
    ch[0] = True
    for k in ks:
        ch[1:] |= k[1:] != k[:-1]
    idx = np.flatnonzero(ch)
    return [k[idx] for k in ks], [
        np.add.reduceat(np.asarray(w, np.float64)[o], idx) for w in weights
    ]


class Joint:
    """A weighted joint distribution of value tuples, accumulated in parts and reduced
    when it grows (memory stays proportional to the distinct tuples)."""

    def __init__(self, nkeys: int, compact_at: int = 1 << 21):
        self.nkeys = nkeys
        self.parts: list[tuple[list[np.ndarray], np.ndarray]] = []
        self.size = 0
        self.compact_at = compact_at

    def add(self, keys: Sequence[np.ndarray], w: np.ndarray) -> None:
        if len(w) == 0:
            return
        self.parts.append(([np.asarray(k) for k in keys], np.asarray(w, np.float64)))
        self.size += len(w)
        if self.size > self.compact_at:
            self._compact()
            # when the distinct tuples alone are many, compact less often
            self.compact_at = max(self.compact_at, 2 * self.size)

    def _compact(self) -> None:
        if len(self.parts) <= 1:
            return
        keys = [np.concatenate([p[0][i] for p in self.parts]) for i in range(self.nkeys)]
        w = np.concatenate([p[1] for p in self.parts])
        ks, (ws,) = group_sum(keys, [w])
        self.parts = [(ks, ws)]
        self.size = len(ws)

    def result(self) -> tuple[list[np.ndarray], np.ndarray]:
        """(distinct key arrays, their total weights), tuples of weight 0 left out."""
        if not self.parts:
            return [np.zeros(0) for _ in range(self.nkeys)], np.zeros(0)
        keys = [np.concatenate([p[0][i] for p in self.parts]) for i in range(self.nkeys)]
        w = np.concatenate([p[1] for p in self.parts])
        ks, (ws,) = group_sum(keys, [w])
        self.parts = [(ks, ws)]
        self.size = len(ws)
        keep = ws > 0
        return [k[keep] for k in ks], ws[keep]


# ----------------------------------------------------------------------------------
# weighted statistics
# ----------------------------------------------------------------------------------
def clean(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if (math.isnan(x) or math.isinf(x)) else x


def wpearson(x, y, w=None) -> float:
    """Weighted Pearson correlation (NaN when either side is constant)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    if len(x) < 2 or w.sum() <= 0:
        return float("nan")
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    dx, dy = x - mx, y - my
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    # relative tolerance: a side that is constant up to rounding has no correlation
    if vx <= 1e-24 * max(1.0, mx * mx) or vy <= 1e-24 * max(1.0, my * my):
        return float("nan")
    return float(np.clip((w * dx * dy).sum() / math.sqrt(vx * vy), -1.0, 1.0))


def wrank(x, w=None) -> np.ndarray:
    """Weighted mid-ranks: the weight below each value plus half the weight of its ties."""
    x = np.asarray(x, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    o = np.argsort(x, kind="mergesort")
    xs, ws = x[o], w[o]
    new = np.ones(len(xs), bool)
    new[1:] = xs[1:] != xs[:-1]
    gid = np.cumsum(new) - 1
    gw = np.bincount(gid, weights=ws)
    below = np.concatenate([[0.0], np.cumsum(gw)[:-1]])
    r = np.empty(len(x))
    r[o] = (below + gw / 2.0)[gid]
    return r


def wspearman(x, y, w=None) -> float:
    """Weighted Spearman correlation: the weighted Pearson of weighted mid-ranks."""
    return wpearson(wrank(x, w), wrank(y, w), w)


def wmedian(x, w) -> float:
    """The weighted median: the smallest value with at least half the weight at or
    below it."""
    x = np.asarray(x, float)
    w = np.asarray(w, float)
    if len(x) == 0 or w.sum() <= 0:
        return float("nan")
    o = np.argsort(x, kind="mergesort")
    c = np.cumsum(w[o])
    return float(x[o][np.searchsorted(c, 0.5 * c[-1], side="left")])


def prf(pred: np.ndarray, ref: np.ndarray, w: np.ndarray) -> dict:
    """Weighted precision, recall and F1 of a predicted set against a reference set."""
    tp = float(w[pred & ref].sum())
    pp = float(w[pred].sum())
    rp = float(w[ref].sum())
    p = tp / pp if pp > 0 else float("nan")
    r = tp / rp if rp > 0 else float("nan")
    if pp > 0 and rp > 0:
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    else:
        f = float("nan")
    tot = float(w.sum())
    return {
        "precision": clean(p),
        "recall": clean(r),
        "f1": clean(f),
        "ref_fraction": clean(rp / tot) if tot > 0 else None,
        "pred_fraction": clean(pp / tot) if tot > 0 else None,
    }


#: relative tolerance of the hot threshold θ × max, so that e.g. 0.3 × 10 admits 3
HOT_RTOL = 1e-9


def hot_set(v: np.ndarray, theta: float, vmax: float | None = None) -> np.ndarray:
    """Values that are > 0 and at least ``theta`` × ``vmax`` (default: the largest of
    ``v``), the boundary included."""
    v = np.asarray(v, float)
    if len(v) == 0:
        return np.zeros(0, bool)
    if vmax is None:
        fin = v[np.isfinite(v)]
        vmax = float(fin.max()) if len(fin) else 0.0
    if vmax <= 0:
        return np.zeros(len(v), bool)
    return (v > 0) & (v >= theta * vmax * (1 - HOT_RTOL))


# ----------------------------------------------------------------------------------
# the overlay
# ----------------------------------------------------------------------------------
def overlay_regions(a_st, a_en, b_st, b_en, cuts=None):
    """Elementary intervals covered by a region of both sides (each side's regions
    sorted and disjoint), cut at the bounds of the sorted, disjoint ranges ``cuts``
    ((n, 2) array, may be None): (left, right, index of A's region, index of B's
    region, inside a ``cuts`` range). One merge-like pass (no sort)."""
    c = np.zeros((0, 2), np.uint64) if cuts is None else np.asarray(cuts, np.uint64)
    return _overlay(
        np.asarray(a_st, np.uint64),
        np.asarray(a_en, np.uint64),
        np.asarray(b_st, np.uint64),
        np.asarray(b_en, np.uint64),
        np.ascontiguousarray(c[:, 0]),
        np.ascontiguousarray(c[:, 1]),
    )


@njit(cache=True)
def _overlay(a_st, a_en, b_st, b_en, c_st, c_en):
    na, nb, nc = len(a_st), len(b_st), len(c_st)
    cap = na + nb + 2 * nc + 1
    left = np.empty(cap, np.uint64)
    right = np.empty(cap, np.uint64)
    ia = np.empty(cap, np.int64)
    ib = np.empty(cap, np.int64)
    inside = np.empty(cap, np.bool_)
    n = 0
    i = 0
    j = 0
    k = 0
    if na == 0 or nb == 0:
        return left[:0], right[:0], ia[:0], ib[:0], inside[:0]
    pos = max(a_st[0], b_st[0])
    while True:
        while i < na and a_en[i] <= pos:
            i += 1
        while j < nb and b_en[j] <= pos:
            j += 1
        if i >= na or j >= nb:
            break
        lo = max(pos, max(a_st[i], b_st[j]))
        if lo > pos:
            pos = lo
            continue
        hi = min(a_en[i], b_en[j])
        while k < nc and c_en[k] <= pos:
            k += 1
        ins = False
        if k < nc:
            if c_st[k] > pos:
                hi = min(hi, c_st[k])
            else:
                hi = min(hi, c_en[k])
                ins = True
        if n == cap:  # cannot happen: every piece ends at a boundary
            break
        left[n] = pos
        right[n] = hi
        ia[n] = i
        ib[n] = j
        inside[n] = ins
        n += 1
        pos = hi
    return left[:n], right[:n], ia[:n], ib[:n], inside[:n]


def snapshot_pairs(
    ha,
    ka,
    hb,
    kb,
    *,
    offset_b: int = 0,
    t_range: tuple[int, int] | None = None,
    on_batch=None,
    drain: bool = False,
) -> Iterator[tuple]:
    """(lo, hi, snapshot of A, snapshot of B) for every pair of snapshots of address
    spaces ``ka`` of ``ha`` and ``kb`` of ``hb`` (HistorySources, sparse ones filled)
    whose windows overlap within ``t_range``, B's windows shifted by ``offset_b``.

    Both streams advance in time order, holding one batch of each side.
    ``on_batch(side, batch)`` ("a" or "b") sees every batch read; with ``drain`` the
    batches after the last pair are read too, so that it sees them all."""
    lo_t, hi_t = t_range if t_range is not None else (-(1 << 62), 1 << 62)

    def snaps(h, k, side):
        for bt in h.iter_batches(key=k, time_ns=False):
            if on_batch is not None:
                on_batch(side, bt)
            yield from bt.snapshots()

    ita = snaps(ha, ka, "a")
    itb = snaps(hb, kb, "b")
    a = next(ita, None)
    b = next(itb, None)
    off = int(offset_b)
    while a is not None and b is not None:
        bt0, bt1 = b.t0 + off, b.t1 + off
        lo = max(a.t0, bt0, lo_t)
        hi = min(a.t1, bt1, hi_t)
        if hi > lo:
            yield lo, hi, a, b
        if a.t1 <= bt1:
            a = next(ita, None)
        else:
            b = next(itb, None)
    if drain:
        for _ in ita:
            pass
        for _ in itb:
            pass


def step_sum(t0: np.ndarray, t1: np.ndarray, values: Sequence[np.ndarray]):
    """Sum of piecewise-constant series given as intervals [t0, t1) with values:
    (edges, sums per value, active) over the elementary intervals between the
    sorted distinct ends; ``active`` marks those inside at least one interval."""
    t0 = np.asarray(t0, np.int64)
    t1 = np.asarray(t1, np.int64)
    if len(t0) == 0:
        return np.zeros(0, np.int64), [np.zeros(0) for _ in values], np.zeros(0, bool)
    pts = np.concatenate([t0, t1])
    deltas = [np.concatenate([np.asarray(v, float), -np.asarray(v, float)]) for v in values]
    cnt = np.concatenate([np.ones(len(t0)), -np.ones(len(t0))])
    (u,), sums = group_sum([pts], deltas + [cnt])
    levels = [np.cumsum(s)[:-1] for s in sums]
    active = levels[-1] > 0.5
    return u, levels[:-1], active
