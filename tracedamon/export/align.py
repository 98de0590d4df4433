"""Time alignment of two region histories: the best lag between their clocks.

Each side's total heat (Σ nr_accesses × bytes, or the working set) inside given address
ranges is laid on a time series of bins; the lag is the shift of one series against the
other with the highest Pearson correlation (:func:`estimate_lag`). The per-snapshot sums
come from a pass of their own, or from the batches another pass reads
(:class:`LagTotals`).
"""

from __future__ import annotations

import math

import numpy as np

from .grid import time_edges
from .history import HistorySource, as_source
from .overlay import clean as _clean, wpearson


class _Within:
    """Bytes of sorted, disjoint intervals inside any [a, b) (vectorised)."""

    def __init__(self, ranges: np.ndarray):
        r = np.asarray(ranges, np.uint64).reshape(-1, 2)
        self.s, self.e = r[:, 0], r[:, 1]
        self.cum = np.concatenate([[0], np.cumsum((self.e - self.s).astype(np.float64))])

    def below(self, x) -> np.ndarray:
        x = np.asarray(x, np.uint64)
        if not len(self.s):
            return np.zeros(x.shape)
        i = np.searchsorted(self.s, x, side="right")
        ic = np.maximum(i - 1, 0)
        part = np.minimum(np.where(x > self.s[ic], x - self.s[ic], 0), self.e[ic] - self.s[ic])
        return np.where(i > 0, self.cum[ic] + part.astype(np.float64), 0.0)

    def within(self, a, b) -> np.ndarray:
        a = np.asarray(a, np.uint64)
        b = np.asarray(b, np.uint64)
        if not len(self.s):
            return np.zeros(a.shape)
        # most intervals lie inside one range or in a gap: no prefix sums needed
        n = len(self.s)
        i = np.searchsorted(self.s, a, side="right") - 1  # last range starting <= a
        ic = np.maximum(i, 0)
        in_one = (i >= 0) & (b <= self.e[ic])
        nxt = np.minimum(i + 1, n - 1)
        in_gap = ((i < 0) | (a >= self.e[ic])) & ((i + 1 >= n) | (b <= self.s[nxt]))
        out = np.where(in_one, (b - a).astype(np.float64), 0.0)
        rest = ~in_one & ~in_gap
        if rest.any():
            out[rest] = self.below(b[rest]) - self.below(a[rest])
        return out


# ----------------------------------------------------------------------------------
# time alignment
# ----------------------------------------------------------------------------------
def _spread(edges: np.ndarray, T0: np.ndarray, T1: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Σ value × overlap ns of windows [T0, T1) with each time bin of ``edges``."""
    nt = len(edges) - 1
    if nt <= 0 or len(T0) == 0:
        return np.zeros(max(nt, 0))
    i0 = np.maximum(np.searchsorted(edges, T0, side="right") - 1, 0)
    i1 = np.minimum(np.searchsorted(edges, T1, side="left"), nt)
    cnt = np.maximum(i1 - i0, 0)
    Q = int(cnt.sum())
    e = np.repeat(np.arange(len(T0)), cnt)
    ti = i0[e] + (np.arange(Q) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    ot = np.clip(np.minimum(T1[e], edges[ti + 1]) - np.maximum(T0[e], edges[ti]), 0, None)
    return np.bincount(ti, weights=vals[e] * ot.astype(np.float64), minlength=nt)


def _snapshot_totals(hs: HistorySource, key_ranges, kind: str, acc_thres: float):
    """Per snapshot: Σ value × bytes inside the key's ranges, and Σ bytes inside."""
    N = hs.n_snapshots
    tot, cov = np.zeros(N), np.zeros(N)
    for key, ranges in key_ranges:
        if len(ranges) == 0:
            continue
        w_ = _Within(ranges)
        for b in hs.iter_batches(key=key, age=False, time_ns=False):
            w = w_.within(b.start, b.end)
            v = b.nr_accesses if kind == "heat" else (b.nr_accesses >= acc_thres)
            tot += np.bincount(b.row_snap, weights=w * v, minlength=N)
            cov += np.bincount(b.row_snap, weights=w, minlength=N)
    return tot, cov


def _series(hs, tot, cov, dt: int, phase: int, offset: int):
    T0 = hs.snaps["t0"].to_numpy(np.int64) + offset
    T1 = hs.snaps["t1"].to_numpy(np.int64) + offset
    k0 = (int(T0.min()) - phase) // dt
    edges = time_edges(phase + k0 * dt, int(T1.max()), dt)
    s = _spread(edges, T0, T1, tot)
    c = _spread(edges, T0, T1, cov)
    return int(k0), s / dt, c > 0


def estimate_lag(
    a,
    b,
    key_pairs: list,
    ranges: list,
    *,
    dt_ns: float | None = None,
    max_lag_ns: float | None = None,
    kind: str = "heat",
    acc_thres: float = 1,
    offset_b: int = 0,
) -> dict:
    """Best lag (ns to add to ``b``'s times, on top of ``offset_b``) by cross-correlating
    the two sides' total-heat (``kind="heat"``) or working-set (``"wss"``) series over
    the given address ranges of each key pair, at candidate lags that are multiples of
    ``dt_ns`` (default: half the shorter aggregation interval), with at least half of
    the shorter series overlapping. Ties go to the smallest lag. Over short recordings
    a monitoring delay (one side finding a hot area later) also shows as a lag: the
    estimate is reported always but applied only with ``align="auto"``."""
    a, b = as_source(a), as_source(b)
    tot_a, cov_a = _snapshot_totals(
        a, [(k[0], r) for k, r in zip(key_pairs, ranges)], kind, acc_thres
    )
    tot_b, cov_b = _snapshot_totals(
        b, [(k[1], r) for k, r in zip(key_pairs, ranges)], kind, acc_thres
    )
    return _lag_from_totals(
        a,
        b,
        tot_a,
        cov_a,
        tot_b,
        cov_b,
        dt_ns=dt_ns,
        max_lag_ns=max_lag_ns,
        kind=kind,
        offset_b=offset_b,
    )


class LagTotals:
    """Per snapshot of each side, Σ value × bytes inside the pair's ranges (and Σ
    bytes), from batches as the sweep reads them."""

    def __init__(self, ha, hb, ranges, kind: str, acc_thres: float):
        self.h = {"a": ha, "b": hb}
        self.within = [_Within(r) for r in ranges]
        self.kind, self.acc_thres = kind, acc_thres
        self.tot = {t: np.zeros(h.n_snapshots) for t, h in self.h.items()}
        self.cov = {t: np.zeros(h.n_snapshots) for t, h in self.h.items()}

    def add(self, i: int, tag: str, bt) -> None:
        w = self.within[i].within(bt.start, bt.end)
        v = bt.nr_accesses if self.kind == "heat" else (bt.nr_accesses >= self.acc_thres)
        n = len(self.tot[tag])
        self.tot[tag] += np.bincount(bt.row_snap, weights=w * v, minlength=n)
        self.cov[tag] += np.bincount(bt.row_snap, weights=w, minlength=n)

    def estimate(self, **kw) -> dict:
        return _lag_from_totals(
            self.h["a"],
            self.h["b"],
            self.tot["a"],
            self.cov["a"],
            self.tot["b"],
            self.cov["b"],
            kind=self.kind,
            **kw,
        )


def _lag_from_totals(
    a, b, tot_a, cov_a, tot_b, cov_b, *, dt_ns=None, max_lag_ns=None, kind="heat", offset_b=0
) -> dict:
    """:func:`estimate_lag` from each side's per-snapshot totals."""
    if dt_ns is None:
        dt_ns = max(1.0, min(a.aggr_ns_est, b.aggr_ns_est) / 2.0)
    span = max(a.t_end - a.t_start, b.t_end - b.t_start)
    dt = int(max(1, round(dt_ns), math.ceil(span / 4000)))
    phase = a.t_start
    ka, sa, va = _series(a, tot_a, cov_a, dt, phase, 0)
    kb, sb, vb = _series(b, tot_b, cov_b, dt, phase, int(offset_b))
    na, nb = len(sa), len(sb)
    min_overlap = max(3, int(0.5 * min(na, nb)))
    best = None
    results = []
    # b's bin n sits at absolute index kb + n; shifted by lag k it meets a's bin kb + n + k - ka
    kmin = -(kb + nb - ka) + min_overlap
    kmax = (ka + na - kb) - min_overlap
    if max_lag_ns is not None:
        lim = int(max_lag_ns // dt)
        kmin, kmax = max(kmin, -lim), min(kmax, lim)
    for k in range(kmin, kmax + 1):
        off = kb + k - ka  # a index of b's bin 0
        lo = max(0, off)
        hi = min(na, off + nb)
        if hi - lo < min_overlap:
            continue
        xa = sa[lo:hi]
        xb = sb[lo - off : hi - off]
        m = va[lo:hi] & vb[lo - off : hi - off]
        if m.sum() < min_overlap:
            continue
        r = wpearson(xa[m], xb[m])
        if math.isnan(r):
            continue
        results.append((k, r))
        if (
            best is None
            or r > best[1] + 1e-12
            or (abs(r - best[1]) <= 1e-12 and abs(k) < abs(best[0]))
        ):
            best = (k, r)
    out = {"series": kind, "resolution_ns": dt, "candidates": len(results)}
    if best is None:
        out.update({"lag_ns": None, "correlation": None, "correlation_at_zero": None})
        return out
    at0 = dict(results).get(0)
    out.update(
        {
            "lag_ns": int(best[0] * dt),
            "correlation": _clean(best[1]),
            "correlation_at_zero": _clean(at0) if at0 is not None else None,
        }
    )
    return out
