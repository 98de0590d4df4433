"""vaddr operations: targets are processes; regions follow their mappings.

The kernel builds a vaddr target's initial regions from its VMA list by the
"three regions" rule (spec §10.1): the two biggest gaps between mappings are
cut out (they are huge and never accessed), the three remaining address ranges
are monitored.  It re-reads the VMA list every ops-update interval and fits the
regions to the new three regions (``damon_set_regions``).

Offline, the VMA list at time ``t`` comes from the trace directory:

* the ``maps`` table (``/proc/PID/maps`` snapshots, exact) when it holds rows of
  the pid: the latest snapshot at or before ``t`` (the first one before that);
* else the ``mmaps`` table (perf's MMAP/MMAP2 records): every mapping recorded
  at or before ``t``, united.  perf records no munmap, so mappings never go away
  in this model (spec §15.2).

Either source lists mappings the kernel's VMA walk does not see: the ``[vsyscall]``
gate page (``/proc/PID/maps`` prints it, and ``perf record -p PID`` synthesizes an
MMAP for it from there) and anything at or above the user address-space limit.
They are left out (:func:`tracedamon.engine.address.user_vma_mask`), so an attach-mode
recording gets the same three regions as the kernel.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..address import user_vma_mask
from ..config import PAGE_SIZE
from ..regions import Target, align_down, align_up, evenly_split
from .base import (
    Operations,
    check_per_target,
    prepare_per_target,
    process_ranges,
    process_valid,
    set_regions_init,
)


def init_regions(mon, ranges) -> list[list]:
    """vaddr's first regions: on released kernels (``min_nr_regions_mode`` legacy)
    ``__damon_va_init_regions`` splits each of the three regions evenly into pieces of
    about total / min_nr_regions; else ``damon_set_regions``."""
    if mon.cfg.min_nr_regions_mode != "legacy":
        return set_regions_init(mon, ranges)
    total = sum(e - s for s, e in ranges)
    sz = max(total // mon.cfg.min_nr_regions, mon.minsz)
    if mon.maxsz:
        sz = min(sz, mon.maxsz)
    rows: list[list] = []
    for s, e in ranges:
        s, e = align_down(s, mon.minsz), align_up(e, mon.minsz)
        rows += evenly_split(s, e, (e - s) // sz, mon.minsz, mon.maxsz)
    return rows


def update(tg: Target, time_ns: int):
    """vaddr's update hook: the three regions of the target's mappings now (None when
    they cannot be built, or the process's mm is gone: the regions stay as they are)."""
    return process_ranges(tg, time_ns)


VADDR = Operations(
    name="vaddr",
    space="virtual",
    init_ranges=process_ranges,
    init_regions=init_regions,
    update=update,
    prepare_access_checks=prepare_per_target,
    check_accesses=check_per_target,
    target_valid=process_valid,
)


def three_regions(vmas: np.ndarray, align: int = PAGE_SIZE) -> np.ndarray | None:
    """The three regions of a sorted, non-overlapping (k, 2) VMA array, or None.

    None when there are fewer than two non-empty gaps (spec §10.1: the target then
    keeps zero regions at init, and is left unchanged at an update).
    """
    vmas = np.asarray(vmas, dtype=np.int64).reshape(-1, 2)
    if len(vmas) < 3:
        return None
    g1 = (0, 0)
    g2 = (0, 0)
    for i in range(1, len(vmas)):
        ps, pe = int(vmas[i - 1][1]), int(vmas[i][0])
        gap = pe - ps
        if gap > g1[1] - g1[0]:
            g2 = g1
            g1 = (ps, pe)
        elif gap > g2[1] - g2[0]:
            g2 = (ps, pe)
    if g1[1] - g1[0] == 0 or g2[1] - g2[0] == 0:
        return None
    lo, hi = sorted([g1, g2])
    first, last = int(vmas[0][0]), int(vmas[-1][1])

    def up(x):
        return (x + align - 1) // align * align

    out = [(up(first), up(lo[0])), (up(lo[1]), up(hi[0])), (up(hi[1]), up(last))]
    return np.array(out, dtype=np.int64)


def union(intervals: np.ndarray) -> np.ndarray:
    """Sorted union of (k, 2) half-open intervals (touching ones stay separate VMAs
    only when they do not overlap; a gap of 0 never matters to three regions)."""
    iv = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
    iv = iv[iv[:, 1] > iv[:, 0]]
    if len(iv) == 0:
        return iv
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out = [list(iv[0])]
    for s, e in iv[1:]:
        if s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, dtype=np.int64)


def _names(df, column: str):
    return df[column].to_numpy(object) if column in df.columns else None


class VmaTimeline:
    """The VMA list of one process over time, from ``maps`` or ``mmaps`` rows.

    Only mappings the kernel's VMA walk sees are kept (not the gate area, nothing at or
    above the user address-space limit of ``arch``); ``dropped`` lists the others as
    ``(start, end, name)``."""

    def __init__(self, pid: int, mmaps=None, maps=None, arch: str | None = None):
        self.pid = pid
        self.source = "none"
        self.arch = arch
        self.dropped: list[tuple[int, int, str]] = []
        self._snap_times = np.zeros(0, np.int64)
        self._snaps: list[np.ndarray] = []
        if maps is not None and len(maps):
            m = maps[maps["pid"] == pid]
            if len(m):
                self.source = "maps"
                st = m["start"].to_numpy(np.uint64)
                en = m["end"].to_numpy(np.uint64)
                m = m[self._keep(st, en, _names(m, "path"))]
                for snap, g in m.groupby("snapshot", sort=True):
                    se = np.stack(
                        [g["start"].to_numpy(np.uint64), g["end"].to_numpy(np.uint64)], axis=1
                    ).astype(np.int64)
                    self._snaps.append(union(se))
                    self._snap_times = np.append(self._snap_times, int(g["time_ns"].min()))
                order = np.argsort(self._snap_times, kind="stable")
                self._snap_times = self._snap_times[order]
                self._snaps = [self._snaps[i] for i in order]
                if not self._snaps:
                    self._snap_times = np.zeros(1, np.int64)
                    self._snaps = [np.zeros((0, 2), np.int64)]
                return
        if mmaps is not None and len(mmaps):
            m = mmaps[(mmaps["pid"] == pid)]
            if len(m):
                self.source = "mmaps"
                st = m["start"].to_numpy(np.uint64)
                # an end past 2**64 wraps below its start and is dropped with the rest
                en = st + m["length"].to_numpy(np.uint64)
                keep = self._keep(st, en, _names(m, "filename"))
                t = m["time_ns"].fillna(0).to_numpy(np.int64)[keep]
                order = np.argsort(t, kind="stable")
                self._mt = t[order]
                st, en = st[keep][order].astype(np.int64), en[keep][order].astype(np.int64)
                self._mv = np.stack([st, en], axis=1)

    def _keep(self, start: np.ndarray, end: np.ndarray, names) -> np.ndarray:
        keep = user_vma_mask(start, end, names, self.arch)
        for i in np.flatnonzero(~keep):
            nm = "" if names is None or names[i] is None else str(names[i])
            entry = (int(start[i]), int(end[i]), nm)
            if entry not in self.dropped:
                self.dropped.append(entry)
        return keep

    def vmas_at(self, t: int) -> np.ndarray:
        if self.source == "maps":
            i = int(np.searchsorted(self._snap_times, t, side="right")) - 1
            return self._snaps[max(i, 0)]
        if self.source == "mmaps":
            k = int(np.searchsorted(self._mt, t, side="right"))
            return union(self._mv[:k])
        return np.zeros((0, 2), np.int64)

    def ranges_at(self, t: int) -> np.ndarray | None:
        return three_regions(self.vmas_at(t))

    def fingerprint(self) -> bytes:
        """A digest of everything :meth:`ranges_at` answers from (the process, its
        mappings over time): two timelines with one fingerprint give the same ranges."""
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{self.pid}:{self.source}:{self.arch}".encode())
        if self.source == "maps":
            h.update(self._snap_times.tobytes())
            for snap in self._snaps:
                h.update(np.int64(len(snap)).tobytes() + np.ascontiguousarray(snap).tobytes())
        elif self.source == "mmaps":
            h.update(self._mt.tobytes() + np.ascontiguousarray(self._mv).tobytes())
        return h.digest()

    def change_times(self) -> np.ndarray:
        """Sorted distinct times at which the VMA list can change."""
        if self.source == "maps":
            return np.unique(self._snap_times)
        if self.source == "mmaps":
            return np.unique(self._mt)
        return np.zeros(0, np.int64)


def samples_covered(
    regions: np.ndarray | None, t: np.ndarray, a: np.ndarray, lo: int, hi: int
) -> int:
    """Samples with time in [lo, hi) (``t`` sorted) whose address lies in ``regions``."""
    if regions is None:
        return 0
    i, j = np.searchsorted(t, [lo, hi], side="left")
    w = a[i:j]
    return int(sum(((w >= s) & (w < e)).sum() for s, e in regions))


def auto_start(
    timelines: list[VmaTimeline],
    samples: list[tuple[np.ndarray, np.ndarray]],
    t_first: int,
    t_last: int,
    window_ns: int,
    max_candidates: int = 256,
    max_samples: int = 200_000,
) -> dict:
    """The replay start that lets vaddr targets begin with useful three regions.

    The kernel builds a vaddr target's regions from its mappings at start and refits
    them only at ops updates.  Candidates are the first sample's time and every later
    time at which a target's mapping list changes (while it still changes the three
    regions); each is scored by the number of the targets' samples, from it until its
    first ops update (``window_ns``), that fall inside the three regions of that time --
    the samples the initial regions would see.  The earliest best candidate wins.  (On a
    ``perf record -- cmd`` trace the first candidates are the dynamic loader's mappings,
    and the workload's own areas come a little later: this picks the moment they exist.)

    ``samples[i]`` is target i's (time_ns, addr) arrays.  Returns a dict with
    ``time_ns`` (None when no candidate gives any target three regions),
    ``first_three_regions_ns`` (the earliest time all targets have three regions, or
    None), ``covered`` (samples covered at the chosen time, exact) and
    ``candidates`` (how many were scored).
    """
    srt = []
    for t, a in samples:
        o = np.argsort(t, kind="stable")
        t, a = np.asarray(t)[o], np.asarray(a)[o]
        stride = max(1, t.size // max_samples)
        srt.append((t, a, t[::stride], a[::stride]))
    cand = [t_first]
    for tl in timelines:
        ct = tl.change_times()
        cand.extend(int(x) for x in ct[(ct > t_first) & (ct <= t_last)])
    cand = sorted(set(cand))
    scored = []
    prev = None
    first3 = None
    for c in cand:
        regs = [tl.ranges_at(c) for tl in timelines]
        key = tuple(None if r is None else r.tobytes() for r in regs)
        if key == prev:
            continue
        prev = key
        if first3 is None and all(r is not None for r in regs):
            first3 = c
        if all(r is None for r in regs):
            continue
        score = sum(
            samples_covered(r, ts, as_, c, c + window_ns) for r, (_, _, ts, as_) in zip(regs, srt)
        )
        scored.append((score, c, regs))
        if len(scored) >= max_candidates:
            break
    if not scored:
        return {"time_ns": None, "first_three_regions_ns": first3, "covered": 0, "candidates": 0}
    best = max(s for s, _, _ in scored)
    _, c, regs = next(x for x in scored if x[0] == best)
    covered = sum(samples_covered(r, t, a, c, c + window_ns) for r, (t, a, _, _) in zip(regs, srt))
    within = sum(
        int(np.searchsorted(t, c + window_ns) - np.searchsorted(t, c)) for t, _, _, _ in srt
    )
    return {
        "time_ns": int(c),
        "first_three_regions_ns": first3,
        "covered": covered,
        "samples_in_window": within,
        "candidates": len(scored),
    }
