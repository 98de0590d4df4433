"""Fixed-granularity replay (``min_region == max_region``) that keeps untouched regions implicit.

With the RFC's ``region_sz/min == region_sz/max`` every region has exactly that
size, nothing is merged or split, and the perf-histogram check is
deterministic, so the whole history follows from the samples.  Over a large
space (16 GiB at 4 KiB = 4 M regions) most regions see no sample in most
aggregations; this engine spends work only on regions that had accesses in the
current or the previous aggregation:

* a sample interval costs its samples (one binary search each);
* an aggregation updates the ages of the *active* regions (``nr > 0`` or
  ``last > 0``); every other region has ``nr = last = 0``, so the kernel's age
  rule adds exactly 1 per aggregation, which is kept in closed form as
  ``age = age_val + (snapshot - age_at)``;
* ``nr_accesses_bp`` at snapshot time is the closed form of ``N`` moving-sum
  steps, ``last*10000 - N*(last*10000 // N) + 10000*nr``.

Its output equals :class:`tracedamon.engine.core.Monitor`'s on the same input
(tests check this), except that writing every region of every snapshot is still
O(regions) per snapshot: use ``accessed_only`` for very large region counts.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .config import MonitorConfig
from .core import AccessSamples, History, Target, fixed_grid


@njit(cache=True)
def _fixed_count(roff, run_start, run_first, run_len, size, nr, stamp, s_tgt, s_page, s_time,
                 t0, S, touched, nt):
    """Count sample intervals per region; regions are found through contiguous grid runs
    (a binary search over a target's few runs, then arithmetic), not a search over
    millions of region starts."""
    ntgt = roff.shape[0] - 1
    for i in range(s_page.shape[0]):
        t = s_tgt[i]
        if t < 0 or t >= ntgt:
            continue
        a = s_page[i]
        lo = roff[t]
        hi = roff[t + 1]
        if hi <= lo or a < run_start[lo]:
            continue
        n = hi - lo
        base = lo
        while n > 1:
            half = n >> 1
            base = base + half if run_start[base + half] <= a else base
            n -= half
        k = (a - run_start[base]) // size
        if k >= run_len[base]:
            continue
        j = run_first[base] + k
        psi = 1 + (s_time[i] - t0) // S
        if stamp[j] == psi:
            continue
        stamp[j] = psi
        if nr[j] == 0:
            touched[nt] = j
            nt += 1
        nr[j] += 1
    return nt


@njit(cache=True)
def _union_sorted(a, b):
    """Union of two sorted arrays of distinct values, sorted."""
    out = np.empty(a.shape[0] + b.shape[0], np.int64)
    i = j = k = 0
    while i < a.shape[0] and j < b.shape[0]:
        if a[i] < b[j]:
            out[k] = a[i]
            i += 1
        elif b[j] < a[i]:
            out[k] = b[j]
            j += 1
        else:
            out[k] = a[i]
            i += 1
            j += 1
        k += 1
    while i < a.shape[0]:
        out[k] = a[i]
        i += 1
        k += 1
    while j < b.shape[0]:
        out[k] = b[j]
        j += 1
        k += 1
    return out[:k]


class FixedMonitor:
    """The kdamond loop for fixed-granularity targets with a perf-histogram check."""

    def __init__(self, config: MonitorConfig, targets: list[Target]):
        if not config.fixed_granularity:
            raise ValueError("FixedMonitor needs min_region == max_region")
        if config.tuning:
            raise ValueError("FixedMonitor does not do intervals auto-tuning")
        self.cfg = config
        self.targets = targets
        self.size = int(config.max_region)

    def _grid(self, time_ns: int, old_ranges=None) -> list[np.ndarray]:
        out = []
        for i, tg in enumerate(self.targets):
            rg = tg.ranges_at(time_ns)
            if rg is None or len(rg) == 0:
                out.append(old_ranges[i] if old_ranges is not None else np.zeros(0, np.int64))
            else:
                out.append(fixed_grid([(int(s), int(e)) for s, e in rg], self.size))
        return out

    def _install(self, grids: list[np.ndarray]) -> None:
        self.grids = grids
        self.toff = np.concatenate([[0], np.cumsum([g.size for g in grids])]).astype(np.int64)
        self.start = (np.concatenate(grids) if grids else np.zeros(0, np.int64)).astype(np.int64)
        self.tgt = np.repeat(np.arange(len(grids), dtype=np.int64), np.diff(self.toff))
        n = self.start.size
        # contiguous runs of the grid, per target
        brk = np.ones(n, bool)
        if n:
            brk[1:] = (self.start[1:] != self.start[:-1] + self.size) | \
                (self.tgt[1:] != self.tgt[:-1])
        first = np.nonzero(brk)[0].astype(np.int64)
        self.run_first = first
        self.run_start = self.start[first].copy()
        self.run_len = np.diff(np.append(first, n)).astype(np.int64)
        rt = self.tgt[first]
        self.roff = np.searchsorted(rt, np.arange(len(grids) + 1), side="left").astype(np.int64)
        # per-region state in 32-bit integers (counts, ages and aggregation numbers stay far
        # below 2**31); 4 M regions cost about 100 MB
        self.nr = np.zeros(n, np.int32)
        self.last = np.zeros(n, np.int32)
        self.age_val = np.zeros(n, np.int32)
        self.age_at = np.full(n, -1, np.int32)
        self.stamp = np.full(n, -1, np.int64)
        self.touched = np.empty(n, np.int32)
        self.nt = 0
        self.prev = np.zeros(0, np.int32)

    def _regrid(self, time_ns: int, snap: int) -> None:
        """Ops update: regions that survive (same target and start) keep their state."""
        if not any(t.dynamic for t in self.targets):
            return
        grids = [g if not tg.dynamic else None for g, tg in zip(self.grids, self.targets)]
        new = self._grid(time_ns, self.grids)
        grids = [g if g is not None else n for g, n in zip(grids, new)]
        old = (self.start, self.tgt, self.nr, self.last, self.age_val, self.age_at, self.stamp,
               self.touched[:self.nt], self.prev)
        self._install(grids)
        ostart, otgt, onr, olast, oage, oat, ostamp, otouched, oprev = old
        # map old index -> new index by (target, start)
        key_old = otgt * (1 << 52) + (ostart >> 12) if ostart.size else ostart
        key_new = self.tgt * (1 << 52) + (self.start >> 12)
        pos = np.searchsorted(key_new, key_old)
        pos = np.minimum(pos, max(key_new.size - 1, 0))
        ok = (key_new.size > 0) & (key_new[pos] == key_old) if key_old.size else np.zeros(0, bool)
        src = np.nonzero(ok)[0]
        dst = pos[ok]
        # fresh regions count as new: age 0 "as of" the previous aggregation
        self.age_at[:] = snap - 1
        for a, b in ((self.nr, onr), (self.last, olast), (self.age_val, oage), (self.age_at, oat),
                     (self.stamp, ostamp)):
            a[dst] = b[src]
        idx_map = np.full(ostart.size, -1, np.int64)
        idx_map[src] = dst
        t = idx_map[otouched]
        t = t[t >= 0]
        self.touched[:t.size] = t
        self.nt = t.size
        p = idx_map[oprev]
        self.prev = np.sort(p[p >= 0]).astype(np.int32)

    def run(self, samples: AccessSamples, t0: int, t_last: int, *, accessed_only: bool = False,
            progress=None) -> History:
        cfg = self.cfg
        s = cfg.sample_us
        S = s * 1000
        N = cfg.aggr_us // s
        ln = min(N, 2**32 - 1) or 1
        psi = 0
        next_aggr = cfg.aggr_us // s
        next_ops = cfg.update_us // s
        self._install(self._grid(t0))
        times = samples.time_ns
        chunks = []
        snap = 0
        while times.size:
            la, lo_ = next_aggr, next_ops
            if t_last < t0 + (la - 1) * S:
                break
            seg_end = min(la, max(lo_, psi + 1))
            t_from, t_to = t0 + psi * S, t0 + seg_end * S
            lo, hi = np.searchsorted(times, [t_from, t_to], side="left")
            self.nt = _fixed_count(self.roff, self.run_start, self.run_first, self.run_len,
                                   self.size, self.nr, self.stamp, samples.target[lo:hi],
                                   samples.page[lo:hi], times[lo:hi], t0, S, self.touched,
                                   self.nt)
            psi = seg_end
            if progress is not None:
                progress(psi)
            if psi >= la:
                T = np.sort(self.touched[:self.nt])
                P = self.prev
                max_nr = int(self.nr[T].max()) if T.size else 0
                thres = max_nr // 10
                act = _union_sorted(T, P)
                nr_a = self.nr[act].astype(np.int64)
                last_a = self.last[act].astype(np.int64)
                age_a = self.age_val[act].astype(np.int64) + (snap - 1 - self.age_at[act])
                d = np.abs(nr_a - last_a)
                reset = d > thres
                if cfg.age_zero_reset:
                    reset |= (nr_a == 0) != (last_a == 0)
                self.age_val[act] = np.where(reset, 0, age_a + 1)
                self.age_at[act] = snap
                next_aggr = la + cfg.aggr_us // s
                t_end = t0 + psi * S
                rows = T if accessed_only else slice(None)
                st = self.start[rows]
                nr = self.nr[rows].astype(np.int64)
                last = self.last[rows].astype(np.int64)
                age = self.age_val[rows].astype(np.int64) + (snap - self.age_at[rows])
                bp = last * 10000 - N * (last * 10000 // ln) + 10000 * nr
                m = st.size
                chunks.append((np.full(m, snap, np.int64), np.full(m, t_end, np.int64),
                               self.tgt[rows].copy(), st.copy(), st + self.size, nr.copy(),
                               age, bp))
                snap += 1
                self.last[P] = 0
                self.last[T] = self.nr[T]
                self.nr[T] = 0
                self.prev = T
                self.nt = 0
            if psi >= lo_:
                next_ops = lo_ + cfg.update_us // s
                self._regrid(t0 + psi * S, snap)
        return History.from_chunks(chunks, snap, [])
