"""Virtual ↔ physical address translation through recorded pagemap snapshots.

A :class:`Translator` is built from the rows of a ``pagemap`` table (see
:data:`tracedamon.schema.PAGEMAP`): each row is a run of virtual pages
``[vaddr_start, vaddr_end)`` of one process in one snapshot, mapped to the
physically contiguous frames starting at ``pfn_start``. It does no file I/O:
give it a pandas DataFrame, an Arrow table or a dict of numpy arrays.

>>> tr = Translator.from_tables(open_trace("run.td").df("pagemap"))   # doctest: +SKIP
>>> paddrs = tr.virt_to_phys(pids, vaddrs, times)      # 0 where unmapped / unknown
>>> pids, vaddrs = tr.phys_to_virt(paddrs, times)      # -1 / 0 where no process maps it

Which snapshot answers a query at time ``t``
-------------------------------------------
The snapshot **nearest in time** to ``t``; on an exact tie, the **earlier** one.
Before the first snapshot the first answers, after the last the last answers.
Why nearest rather than "latest at or before t": a snapshot describes the
mappings over an interval around its timestamp (they change only at faults,
migrations, compaction and unmaps), and samples taken *before* the first
snapshot -- typically the whole population phase of a workload that is
snapshotted right after it starts -- would otherwise translate to nothing.
The tie goes to the earlier snapshot because a page that was mapped at ``t``
is, if anything, still mapped by the earlier state (later snapshots may show
it migrated or unmapped). This is also what DESIGN.md §4 prescribes for the
``perf-phys`` access source. ``policy="before"`` (latest at or before ``t``) and
``policy="after"`` (earliest at or after ``t``, e.g. for page-fault samples,
whose page is mapped only after the fault) are available for callers that
know better.

* :meth:`Translator.virt_to_phys` picks, per query, the nearest snapshot **that
  holds rows of that pid** (a process snapshotted on its own schedule is still
  found).
* :meth:`Translator.phys_to_virt` picks the nearest snapshot over all snapshots
  (snapshot time = the smallest ``time_ns`` of its rows).

Huge pages
----------
``/proc/PID/pagemap`` reports one entry per 4 KiB virtual page also inside a
transparent huge page or a hugetlbfs page (the sub-page's own frame), so the
runs of a huge page are simply 512 (or 262144) contiguous frames and translate
byte-exactly with no special case. The ``PAGEMAP_FLAG_THP`` / ``_HUGE`` flags
are reported by :meth:`Translator.virt_lookup` for callers that care.

Frames mapped by several processes (shared memory, page cache)
-------------------------------------------------------------
``phys_to_virt`` answers with one owner: the lowest pid, then the lowest
virtual address. :meth:`Translator.owned_frames` lists every (pid, frame
range) pair, for attribution.

Unknown frames
--------------
Rows whose ``pfn_start`` is null or 0 (not present, swapped, or captured without
CAP_SYS_ADMIN, which makes the kernel zero the PFN field) never translate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

try:  # numba is a dependency; keep the module importable without it for tooling
    from numba import njit
except ImportError:  # pragma: no cover

    def njit(*a, **k):
        return (lambda f: f) if not (a and callable(a[0])) else a[0]


from ..errors import InputError
from ..schema import PAGEMAP_FLAG_PRESENT
from ..units import PAGE_SIZE


_COLUMNS = ("snapshot", "time_ns", "pid", "vaddr_start", "vaddr_end", "pfn_start", "flags")


class VirtLookup(NamedTuple):
    """Result of :meth:`Translator.virt_lookup` (arrays aligned with the queries)."""

    paddr: np.ndarray  # uint64, 0 = unmapped / frame unknown
    flags: np.ndarray  # uint32 PAGEMAP_FLAG_* of the run (0 when not found)
    snapshot: np.ndarray  # int64 snapshot that answered (-1: the pid has no snapshot)


class PhysLookup(NamedTuple):
    """Result of :meth:`Translator.phys_lookup` (arrays aligned with the queries)."""

    pid: np.ndarray  # int32, -1 = no captured process maps the frame
    vaddr: np.ndarray  # uint64, 0 when pid is -1
    flags: np.ndarray  # uint32 PAGEMAP_FLAG_* of the owning run (0 when not found)
    snapshot: np.ndarray  # int64 snapshot that answered (-1: no snapshots at all)


def pagemap_columns(table) -> dict[str, np.ndarray]:
    """Numpy arrays of the pagemap columns of a DataFrame, Arrow table or dict."""
    out: dict[str, np.ndarray] = {}
    for name in _COLUMNS:
        try:
            col = table[name]
        except (KeyError, IndexError, TypeError):
            raise InputError(f"pagemap table has no column {name!r}") from None
        if hasattr(col, "to_numpy") and hasattr(col, "null_count"):  # Arrow
            if name == "pfn_start":
                col = col.fill_null(0)
            col = col.to_numpy(zero_copy_only=False)
        elif hasattr(col, "to_numpy"):  # pandas
            if name == "pfn_start":
                col = col.fillna(0)
            col = col.to_numpy()
        out[name] = np.asarray(col)
    return out


def nearest_index(times: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index into sorted ``times`` of the entry nearest each query (ties: the earlier).

    ``times`` must be sorted ascending and non-empty; among equal times the first
    index is returned.
    """
    times = np.asarray(times, dtype=np.int64)
    q = np.asarray(queries, dtype=np.int64)
    # q goes to entry i+1 rather than i iff q - t[i] > t[i+1] - q, i.e. q > floor((t[i] + t[i+1]) / 2)
    th = times[:-1] + (times[1:] - times[:-1]) // 2
    idx = np.searchsorted(th, q, side="left")
    if times.size > 1 and np.any(times[1:] == times[:-1]):
        idx = np.searchsorted(times, times[idx], side="left")  # first of equal times
    return idx


POLICIES = ("nearest", "before", "after")


def snapshot_index(times: np.ndarray, queries: np.ndarray, policy: str = "nearest") -> np.ndarray:
    """Index into sorted ``times`` of the snapshot answering each query time.

    ``nearest`` (ties to the earlier), ``before`` (the latest at or before; the
    first one for times before it) or ``after`` (the earliest at or after; the last
    one for times after it). Among equal times the first index is returned.
    """
    times = np.asarray(times, dtype=np.int64)
    q = np.asarray(queries, dtype=np.int64)
    if policy == "nearest":
        return nearest_index(times, q)
    if policy == "before":
        idx = np.maximum(np.searchsorted(times, q, side="right") - 1, 0)
    elif policy == "after":
        idx = np.minimum(np.searchsorted(times, q, side="left"), times.size - 1)
    else:
        raise InputError(f"unknown snapshot policy {policy!r} (choose from {', '.join(POLICIES)})")
    return np.searchsorted(times, times[idx], side="left")


@njit(cache=True)
def _paint_owners(seg_lo, seg_hi, order, nseg):  # pragma: no cover - jitted
    """Owner run of every elementary segment: the first run in ``order`` covering it."""
    owner = np.full(nseg, -1, np.int64)
    for k in range(order.size):
        r = order[k]
        for j in range(seg_lo[r], seg_hi[r]):
            if owner[j] < 0:
                owner[j] = r
    return owner


class _PhysIndex(NamedTuple):
    seg_start: np.ndarray  # pfn, uint64, sorted, disjoint segments
    seg_end: np.ndarray
    seg_run: np.ndarray  # int64 row index into the translator's run arrays


class Translator:
    """Vectorised vaddr ↔ paddr translation over pagemap snapshots (see module doc).

    Parameters
    ----------
    table
        The ``pagemap`` table: a pandas DataFrame, a pyarrow Table, or a mapping of
        column name → array, with the columns of :data:`tracedamon.schema.PAGEMAP`.
    page_size
        Bytes per page (4096 on x86-64; frames are ``paddr // page_size``).
    policy
        Which snapshot answers a query at time t: ``"nearest"`` (default, ties to
        the earlier), ``"before"`` (latest at or before t) or ``"after"``
        (earliest at or after t; e.g. for page-fault samples, whose page is only
        mapped after the sample).
    """

    def __init__(self, table, *, page_size: int = PAGE_SIZE, policy: str = "nearest"):
        if page_size <= 0 or page_size & (page_size - 1):
            raise InputError(f"page size {page_size} is not a power of two")
        if policy not in POLICIES:
            raise InputError(
                f"unknown snapshot policy {policy!r} (choose from {', '.join(POLICIES)})"
            )
        self.policy = policy
        self.page_size = int(page_size)
        c = pagemap_columns(table)
        snap = c["snapshot"].astype(np.int64)
        t = c["time_ns"].astype(np.int64)
        pid = c["pid"].astype(np.int64)
        vs = c["vaddr_start"].astype(np.uint64)
        ve = c["vaddr_end"].astype(np.uint64)
        pfn = c["pfn_start"].astype(np.uint64)
        flags = c["flags"].astype(np.uint32)
        if np.any(ve <= vs):
            raise InputError("pagemap table: a run has vaddr_end <= vaddr_start")

        # snapshot times (smallest time_ns of a snapshot's rows), sorted by time
        if snap.size:
            usnap, inv = np.unique(snap, return_inverse=True)
            stime = np.full(usnap.size, np.iinfo(np.int64).max, np.int64)
            np.minimum.at(stime, inv, t)
            o = np.lexsort((usnap, stime))
            self.snapshots = usnap[o]
            self.snapshot_times = stime[o]
        else:
            self.snapshots = np.zeros(0, np.int64)
            self.snapshot_times = np.zeros(0, np.int64)

        # translatable runs: present with a known frame
        ok = ((flags & PAGEMAP_FLAG_PRESENT) != 0) & (pfn != 0)
        order = np.lexsort((vs[ok], pid[ok], snap[ok]))
        self._snap = snap[ok][order]
        self._pid = pid[ok][order]
        self._vs = vs[ok][order]
        self._ve = ve[ok][order]
        self._pfn = pfn[ok][order]
        self._flags = flags[ok][order]
        self._npages = ((self._ve - self._vs) // np.uint64(self.page_size)).astype(np.uint64)

        # (snapshot, pid) units: every pair that has rows (translatable or not), each
        # with its contiguous slice [lo, hi) of the sorted translatable run arrays
        if snap.size:
            o = np.lexsort((pid, snap))
            ss, pp = snap[o], pid[o]
            first = np.ones(ss.size, bool)
            first[1:] = (ss[1:] != ss[:-1]) | (pp[1:] != pp[:-1])
            self._unit_snap, self._unit_pid = ss[first], pp[first]
        else:
            self._unit_snap = self._unit_pid = np.zeros(0, np.int64)
        pairs = self._unit_snap
        if self._snap.size:
            # unit code of each translatable run (pairs are sorted by (snap, pid), like runs)
            code = _pair_index(self._unit_snap, self._unit_pid, self._snap, self._pid)
            bad = np.flatnonzero((code[1:] == code[:-1]) & (self._vs[1:] < self._ve[:-1]))
            if bad.size:
                raise InputError(
                    f"pagemap table: overlapping runs in snapshot "
                    f"{self._snap[bad[0]]} of pid {self._pid[bad[0]]}"
                )
        else:
            code = np.zeros(0, np.int64)
        units = np.arange(pairs.size)
        self._unit_lo = np.searchsorted(code, units, side="left").astype(np.int64)
        self._unit_hi = np.searchsorted(code, units, side="right").astype(np.int64)
        self._unit_time = self._time_of(self._unit_snap)
        self._phys: dict[int, _PhysIndex] = {}

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_tables(
        cls, pagemap, *, page_size: int = PAGE_SIZE, policy: str = "nearest"
    ) -> "Translator":
        """Build from a ``pagemap`` table (DataFrame, Arrow table or dict of arrays)."""
        return cls(pagemap, page_size=page_size, policy=policy)

    def _time_of(self, snaps: np.ndarray) -> np.ndarray:
        if not self.snapshots.size:
            return np.zeros(len(snaps), np.int64)
        o = np.argsort(self.snapshots)
        i = np.searchsorted(self.snapshots[o], snaps)
        return self.snapshot_times[o][i]

    # -- snapshot choice -------------------------------------------------------------
    def snapshot_at(self, times) -> np.ndarray:
        """The snapshot (id) answering each time under the policy; -1 if there is none."""
        times = np.asarray(times, dtype=np.int64)
        if not self.snapshots.size:
            return np.full(times.shape, -1, np.int64)
        return self.snapshots[snapshot_index(self.snapshot_times, times, self.policy)]

    def _units_for(self, pids: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Unit index (snapshot of that pid nearest in time) per query; -1 if none."""
        out = np.full(pids.shape, -1, np.int64)
        if not self._unit_pid.size:
            return out
        for p in np.unique(pids):
            units = np.flatnonzero(self._unit_pid == p)
            if not units.size:
                continue
            ut = self._unit_time[units]
            o = np.argsort(ut, kind="stable")  # units are in snapshot order already
            sel = pids == p
            out[sel] = units[o][snapshot_index(ut[o], times[sel], self.policy)]
        return out

    # -- virtual → physical --------------------------------------------------------
    def virt_lookup(self, pids, vaddrs, times) -> VirtLookup:
        """Physical address, run flags and answering snapshot for each (pid, vaddr, time)."""
        pids, vaddrs, times = _broadcast(pids, vaddrs, times)
        n = vaddrs.size
        paddr = np.zeros(n, np.uint64)
        flags = np.zeros(n, np.uint32)
        snap = np.full(n, -1, np.int64)
        units = self._units_for(pids, times)
        has = units >= 0
        snap[has] = self._unit_snap[units[has]]
        if np.any(has):
            self._lookup_units(units, vaddrs, np.flatnonzero(has), paddr, flags)
        return VirtLookup(paddr, flags, snap)

    def _lookup_units(self, units, vaddrs, idx, paddr, flags) -> None:
        """Fill ``paddr``/``flags`` at ``idx`` from unit ``units[i]`` (a snapshot of a pid)."""
        o = np.argsort(units[idx], kind="stable")
        idx = idx[o]
        u_sorted = units[idx]
        bounds = np.flatnonzero(np.diff(u_sorted)) + 1
        ps = np.uint64(self.page_size)
        for chunk in np.split(idx, bounds):
            u = units[chunk[0]]
            lo, hi = self._unit_lo[u], self._unit_hi[u]
            if hi == lo:  # the pid had nothing translatable then
                continue
            va = vaddrs[chunk]
            j = np.searchsorted(self._vs[lo:hi], va, side="right") - 1
            jc = np.maximum(j, 0) + lo
            hit = (j >= 0) & (va < self._ve[jc])
            off = va[hit] - self._vs[jc[hit]]
            paddr[chunk[hit]] = self._pfn[jc[hit]] * ps + off
            flags[chunk[hit]] = self._flags[jc[hit]]

    def virt_to_phys(self, pids, vaddrs, times) -> np.ndarray:
        """Physical addresses (uint64) of virtual addresses; 0 = unmapped or frame unknown.

        ``pids``, ``vaddrs`` and ``times`` are arrays of equal length (a scalar is
        broadcast); each query uses the snapshot of its pid nearest its time.
        """
        return self.virt_lookup(pids, vaddrs, times).paddr

    def virt_to_phys_present(self, pids, vaddrs, times) -> np.ndarray:
        """Like :meth:`virt_to_phys`, from the snapshot of the pid nearest in time *among
        those in which the page is present* (ties: the earlier); 0 where none has it.

        A page-fault sample is taken before its page is mapped, so no snapshot before it
        has the page; a load sample's page may have been reclaimed by the nearest
        snapshot and be present in another.  (The translator's policy is not used.)"""
        pids, vaddrs, times = _broadcast(pids, vaddrs, times)
        out = np.zeros(vaddrs.size, np.uint64)
        for p in np.unique(pids):
            units = np.flatnonzero(self._unit_pid == p)
            if not units.size:
                continue
            ut = self._unit_time[units]
            o = np.argsort(ut, kind="stable")
            units, ut = units[o], ut[o]
            sel = np.flatnonzero(pids == p)
            q = times[sel]
            cur = nearest_index(ut, q)  # then widen outwards, nearer side first
            left, right = cur - 1, cur + 1
            va = vaddrs[sel]
            pa_ = np.zeros(sel.size, np.uint64)
            fl = np.zeros(sel.size, np.uint32)
            todo = np.arange(sel.size)
            while todo.size:
                self._lookup_units(units[cur], va, todo, pa_, fl)
                todo = todo[pa_[todo] == 0]
                if not todo.size:
                    break
                lt, rt = left[todo], right[todo]
                dl = np.where(lt >= 0, q[todo] - ut[np.maximum(lt, 0)], np.iinfo(np.int64).max)
                dr = np.where(
                    rt < ut.size, ut[np.minimum(rt, ut.size - 1)] - q[todo], np.iinfo(np.int64).max
                )
                more = (lt >= 0) | (rt < ut.size)
                todo, lt, rt, dl, dr = todo[more], lt[more], rt[more], dl[more], dr[more]
                go_left = dl <= dr
                cur[todo] = np.where(go_left, lt, rt)
                left[todo] = np.where(go_left, lt - 1, lt)
                right[todo] = np.where(go_left, rt, rt + 1)
            out[sel] = pa_
        return out

    # -- physical → virtual --------------------------------------------------------
    def _phys_index(self, snapshot: int, pid: int | None = None) -> _PhysIndex:
        """Frame segments → owning run of one snapshot (of one pid's runs when given)."""
        key = (snapshot, pid)
        pi = self._phys.get(key)
        if pi is not None:
            return pi
        sel = self._snap == snapshot
        if pid is not None:
            sel &= self._pid == pid
        rows = np.flatnonzero(sel)
        fs = self._pfn[rows]
        fe = fs + self._npages[rows]
        if not rows.size:
            pi = _PhysIndex(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64))
        else:
            o = np.argsort(fs, kind="stable")
            disjoint = bool(np.all(fs[o][1:] >= fe[o][:-1]))
            if disjoint:
                pi = _PhysIndex(fs[o], fe[o], rows[o])
            else:
                bounds = np.unique(np.concatenate([fs, fe]))
                seg_lo = np.searchsorted(bounds, fs).astype(np.int64)
                seg_hi = np.searchsorted(bounds, fe).astype(np.int64)
                # priority: lowest pid, then lowest vaddr
                prio = np.lexsort((self._vs[rows], self._pid[rows]))
                owner = _paint_owners(seg_lo, seg_hi, prio.astype(np.int64), bounds.size - 1)
                keep = np.flatnonzero(owner >= 0)
                pi = _PhysIndex(bounds[keep], bounds[keep + 1], rows[owner[keep]])
        self._phys[key] = pi
        return pi

    def _phys_fill(self, pi: _PhysIndex, sel, pfn, paddrs, out: "PhysLookup") -> np.ndarray:
        """Answer queries ``sel`` from ``pi``; returns the mask (over sel) of hits."""
        if not pi.seg_start.size:
            return np.zeros(sel.size, bool)
        ps = np.uint64(self.page_size)
        q = pfn[sel]
        j = np.searchsorted(pi.seg_start, q, side="right") - 1
        jc = np.maximum(j, 0)
        hit = (j >= 0) & (q < pi.seg_end[jc])
        r = pi.seg_run[jc[hit]]
        h = sel[hit]
        out.pid[h] = self._pid[r]
        out.vaddr[h] = self._vs[r] + (q[hit] - self._pfn[r]) * ps + paddrs[h] % ps
        out.flags[h] = self._flags[r]
        return hit

    def phys_lookup(self, paddrs, times, pids=None) -> PhysLookup:
        """Owning (pid, vaddr), run flags and snapshot for each (paddr, time).

        ``pids`` (optional, e.g. the pid each perf sample was taken in) is a
        preference: when that process maps the frame in the chosen snapshot, it is
        the answer (its lowest vaddr mapping the frame), otherwise the frame's
        default owner (lowest pid, then lowest vaddr). Use it for shared memory,
        where several processes map one frame.
        """
        paddrs = np.asarray(paddrs, dtype=np.uint64).ravel()
        times = np.broadcast_to(np.asarray(times, dtype=np.int64), paddrs.shape).ravel()
        n = paddrs.size
        out = PhysLookup(
            np.full(n, -1, np.int32),
            np.zeros(n, np.uint64),
            np.zeros(n, np.uint32),
            self.snapshot_at(times),
        )
        snap = out.snapshot
        pfn = paddrs // np.uint64(self.page_size)
        if pids is not None:
            pids = np.broadcast_to(np.asarray(pids, dtype=np.int64), paddrs.shape).ravel()
        for s in np.unique(snap):
            if s < 0:
                continue
            sel = np.flatnonzero(snap == s)
            if pids is not None:
                todo = np.ones(sel.size, bool)
                here = set(np.unique(self._pid[self._snap == s]).tolist())
                for p in np.unique(pids[sel]).tolist():
                    if p not in here:
                        continue
                    m = pids[sel] == p
                    hit = self._phys_fill(
                        self._phys_index(int(s), int(p)), sel[m], pfn, paddrs, out
                    )
                    todo[np.flatnonzero(m)[hit]] = False
                sel = sel[todo]
            self._phys_fill(self._phys_index(int(s)), sel, pfn, paddrs, out)
        return out

    def phys_to_virt(self, paddrs, times, pids=None) -> tuple[np.ndarray, np.ndarray]:
        """(pids, vaddrs) mapping each physical address at ``times``; (-1, 0) when unknown.

        Uses the snapshot nearest in time (over all snapshots). A frame mapped by
        several processes answers with the lowest pid, then the lowest vaddr --
        unless ``pids`` (per query, e.g. each sample's own pid) names one of them,
        which is then preferred.
        """
        r = self.phys_lookup(paddrs, times, pids)
        return r.pid, r.vaddr

    # -- frames per process ----------------------------------------------------------
    def owned_frames(self, snapshot: int, *, merge: bool = True) -> dict[str, np.ndarray]:
        """Frame ranges of each pid in one snapshot: ``pid``, ``pfn_start``, ``pfn_end``.

        With ``merge`` (default) each pid's ranges are sorted, disjoint and maximal
        (a frame mapped twice by one process counts once); pids may share frames.
        """
        rows = np.flatnonzero(self._snap == snapshot)
        pid = self._pid[rows]
        fs = self._pfn[rows]
        fe = fs + self._npages[rows]
        if merge and rows.size:
            pid, fs, fe = merge_intervals(pid, fs, fe)
        return {"pid": pid.astype(np.int32), "pfn_start": fs, "pfn_end": fe}


def merge_intervals(keys: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Union of half-open intervals per key: sorted, disjoint, adjacent ones joined.

    Returns ``(keys, starts, ends)`` of the merged intervals, sorted by key then start.
    """
    keys = np.asarray(keys)
    starts = np.asarray(starts)
    ends = np.asarray(ends)
    if not starts.size:
        return keys, starts, ends
    o = np.lexsort((starts, keys))
    k, s, e = keys[o], starts[o], ends[o]
    # running max of ends within each key
    new_key = np.ones(k.size, bool)
    new_key[1:] = k[1:] != k[:-1]
    grp = np.cumsum(new_key) - 1
    # cumulative max per group: offset each group so a global cummax works
    e_i = e.astype(np.float64) if e.dtype.kind == "f" else e
    cm = _group_cummax(e_i, grp)
    begin = new_key.copy()
    begin[1:] |= s[1:] > cm[:-1]
    idx = np.flatnonzero(begin)
    last = np.append(idx[1:], k.size) - 1
    return k[idx], s[idx], cm[last]


def _group_cummax(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    bounds = np.flatnonzero(np.diff(groups)) + 1
    lo = 0
    for hi in list(bounds) + [values.size]:
        out[lo:hi] = np.maximum.accumulate(values[lo:hi])
        lo = hi
    return out


def _pair_index(
    usnap: np.ndarray, upid: np.ndarray, snap: np.ndarray, pid: np.ndarray
) -> np.ndarray:
    """Index of each (snap, pid) in the sorted unique pairs (usnap, upid)."""
    # rank pids densely so (snap, pid) becomes one sortable int64 key
    allp = np.unique(upid)
    key_u = np.searchsorted(np.unique(usnap), usnap) * allp.size + np.searchsorted(allp, upid)
    key_q = np.searchsorted(np.unique(usnap), snap) * allp.size + np.searchsorted(allp, pid)
    return np.searchsorted(key_u, key_q).astype(np.int64)


def _broadcast(pids, vaddrs, times):
    vaddrs = np.asarray(vaddrs, dtype=np.uint64).ravel()
    pids = np.broadcast_to(np.asarray(pids, dtype=np.int64), vaddrs.shape).ravel()
    times = np.broadcast_to(np.asarray(times, dtype=np.int64), vaddrs.shape).ravel()
    return pids, vaddrs, times


__all__ = [
    "Translator",
    "VirtLookup",
    "PhysLookup",
    "nearest_index",
    "snapshot_index",
    "merge_intervals",
    "PAGE_SIZE",
    "POLICIES",
]
