"""Real DAMON traces → the ``regions`` table (plus ``damos_apply`` and ``intervals_tune``).

Inputs: ``perf script`` text of ``damon:*`` tracepoints (perf's own layout,
damo's ``kdamond.x xxxx xxxx`` writer, the old five-field ``damon_aggregated``
without age, pointer-valued ``target_id``), ftrace text (``trace_pipe``,
``trace``, ``trace-cmd report`` with or without the flags column), and perf.data
files (the RAW payloads decoded with the tracepoint formats the file carries;
:func:`add_regions_from_perf_data`). Gzipped text is read transparently.

How events become snapshots (see :func:`assemble_regions`):

* exact duplicate events (same time, CPU, kdamond and payload: perf sometimes
  delivers one sample twice) are dropped and counted (``duplicates_dropped``);
* events are grouped by (kdamond pid, target id) and ordered by time; a
  snapshot ends where the data says so: the next region starts below the
  previous region's end (address restart), ``nr_regions`` changes, the time
  gap exceeds half the typical snapshot interval, or the snapshot already holds
  its ``nr_regions`` regions. A snapshot whose region count differs from its
  ``nr_regions`` is an error (lost or duplicated events), except a partial
  snapshot at the very start or end of a recording, which is dropped and
  counted;
* a kdamond restart starts a new ``run``: a new kdamond pid, or (when the
  input has no pid) a pause of more than 3 aggregation intervals, or a pause of
  more than 1.2 intervals after which the region count has at least halved and
  every age is 0 or 1 (a fresh kdamond).

``time_ns`` of a snapshot is the timestamp of its first event (damo's
``end_time`` convention), in the recording's clock. ``target`` is the kernel's
target index; pointer-valued ids (old kernels) are numbered by first
appearance and the originals kept in ``meta["damon_runs"]``. ``age`` is null
for the old five-field format; ``pid`` and ``nr_accesses_bp`` are null (a trace
names neither the monitored process nor the moving-sum value).

Other tables: ``damos_apply`` (one row per ``damos_before_apply`` event) and
``intervals_tune`` (one row per ``damon_monitor_intervals_tune`` event).

meta.json keys: ``duplicates_dropped``; ``skipped`` ({"lines", "events",
"snapshots"}: what ``skip_bad`` dropped); ``partial_snapshots_dropped``;
``intervals`` ({sample_us, aggr_us, source}: "record" when damo's
``<file>.kdamonds`` sidecar is beside the input, with ``measured_aggr_us``;
else "inferred": aggr_us = the median time between snapshots, sample_us =
aggr_us / the largest nr_accesses seen, with ``max_nr_accesses``; ``tuned``
when interval auto-tuning events are present); ``damon_source`` (perf.data,
perf-script, damo-perf-script, ftrace, damo-record); ``damon_runs`` (per run:
kdamond pid, targets, snapshot count, first/last time, median snapshot
interval, largest nr_accesses); ``age_field``;
``damon_other_events`` (counts of damon events not turned into tables);
``input_truncated`` (a gzip text cut short, read with ``skip_bad``); ``damon_clock``
(which clock ``time_ns`` is in).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, TraceFormatError
from ..schema import DAMOS_APPLY, INTERVALS_TUNE, REGIONS
from ..schema import empty as _empty
from ..units import parse_duration_ns
from .damon_text import (
    AGGREGATED,
    BEFORE_APPLY,
    INTERVALS_TUNE_EV,  # noqa: F401
    KNOWN_EVENTS,
    TextTrace,
    _Events,
    _num,
)
from .detect import PERF_MAGIC, PERF_MAGIC_BE, head
from .tracing_data import decode_raw, parse_tracing_data


def is_perf_data(path) -> bool:
    """Whether ``path`` (gzip undone) starts with perf.data's magic."""
    return head(path, 8) in (PERF_MAGIC, PERF_MAGIC_BE)


# ---------------------------------------------------------------------------------------
# snapshot assembly (shared by text, perf.data and tests)

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
    n = len(ev["time_ns"])
    if n == 0:
        return _empty(REGIONS), info
    info.has_age = bool((ev["age"] >= 0).any())
    bad_rng = np.flatnonzero((ev["start"] >= ev["end"]) | (ev["nr_regions"] == 0))
    keep = np.ones(n, bool)
    for i in bad_rng:
        if not skip_bad:
            what = "nr_regions=0 for a region" if ev["nr_regions"][i] == 0 else "empty or reversed"
            raise TraceFormatError(
                path,
                f"region {int(ev['start'][i])}-{int(ev['end'][i])}: {what}",
                **locate(int(ev["loc"][i])),
            )
        keep[i] = False
    if not keep.all():
        info.bad_events = int((~keep).sum())
        ev = {k: v[keep] for k, v in ev.items()}
        n = len(ev["time_ns"])
    seq = np.arange(n)
    order = np.lexsort((seq, ev["time_ns"], ev["target_id"], ev["pid"]))
    ev = {k: v[order] for k, v in ev.items()}
    t, pid, tg = ev["time_ns"], ev["pid"], ev["target_id"]
    start, end, nr = ev["start"], ev["end"], ev["nr_regions"]

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
    seg = np.cumsum(cut) - 1
    firsts = np.flatnonzero(cut)
    lens = np.diff(np.append(firsts, n))
    seg_nr = nr[firsts].astype(np.int64)
    grp = (np.cumsum(~same) - 1)[firsts]
    grp_first = np.ones(len(firsts), bool)
    grp_first[1:] = grp[1:] != grp[:-1]
    grp_last = np.ones(len(firsts), bool)
    grp_last[:-1] = grp[1:] != grp[:-1]
    wrong = lens != seg_nr
    # a partial snapshot at a recording edge misses its head (first of its group: it
    # ends where the next snapshot ends) or its tail (last: starts where the previous
    # one starts); anything else incomplete lost events in the middle
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
    bad = wrong & ~partial
    for s in np.flatnonzero(bad):
        i = firsts[s]
        if not skip_bad:
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

    # runs: per kdamond pid, split by long pauses or a restart of the region count
    g_firsts = firsts[good_seg]
    g_pid = pid[g_firsts]
    g_tg = tg[g_firsts]
    g_t = t[g_firsts]
    g_nr = seg_nr[good_seg]
    age = ev["age"]
    g_maxage = np.maximum.reduceat(age, firsts)[good_seg]
    run_of_seg = np.zeros(len(g_firsts), np.int64)
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

    # build the table, vectorised over segments and events
    n_good = len(g_firsts)
    tgt_idx = np.zeros(n_good, np.int32)
    seg_max = (
        np.maximum.reduceat(ev["nr_accesses"], firsts)[good_seg]
        if n_good
        else np.zeros(0, np.uint32)
    )
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
    if n_good == 0:
        return _empty(REGIONS), info
    # snapshot number: rank by time within (run, target)
    order = np.lexsort((g_t, tgt_idx, run_of_seg))
    kr, kt = run_of_seg[order], tgt_idx[order]
    newgrp = np.ones(n_good, bool)
    newgrp[1:] = (kr[1:] != kr[:-1]) | (kt[1:] != kt[:-1])
    grp_start = np.maximum.accumulate(np.where(newgrp, np.arange(n_good), 0))
    snapno = np.empty(n_good, np.int64)
    snapno[order] = np.arange(n_good) - grp_start
    keep_ev = good_seg[seg]
    rows = np.flatnonzero(keep_ev)
    gi = (np.cumsum(good_seg) - 1)[seg[rows]]
    run_c, snap_c = run_of_seg[gi].astype(np.int32), snapno[gi]
    tg_c, st_c = tgt_idx[gi], start[rows]
    fin = np.lexsort((st_c, tg_c, snap_c, run_c))
    rows = rows[fin]
    gi = gi[fin]
    age_col = age[rows]
    table = pa.table(
        {
            "run": pa.array(run_c[fin], pa.int32()),
            "snapshot": pa.array(snap_c[fin], pa.int64()),
            "time_ns": pa.array(g_t[gi], pa.int64()),
            "target": pa.array(tg_c[fin], pa.int32()),
            "pid": pa.nulls(len(rows), pa.int32()),
            "start": pa.array(start[rows], pa.uint64()),
            "end": pa.array(end[rows], pa.uint64()),
            "nr_accesses": pa.array(ev["nr_accesses"][rows].astype(np.uint32), pa.uint32()),
            "age": pa.array(
                np.where(age_col >= 0, age_col, 0).astype(np.uint32), pa.uint32(), mask=age_col < 0
            ),
            "nr_accesses_bp": pa.nulls(len(rows), pa.uint32()),
        },
        schema=REGIONS,
    )
    return table, info


# ---------------------------------------------------------------------------------------
# intervals


def human_time_us(text) -> int:
    """damo's human time text ("500 ms", "5 s", "1 m", "1,234 us", "60000000") → µs
    (``ValueError`` when it is none)."""
    if isinstance(text, (int, float)):
        return int(text)
    return int(round(parse_duration_ns(text, "us", "time") / 1000))


def sidecar_intervals(path: Path) -> dict | None:
    """Intervals from damo's ``<record>.kdamonds`` sidecar beside ``path``, if any."""
    cands = [path.with_name(path.name + ".kdamonds")]
    if path.suffix == ".gz":
        cands.append(path.with_name(path.stem + ".kdamonds"))
    for c in cands:
        if not c.is_file():
            continue
        try:
            kd = json.loads(c.read_text())
            iv = kd[0]["contexts"][0]["intervals"]
            return {
                "sample_us": human_time_us(iv["sample_us"]),
                "aggr_us": human_time_us(iv["aggr_us"]),
                "ops_update_us": human_time_us(iv.get("ops_update_us", 0)),
                "source": "record",
                "from": c.name,
            }
        except (ValueError, KeyError, IndexError, TypeError):
            return None
    return None


def inferred_intervals(info: Assembly) -> dict | None:
    meds = [v for v in info.median_interval_ns.values() if v]
    if not meds:
        return None
    aggr_us = int(round(meds[0] / 1000))
    mx = next(iter(info.max_nr_accesses.values()), 0)
    # aggr_us: the median time between snapshots; sample_us: aggr_us over the largest
    # nr_accesses seen (nr_accesses counts sampling intervals, at most aggr/sample)
    return {
        "sample_us": int(round(aggr_us / mx)) if mx else None,
        "aggr_us": aggr_us,
        "source": "inferred",
        "max_nr_accesses": mx,
    }


# ---------------------------------------------------------------------------------------
# writing


def _apply_table(ev: dict[str, np.ndarray]) -> pa.Table:
    age = ev["age"]
    return pa.table(
        {
            "time_ns": pa.array(ev["time_ns"], pa.int64()),
            "kdamond_pid": pa.array(ev["pid"], pa.int32(), mask=ev["pid"] < 0),
            "cpu": pa.array(ev["cpu"], pa.int32(), mask=ev["cpu"] < 0),
            "context": pa.array(ev["ctx"], pa.int32()),
            "scheme": pa.array(ev["scheme"], pa.int32()),
            "target": pa.array(ev["target_id"].astype(np.int64), pa.int64()),
            "nr_regions": pa.array(ev["nr_regions"], pa.uint32()),
            "start": pa.array(ev["start"], pa.uint64()),
            "end": pa.array(ev["end"], pa.uint64()),
            "nr_accesses": pa.array(ev["nr_accesses"], pa.uint32()),
            "age": pa.array(
                np.where(age >= 0, age, 0).astype(np.uint32), pa.uint32(), mask=age < 0
            ),
        },
        schema=DAMOS_APPLY,
    )


def _tune_table(ev: dict[str, np.ndarray]) -> pa.Table:
    return pa.table(
        {
            "time_ns": pa.array(ev["time_ns"], pa.int64()),
            "kdamond_pid": pa.array(ev["pid"], pa.int32(), mask=ev["pid"] < 0),
            "cpu": pa.array(ev["cpu"], pa.int32(), mask=ev["cpu"] < 0),
            "sample_us": pa.array(ev["sample_us"], pa.uint64()),
        },
        schema=INTERVALS_TUNE,
    )


_WRITE_ROWS = 1 << 20


def write_events(
    writer,
    path: Path,
    agg: dict,
    before: dict | None,
    tune: dict | None,
    *,
    locate,
    skip_bad: bool,
    source: str,
    extra_skipped: dict | None = None,
    run_gap_factor: float = 3.0,
) -> Assembly:
    """Assemble and write ``regions`` (+ ``damos_apply``/``intervals_tune``) and meta."""
    has_before = bool(before and len(before.get("time_ns", ())))
    if not agg or len(agg.get("time_ns", ())) == 0:
        if not has_before:
            raise TraceFormatError(path, "no damon:damon_aggregated events found")
        # `damo record --schemes_target_regions` traces only the regions DAMOS acts on:
        # they are no snapshots of the whole monitored space, so no `regions` table
        info = Assembly()
        writer.meta["damon_regions"] = (
            "none: the trace has damos_before_apply events only (see the damos_apply table)"
        )
    else:
        table, info = assemble_regions(
            agg, path=path, locate=locate, skip_bad=skip_bad, run_gap_factor=run_gap_factor
        )
        if table.num_rows == 0:
            raise TraceFormatError(path, "no complete DAMON snapshot in the input")
        for off in range(0, table.num_rows, _WRITE_ROWS):
            writer.write("regions", table.slice(off, _WRITE_ROWS))
    dups = info.duplicates_dropped
    if before and len(before.get("time_ns", ())):
        before, d2 = drop_duplicates(before)
        dups += d2
        o = np.lexsort((before["time_ns"],))
        writer.write("damos_apply", _apply_table({k: v[o] for k, v in before.items()}))
    if tune and len(tune.get("time_ns", ())):
        tune, d3 = drop_duplicates(tune, ("time_ns", "cpu", "pid", "sample_us"))
        dups += d3
        o = np.lexsort((tune["time_ns"],))
        writer.write("intervals_tune", _tune_table({k: v[o] for k, v in tune.items()}))
    m = writer.meta
    m["duplicates_dropped"] = m.get("duplicates_dropped", 0) + dups
    skipped = dict(m.get("skipped", {}))
    for k, v in (extra_skipped or {}).items():
        if v:
            skipped[k] = skipped.get(k, 0) + v
    if info.bad_snapshots:
        skipped["snapshots"] = skipped.get("snapshots", 0) + info.bad_snapshots
    if info.bad_events:
        skipped["events"] = skipped.get("events", 0) + info.bad_events
    m["skipped"] = skipped
    if info.partial_dropped:
        m["partial_snapshots_dropped"] = info.partial_dropped
    iv = sidecar_intervals(path) or inferred_intervals(info)
    if iv is not None and iv["source"] == "record" and info.median_interval_ns:
        med = next(iter(info.median_interval_ns.values()))
        if med:
            iv["measured_aggr_us"] = int(round(med / 1000))
    if tune and len(tune.get("time_ns", ())):
        # the trace itself says the sampling interval (from the first tuning on; the
        # intervals_tune table has every change)
        first = int(tune["sample_us"][0])
        if iv is None or iv["source"] == "inferred":
            iv = {
                "sample_us": first,
                "aggr_us": iv["aggr_us"] if iv else None,
                "source": "record",
                "aggr_us_source": "inferred" if iv else None,
            }
        iv["tuned"] = True
        iv["first_tuned_sample_us"] = first
    if iv is not None:
        m["intervals"] = iv
    m["damon_source"] = source
    m["damon_clock"] = {
        "perf.data": "perf sample clock",
        "perf-script": "perf sample clock",
        "damo-perf-script": "perf sample clock (damo: one time per snapshot)",
        "ftrace": "the tracing instance's trace_clock",
        "damo-record": "perf sample clock (damo record)",
    }.get(source, "unknown")
    m["damon_runs"] = info.runs
    m["age_field"] = info.has_age
    return info


# ---------------------------------------------------------------------------------------
# perf.data


def add_regions_from_perf_data(
    reader, writer, *, skip_bad: bool = False, path=None, run_gap_factor: float = 3.0
) -> Assembly | None:
    """Decode the ``damon:*`` samples of an open perf.data and write ``regions`` etc.

    ``reader`` is :func:`tracedamon.ingest.perf_data.open_perf_data`'s object
    (``.tracing_data``, ``.events``, ``iter_sample_batches()``). The RAW
    payloads are decoded with the tracepoint formats stored in the file.
    """
    path = Path(path if path is not None else getattr(reader, "path", "<perf.data>"))
    names = [e.get("name") for e in reader.events]
    damon_names = sorted({n for n in names if n and n.startswith("damon:")})
    if not damon_names:
        return None
    td = None

    def formats():
        # a pipe stream may deliver its tracing data as a record: look when first needed
        nonlocal td
        if td is None:
            blob = reader.tracing_data
            if not blob:
                raise TraceFormatError(
                    path,
                    "the file has damon: events but no tracing "
                    "data (the event formats needed to decode them)",
                )
            td = parse_tracing_data(blob, path=path)
        return td

    wanted = {f"damon:{e}" for e in KNOWN_EVENTS}
    acc = {e: _Events() for e in KNOWN_EVENTS}
    fields = {
        AGGREGATED: ["target_id", "nr_regions", "start", "end", "nr_accesses", "age"],
        BEFORE_APPLY: [
            "context_idx",
            "scheme_idx",
            "target_idx",
            "start",
            "end",
            "nr_accesses",
            "age",
            "nr_regions",
        ],
        INTERVALS_TUNE_EV: ["sample_us"],
    }
    others: dict[str, int] = {}
    for batch in reader.iter_sample_batches():
        if batch.num_rows == 0:
            continue
        ev_col = batch.column(batch.schema.get_field_index("event"))
        if pa.types.is_dictionary(ev_col.type):
            ev_col = ev_col.dictionary_decode()
        for name in pc.unique(ev_col).to_pylist():
            if name is None or not name.startswith("damon:"):
                continue
            if name not in wanted:
                others[name] = others.get(name, 0) + int(pc.sum(pc.equal(ev_col, name)).as_py())
                continue
            short = name.split(":", 1)[1]
            td = formats()
            fmt = td.event(name)
            if fmt is None:
                raise TraceFormatError(path, f"no format for {name} in the file's tracing data")
            sel = pc.equal(ev_col, name)
            b = batch.filter(sel)
            have = [f for f in fields[short] if f in fmt.by_name]
            off = b.column(b.schema.get_field_index("file_offset"))
            off_np = _num(off, pa.int64(), -1)
            try:
                dec = decode_raw(
                    b.column(b.schema.get_field_index("raw")),
                    fmt,
                    names=have + (["common_pid"] if "common_pid" in fmt.by_name else []),
                    big_endian=td.big_endian,
                    path=path,
                )
            except TraceFormatError as e:
                raise TraceFormatError(
                    path, e.problem, offset=int(off_np[0]) if len(off_np) else None
                ) from None
            n = b.num_rows
            pid = _num(b.column(b.schema.get_field_index("pid")), pa.int64(), -1)
            if "common_pid" in dec:
                pid = np.where(pid >= 0, pid, dec["common_pid"].astype(np.int64))
            common = {
                "time_ns": _num(b.column(b.schema.get_field_index("time_ns")), pa.int64(), 0),
                "pid": pid,
                "cpu": _num(b.column(b.schema.get_field_index("cpu")), pa.int32(), -1),
                "loc": off_np,
            }
            if short == INTERVALS_TUNE_EV:
                acc[short].add(**common, sample_us=dec["sample_us"].astype(np.uint64))
                continue
            cols = {
                "target_id": dec["target_idx" if short == BEFORE_APPLY else "target_id"].astype(
                    np.uint64
                ),
                "nr_regions": dec["nr_regions"].astype(np.uint32)
                if "nr_regions" in dec
                else np.zeros(n, np.uint32),
                "start": dec["start"].astype(np.uint64),
                "end": dec["end"].astype(np.uint64),
                "nr_accesses": dec["nr_accesses"].astype(np.uint32),
                "age": dec["age"].astype(np.int64) if "age" in dec else np.full(n, -1, np.int64),
            }
            if short == BEFORE_APPLY:
                cols["ctx"] = dec["context_idx"].astype(np.int32)
                cols["scheme"] = dec["scheme_idx"].astype(np.int32)
            acc[short].add(**common, **cols)
    agg = acc[AGGREGATED].get() if len(acc[AGGREGATED]) else {}
    if not agg and not len(acc[BEFORE_APPLY]):
        return None
    info = write_events(
        writer,
        path,
        agg,
        acc[BEFORE_APPLY].get() if len(acc[BEFORE_APPLY]) else None,
        acc[INTERVALS_TUNE_EV].get() if len(acc[INTERVALS_TUNE_EV]) else None,
        locate=lambda off: {"offset": off} if off >= 0 else {},
        skip_bad=skip_bad,
        source="perf.data",
        run_gap_factor=run_gap_factor,
    )
    if others:
        writer.meta["damon_other_events"] = others
    return info


# ---------------------------------------------------------------------------------------
# entry point


def perf_data_regions(reader, writer, *, path, skip_bad: bool = False, run_gap_factor: float = 3.0):
    """:func:`add_regions_from_perf_data`, refusing a perf.data without DAMON events
    (``path``: the user's name of the file). The caller opens the perf.data (and
    decompresses it) and reports what a cut-short recording lost."""
    info = add_regions_from_perf_data(
        reader, writer, skip_bad=skip_bad, path=path, run_gap_factor=run_gap_factor
    )
    if info is None:
        t = reader.truncation or {}
        if "TRACING_DATA" in t.get("features_lost", ()):
            raise TraceFormatError(
                path,
                "perf record did not finish, so the tracepoint "
                "formats and event names it writes at its end are "
                "missing: damon events can be neither found nor "
                "decoded (stop perf record with Ctrl-C or kill -INT)",
            )
        raise TraceFormatError(
            path, "no damon:damon_aggregated (or damos_before_apply) samples in this perf.data"
        )
    return info


def ingest_into(
    path, writer, *, progress=None, skip_bad: bool = False, run_gap_factor: float = 3.0, **opts
) -> None:
    """Read a DAMON trace as text (perf script, damo's writer, ftrace / trace-cmd;
    gzip undone) into ``writer``. A perf.data holding DAMON tracepoints is the
    caller's to open (:func:`perf_data_regions`; :mod:`tracedamon.pipeline.ingest`
    does it). ``progress(done, total, what)``: bytes of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    tt = TextTrace(path, skip_bad=skip_bad, progress=progress).parse()
    if not len(tt.agg) and not len(tt.before):
        raise TraceFormatError(path, "no damon_aggregated events found (not a DAMON trace?)")
    source = max(tt.layouts, key=tt.layouts.get) if tt.layouts else "text"
    write_events(
        writer,
        path,
        tt.agg.get() if len(tt.agg) else {},
        tt.before.get() if len(tt.before) else None,
        tt.tune.get() if len(tt.tune) else None,
        locate=lambda ln: {"line": ln},
        skip_bad=skip_bad,
        source=source,
        extra_skipped={"lines": tt.skipped_lines},
        run_gap_factor=run_gap_factor,
    )
    if tt.other_events:
        writer.meta["damon_other_events"] = tt.other_events
    if tt.truncated:
        writer.meta["input_truncated"] = True
