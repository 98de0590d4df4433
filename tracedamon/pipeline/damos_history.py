"""The region history side of ``tracedamon damos``: reading it, the pre-apply state.

* :func:`open_source` reads a history (a trace directory with an ingested DAMON trace,
  or a replay's regions ``.parquet``) and what came with it (recorded ``damos_apply``
  events, metadata, where samples and pagemap snapshots may live);
* :func:`assign_recorded` puts each recorded ``damos_before_apply`` event in the
  snapshot emitted right after it, and :func:`undo_recorded` takes an application's
  effects back out of that snapshot (``damos-spec.md`` §9.3, §10);
* :class:`ResetCarry` carries the predicted age resets into later snapshots;
* :class:`PagemapOracle` answers the ops model's page questions from pagemap snapshots;
* :func:`compare_applications` is the ``--check``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
from numba import njit

from ..engine.damos.ops_model import PageOracle, Segments
from ..engine.translate import nearest_index
from ..errors import InputError
from ..schema import (
    PAGEMAP_FLAG_FILE,
    PAGEMAP_FLAG_HUGE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_THP,
    REGIONS,
    conform,
)
from ..store.parquet import read_metadata, read_table
from ..store.trace import open_trace
from ..units import PAGE_SIZE


# ---------------------------------------------------------------------------------------
# the source
# ---------------------------------------------------------------------------------------
@dataclass
class Source:
    path: Path
    kind: str  # "damon-trace" or "replay"
    regions: pa.Table
    recorded: pa.Table | None  # damos_apply of a real trace
    meta: dict
    trace_dir: Path | None  # where samples / pagemap may live

    @property
    def replay_config(self) -> dict | None:
        return (self.meta.get("replay") or {}).get("config")


def open_source(src) -> Source:
    """The history ``src`` names: a trace directory, a regions ``.parquet``, or an
    in-memory replay result (a :class:`~tracedamon.pipeline.region_history.RegionHistory`: its
    table and metadata, no files)."""
    if (
        hasattr(src, "table")
        and hasattr(src, "metadata")
        and not isinstance(src, (str, os.PathLike))
    ):
        t = src.table
        if "run" not in t.column_names:
            t = t.append_column("run", pa.array(np.zeros(t.num_rows, np.int32)))
        p = Path(src.path) if getattr(src, "path", None) is not None else Path("(replay in memory)")
        return Source(
            p,
            "replay",
            conform(t, REGIONS, REGIONS.names),
            None,
            {"replay": dict(src.metadata)},
            None,
        )
    p = Path(src)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        tr = open_trace(p)
        if not tr.has("regions"):
            hint = (
                " (it has a replay output: pass that .parquet)"
                if any(
                    q.suffix == ".parquet" and q.stem not in ("samples",)
                    for q in p.glob("replay*.parquet")
                )
                else ""
            )
            raise InputError(
                f"{p}: no regions table: a damos run needs a region history "
                f"(an ingested DAMON trace, or a replay's .parquet){hint}"
            )
        regions = tr.table("regions")
        recorded = tr.table("damos_apply") if tr.has("damos_apply") else None
        return Source(p, "damon-trace", regions, recorded, dict(tr.meta), p)
    if p.suffix != ".parquet":
        raise InputError(f"{p}: not a trace directory or a regions .parquet")
    try:
        t = read_table(p)
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{p}: not a readable Parquet file ({e})") from None
    missing = [
        c
        for c in ("snapshot", "time_ns", "target", "start", "end", "nr_accesses")
        if c not in t.column_names
    ]
    if missing:
        raise InputError(f"{p}: not a region history (no {', '.join(missing)} column)")
    if "run" not in t.column_names:
        t = t.append_column("run", pa.array(np.zeros(t.num_rows, np.int32)))
    regions = conform(t, REGIONS, REGIONS.names)
    meta = read_metadata(p) or {}
    parent = p.parent
    trace_dir = (
        parent if (parent / "samples.parquet").exists() or (parent / "meta.json").exists() else None
    )
    return Source(
        p,
        "replay" if "replay" in meta else "regions",
        regions,
        _replay_applications(p, meta),
        meta,
        trace_dir,
    )


def _replay_applications(p: Path, meta: dict) -> pa.Table | None:
    """A replay that ran schemes (``replay --scheme``) wrote its snapshots after DAMOS,
    as the kernel does, and its applications beside it (``X.damos/damos_apply.parquet``):
    they are the history's recorded applications, as a real trace's are."""
    d = ((meta.get("replay") or {}).get("damos") or {}).get("output")
    if not d:
        return None
    f = p.parent / d / "damos_apply.parquet"
    if not f.exists():
        raise InputError(
            f"{p}: a replay with schemes whose applications "
            f"({f}) are missing: its snapshots show what DAMOS did, which "
            "cannot be taken back out without them"
        )
    try:
        return read_table(f)
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{f}: not a readable Parquet file ({e})") from None


# ---------------------------------------------------------------------------------------
# page data (pagemap snapshots) for the ops filters
# ---------------------------------------------------------------------------------------
class PagemapOracle(PageOracle):
    """Page attributes from pagemap snapshots: anonymous or file-backed, mapped, huge
    page (``PAGEMAP_FLAG_*``).  paddr: the frames the snapshotted processes map (a frame
    nobody maps in the snapshot is unknown); vaddr: the target's own pages (a page the
    snapshot shows absent is not mapped).  The snapshot nearest the application's time
    answers (ties: the earlier)."""

    def __init__(self, pagemap: pa.Table, ops: str, target_pids: Sequence[int | None]):
        self._nearest = nearest_index
        c = {
            k: pagemap.column(k).to_numpy(zero_copy_only=False)
            for k in ("snapshot", "time_ns", "pid", "vaddr_start", "vaddr_end", "flags")
        }
        pfn = pagemap.column("pfn_start").fill_null(0).to_numpy(zero_copy_only=False)
        flags = c["flags"].astype(np.int64)
        self.ops = ops
        self.target_pids = list(target_pids)
        snaps = np.unique(c["snapshot"])
        self.snap_ids = snaps
        self.snap_times = np.array(
            [c["time_ns"][c["snapshot"] == s].min() for s in snaps], np.int64
        )
        o = np.argsort(self.snap_times, kind="stable")
        self.snap_ids, self.snap_times = self.snap_ids[o], self.snap_times[o]
        anon = ((flags & PAGEMAP_FLAG_FILE) == 0).astype(np.int8)
        present = (flags & PAGEMAP_FLAG_PRESENT) != 0
        huge = np.where((flags & (PAGEMAP_FLAG_THP | PAGEMAP_FLAG_HUGE)) != 0, 2 << 20, PAGE_SIZE)
        vs = c["vaddr_start"].astype(np.int64)
        ve = c["vaddr_end"].astype(np.int64)
        self._idx: dict = {}
        for s in self.snap_ids:
            m = c["snapshot"] == s
            if ops == "paddr":
                sel = m & present & (pfn > 0)
                a = pfn[sel].astype(np.int64) * PAGE_SIZE
                b = a + (ve[sel] - vs[sel])
                self._idx[(int(s), None)] = self._disjoint(
                    a, b, anon[sel], np.ones(a.size, np.int8), huge[sel], c["pid"][sel], vs[sel]
                )
            else:
                for pid in np.unique(c["pid"][m]):
                    sel = m & (c["pid"] == pid)
                    mapped = present[sel].astype(np.int8)
                    self._idx[(int(s), int(pid))] = self._disjoint(
                        vs[sel],
                        ve[sel],
                        np.where(mapped == 1, anon[sel], -1).astype(np.int8),
                        mapped,
                        np.where(mapped == 1, huge[sel], 0),
                        np.full(mapped.size, pid),
                        vs[sel],
                    )

    @staticmethod
    def _disjoint(a, b, anon, mapped, fsz, pid, va):
        """Sorted disjoint runs; a frame two runs claim goes to the lower pid.  ``va``: the
        virtual address of each run's start (its owner's page)."""
        o = np.lexsort((pid, a))
        a, b, anon, mapped, fsz, pid, va = (x[o].copy() for x in (a, b, anon, mapped, fsz, pid, va))
        keep = np.ones(a.size, bool)
        reach = 0
        for i in range(a.size):
            if a[i] < reach:
                if b[i] <= reach:
                    keep[i] = False
                    continue
                va[i] += reach - a[i]
                a[i] = reach
            reach = max(reach, b[i])
        return (
            a[keep],
            b[keep],
            anon[keep],
            mapped[keep],
            fsz[keep],
            pid[keep].astype(np.int64),
            va[keep].astype(np.int64),
        )

    def _runs_at(self, target: int, time_ns: int):
        j = int(self._nearest(self.snap_times, np.array([time_ns]))[0])
        snap = int(self.snap_ids[j])
        key = (
            (snap, None)
            if self.ops == "paddr"
            else (snap, self.target_pids[target] if target < len(self.target_pids) else None)
        )
        return self._idx.get(key)

    def owners(self, start: int, end: int, time_ns: int):
        """paddr: the pieces of [start, end) as (pid, address) -- the owning process and
        virtual address of frames a snapshot maps, (-1, physical address) elsewhere."""
        idx = self._runs_at(0, time_ns)
        pids, s_out, e_out = [], [], []
        cur = start
        if idx is not None:
            a, b, _, _, _, pid, va = idx
            lo = np.searchsorted(b, start, side="right")
            hi = np.searchsorted(a, end, side="left")
            for i in range(lo, hi):
                s0, e0 = max(a[i], start), min(b[i], end)
                if s0 > cur:
                    pids.append(-1), s_out.append(cur), e_out.append(s0)
                pids.append(int(pid[i])), s_out.append(int(va[i] + s0 - a[i]))
                e_out.append(int(va[i] + e0 - a[i]))
                cur = e0
        if cur < end:
            pids.append(-1), s_out.append(cur), e_out.append(end)
        return pids, s_out, e_out

    def segments(self, target: int, start: int, end: int, time_ns: int) -> Segments:
        idx = self._runs_at(target, time_ns)
        if idx is None:
            return Segments(
                np.array([start]),
                np.array([end]),
                np.array([-1], np.int8),
                np.array([-1], np.int8),
                np.zeros(1, np.int64),
            )
        a, b, anon, mapped, fsz = idx[:5]
        lo = np.searchsorted(b, start, side="right")
        hi = np.searchsorted(a, end, side="left")
        ss, ee, an, mp, fz = [], [], [], [], []
        cur = start
        for i in range(lo, hi):
            s0, e0 = max(a[i], start), min(b[i], end)
            if s0 > cur:
                ss.append(cur), ee.append(s0), an.append(-1), mp.append(-1), fz.append(0)
            ss.append(s0), ee.append(e0), an.append(anon[i]), mp.append(mapped[i])
            fz.append(fsz[i])
            cur = e0
        if cur < end:
            ss.append(cur), ee.append(end), an.append(-1), mp.append(-1), fz.append(0)
        return Segments(
            np.array(ss, np.int64),
            np.array(ee, np.int64),
            np.array(an, np.int8),
            np.array(mp, np.int8),
            np.array(fz, np.int64),
        )


# ---------------------------------------------------------------------------------------
# reconstruction of the pre-apply state
# ---------------------------------------------------------------------------------------
def undo_recorded(
    rows: dict,
    events: list[tuple],
    prev_end: dict,
    min_region: int,
    counters: dict,
    due: set | None = None,
) -> dict:
    """Take a recorded application's effects out of a post-apply snapshot.

    ``rows``: the snapshot (arrays ``target``, ``start``, ``end``, ``nr``, ``bp``,
    ``age``; sorted).  ``events``: the recorded ``damos_before_apply`` rows of the
    snapshot in trace order, as (scheme, target, start, end, nr_regions, age).
    ``prev_end``: per scheme, (target, end) of its previous recorded application (the
    resume point its walk starts from, if that application exhausted the quota; the
    split it makes there happens whether or not anything is applied afterwards);
    ``due``: the schemes whose walk this is (None: all).  Returns the pre-apply rows;
    ``counters`` counts what was done."""
    tg, st, en = rows["target"].tolist(), rows["start"].tolist(), rows["end"].tolist()
    nr, bp, age = rows["nr"].tolist(), rows["bp"].tolist(), rows["age"].tolist()
    pos = {(t, s): i for i, (t, s) in enumerate(zip(tg, st))}
    by_scheme: dict[int, list] = {}
    for e in events:
        by_scheme.setdefault(e[0], []).append(e)
        i = pos.get((e[1], e[2]))
        if i is None or en[i] != e[3]:
            counters["unmatched_events"] = counters.get("unmatched_events", 0) + 1
            continue
        if e[5] is not None:
            age[i] = e[5]
            counters["ages_restored"] = counters.get("ages_restored", 0) + 1
    merge_at: set = set()  # (target, address) boundaries to take out

    def equal_sides(t, x):
        i = pos.get((t, x))
        if i is None or i == 0 or tg[i - 1] != t or en[i - 1] != x:
            return False
        return nr[i] == nr[i - 1] and bp[i] == bp[i - 1] and age[i] == age[i - 1]

    for s, (t, x) in prev_end.items():
        if due is not None and s not in due:
            continue
        for c in (x, x + min_region):
            if equal_sides(t, c):
                merge_at.add((t, c))
                counters["resume_splits_undone"] = counters.get("resume_splits_undone", 0) + 1
                break
    for s, evs in by_scheme.items():
        first, last = evs[0], evs[-1]
        if len(evs) > 1 and last[4] == first[4] + 1 and equal_sides(last[1], last[3]):
            merge_at.add((last[1], last[3]))
            counters["quota_splits_undone"] = counters.get("quota_splits_undone", 0) + 1
        elif (
            len(evs) == 1
            and equal_sides(last[1], last[3])
            and pos.get((last[1], last[3])) is not None
        ):
            merge_at.add((last[1], last[3]))
            counters["quota_splits_undone"] = counters.get("quota_splits_undone", 0) + 1
    if not merge_at:
        out = dict(rows)
        out["age"] = np.array(age, np.int64)
        return out
    keep = np.ones(len(st), bool)
    end_new = list(en)
    for i in range(len(st)):
        if (tg[i], st[i]) in merge_at and i > 0 and keep[i]:
            j = i - 1
            while not keep[j]:
                j -= 1
            end_new[j] = en[i]
            keep[i] = False
    out = {k: np.asarray(v)[keep] for k, v in rows.items()}
    out["end"] = np.array(end_new, np.int64)[keep]
    out["age"] = np.array(age, np.int64)[keep]
    return out


def subtract_intervals(
    a_s: np.ndarray, a_e: np.ndarray, b_s: np.ndarray, b_e: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[a_s, a_e) minus the union of [b_s, b_e) (a and b: lists of intervals)."""
    if not a_s.size or not b_s.size:
        return a_s, a_e
    bounds = np.unique(np.concatenate([a_s, a_e, b_s, b_e]))
    lo, hi = bounds[:-1], bounds[1:]

    def covered(s, e):
        o = np.argsort(s, kind="stable")
        s, e = s[o], np.maximum.accumulate(e[o])
        j = np.searchsorted(s, lo, side="right") - 1
        return (j >= 0) & (lo < e[np.maximum(j, 0)])

    keep = covered(a_s, a_e) & ~covered(b_s, b_e)
    return lo[keep], hi[keep]


class ResetCarry:
    """The schemes' own age resets, carried into later snapshots: per target, sorted
    disjoint address runs with the snapshot number of their last reset."""

    def __init__(self):
        self.runs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def add(self, target: int, starts: np.ndarray, ends: np.ndarray, k: int) -> None:
        s0, e0, k0 = self.runs.get(target, (np.zeros(0, np.int64),) * 3)
        if not starts.size:
            return
        bounds = np.unique(np.concatenate([s0, e0, starts, ends]))
        lo, hi = bounds[:-1], bounds[1:]
        val = np.full(lo.size, -1, np.int64)
        for s, e, v in ((s0, e0, k0), (starts, ends, np.full(starts.size, k, np.int64))):
            if s.size:
                j = np.searchsorted(s, lo, side="right") - 1
                ok = (j >= 0) & (lo < e[np.maximum(j, 0)])
                val[ok] = v[j[ok]]
        keep = val >= 0
        lo, hi, val = lo[keep], hi[keep], val[keep]
        if lo.size:
            new = np.ones(lo.size, bool)
            new[1:] = (lo[1:] != hi[:-1]) | (val[1:] != val[:-1])
            idx = np.flatnonzero(new)
            hi = np.maximum.reduceat(hi, idx)
            lo, val = lo[idx], val[idx]
        self.runs[target] = (lo, hi, val)

    def apply(
        self, target: np.ndarray, start: np.ndarray, end: np.ndarray, age: np.ndarray, j: int
    ) -> np.ndarray:
        """Ages of snapshot ``j``'s regions with the carried resets: a byte reset at
        snapshot k is at most ``j - k`` old; a region's age is the size-weighted mean of
        its bytes' (floor, as the kernel's merge)."""
        out = np.asarray(age, np.int64).copy()
        for t, (rs, re_, rk) in self.runs.items():
            if not rs.size:
                continue
            sel = np.flatnonzero(target == t)
            if sel.size:
                out[sel] = _carry_ages(
                    np.ascontiguousarray(start[sel], np.int64),
                    np.ascontiguousarray(end[sel], np.int64),
                    out[sel],
                    rs,
                    re_,
                    rk,
                    int(j),
                )
        return out


@njit(cache=True)
def _carry_ages(a, b, g, rs, re_, rk, j):
    """Two-pointer sweep over sorted regions (a, b, age g) and sorted disjoint reset runs
    (rs, re_, snapshot rk)."""
    out = g.copy()
    q0 = 0
    for i in range(a.shape[0]):
        while q0 < rs.shape[0] and re_[q0] <= a[i]:
            q0 += 1
        q = q0
        tot = 0
        covered = 0
        while q < rs.shape[0] and rs[q] < b[i]:
            ov = min(b[i], re_[q]) - max(a[i], rs[q])
            if ov > 0:
                cap = j - rk[q]
                tot += (g[i] if g[i] < cap else cap) * ov
                covered += ov
            q += 1
        if covered:
            out[i] = (tot + g[i] * (b[i] - a[i] - covered)) // (b[i] - a[i])
    return out


def region_arrays(t: pa.Table) -> dict:
    def col(name, fill=0):
        c = t.column(name)
        if c.null_count:
            c = c.fill_null(fill)
        return c.to_numpy(zero_copy_only=False).astype(np.int64)

    reg = {
        "run": col("run"),
        "snapshot": col("snapshot"),
        "time_ns": col("time_ns"),
        "target": col("target"),
        "start": col("start"),
        "end": col("end"),
        "nr": col("nr_accesses"),
        "age": col("age"),
    }
    bp = t.column("nr_accesses_bp")
    reg["bp"] = (
        reg["nr"] * 10000 if bp.null_count else bp.to_numpy(zero_copy_only=False).astype(np.int64)
    )
    if t.column("age").null_count:
        raise InputError(
            "the history has no ages (a trace of the old five-field "
            "damon_aggregated format): DAMOS access patterns need them"
        )
    o = np.lexsort((reg["start"], reg["target"], reg["snapshot"], reg["run"]))
    return {k: v[o] for k, v in reg.items()}


def target_pids(source: Source) -> list[int | None]:
    """The pid of each target (None: unknown, or every process's, as replay's ``--range``
    targets without ``--pid`` are): the replay's own target list, else the regions'."""
    rt = (source.meta.get("replay") or {}).get("targets")
    if rt:
        out = [None] * (max(int(x.get("target", i)) for i, x in enumerate(rt)) + 1)
        for i, x in enumerate(rt):
            out[int(x.get("target", i))] = x.get("pid")
        return out
    t = source.regions
    tg = t.column("target").to_numpy(zero_copy_only=False)
    pid = t.column("pid")
    out: list[int | None] = [None] * (int(tg.max()) + 1 if tg.size else 0)
    if pid.null_count < len(pid):
        pv = pid.fill_null(-1).to_numpy(zero_copy_only=False)
        for x in np.unique(tg):
            p = pv[tg == x]
            p = p[p >= 0]
            out[int(x)] = int(p[0]) if p.size else None
    return out


def target_mm_exits(source: Source) -> list[int | None] | None:
    """Per target, the time from which its process has no mm (``mm_exit_ns`` of the
    replay's target list: its leader's EXIT), None where it never lost it; None when
    the history records no exits (a DAMON trace, a replay of a trace without EXIT
    records)."""
    rt = (source.meta.get("replay") or {}).get("targets") or []
    if not any(x.get("mm_exit_ns") is not None for x in rt):
        return None
    out: list[int | None] = [None] * (max(int(x.get("target", i)) for i, x in enumerate(rt)) + 1)
    for i, x in enumerate(rt):
        g = x.get("mm_exit_ns")
        out[int(x.get("target", i))] = None if g is None else int(g)
    return out


def pagemap_table(pagemap, source: Source) -> pa.Table | None:
    if isinstance(pagemap, pa.Table):
        return pagemap
    if pagemap is not None:
        tr = open_trace(pagemap)
        if not tr.has("pagemap"):
            raise InputError(f"{pagemap}: no pagemap table")
        return tr.table("pagemap")
    if source.trace_dir is not None and (source.trace_dir / "pagemap.parquet").exists():
        return open_trace(source.trace_dir).table("pagemap")
    return None


def assign_recorded(recorded: pa.Table | None, reg: dict, runs_meta: dict, aggr_us: int):
    """Recorded events → (run, snapshot) of the snapshot emitted right after them."""
    if recorded is None or recorded.num_rows == 0:
        return {}, 0
    ev = {
        k: recorded.column(k)
        for k in (
            "time_ns",
            "kdamond_pid",
            "scheme",
            "target",
            "start",
            "end",
            "nr_regions",
            "age",
            "nr_accesses",
        )
    }
    t = ev["time_ns"].to_numpy(zero_copy_only=False).astype(np.int64)
    pid = ev["kdamond_pid"].fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    age = ev["age"].to_pylist()
    cols = {
        k: ev[k].fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        for k in ("scheme", "target", "start", "end", "nr_regions", "nr_accesses")
    }
    first = np.ones(reg["run"].size, bool)
    first[1:] = (np.diff(reg["run"]) != 0) | (np.diff(reg["snapshot"]) != 0)
    s_run, s_snap, s_time = reg["run"][first], reg["snapshot"][first], reg["time_ns"][first]
    out: dict = {}
    assigned = np.zeros(t.size, bool)
    gap = aggr_us * 1000 // 2
    for run in np.unique(s_run):
        m = s_run == run
        times, sn = s_time[m], s_snap[m]
        rpid = (runs_meta.get(int(run)) or {}).get("kdamond_pid")
        cand = np.flatnonzero(~assigned)
        if rpid is not None:
            cand = cand[(pid[cand] == rpid) | (pid[cand] < 0)]
        j = np.searchsorted(times, t[cand], side="left")
        ok = j < times.size
        ok[ok] &= (times[j[ok]] - t[cand][ok]) <= gap
        for i, jj in zip(cand[ok], j[ok]):
            key = (int(run), int(sn[jj]))
            out.setdefault(key, []).append(
                (
                    int(cols["scheme"][i]),
                    int(cols["target"][i]),
                    int(cols["start"][i]),
                    int(cols["end"][i]),
                    int(cols["nr_regions"][i]),
                    age[i],
                    int(cols["nr_accesses"][i]),
                )
            )
            assigned[i] = True
    return out, int((~assigned).sum())


def compare_applications(rec_by_step: dict, app_cols: dict, first_excluded: bool) -> dict:
    """Predicted vs recorded applications, per (run, snapshot, scheme): equal lists of
    (start, end, nr_accesses, age) rows, in trace order, count as a match.  The first
    recorded application of each scheme in each run is counted apart (with
    ``first_excluded``: its resume point came from the recording itself)."""
    pred: dict = {}
    for i in range(len(app_cols["start"])):
        key = (app_cols["run"][i], app_cols["snapshot"][i], app_cols["scheme"][i])
        pred.setdefault(key, []).append(
            (
                app_cols["start"][i],
                app_cols["end"][i],
                app_cols["nr_accesses"][i],
                app_cols["age"][i],
            )
        )
    rec: dict = {}
    for (run, snap), evs in rec_by_step.items():
        for e in evs:
            rec.setdefault((run, snap, e[0]), []).append((e[2], e[3], e[6], e[5]))
    firsts = {min(k for k in rec if (k[0], k[2]) == rs) for rs in {(k[0], k[2]) for k in rec}}
    matched = matched_after = rows_matched = rows_recorded = 0
    mismatches = []
    for key, rows in sorted(rec.items()):
        p = pred.get(key, [])
        rows_recorded += len(rows)
        rows_matched += sum(1 for pr, rr in zip(p, rows) if pr == rr)
        if p == rows:
            matched += 1
            if key not in firsts:
                matched_after += 1
        else:
            diff = next(
                (i for i, (pr, rr) in enumerate(zip(p, rows)) if pr != rr), min(len(p), len(rows))
            )
            mismatches.append(
                {
                    "run": key[0],
                    "snapshot": key[1],
                    "scheme": key[2],
                    "recorded_rows": len(rows),
                    "predicted_rows": len(p),
                    "first_difference": diff,
                    "recorded": rows[diff] if diff < len(rows) else None,
                    "predicted": p[diff] if diff < len(p) else None,
                }
            )
    return {
        "recorded": len(rec),
        "predicted": len(pred),
        "matched": matched,
        "first_excluded": first_excluded,
        "recorded_after_first": len(rec) - len(firsts),
        "matched_after_first": matched_after,
        "predicted_only": len(set(pred) - set(rec)),
        "rows_recorded": rows_recorded,
        "rows_matched": rows_matched,
        "mismatches": mismatches,
    }
