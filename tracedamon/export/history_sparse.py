"""Sparse region histories (rows with nr_accesses 0 left out): the coverage in their
metadata, the idle bytes put back into a snapshot (:func:`_fill_group`) and the snapshots
without any access put back (:func:`_add_idle_snapshots`). Used by
:mod:`tracedamon.export.history`; the contract is described there."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import TraceFormatError
from .history_rows import HistoryWarning

if TYPE_CHECKING:
    from .history import Batch


def _parse_coverage(raw, where: str) -> dict:
    """{target: (froms int64 array, [ranges (n, 2) uint64 per from])} of a coverage list."""
    if not isinstance(raw, list):
        raise TraceFormatError(where, "metadata: coverage is not a list")
    per: dict[int, dict[int, list]] = {}
    for i, e in enumerate(raw):
        if (
            not isinstance(e, (list, tuple))
            or len(e) != 4
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in e)
        ):
            raise TraceFormatError(
                where, f"metadata: coverage entry {i} is not [snapshot_from, target, start, end]"
            )
        k, t, s, en = e
        if s < 0 or en < s or en >= 1 << 64:
            raise TraceFormatError(where, f"metadata: coverage entry {i} has a bad range {s}-{en}")
        per.setdefault(int(t), {}).setdefault(int(k), []).append((s, en))
    out = {}
    for t, by in per.items():
        froms = np.array(sorted(by), np.int64)
        rngs = []
        for k in froms.tolist():
            r = [(s, e) for s, e in by[k] if e > s]
            arr = np.array(r, dtype=np.uint64).reshape(-1, 2)
            rngs.append(_merge(arr[:, 0], arr[:, 1]))
        out[t] = (froms, rngs)
    return out


def _merge(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Union of [s, e) intervals, adjacent ones merged, as an (n, 2) uint64 array."""
    s = np.asarray(s, np.uint64)
    e = np.asarray(e, np.uint64)
    if len(s) == 0:
        return np.zeros((0, 2), np.uint64)
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return np.stack([s[idx], np.maximum.reduceat(e, idx)], axis=1)


def _fill_group(b: "Batch", k0: int, k1: int, cov, where, sa, snaps):
    """Rows of the batch's snapshots k0..k1-1 (sharing coverage ``cov``) with the idle
    bytes of ``cov`` put in as nr_accesses 0 rows."""
    r0, r1 = int(b.offsets[k0]), int(b.offsets[k1])
    st, en = b.start[r0:r1], b.end[r0:r1]
    counts_in = np.diff(b.offsets[k0 : k1 + 1])
    S = k1 - k0
    lid = np.repeat(np.arange(S), counts_in)
    if cov is None or len(cov) == 0:
        if r1 > r0:
            s = snaps[k0 + int(lid[0])]
            raise TraceFormatError(
                where,
                f"target {int(sa['target'][s])} has regions in snapshot "
                f"{int(sa['snapshot'][s])}, outside the coverage in the file's metadata",
            )
        return (
            st,
            en,
            b.nr_accesses[r0:r1],
            b.age[r0:r1],
            b.time_ns[r0:r1],
            b.filled[r0:r1],
            counts_in,
        )
    cs, ce = cov[:, 0], cov[:, 1]
    m = len(cs)
    j = np.searchsorted(cs, st, side="right") - 1
    ok = (j >= 0) & (en <= ce[np.maximum(j, 0)])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        s = snaps[k0 + int(lid[i])]
        raise TraceFormatError(
            where,
            f"region {int(st[i])}-{int(en[i])} of target {int(sa['target'][s])} in "
            f"snapshot {int(sa['snapshot'][s])} lies outside the coverage in the file's "
            "metadata",
        )
    cell = lid.astype(np.int64) * m + j
    n = len(st)
    firstc = np.ones(n, bool)
    firstc[1:] = cell[1:] != cell[:-1]
    lastc = np.ones(n, bool)
    lastc[:-1] = cell[1:] != cell[:-1]
    prev_end = np.empty(n, np.uint64)
    if n:
        prev_end[1:] = en[:-1]
        prev_end[firstc] = cs[j[firstc]]
    g_s = [prev_end, en[lastc]]
    g_e = [st, ce[j[lastc]]]
    g_l = [lid, lid[lastc]]
    empty = np.ones(S * m, bool)
    empty[cell] = False
    ec = np.flatnonzero(empty)
    g_s.append(cs[ec % m])
    g_e.append(ce[ec % m])
    g_l.append(ec // m)
    gs, ge, gl = np.concatenate(g_s), np.concatenate(g_e), np.concatenate(g_l)
    keep = ge > gs
    gs, ge, gl = gs[keep], ge[keep], gl[keep]
    t1 = sa["t1"][snaps[k0:k1]]
    start = np.concatenate([st, gs])
    end = np.concatenate([en, ge])
    loc = np.concatenate([lid, gl])
    o = np.lexsort((start, loc))
    nr = np.concatenate([b.nr_accesses[r0:r1], np.zeros(len(gs))])[o]
    age = np.concatenate([b.age[r0:r1], np.full(len(gs), np.nan)])[o]
    tns = np.concatenate([b.time_ns[r0:r1], t1[gl]])[o]
    filled = np.concatenate([b.filled[r0:r1], np.ones(len(gs), bool)])[o]
    counts = np.bincount(loc, minlength=S)
    return start[o], end[o], nr, age, tns, filled, counts


def _rows_coverage(rows, g) -> dict:
    """An older sparse file's coverage: the union of each target's rows over the run."""
    per: dict[int, list] = {}
    for _, d in rows.chunks(["target", "start", "end"]):
        for t in np.unique(d["target"]).tolist():
            m = d["target"] == t
            u = _merge(d["start"][m], d["end"][m])
            prev = per.get(t)
            if prev is not None:
                u = _merge(
                    np.concatenate([prev[:, 0], u[:, 0]]), np.concatenate([prev[:, 1], u[:, 1]])
                )
            per[t] = u
    out = {}
    for t, u in per.items():
        first = int(g["snapshot"][g["target"] == t].min())
        out[int(t)] = (np.array([min(first, 0)], np.int64), [u])
    return out


def _snapshot_times(present: dict, wanted: np.ndarray, rmeta: dict) -> dict:
    """Times of snapshot numbers ``wanted`` of a replay whose snapshots ``present``
    ({number: time_ns}) are known: the replay's own grid (t0 + (n + 1) × aggregation)
    when every present snapshot lies on it, else interpolated between neighbours."""
    cfg = rmeta.get("config") or {}
    t0 = rmeta.get("t0_ns")
    s_us, a_us = cfg.get("sample_us"), cfg.get("aggr_us")
    known_n = np.array(sorted(present), np.int64)
    known_t = np.array([present[k] for k in known_n.tolist()], np.int64)
    if (
        isinstance(t0, int)
        and s_us
        and a_us
        and not rmeta.get("tune_events")
        and int(a_us) >= int(s_us) > 0
    ):
        step = (int(a_us) // int(s_us)) * int(s_us) * 1000
        if len(known_n) == 0 or (t0 + (known_n + 1) * step == known_t).all():
            return {int(k): int(t0 + (k + 1) * step) for k in wanted.tolist()}
    if len(known_n) == 0:
        return {}
    if len(known_n) == 1:
        step = float(a_us) * 1000 if a_us else 0.0
        return {int(k): int(round(known_t[0] + (k - known_n[0]) * step)) for k in wanted.tolist()}
    t = np.interp(wanted, known_n, known_t)
    # beyond either end: the mean spacing
    slope = (known_t[-1] - known_t[0]) / (known_n[-1] - known_n[0])
    t = np.where(wanted < known_n[0], known_t[0] + (wanted - known_n[0]) * slope, t)
    t = np.where(wanted > known_n[-1], known_t[-1] + (wanted - known_n[-1]) * slope, t)
    return {int(k): int(round(v)) for k, v in zip(wanted.tolist(), t.tolist())}


def _add_idle_snapshots(
    snaps: pd.DataFrame, coverage: dict, rmeta: dict, meta: dict, all_pid: bool, where: str
) -> pd.DataFrame:
    """A sparse history's snapshots with no row (nothing accessed), put back: for each
    run and target, every snapshot number of the run at which the target's coverage is
    not empty."""
    if not coverage:
        return snaps
    add = []
    tmeta = {
        int(t["target"]): t.get("pid")
        for t in rmeta.get("targets") or []
        if isinstance(t, dict) and isinstance(t.get("target"), int)
    }
    n_replay = rmeta.get("snapshots")
    for run, gr in snaps.groupby("run", sort=True):
        present = dict(zip(gr["snapshot"].tolist(), gr["t1"].tolist()))
        lo = int(gr["snapshot"].min())
        hi = int(gr["snapshot"].max())
        if isinstance(n_replay, int) and len(snaps["run"].unique()) == 1:
            lo, hi = 0, max(hi, n_replay - 1)
        numbers = np.arange(min(lo, 0) if isinstance(n_replay, int) else lo, hi + 1)
        times = None
        for t, (froms, rngs) in coverage.items():
            have = set(gr.loc[gr["target"] == t, "snapshot"].tolist())
            i = np.searchsorted(froms, numbers, side="right") - 1
            ok = i >= 0
            nonempty = np.array([len(rngs[k]) > 0 for k in range(len(rngs))], bool)
            ok[ok] &= nonempty[i[ok]]
            missing = [k for k in numbers[ok].tolist() if k not in have]
            if not missing:
                continue
            if times is None:
                times = _snapshot_times(present, numbers, rmeta)
            rows_t = gr[gr["target"] == t]
            if len(rows_t):
                pid, pid_ok = int(rows_t["pid"].iat[0]), bool(rows_t["pid_ok"].iat[0])
            else:
                p = tmeta.get(t)
                pid, pid_ok = (int(p), True) if isinstance(p, int) else (0, False)
            if all_pid and not pid_ok:
                warnings.warn(
                    f"{where}: target {t} has no accessed region and no known pid: "
                    "its idle snapshots are left out",
                    HistoryWarning,
                    stacklevel=3,
                )
                continue
            key = pid if all_pid else t
            # stream position: after the last snapshot of this key (else of any key) that
            # ends no later
            same = (
                snaps[(snaps["run"] == run) & (snaps["key"] == key)]
                if all_pid
                else snaps[(snaps["run"] == run) & (snaps["target"] == t)]
            )
            ref = same if len(same) else snaps[snaps["run"] == run]
            rt = ref["t1"].to_numpy()
            ro = ref["order"].to_numpy()
            so = np.argsort(rt, kind="stable")
            for k in missing:
                tk = times.get(k)
                if tk is None:
                    continue
                i = int(np.searchsorted(rt[so], tk, side="right")) - 1
                pos = (ro[so][i] + 0.5 + k * 1e-9) if i >= 0 else (ro.min() - 0.5 + k * 1e-9)
                add.append(
                    {
                        "key": key,
                        "run": run,
                        "target": t,
                        "pid": pid,
                        "pid_ok": pid_ok,
                        "snapshot": k,
                        "t1": tk,
                        "rows": 0,
                        "nr_max": 0.0,
                        "first": -1,
                        "synthetic": True,
                        "order": pos,
                    }
                )
    if not add:
        return snaps
    return pd.concat([snaps, pd.DataFrame(add)], ignore_index=True)
