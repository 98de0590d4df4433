"""Fixed-granularity replay (``min_region == max_region``) with sparse region state.

With the RFC's ``region_sz/min == region_sz/max`` every region has exactly that
size, nothing is merged or split, and the perf-histogram check is
deterministic, so the whole history follows from the samples.  A vaddr target's
three regions can span terabytes (tens of millions of 4 KiB regions, billions at
larger spans), so nothing here is proportional to the number of regions:

* the grid is a short list of *runs* per target -- contiguous stretches of
  regions ``[start, start + len*size)`` that were created at the same aggregation
  (``birth``); region ``j`` of the whole grid (targets in order, addresses
  ascending) is found from a sample's address by a binary search over the runs;
* only regions that ever had a sample get explicit state (a *slot*: nr_accesses,
  last_nr_accesses, age, the last counted sample interval), found through an
  open-addressing hash table keyed by ``j``; memory is O(regions ever touched +
  runs);
* every other region has ``nr = last = 0``, so the kernel's age rule adds exactly 1
  per aggregation: its age is ``snapshot - birth`` in closed form; an explicit
  slot keeps ``age = age_val + (snapshot - age_at)`` and is updated only in
  aggregations where it is *active* (``nr > 0`` or ``last > 0``);
* ``nr_accesses_bp`` at snapshot time is the closed form of ``N`` moving-sum
  steps, ``last*10000 - N*(last*10000 // N) + 10000*nr``.

A sample interval costs its samples; an aggregation costs its active regions,
plus the rows it writes.  Writing every region of every snapshot (DAMON's own
trace) costs regions x snapshots rows: :meth:`FixedMonitor.run` takes
``max_rows`` and, past it, writes only the regions with accesses
(``accessed_only``), which is exactly the full output filtered to
``nr_accesses > 0``; :attr:`FixedMonitor.auto_accessed_only` says why.  The decision is
made before the first snapshot (the grid after every ops update is known up front), so
snapshots can be handed to a sink as they are taken.

Its output equals :class:`tracedamon.engine.core.Monitor`'s on the same input
(tests check this, and against the pure-Python reference).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import MonitorConfig
from . import ops as ops_sets
from .access import AccessSamples
from .history import Coverage, HistoryArrays
from .lifetime import first_interval_from, need_stop, stop_time
from .ops.base import Operations
from .regions import Target, align_down, align_up, target_ranges

CHUNK = 1 << 20  # samples per kernel call (bounds the slot reservation)
HASH_MUL = 0x5851F42D4C957F2D


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------
@njit(cache=True)
def _slot_of(table, keys, j):
    """Slot of region ``j``, or ``-1 - p`` with ``p`` the free table position for it."""
    mask = table.shape[0] - 1
    h = j * HASH_MUL
    p = (h ^ (h >> 29)) & mask
    while True:
        s = table[p]
        if s < 0:
            return -1 - p
        if keys[s] == j:
            return s
        p = (p + 1) & mask


@njit(cache=True)
def _rehash(keys, n, cap):
    table = np.full(cap, -1, np.int64)
    for s in range(n):
        p = -1 - _slot_of(table, keys, keys[s])
        table[p] = s
    return table


@njit(cache=True)
def _fixed_count(
    roff,
    run_start,
    run_len,
    run_first,
    run_birth,
    size,
    s_tgt,
    s_addr,
    s_time,
    t0,
    S,
    table,
    keys,
    nr,
    last,
    age_val,
    age_at,
    stamp,
    touched,
    meta,
):
    """Count sample intervals per region (perf-histogram check).

    ``meta`` is ``[number of slots, number of slots touched this aggregation]``; the
    caller has reserved room for one new slot per sample.
    """
    ntgt = roff.shape[0] - 1
    n = meta[0]
    nt = meta[1]
    for i in range(s_addr.shape[0]):
        t = s_tgt[i]
        if t < 0 or t >= ntgt:
            continue
        a = s_addr[i]
        lo = roff[t]
        hi = roff[t + 1]
        if hi <= lo or a < run_start[lo]:
            continue
        m = hi - lo
        base = lo
        while m > 1:
            half = m >> 1
            base = base + half if run_start[base + half] <= a else base
            m -= half
        k = (a - run_start[base]) // size
        if k >= run_len[base]:
            continue
        j = run_first[base] + k
        s = _slot_of(table, keys, j)
        if s < 0:
            table[-1 - s] = n
            s = n
            n += 1
            keys[s] = j
            nr[s] = 0
            last[s] = 0
            age_val[s] = 0
            age_at[s] = run_birth[base]
            stamp[s] = -1
        psi = 1 + (s_time[i] - t0) // S
        if stamp[s] == psi:
            continue
        stamp[s] = psi
        if nr[s] == 0:
            touched[nt] = s
            nt += 1
        nr[s] += 1
    meta[0] = n
    meta[1] = nt


# --------------------------------------------------------------------------------------
# grids as runs
# --------------------------------------------------------------------------------------
def spans(ranges, size: int) -> list[tuple[int, int]]:
    """The ranges aligned out to ``size``, overlapping or touching ones united (the
    same grid as :func:`tracedamon.engine.core.fixed_grid`, without listing regions)."""
    out: list[list[int]] = []
    for s, e in sorted(
        (align_down(int(s), size), align_up(int(e), size))
        for s, e in np.asarray(ranges).reshape(-1, 2)
        if int(e) > int(s)
    ):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def grid_regions(targets: list[Target], time_ns: int, size: int) -> int:
    """Number of fixed-granularity regions of the targets at ``time_ns`` (arithmetic)."""
    total = 0
    for tg in targets:
        rg = target_ranges(tg, time_ns)
        if rg:
            total += sum((e - s) // size for s, e in spans(rg, size))
    return total


def expected_snapshots(config: MonitorConfig, t0: int, t_last: int) -> int:
    """Complete aggregations of the time grid (no intervals tuning)."""
    S = config.sample_us * 1000
    N = max(config.aggr_us // config.sample_us, 1)
    if t_last < t0:
        return 0
    return ((t_last - t0) // S + 1) // N


def _overlay(old: list[tuple[int, int, int]], new: list[tuple[int, int]], birth: int):
    """Runs (start, end, birth) covering ``new`` spans: parts inside old runs keep their
    birth, the rest is born at ``birth``; contiguous runs of the same birth coalesce."""
    out: list[list[int]] = []

    def add(s, e, b):
        if e <= s:
            return
        if out and out[-1][1] == s and out[-1][2] == b:
            out[-1][1] = e
        else:
            out.append([s, e, b])

    i = 0
    for S, E in new:
        cur = S
        while i < len(old) and old[i][1] <= cur:
            i += 1
        k = i
        while cur < E:
            if k < len(old) and old[k][0] < E:
                os_, oe, ob = old[k]
                if os_ > cur:
                    add(cur, os_, birth)
                    cur = os_
                e = min(oe, E)
                add(cur, e, ob)
                cur = e
                if oe <= E:
                    k += 1
                else:
                    break
            else:
                add(cur, E, birth)
                cur = E
        i = k
    return [tuple(r) for r in out]


class FixedMonitor:
    """The kdamond loop for fixed-granularity targets with a perf-histogram check."""

    access = "perf"  # what the operations set's prepare_access_checks is asked for
    SLOT_FIELDS = ("keys", "nr", "last", "age_val", "age_at", "stamp", "touched")

    def __init__(
        self, config: MonitorConfig, targets: list[Target], *, ops: str | Operations = "fvaddr"
    ):
        if not config.fixed_granularity:
            raise ValueError("FixedMonitor needs min_region == max_region")
        if config.tuning:
            raise ValueError("FixedMonitor does not do intervals auto-tuning")
        self.cfg = config
        self.targets = targets
        self.ops = ops_sets.get(ops)
        self.size = int(config.max_region)
        self.auto_accessed_only: str | None = None
        self.peak_slots = 0

    # -- the grid ------------------------------------------------------------------
    def _set_runs(self, per_target: list[list[tuple[int, int, int]]]) -> None:
        """Install runs given per target as (start, end, birth) lists."""
        self.per_target = per_target
        rows = [
            (t, s, (e - s) // self.size, b)
            for t, runs in enumerate(per_target)
            for s, e, b in runs
            if e > s
        ]
        arr = np.array(rows, np.int64).reshape(-1, 4)
        self.run_tgt = np.ascontiguousarray(arr[:, 0])
        self.run_start = np.ascontiguousarray(arr[:, 1])
        self.run_len = np.ascontiguousarray(arr[:, 2])
        self.run_birth = np.ascontiguousarray(arr[:, 3])
        self.run_first = (
            np.concatenate([[0], np.cumsum(self.run_len)[:-1]]).astype(np.int64)
            if len(rows)
            else np.zeros(0, np.int64)
        )
        self.total = int(self.run_len.sum())
        self.roff = np.searchsorted(
            self.run_tgt, np.arange(len(per_target) + 1), side="left"
        ).astype(np.int64)

    def n_regions(self) -> int:
        return self.total

    def _decode(self, j: np.ndarray):
        """(target, start) of global region indices ``j``."""
        r = np.searchsorted(self.run_first, j, side="right") - 1
        return self.run_tgt[r], self.run_start[r] + (j - self.run_first[r]) * self.size

    def _locate(self, tgt: np.ndarray, addr: np.ndarray) -> np.ndarray:
        """Global region index of (target, aligned address) pairs in the current grid, or -1."""
        out = np.full(addr.shape, -1, np.int64)
        for t in range(len(self.targets)):
            lo, hi = int(self.roff[t]), int(self.roff[t + 1])
            sel = np.nonzero(tgt == t)[0]
            if hi <= lo or sel.size == 0:
                continue
            a = addr[sel]
            r = lo + np.searchsorted(self.run_start[lo:hi], a, side="right") - 1
            ok = r >= lo
            r = np.maximum(r, lo)
            k = (a - self.run_start[r]) // self.size
            ok &= k < self.run_len[r]
            out[sel[ok]] = self.run_first[r[ok]] + k[ok]
        return out

    def _target_spans(self, i: int, time_ns: int, hook=None):
        """The grid spans of target ``i`` from the operations set's ``hook`` (init_ranges
        by default; its update at an ops update), or None."""
        rg = (hook or self.ops.init_ranges)(self.targets[i], time_ns)
        if not rg:
            return None
        return spans(rg, self.size)

    # -- slots ------------------------------------------------------------------------
    def _init_slots(self) -> None:
        cap = 64  # grows by doubling
        self.slot = {k: np.zeros(cap, np.int64) for k in self.SLOT_FIELDS}
        self.table = np.full(2 * cap, -1, np.int64)
        self.meta = np.zeros(2, np.int64)
        self.prev = np.zeros(0, np.int64)

    def _reserve(self, m: int) -> None:
        """Room for ``m`` more slots (arrays and a hash table at most half full)."""
        need = int(self.meta[0]) + m
        cap = self.slot["keys"].size
        if need > cap:
            new = max(need, 2 * cap)
            for k, v in self.slot.items():
                w = np.zeros(new, np.int64)
                w[:cap] = v
                self.slot[k] = w
        if 2 * need > self.table.size:
            size = 1 << int(2 * need - 1).bit_length()
            self.table = _rehash(self.slot["keys"], int(self.meta[0]), size)

    def _regrid(self, time_ns: int, snap: int) -> None:
        """Ops update: regions that survive (same target and start) keep their state and
        their birth; new regions are born at the previous aggregation (age 0 as of it)."""
        if self.ops.update is None:
            return
        per_target = []
        changed = False
        for i in range(len(self.targets)):
            old = self.per_target[i]
            sp = self._target_spans(i, time_ns, self.ops.update)
            if sp is None:
                per_target.append(old)
            else:
                new = _overlay(old, sp, snap - 1)
                changed |= new != old
                per_target.append(new)
        if not changed:
            return
        n = int(self.meta[0])
        keys = self.slot["keys"][:n]
        tgt, addr = self._decode(keys) if n else (keys, keys)
        self._set_runs(per_target)
        newkey = self._locate(tgt, addr) if n else keys
        keep = newkey >= 0
        idx_map = np.full(n, -1, np.int64)
        idx_map[keep] = np.arange(int(keep.sum()))
        for k in ("nr", "last", "age_val", "age_at", "stamp"):
            v = self.slot[k]
            v[: int(keep.sum())] = v[:n][keep]
        self.slot["keys"][: int(keep.sum())] = newkey[keep]
        nt = int(self.meta[1])
        t = idx_map[self.slot["touched"][:nt]]
        t = t[t >= 0]
        self.slot["touched"][: t.size] = t
        p = idx_map[self.prev]
        self.prev = p[p >= 0]
        self.meta[:] = (int(keep.sum()), t.size)
        self.table = _rehash(self.slot["keys"], int(self.meta[0]), self.table.size)

    # -- output rows ----------------------------------------------------------------------
    def _rows_all(self, snap: int, N: int, ln: int):
        """Every region of the grid, implicit values overridden by the slots."""
        total = self.total
        st = (
            np.repeat(self.run_start - self.run_first * self.size, self.run_len)
            + np.arange(total, dtype=np.int64) * self.size
        )
        tgt = np.repeat(self.run_tgt, self.run_len)
        age = np.repeat(snap - self.run_birth, self.run_len)
        nr = np.zeros(total, np.int64)
        bp = np.zeros(total, np.int64)
        n = int(self.meta[0])
        if n:
            s = self.slot
            j = s["keys"][:n]
            nr[j] = s["nr"][:n]
            age[j] = s["age_val"][:n] + (snap - s["age_at"][:n])
            last = s["last"][:n]
            bp[j] = last * 10000 - N * (last * 10000 // ln) + 10000 * s["nr"][:n]
        if self.cfg.profile.mvsum:  # mainline-2026: the moving sum at a snapshot
            bp = nr * 10000
        return tgt, st, nr, age, bp

    def _rows_slots(self, T: np.ndarray, snap: int, N: int, ln: int):
        s = self.slot
        tgt, st = self._decode(s["keys"][T])
        nr = s["nr"][T].copy()
        last = s["last"][T]
        age = s["age_val"][T] + (snap - s["age_at"][T])
        bp = last * 10000 - N * (last * 10000 // ln) + 10000 * nr
        if self.cfg.profile.mvsum:  # mainline-2026: the moving sum at a snapshot
            bp = nr * 10000
        return tgt, st, nr, age, bp

    # -- the loop ---------------------------------------------------------------------------
    def _schedule(self, t0: int, t_last: int):
        """The loop's segments: ``(psi_from, psi_to, aggregation_ends, ops_update)``, the
        same whether samples are counted (:meth:`run`) or only rows planned."""
        cfg = self.cfg
        s_ = cfg.sample_us
        S = s_ * 1000
        psi = 0
        next_aggr = cfg.aggr_us // s_
        next_ops = cfg.update_us // s_
        stop_ns = stop_time(self.ops, self.targets)
        while True:
            la, lo_ = next_aggr, next_ops
            if t_last < t0 + (la - 1) * S:
                return
            if need_stop(self.ops, self.targets, t0 + psi * S):
                return  # kdamond_need_stop: no target is valid any more
            seg_end = min(la, max(lo_, psi + 1))
            if stop_ns is not None:
                seg_end = min(seg_end, max(first_interval_from(stop_ns, t0, 0, S), psi + 1))
            yield psi, seg_end, seg_end >= la, seg_end >= lo_
            psi = seg_end
            if psi >= la:
                next_aggr = la + cfg.aggr_us // s_
            if psi >= lo_:
                next_ops = lo_ + cfg.update_us // s_

    def _planned_rows(self, t0: int, t_last: int) -> tuple[int, int, int]:
        """(rows of every region of every snapshot, snapshots, largest grid) of a replay
        from ``t0`` to ``t_last``: the grid after each ops update follows the targets'
        ranges then (:meth:`_regrid` covers exactly the new spans)."""
        size = self.size
        per = [sum((e - s) // size for s, e, _ in runs) for runs in self.per_target]
        S = self.cfg.sample_us * 1000
        rows = snaps = 0
        most = sum(per)
        for _, psi, aggr, ops in self._schedule(t0, t_last):
            if aggr:
                rows += sum(per)
                snaps += 1
            if ops:
                for i in range(len(self.targets)):
                    sp = (
                        self._target_spans(i, t0 + psi * S, self.ops.update)
                        if self.ops.update is not None
                        else None
                    )
                    if sp is not None:
                        per[i] = sum((e - s) // size for s, e in sp)
                most = max(most, sum(per))
        return rows, snaps, most

    def _coverage(self, cov: Coverage, snapshot_from: int) -> None:
        for i, runs in enumerate(self.per_target):
            merged: list[tuple[int, int]] = []
            for s, e, _ in runs:
                if merged and merged[-1][1] == s:
                    merged[-1] = (merged[-1][0], e)
                elif e > s:
                    merged.append((s, e))
            cov.note(snapshot_from, i, merged)

    def run(
        self,
        samples: AccessSamples,
        t0: int,
        t_last: int,
        *,
        accessed_only: bool = False,
        max_rows: int | None = None,
        progress=None,
        sink=None,
    ) -> HistoryArrays:
        """Replay from ``t0``; stop after the last complete aggregation (or where
        ``kdamond_need_stop`` ends the loop, as :meth:`tracedamon.engine.core.Monitor.run`
        does).

        ``max_rows``: when writing every region of every snapshot would exceed this many
        rows, write only regions with accesses, decided before the first snapshot from
        the grid at start and after every ops update (:meth:`_planned_rows`), so the
        result equals an ``accessed_only`` replay and rows can go to ``sink`` as they
        are made.  ``samples``: an :class:`AccessSamples` or a streamed source with the
        same ``empty`` / ``window`` (asked for in time order).  ``sink``: see
        :meth:`tracedamon.engine.core.Monitor.run`.
        """
        S = self.cfg.sample_us * 1000
        self._set_runs(
            [
                [(s, e, -1) for s, e in (self._target_spans(i, t0) or [])]
                for i in range(len(self.targets))
            ]
        )
        self._init_slots()
        cov = Coverage(len(self.targets))
        self._coverage(cov, 0)
        if not accessed_only and max_rows is not None and not samples.empty:
            accessed_only = self._too_many_rows(t0, t_last, max_rows)
        chunks: list[tuple] = []
        emit = sink if sink is not None else chunks.append
        snap = 0
        for psi0, psi, aggr, ops in self._schedule(t0, t_last) if not samples.empty else ():
            t_from = t0 + psi0 * S
            window = samples.window(t_from, t0 + psi * S)
            # the operations set's prepare: the samples its targets count (a virtual
            # target's none once its process's mm is gone)
            self._count(self.ops.prepare_access_checks(self, window, psi - psi0, t_from, S), t0)
            if progress is not None:
                progress(psi)
            if aggr:
                emit(self._aggregate(snap, t0 + psi * S, accessed_only))
                snap += 1
            if ops:
                self._regrid(t0 + psi * S, snap)
                self._coverage(cov, snap)
            self.peak_slots = max(self.peak_slots, int(self.meta[0]))
        return HistoryArrays.from_chunks(chunks, snap, [], cov.sorted(snap))

    def _too_many_rows(self, t0: int, t_last: int, max_rows: int) -> bool:
        """Whether every region of every snapshot would exceed ``max_rows`` rows (then
        :attr:`auto_accessed_only` says why)."""
        rows, n_snap, most = self._planned_rows(t0, t_last)
        if rows <= max_rows:
            return False
        if self.total * n_snap > max_rows:
            self.auto_accessed_only = (
                f"every region of every snapshot would be {self.total:,} regions x "
                f"{n_snap:,} snapshots = {self.total * n_snap:,} rows (more than "
                f"{max_rows:,}): only regions with accesses are written"
            )
        else:
            self.auto_accessed_only = (
                f"ops updates grow the grid to {most:,} regions: every region of "
                f"every snapshot would be {rows:,} rows (more than {max_rows:,}): "
                "only regions with accesses are written"
            )
        return True

    def _count(self, window, t0: int) -> None:
        """The perf-histogram check of a window's samples, ``CHUNK`` at a time."""
        w_time, w_tgt, w_addr = window
        S = self.cfg.sample_us * 1000
        for c in range(0, w_time.size, CHUNK):
            d = min(w_time.size, c + CHUNK)
            self._reserve(d - c)
            sl = self.slot
            _fixed_count(
                self.roff,
                self.run_start,
                self.run_len,
                self.run_first,
                self.run_birth,
                self.size,
                w_tgt[c:d],
                w_addr[c:d],
                w_time[c:d],
                t0,
                S,
                self.table,
                sl["keys"],
                sl["nr"],
                sl["last"],
                sl["age_val"],
                sl["age_at"],
                sl["stamp"],
                sl["touched"],
                self.meta,
            )

    def _aggregate(self, snap: int, t_end: int, accessed_only: bool) -> tuple:
        """The end of an aggregation: ages of the active regions, the snapshot's rows (in
        :class:`HistoryArrays` order), then the reset."""
        cfg = self.cfg
        N = cfg.aggr_us // cfg.sample_us
        ln = min(N, 2**32 - 1) or 1
        sl = self.slot
        nt = int(self.meta[1])
        T = sl["touched"][:nt].copy()
        T = T[np.argsort(sl["keys"][T], kind="stable")]
        P = self.prev
        nrT = sl["nr"][T]
        thres = (int(nrT.max()) if T.size else 0) // 10
        act = np.union1d(T, P)
        nr_a, last_a = sl["nr"][act], sl["last"][act]
        age_a = sl["age_val"][act] + (snap - 1 - sl["age_at"][act])
        reset = np.abs(nr_a - last_a) > thres
        if cfg.age_zero_reset:
            reset |= (nr_a == 0) != (last_a == 0)
        sl["age_val"][act] = np.where(reset, 0, age_a + 1)
        sl["age_at"][act] = snap
        if accessed_only:
            tgt, st, nr, age, bp = self._rows_slots(T, snap, N, ln)
        else:
            tgt, st, nr, age, bp = self._rows_all(snap, N, ln)
        m = st.size
        rows = (
            np.full(m, snap, np.int64),
            np.full(m, t_end, np.int64),
            tgt,
            st,
            st + self.size,
            nr,
            age,
            bp,
        )
        sl["last"][P] = 0
        sl["last"][T] = nrT
        sl["nr"][T] = 0
        self.prev = T
        self.meta[1] = 0
        return rows
