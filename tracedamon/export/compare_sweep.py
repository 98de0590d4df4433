"""The passes of :func:`tracedamon.export.compare.compare` over the two histories.

:class:`SideProfile` reads one side once: the union of each address space's regions
and where its accesses are (the ranges the metrics' accessed space and the cells grid
are laid over). :func:`sweep_overlay` then reads both sides together, snapshot pair by
snapshot pair, and accumulates the exact overlay (:mod:`.overlay`) into joint
distributions of (inside the accessed space, nr_accesses of a, of b) weighted by
bytes × ns, per time bin, and of the ages; :mod:`.compare_metrics` turns them into
the metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..units import PAGE_SIZE
from .grid import merge_intervals
from .history import HistorySource
from .overlay import Joint, group_sum, overlay_regions, snapshot_pairs

__all__ = ["SideProfile", "DenseJoint", "sweep_overlay", "concat_joint"]


class SideProfile:
    """Per address space: the union of its regions (``covered``) and the step function
    of nr_accesses summed over its snapshots (for :meth:`heat_ranges`); ``aligned``:
    every region boundary is page aligned."""

    CAP = 1 << 22  # breakpoints kept per address space before coarsening

    def __init__(self, hs: HistorySource, keys):
        self.covered = {k: np.zeros((0, 2), np.uint64) for k in keys}
        self._heat: dict[Any, list] = {k: [] for k in keys}
        self._n = {k: 0 for k in keys}
        self._gran = {k: 1 for k in keys}
        self.aligned = True
        page = np.uint64(PAGE_SIZE)
        for b in hs.iter_batches(age=False, time_ns=False):
            if self.aligned and ((b.start % page).any() or (b.end % page).any()):
                self.aligned = False
            rkey = b.key[b.row_local]
            for k in pd.unique(b.key).tolist():
                if k not in self.covered:
                    continue
                m = rkey == k
                st, en, nr = b.start[m], b.end[m], b.nr_accesses[m]
                # each snapshot's regions are sorted and disjoint: join touching ones
                # in one pass, then the few runs with what is covered so far
                lid = b.row_local[m]
                new = np.ones(len(st), bool)
                new[1:] = (lid[1:] != lid[:-1]) | (st[1:] != en[:-1])
                idx = np.flatnonzero(new)
                last = np.concatenate([idx[1:], [len(st)]]) - 1
                c = self.covered[k]
                self.covered[k] = merge_intervals(
                    np.concatenate([c[:, 0], st[idx]]), np.concatenate([c[:, 1], en[last]])
                )
                a = nr > 0
                if a.any():
                    # this batch's step function, reduced to its distinct breakpoints
                    (u,), (d,) = group_sum(
                        [np.concatenate([st[a], en[a]])], [np.concatenate([nr[a], -nr[a]])]
                    )
                    g = self._gran[k]
                    if g > 1:
                        (u,), (d,) = group_sum([u // np.uint64(g) * np.uint64(g)], [d])
                    self._heat[k].append((u, d))
                    self._n[k] += len(u)
                    if self._n[k] > self.CAP:
                        self._compact(k)

    def _compact(self, k) -> None:
        parts = self._heat[k]
        pts = np.concatenate([p[0] for p in parts])
        d = np.concatenate([p[1] for p in parts])
        (u,), (s,) = group_sum([pts], [d])
        # too many distinct boundaries: round them down to coarser granules (the
        # ranges only choose where the cells grid looks)
        while len(u) > self.CAP // 2:
            self._gran[k] *= 2
            g = np.uint64(self._gran[k])
            (u,), (s,) = group_sum([u // g * g], [s])
        self._heat[k] = [(u, s)]
        self._n[k] = len(u)

    def heat_ranges(self, k, min_fraction: float = 0.02) -> np.ndarray:
        """Address ranges whose nr_accesses summed over all snapshots is at least
        ``min_fraction`` of the hottest byte's (see ``grid.heat_ranges``)."""
        parts = self._heat[k]
        if not parts:
            return np.zeros((0, 2), np.uint64)
        self._compact(k)
        u, s = self._heat[k][0]
        level = np.cumsum(s)[:-1]
        if len(level) == 0 or level.max() <= 0:
            return np.zeros((0, 2), np.uint64)
        keep = level >= min_fraction * level.max()
        return merge_intervals(u[:-1][keep], u[1:][keep])


class DenseJoint:
    """(time bin, inside, nr_a, nr_b) -> bytes·ns in dense arrays, for integer
    nr_accesses up to known maxima (the usual case: nr_accesses are counts)."""

    LIMIT = 1 << 22

    def __init__(self, mxa: float, mxb: float, nt: int):
        self.A, self.B = int(mxa) + 1, int(mxb) + 1
        self.K = 2 * self.A * self.B
        self.nt = nt
        self.ok = self.K <= self.LIMIT and self.K * max(nt, 1) <= self.LIMIT
        if self.ok:
            self.J = np.zeros(self.K)
            self.PT = np.zeros(self.K * max(nt, 1))

    def add(self, inside, x, y, nbytes, dt, bins) -> bool:
        """Add one pair's pieces; False (nothing added) when they do not fit."""
        if not self.ok:
            return False
        xi = x.astype(np.int64)
        yi = y.astype(np.int64)
        if (
            (xi != x).any()
            or (yi != y).any()
            or (xi < 0).any()
            or (yi < 0).any()
            or (xi >= self.A).any()
            or (yi >= self.B).any()
        ):
            return False
        code = (inside.astype(np.int64) * self.A + xi) * self.B + yi
        c0 = int(code.min())
        v = np.bincount(code - c0, weights=nbytes)
        c1 = c0 + len(v)
        self.J[c0:c1] += v * dt
        for i, ov in bins:
            self.PT[i * self.K + c0 : i * self.K + c1] += v * ov
        return True

    def decode(self, arr, with_bin: bool):
        idx = np.flatnonzero(arr > 0)
        w = arr[idx]
        b, rest = np.divmod(idx, self.K)
        ins, rest = np.divmod(rest, self.A * self.B)
        x, y = np.divmod(rest, self.B)
        keys = [ins.astype(float), x.astype(float), y.astype(float)]
        return ([b.astype(float)] + keys if with_bin else keys), w


def sweep_overlay(ha, hb, pairs, active, applied, t0, t1, edges, acc_thres, on_batch=None) -> dict:
    """Accumulate the overlay of every key pair within [t0, t1) (see :mod:`.overlay`);
    pieces are cut at the bounds of the pair's ``active`` ranges and flagged inside
    or outside them. ``on_batch(pair index, "a"|"b", batch)`` sees every batch of
    both sides (all of them are then read)."""
    nt = len(edges) - 1
    dense = DenseJoint(ha.nr_accesses_max, hb.nr_accesses_max, nt)
    J = Joint(3)  # (inside active, nr_a, nr_b) -> bytes·ns, when not dense
    PT = Joint(4)  # (time bin, inside active, nr_a, nr_b) -> bytes·ns, when not dense
    AG = Joint(1)  # age pair code -> bytes·ns, both known and whole
    AGf = Joint(2)  # (age_a, age_b) -> bytes·ns, both known, not whole
    age_unknown = 0.0
    pieces = []  # (lo, hi, wss_a, wss_b, common bytes)
    for pi, ((ka, kb), act) in enumerate(zip(pairs, active)):
        feed = None if on_batch is None else (lambda tag, bt, pi=pi: on_batch(pi, tag, bt))
        for lo, hi, sa, sb in snapshot_pairs(
            ha,
            ka,
            hb,
            kb,
            offset_b=applied,
            t_range=(t0, t1),
            on_batch=feed,
            drain=feed is not None,
        ):
            left, right, ia, ib, inside = overlay_regions(sa.start, sa.end, sb.start, sb.end, act)
            nbytes = (right - left).astype(np.float64)
            x = sa.nr_accesses[ia]
            y = sb.nr_accesses[ib]
            dt = float(hi - lo)
            pieces.append(
                (
                    lo,
                    hi,
                    float(nbytes[x >= acc_thres].sum()),
                    float(nbytes[y >= acc_thres].sum()),
                    float(nbytes.sum()),
                )
            )
            if not len(nbytes):
                continue
            i0 = max(int(np.searchsorted(edges, lo, side="right")) - 1, 0)
            i1 = min(int(np.searchsorted(edges, hi, side="left")), nt)
            bins = [
                (i, float(min(hi, int(edges[i + 1])) - max(lo, int(edges[i]))))
                for i in range(i0, i1)
            ]
            bins = [(i, ov) for i, ov in bins if ov > 0]
            if not dense.add(inside, x, y, nbytes, dt, bins):
                insf = inside.astype(np.float64)
                (ui, ux, uy), (ub,) = group_sum([insf, x, y], [nbytes])
                J.add([ui, ux, uy], ub * dt)
                for i, ov in bins:
                    PT.add([np.full(len(ux), i), ui, ux, uy], ub * ov)
            ga, gb = sa.age[ia], sb.age[ib]
            known = np.isfinite(ga) & np.isfinite(gb)
            if known.any():
                ka_, kb_, nk = ga[known], gb[known], nbytes[known]
                if (
                    (ka_ == np.floor(ka_)).all()
                    and (kb_ == np.floor(kb_)).all()
                    and (ka_ >= 0).all()
                    and (kb_ >= 0).all()
                    and max(ka_.max(), kb_.max()) < 2**31
                ):
                    code = (ka_.astype(np.int64) << 32) | kb_.astype(np.int64)
                    (uc,), (w,) = group_sum([code], [nk])
                    AG.add([uc], w * dt)
                else:
                    (ua, ubb), (w,) = group_sum([ka_, kb_], [nk])
                    AGf.add([ua, ubb], w * dt)
            age_unknown += float(nbytes[~known].sum()) * dt
    joint = concat_joint(J.result(), dense.decode(dense.J, False) if dense.ok else None)
    per_time = concat_joint(PT.result(), dense.decode(dense.PT, True) if dense.ok else None)
    (uc,), aw = AG.result()
    uc = uc.astype(np.int64)
    ages = concat_joint(
        AGf.result(), ([(uc >> 32).astype(float), (uc & 0xFFFFFFFF).astype(float)], aw)
    )
    return {
        "joint": joint,
        "per_time": per_time,
        "age": ages,
        "age_unknown": age_unknown,
        "pieces": pieces,
    }


def concat_joint(a, b):
    """Two joint distributions (keys, weights) as one (their tuples may repeat)."""
    if b is None:
        return a
    ka, wa = a
    kb, wb = b
    keys = [np.concatenate([np.asarray(x, float), np.asarray(y, float)]) for x, y in zip(ka, kb)]
    w = np.concatenate([wa, wb])
    if len(wa) and len(wb):
        keys, (w,) = group_sum(keys, [w])
    return keys, w
