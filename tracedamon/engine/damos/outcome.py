"""What the schemes' actions would have done to the recorded workload -- modelled.

The walk says which memory an action was applied to and when; the recorded samples
say which pages the workload touched afterwards.  Two models (``damos-spec.md`` §10:
"feedback of the action on later accesses"), both over plain arrays:

* :func:`pageout_outcome` (``pageout``, and ``cold`` as deactivation): every page the
  action was applied to is out of memory from then on until a sample touches it again
  -- a *re-access* (a refault) -- after which it is resident until the next pageout
  that covers it.  Reported: bytes acted on over time, re-accesses as counts, bytes and
  a time series, the non-resident bytes at each time and their integral over the run
  (the resident-memory saving, GiB·s).  A page counts as re-accessed when a sample
  lands on it after a pageout with no sampled access in between.
* :func:`tier_outcome` (``migrate_hot``/``migrate_cold``, and ``lru_prio``/
  ``lru_deprio`` as their LRU analogues): two tiers, the fast one ``fast_bytes`` big;
  a page is placed at its first sampled touch, in the fast tier while it has room;
  ``migrate_hot`` moves the touched pages of its region into the fast tier (in address
  order, while there is room), ``migrate_cold`` moves them out.  Reported: the fraction
  of sampled accesses (weighted) served from the fast tier over time, the same with
  first-touch placement only (no scheme), bytes migrated.

Addresses are keyed by address space (``space``: the target of a vaddr history, 0 for
physical memory): ``key = space << 48 | address``.  Pages are 4 KiB.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...units import PAGE_SHIFT, PAGE_SIZE
from ..translate import merge_intervals

SPACE_SHIFT = 48


def keys(space, addr) -> np.ndarray:
    return (np.asarray(space, np.int64) << SPACE_SHIFT) | np.asarray(addr, np.int64)


def _bins(edges: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bin of each time: bin i covers (edges[i], edges[i+1]]; clipped to the ends."""
    b = np.searchsorted(edges, t, side="left") - 1
    return np.clip(b, 0, edges.size - 2)


def _union_add(us: np.ndarray, ue: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Add intervals [a, b) to the sorted disjoint union (us, ue); returns the new union
    and the bytes newly covered."""
    if a.size == 0:
        return us, ue, 0
    before = int((ue - us).sum())
    s, e = np.concatenate([us, a]), np.concatenate([ue, b])
    _, ns, ne = merge_intervals(np.zeros(s.size, np.int64), s, e)
    return ns, ne, int((ne - ns).sum()) - before


@njit(cache=True)
def _pageout_sweep(
    order_kind,
    order_idx,
    ev_lo,
    ev_hi,
    ev_time,
    s_id,
    s_time,
    npages,
    s_bin,
    edges,
    union_after,
    t_end,
    out_reacc,
    out_at,
):
    """Merged timeline: kind 0 = sample, 1 = event.  Returns (refaults, byte-ns integral
    of the non-resident bytes, bytes out at the end); fills per-bin re-access counts and
    the non-resident bytes at each bin's end (``edges[i + 1]``, inclusive)."""
    out = np.zeros(npages, np.bool_)
    inu = np.zeros(npages, np.bool_)
    resident_in_union = 0
    refaults = 0
    integral = 0.0
    union_bytes = 0
    t_prev = -1
    nb = edges.shape[0] - 1
    eb = 0
    for k in range(order_kind.shape[0]):
        i = order_idx[k]
        if order_kind[k] == 0:
            t = s_time[i]
        else:
            t = ev_time[i]
        while eb < nb and edges[eb + 1] < t:
            out_at[eb] = union_bytes - PAGE_SIZE * resident_in_union
            eb += 1
        if t_prev >= 0 and t > t_prev:
            integral += float(union_bytes - PAGE_SIZE * resident_in_union) * float(t - t_prev)
        if t_prev < 0 or t > t_prev:
            t_prev = t
        if order_kind[k] == 0:
            p = s_id[i]
            if out[p]:
                out[p] = False
                resident_in_union += 1
                refaults += 1
                out_reacc[s_bin[i]] += 1
        else:
            for p in range(ev_lo[i], ev_hi[i]):
                if inu[p] and not out[p]:
                    resident_in_union -= 1
                out[p] = True
                inu[p] = True
            union_bytes = union_after[i]
    if t_prev >= 0 and t_end > t_prev:
        integral += float(union_bytes - PAGE_SIZE * resident_in_union) * float(t_end - t_prev)
    while eb < nb:
        out_at[eb] = union_bytes - PAGE_SIZE * resident_in_union
        eb += 1
    return refaults, integral, union_bytes - PAGE_SIZE * resident_in_union


def pageout_outcome(
    ev_time, ev_key_start, ev_key_end, s_time, s_key, t_end: int, edges: np.ndarray
) -> dict:
    """The pageout model over events (time, [start, end) keys) and samples (time, key).

    ``edges``: bin edges (ns, ascending, at least two).  Returns totals and per-bin
    arrays (``bytes_applied``, ``bytes_out`` at the bin's end, ``reaccesses``)."""
    ev_time = np.asarray(ev_time, np.int64)
    a = np.asarray(ev_key_start, np.int64)
    b = np.asarray(ev_key_end, np.int64)
    s_time = np.asarray(s_time, np.int64)
    s_page = np.asarray(s_key, np.int64) >> PAGE_SHIFT
    edges = np.asarray(edges, np.int64)
    nb = edges.size - 1
    eo = np.argsort(ev_time, kind="stable")
    ev_time, a, b = ev_time[eo], a[eo], b[eo]
    # the union of everything paged out so far, after each event (events of one time are
    # added together: nothing is observed between them)
    union_after = np.zeros(ev_time.size, np.int64)
    us = ue = np.zeros(0, np.int64)
    cuts = np.flatnonzero(np.diff(ev_time)) + 1
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [ev_time.size]])):
        us, ue, _ = _union_add(us, ue, a[lo:hi], b[lo:hi])
        union_after[lo:hi] = int((ue - us).sum())
    upages, s_id = np.unique(s_page, return_inverse=True)
    ev_lo = np.searchsorted(upages, a >> PAGE_SHIFT, side="left")
    ev_hi = np.searchsorted(upages, (b - 1) >> PAGE_SHIFT, side="right")
    # timeline: samples before events at equal times (the action came after them)
    kind = np.concatenate([np.zeros(s_time.size, np.int8), np.ones(ev_time.size, np.int8)])
    idx = np.concatenate([np.arange(s_time.size), np.arange(ev_time.size)])
    tt = np.concatenate([s_time, ev_time])
    o = np.lexsort((kind, tt))
    reacc = np.zeros(max(nb, 1), np.int64)
    out_at = np.zeros(max(nb, 1), np.int64)
    refaults, integral, out_end = _pageout_sweep(
        kind[o],
        idx[o],
        ev_lo.astype(np.int64),
        ev_hi.astype(np.int64),
        ev_time,
        s_id.astype(np.int64),
        s_time,
        upages.size,
        _bins(edges, s_time),
        edges,
        union_after,
        int(t_end),
        reacc,
        out_at,
    )
    applied = np.zeros(max(nb, 1), np.int64)
    np.add.at(applied, _bins(edges, ev_time), b - a)
    return {
        "bytes_applied": int((b - a).sum()),
        "bytes_paged_out": int(union_after[-1]) if union_after.size else 0,
        "reaccesses": int(refaults),
        "reaccess_bytes": int(refaults) * PAGE_SIZE,
        "bytes_out_at_end": int(out_end),
        "saving_gib_s": integral / 1e9 / (1 << 30),
        "per_bin": {
            "bytes_applied": applied[:nb],
            "reaccesses": reacc[:nb],
            "bytes_out": out_at[:nb],
        },
    }


@njit(cache=True)
def _tier_sweep(
    order_kind,
    order_idx,
    ev_lo,
    ev_hi,
    ev_dir,
    s_id,
    s_w,
    s_bin,
    npages,
    cap,
    fast_w,
    all_w,
    moved_hot,
    moved_cold,
    ev_bin,
):
    tier = np.full(npages, -1, np.int8)
    used = 0
    for k in range(order_kind.shape[0]):
        i = order_idx[k]
        if order_kind[k] == 0:
            p = s_id[i]
            if tier[p] < 0:
                if used < cap:
                    tier[p] = 1
                    used += 1
                else:
                    tier[p] = 0
            all_w[s_bin[i]] += s_w[i]
            if tier[p] == 1:
                fast_w[s_bin[i]] += s_w[i]
        else:
            if ev_dir[i] > 0:
                for p in range(ev_lo[i], ev_hi[i]):
                    if used >= cap:
                        break
                    if tier[p] == 0:
                        tier[p] = 1
                        used += 1
                        moved_hot[ev_bin[i]] += PAGE_SIZE
            else:
                for p in range(ev_lo[i], ev_hi[i]):
                    if tier[p] == 1:
                        tier[p] = 0
                        used -= 1
                        moved_cold[ev_bin[i]] += PAGE_SIZE
    return used


def tier_outcome(
    ev_time,
    ev_key_start,
    ev_key_end,
    ev_dir,
    s_time,
    s_key,
    s_weight,
    fast_bytes: int,
    edges: np.ndarray,
) -> dict:
    """The two-tier model: events (time, [start, end) keys, +1 to fast / -1 to slow),
    samples (time, key, weight), a fast tier of ``fast_bytes``."""
    ev_time = np.asarray(ev_time, np.int64)
    a = np.asarray(ev_key_start, np.int64)
    b = np.asarray(ev_key_end, np.int64)
    d = np.asarray(ev_dir, np.int64)
    s_time = np.asarray(s_time, np.int64)
    s_page = np.asarray(s_key, np.int64) >> PAGE_SHIFT
    w = np.asarray(s_weight, np.float64)
    edges = np.asarray(edges, np.int64)
    nb = edges.size - 1
    cap = int(fast_bytes) // PAGE_SIZE
    upages, s_id = np.unique(s_page, return_inverse=True)
    ev_lo = np.searchsorted(upages, a >> PAGE_SHIFT, side="left").astype(np.int64)
    ev_hi = np.searchsorted(upages, (b - 1) >> PAGE_SHIFT, side="right").astype(np.int64)
    s_bin = _bins(edges, s_time)
    e_bin = _bins(edges, ev_time)

    def run(with_events: bool):
        ne = ev_time.size if with_events else 0
        kind = np.concatenate([np.zeros(s_time.size, np.int8), np.ones(ne, np.int8)])
        idx = np.concatenate([np.arange(s_time.size), np.arange(ne)])
        tt = np.concatenate([s_time, ev_time[:ne]])
        o = np.lexsort((kind, tt))
        fw = np.zeros(max(nb, 1))
        aw = np.zeros(max(nb, 1))
        mh = np.zeros(max(nb, 1), np.int64)
        mc = np.zeros(max(nb, 1), np.int64)
        _tier_sweep(
            kind[o],
            idx[o],
            ev_lo,
            ev_hi,
            d,
            s_id.astype(np.int64),
            w,
            s_bin,
            upages.size,
            cap,
            fw,
            aw,
            mh,
            mc,
            e_bin,
        )
        return fw[:nb], aw[:nb], mh[:nb], mc[:nb]

    fw, aw, mh, mc = run(True)
    fw0, aw0, _, _ = run(False)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(aw > 0, fw / np.where(aw > 0, aw, 1), np.nan)
        ratio0 = np.where(aw0 > 0, fw0 / np.where(aw0 > 0, aw0, 1), np.nan)
    tot = float(aw.sum())
    return {
        "fast_ratio": float(fw.sum()) / tot if tot else None,
        "fast_ratio_first_touch": float(fw0.sum()) / tot if tot else None,
        "bytes_promoted": int(mh.sum()),
        "bytes_demoted": int(mc.sum()),
        "fast_bytes": int(fast_bytes),
        "pages_touched": int(upages.size),
        "per_bin": {
            "fast_ratio": ratio,
            "fast_ratio_first_touch": ratio0,
            "weight": aw,
            "bytes_promoted": mh,
            "bytes_demoted": mc,
        },
    }
