"""``damon_aggregated`` events → the ``regions`` table: the snapshot assembly shared by
the DAMON trace readers (text, perf.data, damo records) and the tests.

The rules (where a snapshot ends, which incomplete snapshots are dropped or refused,
where a kdamond run starts over) are described in :mod:`tracedamon.ingest.damon_trace`;
:func:`assemble_regions` applies them in steps, one function each, all vectorised over
the events:

1. :func:`drop_duplicates` and :func:`_drop_bad_regions` (empty or reversed regions);
2. :func:`_snapshot_cuts`: where each snapshot begins;
3. :func:`_incomplete_snapshots`: which snapshots miss regions at a recording's edge
   (dropped) or elsewhere (refused unless ``skip_bad``);
4. :func:`_find_runs`: which kdamond run each snapshot belongs to;
5. :func:`_number_targets`: the target index of each snapshot, and each run's summary;
6. :func:`_regions_table`: snapshot numbers and the table itself.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import TraceFormatError
from ..schema import REGIONS
from ..schema import empty as _empty

_DEDUP_KEYS = (
    "time_ns",
    "cpu",
    "pid",
    "target_id",
    "nr_regions",
    "start",
    "end",
    "nr_accesses",
    "age",
)


def drop_duplicates(ev: dict[str, np.ndarray], keys=_DEDUP_KEYS) -> tuple[dict, int]:
    """Drop exact duplicate events (all of ``keys`` equal); keep the first."""
    n = len(ev["time_ns"])
    if n < 2:
        return ev, 0
    cols = [ev[k] for k in keys if k in ev]
    order = np.lexsort(cols[::-1])  # stable: among equals, file order
    same = np.ones(n - 1, bool)
    for c in cols:
        cs = c[order]
        same &= cs[1:] == cs[:-1]
    if not same.any():
        return ev, 0
    dup = np.zeros(n, bool)
    dup[order[1:][same]] = True
    keep = ~dup
    return {k: v[keep] for k, v in ev.items()}, int(dup.sum())


def _median_gap(times_by_group: list[np.ndarray]) -> float | None:
    gaps = [np.diff(t) for t in times_by_group if len(t) > 1]
    gaps = np.concatenate(gaps) if gaps else np.zeros(0)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else None


class Assembly:
    """What :func:`assemble_regions` found besides the table."""

    def __init__(self):
        self.duplicates_dropped = 0
        self.partial_dropped = 0
        self.bad_snapshots = 0
        self.bad_events = 0
        self.runs: list[dict] = []
        self.median_interval_ns: dict[int, float | None] = {}
        self.max_nr_accesses: dict[int, int] = {}
        self.has_age = True


def assemble_regions(
    ev: dict[str, np.ndarray],
    *,
    path,
    locate: Callable[[int], dict],
    skip_bad: bool = False,
    run_gap_factor: float = 3.0,
    dedupe: bool = True,
) -> tuple[pa.Table, Assembly]:
    """Turn ``damon_aggregated`` events into a ``regions`` table.

    ``ev`` holds equal-length numpy columns: time_ns, pid (-1 unknown), cpu,
    target_id (uint64), nr_regions, start, end, nr_accesses, age (-1 unknown) and
    ``loc`` (a line number or byte offset, for messages; ``locate(loc)`` gives
    the ``line=``/``offset=`` keyword of :class:`TraceFormatError`).
    """
    info = Assembly()
    if dedupe:
        ev, info.duplicates_dropped = drop_duplicates(ev)
    if len(ev["time_ns"]) == 0:
        return _empty(REGIONS), info
    info.has_age = bool((ev["age"] >= 0).any())
    ev, info.bad_events = _drop_bad_regions(ev, path, locate, skip_bad)
    n = len(ev["time_ns"])
    order = np.lexsort((np.arange(n), ev["time_ns"], ev["target_id"], ev["pid"]))
    ev = {k: v[order] for k, v in ev.items()}
    t, pid, tg = ev["time_ns"], ev["pid"], ev["target_id"]

    cut, same = _snapshot_cuts(ev)
    seg = np.cumsum(cut) - 1
    firsts = np.flatnonzero(cut)
    lens = np.diff(np.append(firsts, n))
    seg_nr = ev["nr_regions"][firsts].astype(np.int64)
    partial, bad = _incomplete_snapshots(ev, same, firsts, lens, seg_nr)
    if not skip_bad and bad.any():
        s = int(np.flatnonzero(bad)[0])
        i = firsts[s]
        what = "fewer" if lens[s] < seg_nr[s] else "more"
        raise TraceFormatError(
            path,
            f"snapshot of target_id={int(tg[i])} at {t[i] / 1e9:.6f} s has "
            f"{int(lens[s])} regions, {what} than its nr_regions={int(seg_nr[s])} "
            "(lost, duplicated or reordered events)",
            **locate(int(ev["loc"][i])),
        )
    info.partial_dropped = int(partial.sum())
    info.bad_snapshots += int(bad.sum())
    good_seg = ~(partial | bad)

    # the good snapshots, by their first event
    g_firsts = firsts[good_seg]
    g_t = t[g_firsts]
    g_tg = tg[g_firsts]
    g_maxage = np.maximum.reduceat(ev["age"], firsts)[good_seg]
    runs, run_of_seg = _find_runs(
        pid[g_firsts], g_tg, g_t, seg_nr[good_seg], g_maxage, run_gap_factor
    )
    seg_max = (
        np.maximum.reduceat(ev["nr_accesses"], firsts)[good_seg]
        if len(g_firsts)
        else np.zeros(0, np.uint32)
    )
    tgt_idx = _number_targets(runs, g_tg, g_t, seg_max, info)
    if len(g_firsts) == 0:
        return _empty(REGIONS), info
    return _regions_table(ev, seg, good_seg, g_t, run_of_seg, tgt_idx), info


def _drop_bad_regions(ev: dict, path, locate, skip_bad: bool) -> tuple[dict, int]:
    """Events with an empty or reversed region, or ``nr_regions=0``: an error naming
    the first, or (``skip_bad``) dropped; returns the events kept and the count dropped."""
    bad_rng = np.flatnonzero((ev["start"] >= ev["end"]) | (ev["nr_regions"] == 0))
    if not bad_rng.size:
        return ev, 0
    if not skip_bad:
        i = bad_rng[0]
        what = "nr_regions=0 for a region" if ev["nr_regions"][i] == 0 else "empty or reversed"
        raise TraceFormatError(
            path,
            f"region {int(ev['start'][i])}-{int(ev['end'][i])}: {what}",
            **locate(int(ev["loc"][i])),
        )
    keep = np.ones(len(ev["time_ns"]), bool)
    keep[bad_rng] = False
    return {k: v[keep] for k, v in ev.items()}, int(bad_rng.size)


def _snapshot_cuts(ev: dict) -> tuple[np.ndarray, np.ndarray]:
    """Where snapshots begin in events sorted by (pid, target, time): ``cut[i]`` when
    event ``i`` starts one; ``same[i]`` when it has the previous event's (pid, target).

    A snapshot ends at an address restart, a change of ``nr_regions``, once it holds
    its ``nr_regions`` regions, or at a time gap over half the typical interval.
    """
    t, pid, tg = ev["time_ns"], ev["pid"], ev["target_id"]
    start, end, nr = ev["start"], ev["end"], ev["nr_regions"]
    n = len(t)
    same = np.zeros(n, bool)
    same[1:] = (pid[1:] == pid[:-1]) & (tg[1:] == tg[:-1])
    cut = ~same
    cut[1:] |= start[1:] < end[:-1]
    cut[1:] |= nr[1:] != nr[:-1]
    # a snapshot holds at most nr_regions regions (it says so): when a range moves up
    # between aggregations there is no address restart to see
    nr64 = nr.astype(np.int64)
    while True:
        firsts = np.flatnonzero(cut)
        pos = np.arange(n) - firsts[np.cumsum(cut) - 1]
        over = (pos == nr64) & ~cut  # (nr_regions=0 is bad data: no loop)
        if not over.any():
            break
        cut |= over
    # time gaps: half the typical snapshot interval, measured on the first cut
    firsts = np.flatnonzero(cut)
    grp_of_first = np.cumsum(~same)[firsts]
    gap_med = _median_gap([t[firsts][grp_of_first == g] for g in np.unique(grp_of_first)])
    if gap_med is not None:
        gaps = np.zeros(n, np.int64)
        gaps[1:] = t[1:] - t[:-1]
        cut |= same & (gaps > gap_med / 2)
    return cut, same


def _incomplete_snapshots(
    ev: dict, same: np.ndarray, firsts: np.ndarray, lens: np.ndarray, seg_nr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(partial, bad) per snapshot: its region count differs from its ``nr_regions``,
    at a recording's edge (partial: dropped) or elsewhere (bad).

    A partial snapshot at a recording edge misses its head (first of its group: it ends
    where the next snapshot ends) or its tail (last: starts where the previous one
    starts); anything else incomplete lost events in the middle.
    """
    start, end = ev["start"], ev["end"]
    grp = (np.cumsum(~same) - 1)[firsts]
    grp_first = np.ones(len(firsts), bool)
    grp_first[1:] = grp[1:] != grp[:-1]
    grp_last = np.ones(len(firsts), bool)
    grp_last[:-1] = grp[1:] != grp[:-1]
    wrong = lens != seg_nr
    seg_lo = start[firsts]
    seg_hi = end[firsts + lens - 1]
    nxt_ok = np.zeros(len(firsts), bool)
    nxt_ok[:-1] = ~grp_last[:-1]
    head_missing = np.ones(len(firsts), bool)
    head_missing[:-1] = np.where(
        nxt_ok[:-1], (seg_hi[:-1] == seg_hi[1:]) & (seg_lo[:-1] > seg_lo[1:]), True
    )
    tail_missing = np.ones(len(firsts), bool)
    tail_missing[1:] = np.where(
        ~grp_first[1:], (seg_lo[1:] == seg_lo[:-1]) & (seg_hi[1:] < seg_hi[:-1]), True
    )
    partial = wrong & (lens < seg_nr) & ((grp_first & head_missing) | (grp_last & tail_missing))
    return partial, wrong & ~partial


def _find_runs(
    g_pid: np.ndarray,
    g_tg: np.ndarray,
    g_t: np.ndarray,
    g_nr: np.ndarray,
    g_maxage: np.ndarray,
    run_gap_factor: float,
) -> tuple[list[dict], np.ndarray]:
    """The kdamond runs of the good snapshots (given by their pid, target, time,
    nr_regions and largest age): per kdamond pid, split by long pauses or a restart
    of the region count. Returns the runs in time order ({"pid", "segs", "t0"}) and
    each snapshot's run number."""
    run_of_seg = np.zeros(len(g_t), np.int64)
    runs: list[dict] = []
    for p in pd.unique(g_pid):
        in_pid = np.flatnonzero(g_pid == p)
        per_tg = {int(x): in_pid[g_tg[in_pid] == x] for x in pd.unique(g_tg[in_pid])}
        med = _median_gap([g_t[ix] for ix in per_tg.values()])
        breaks: list[int] = []
        for ix in per_tg.values():  # each in time order
            a, b = ix[:-1], ix[1:]
            if med is None or not len(a):
                continue
            dt = g_t[b] - g_t[a]
            long_pause = dt > run_gap_factor * med
            # a restart without a pid change to see: after a pause (stop, start and
            # a first aggregation interval) the region count starts over with fresh
            # ages (a restarted paddr kdamond may well monitor the same range)
            restart = (
                (dt > 1.2 * med)
                & (g_maxage[b] >= 0)
                & (g_maxage[b] <= 1)
                & (g_nr[b] * 2 <= g_nr[a])
            )
            breaks.extend(g_t[b][long_pause | restart].tolist())
        bts = np.unique(np.asarray(breaks, np.int64))
        slack = int(med / 2) if med else 0
        epoch = (
            np.searchsorted(bts - slack, g_t[in_pid], side="right")
            if bts.size
            else np.zeros(len(in_pid), np.int64)
        )
        for e in np.unique(epoch):
            sel = in_pid[epoch == e]
            runs.append({"pid": int(p), "segs": sel, "t0": int(g_t[sel].min())})
    runs.sort(key=lambda r: r["t0"])
    for r_i, r in enumerate(runs):
        run_of_seg[r["segs"]] = r_i
    return runs, run_of_seg


def _number_targets(
    runs: list[dict], g_tg: np.ndarray, g_t: np.ndarray, seg_max: np.ndarray, info: Assembly
) -> np.ndarray:
    """The target index of each good snapshot: the kernel's id when every id of its run
    is small, else the ids numbered by first appearance (pointer-valued ids of old
    kernels). Fills ``info``'s per-run summary (``runs``, median interval, largest
    nr_accesses)."""
    tgt_idx = np.zeros(len(g_t), np.int32)
    for r_i, r in enumerate(runs):
        segs = r["segs"]
        ids = pd.unique(g_tg[segs])
        small = all(int(x) < 2**31 for x in ids)
        tmap = {int(x): (int(x) if small else k) for k, x in enumerate(ids)}
        by_tg = [segs[g_tg[segs] == x] for x in ids]
        for x, sx in zip(ids, by_tg):
            tgt_idx[sx] = tmap[int(x)]
        info.median_interval_ns[r_i] = _median_gap([np.sort(g_t[sx]) for sx in by_tg])
        info.max_nr_accesses[r_i] = int(seg_max[segs].max()) if len(segs) else 0
        info.runs.append(
            {
                "run": r_i,
                "kdamond_pid": r["pid"] if r["pid"] >= 0 else None,
                "targets": {str(v): str(k) for k, v in tmap.items()},
                "first_time_ns": int(g_t[segs].min()),
                "last_time_ns": int(g_t[segs].max()),
                "snapshots": int(max(len(sx) for sx in by_tg)),
                "median_interval_ns": None
                if info.median_interval_ns[r_i] is None
                else int(info.median_interval_ns[r_i]),
                "max_nr_accesses": info.max_nr_accesses[r_i],
            }
        )
    return tgt_idx


def _regions_table(
    ev: dict,
    seg: np.ndarray,
    good_seg: np.ndarray,
    g_t: np.ndarray,
    run_of_seg: np.ndarray,
    tgt_idx: np.ndarray,
) -> pa.Table:
    """The ``regions`` rows of the good snapshots (``seg``: each event's snapshot),
    numbered by time within (run, target), in (run, snapshot, target, start) order."""
    n_good = len(g_t)
    order = np.lexsort((g_t, tgt_idx, run_of_seg))
    kr, kt = run_of_seg[order], tgt_idx[order]
    newgrp = np.ones(n_good, bool)
    newgrp[1:] = (kr[1:] != kr[:-1]) | (kt[1:] != kt[:-1])
    grp_start = np.maximum.accumulate(np.where(newgrp, np.arange(n_good), 0))
    snapno = np.empty(n_good, np.int64)
    snapno[order] = np.arange(n_good) - grp_start
    rows = np.flatnonzero(good_seg[seg])
    gi = (np.cumsum(good_seg) - 1)[seg[rows]]
    run_c, snap_c = run_of_seg[gi].astype(np.int32), snapno[gi]
    start = ev["start"]
    tg_c, st_c = tgt_idx[gi], start[rows]
    fin = np.lexsort((st_c, tg_c, snap_c, run_c))
    rows = rows[fin]
    gi = gi[fin]
    age_col = ev["age"][rows]
    return pa.table(
        {
            "run": pa.array(run_c[fin], pa.int32()),
            "snapshot": pa.array(snap_c[fin], pa.int64()),
            "time_ns": pa.array(g_t[gi], pa.int64()),
            "target": pa.array(tg_c[fin], pa.int32()),
            "pid": pa.nulls(len(rows), pa.int32()),
            "start": pa.array(start[rows], pa.uint64()),
            "end": pa.array(ev["end"][rows], pa.uint64()),
            "nr_accesses": pa.array(ev["nr_accesses"][rows].astype(np.uint32), pa.uint32()),
            "age": pa.array(
                np.where(age_col >= 0, age_col, 0).astype(np.uint32), pa.uint32(), mask=age_col < 0
            ),
            "nr_accesses_bp": pa.nulls(len(rows), pa.uint32()),
        },
        schema=REGIONS,
    )
