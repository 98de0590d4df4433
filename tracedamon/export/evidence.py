"""Where a region history says the accesses are (:class:`AccessEvidence`): the
default address axis of the heatmaps (:mod:`.heatmap`) and of the HTML report."""

from __future__ import annotations

import numpy as np

from .grid import merge_intervals

__all__ = ["AccessEvidence", "COARSE_RATIO"]


#: a region narrowed by more than this factor by later, finer regions is not evidence
#: itself; a one-off access seen only in regions this many times larger than all finer
#: evidence is left off the default address axis (it would squash the rest)
COARSE_RATIO = 16


class AccessEvidence:
    """Where a region history says the accesses are, from its snapshots read last
    to first.

    DAMON starts from a few huge regions and splits them until it finds the
    accessed pages: an access first shows as "one of these terabytes was
    accessed", and the accessed region shrinks over the next aggregations. A
    region's bytes are evidence of access only as far as DAMON could not localise
    it further. So, going backwards, with ``F_{s+1}`` the finest evidence of the
    next snapshot, each accessed region ``r`` of snapshot ``s`` is

    * *ended* when ``F_{s+1}`` has nothing inside ``r`` (the access ended there, or
      moved away): ``r`` is evidence, and part of ``F_s``;
    * *context* when every piece of ``F_{s+1}`` inside ``r`` is at least
      ``1 /`` :data:`COARSE_RATIO` of ``r`` (DAMON narrowed it only a little): ``r`` is
      evidence, but ``F_s`` keeps only those finer pieces, so context never grows
      by more than that factor around what the regions finally localised;
    * *refined* otherwise: a coarse first guess, which the later, finer regions
      speak for; it contributes ``F_{s+1} ∩ r`` to ``F_s`` and nothing itself.

    The evidence of the whole history is the union of the ended and context
    regions, except regions of a size class more than :data:`COARSE_RATIO` times
    larger than all finer evidence that were accessed in one aggregation only (no
    accessed region overlaps them in the snapshots before and after): one sample
    somewhere in 47 GiB once says little about where the workload is and would
    squash it to a pixel. Those are counted and reported (:meth:`ranges`).

    Feed one address space's snapshots newest first (:meth:`feed`); memory: the
    next snapshot's finest evidence and one merged union per size class.
    """

    def __init__(self):
        self._fine = np.zeros((0, 2), np.uint64)  # F_{s+1}
        self._held = None  # the snapshot waiting for its predecessor (one-off test)
        self._cls: dict = {}  # size class -> [one-off ranges, other ranges]

    def feed(self, start: np.ndarray, end: np.ndarray, nr: np.ndarray) -> None:
        """One snapshot (the one before the last one fed): its regions, sorted and
        disjoint, and their nr_accesses."""
        m = np.asarray(nr) > 0
        st = np.asarray(start, dtype=np.uint64)[m]
        en = np.asarray(end, dtype=np.uint64)[m]
        if self._held is not None:
            self._settle(*self._held, st, en)
        self._held = self._resolve(st, en)

    def _resolve(self, st, en):
        """F_s from the accessed regions of s and F_{s+1}; returns the regions kept as
        evidence, which :meth:`_settle` records once the snapshot before s is known."""
        fine = self._fine
        smallest = _smallest_piece_within(fine, st, en)
        size = (en - st).astype(np.float64)
        ended = ~np.isfinite(smallest)
        keep = ended | (size <= COARSE_RATIO * smallest)
        carried = _intersect_sorted(fine, np.stack([st[~ended], en[~ended]], axis=1))
        both = np.concatenate([np.stack([st[ended], en[ended]], axis=1), carried])
        self._fine = merge_intervals(both[:, 0], both[:, 1])
        return st[keep], en[keep], ended[keep]

    def _settle(self, wst, wen, ended, pst, pen) -> None:
        """Record the evidence regions of a snapshot; one-offs are those whose access
        ended there and that no accessed region of the snapshot before overlaps
        (``pst``/``pen``, empty for the first snapshot)."""
        if len(wst) == 0:
            return
        lo = np.searchsorted(pen, wst, side="right")
        hi = np.searchsorted(pst, wen, side="left")
        once = ended & (hi <= lo)
        size = (wen - wst).astype(np.float64)
        cls = np.floor(np.log2(size)).astype(np.int64)
        for c in np.unique(cls):
            sel = cls == c
            slot = self._cls.setdefault(int(c), [np.zeros((0, 2), np.uint64)] * 2)
            for k, want in ((0, once), (1, ~once)):
                w = sel & want
                if w.any():
                    cur = slot[k]
                    slot[k] = merge_intervals(
                        np.concatenate([cur[:, 0], wst[w]]), np.concatenate([cur[:, 1], wen[w]])
                    )

    def finish(self) -> None:
        if self._held is not None:
            empty = np.zeros(0, np.uint64)
            self._settle(*self._held, empty, empty)
            self._held = None

    def ranges(self) -> tuple[np.ndarray, dict]:
        """(evidence ranges, what was left out: bytes, smallest region size)."""
        self.finish()
        kept = np.zeros((0, 2), np.uint64)
        left = {"bytes": 0, "min_region": None}
        for c in sorted(self._cls):
            once, other = self._cls[c]
            fine = float((kept[:, 1] - kept[:, 0]).sum()) if len(kept) else 0.0
            parts = [kept, other]
            if fine == 0 or 2.0**c <= COARSE_RATIO * fine:
                parts.append(once)
            elif len(once):
                shown = np.concatenate([kept, other])
                out = _intersect_sorted(
                    once, _complement(merge_intervals(shown[:, 0], shown[:, 1]))
                )
                nb = float((out[:, 1] - out[:, 0]).sum()) if len(out) else 0.0
                if nb:
                    left["bytes"] += nb
                    if left["min_region"] is None:
                        left["min_region"] = 2**c
            allp = np.concatenate(parts)
            kept = merge_intervals(allp[:, 0], allp[:, 1])
        return kept, left


def _smallest_piece_within(iv: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray:
    """For each [st, en): the smallest piece of the sorted disjoint intervals ``iv``
    clipped to it, in bytes (inf when none lies in it)."""
    out = np.full(len(st), np.inf)
    if len(iv) == 0 or len(st) == 0:
        return out
    j0 = np.searchsorted(iv[:, 1], st, side="right")
    j1 = np.searchsorted(iv[:, 0], en, side="left")
    cnt = np.maximum(j1 - j0, 0)
    if cnt.sum() == 0:
        return out
    row = np.repeat(np.arange(len(st)), cnt)
    k = j0[row] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    piece = (np.minimum(iv[k, 1], en[row]) - np.maximum(iv[k, 0], st[row])).astype(np.float64)
    np.minimum.at(out, row, piece)
    return out


def _intersect_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two lists of sorted disjoint intervals, vectorised."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 2), np.uint64)
    pts = np.concatenate([a[:, 0], a[:, 1], b[:, 0], b[:, 1]]).astype(np.uint64)
    d = np.concatenate(
        [np.ones(len(a)), -np.ones(len(a)), np.ones(len(b)), -np.ones(len(b))]
    ).astype(np.int64)
    o = np.lexsort((d, pts))  # at equal addresses, ends before starts
    pts, d = pts[o], d[o]
    depth = np.cumsum(d)
    i = np.flatnonzero(depth == 2)
    out = np.stack([pts[i], pts[i + 1]], axis=1)
    return out[out[:, 1] > out[:, 0]]


def _complement(iv: np.ndarray) -> np.ndarray:
    """[0, 2^64) minus sorted disjoint intervals."""
    top = np.uint64(0xFFFFFFFFFFFFFFFF)
    if len(iv) == 0:
        return np.array([[0, top]], dtype=np.uint64)
    s = np.concatenate([[np.uint64(0)], iv[:, 1]])
    e = np.concatenate([iv[:, 0], [top]])
    out = np.stack([s, e], axis=1).astype(np.uint64)
    return out[out[:, 1] > out[:, 0]]
