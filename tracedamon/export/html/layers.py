"""The layers of the HTML report, as JSON-ready dicts plus binary blobs.

* a **history layer** (SRC, and OTHER with ``--diff``): per address space, the
  collapsed address axis, snapshot windows, tile pyramid, row chunks and series
  (see :mod:`.tiles`);
* a **diff layer**: ``compare(a, b)``'s common grid (rates of both sides per cell)
  and its metrics;
* a **samples layer**: raw samples of the trace directory, a uniform random subset
  of bounded size, with event, pid and memory level;
* a **DAMOS layer**: ``damos_apply`` rows (scheme applications);
* a **truth layer**: labelled ground-truth address ranges.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..grid import History, address_unit, coverage, heat_ranges, load_history
from . import tiles as T

MAX_SAFE = (1 << 53) - 1  # addresses and times are JavaScript numbers in the page
BATCH_ROWS = 1 << 20


def _check_safe(what: str, where: str, *values) -> None:
    for v in values:
        if v is not None and int(v) > MAX_SAFE:
            raise InputError(
                f"{where}: {what} {int(v):#x} is above 2^53, which the HTML report cannot "
                "show exactly"
            )


def _space_label(h: History, key) -> str:
    df = h.df
    if "pid" in df and df["pid"].notna().all() and (df["key"] == df["pid"]).all():
        return f"pid {int(key)}"
    return f"target {int(key)}"


def history_space(h: History, key, blobs: T.BlobStore) -> dict:
    """Everything the page needs to draw one address space of a region history."""
    hk = h.for_key(key)
    df = hk.df
    where = h.name
    segs = coverage(hk)
    axis = T.Axis.of(segs)
    _check_safe("address", where, int(segs[-1, 1]) if len(segs) else 0)
    _check_safe("time", where, hk.t_end)
    unit = address_unit(hk)
    S = len(hk.snaps)
    snap = df["snap"].to_numpy(np.int64)
    st = df["start"].to_numpy(np.uint64)
    en = df["end"].to_numpy(np.uint64)
    nr = df["nr_accesses"].to_numpy(np.float64)
    age = df["age"].to_numpy(np.float64)
    x0, x1 = axis.rows_to_x(st, en)
    t0s = hk.snaps["t0"].to_numpy(np.int64)
    t1s = hk.snaps["t1"].to_numpy(np.int64)
    spacing = float(np.median(t1s - t0s)) if S else 1.0
    grid = T.choose_grid(int(t0s.min()), int(t1s.max()), axis.length, len(df), spacing, unit)
    pb = T.PyramidBuilder(grid, t0s, t1s)
    for c0 in range(0, len(df), BATCH_ROWS):
        c1 = min(len(df), c0 + BATCH_ROWS)
        pb.add(snap[c0:c1], x0[c0:c1], x1[c0:c1], nr[c0:c1])
    vmax = float(h.max_nr_accesses)
    levels = {}
    for i, j, s, c in pb.levels():
        levels[f"{i},{j}"] = T.encode_tiles(T.quantize(s, c, vmax), i, j, blobs)
    del pb
    chunks = T.encode_chunks(snap, st, en, nr.astype(np.uint64), age, x0, S, unit, blobs)
    ser = T.snapshot_series(snap, st, en, nr, S, vmax)
    snaps_blob = blobs.add(np.concatenate([
        t0s.astype(np.float64), t1s.astype(np.float64),
        hk.snaps["snapshot"].to_numpy(np.float64), hk.snaps["run"].to_numpy(np.float64),
    ]).tobytes())
    series_blob = blobs.add(np.concatenate([ser["wss"], ser["regions"], ser["total"]]).tobytes())
    hist_blob = blobs.add(ser["hist"].astype(np.float64).tobytes())
    # the first view: where the accesses are, when they fill little of the axis
    view = [0, axis.length]
    hot = heat_ranges(hk)
    if len(hot):
        hx0 = axis.to_x(hot[:, 0])
        hx1 = axis.to_x(hot[:, 1] - np.uint64(1)) + 1
        ok = (hx0 >= 0) & (hx1 > 0)
        if ok.any():
            a, b = int(hx0[ok].min()), int(hx1[ok].max())
            if b - a < 0.5 * axis.length:
                pad = max(unit, (b - a) // 10)
                view = [max(0, a - pad), min(axis.length, b + pad)]
    return {
        "key": int(key),
        "label": _space_label(h, key),
        "segments": axis.to_json(),
        "length": axis.length,
        "t0": int(t0s.min()),
        "t1": int(t1s.max()),
        "unit": unit,
        "vmax": vmax,
        "vmax_source": h.max_source,
        "rows": int(len(df)),
        "snaps": S,
        "aggr_ns": float(h.aggr_ns_measured),
        "snaps_blob": snaps_blob,
        "series_blob": series_blob,
        "hist": {"blob": hist_blob, "bins": int(ser["hist_bins"]), "width": ser["hist_width"]},
        "grid": grid.to_json(),
        "levels": levels,
        "chunks": [c.to_json() for c in chunks],
        "view": view,
    }


def history_layer(h: History, blobs: T.BlobStore) -> dict:
    spaces = [history_space(h, k, blobs) for k in h.keys]
    info = {
        "name": h.name,
        "rows": int(len(h.df)),
        "sample_us": h.sample_us,
        "aggr_us": h.aggr_us,
        "sparse": bool(_accessed_only(h.meta)),
    }
    return {"kind": "regions", "info": info, "spaces": spaces}


def _accessed_only(meta: dict) -> bool:
    def walk(d, depth=0):
        if depth > 5 or not isinstance(d, dict):
            return False
        for k in ("sparse", "accessed_only"):
            if d.get(k) is True:
                return True
        return any(walk(v, depth + 1) for v in d.values() if isinstance(v, dict))

    return walk(meta)


# ----------------------------------------------------------------------------------
# diff
# ----------------------------------------------------------------------------------
def diff_layer(a: History, b: History, blobs: T.BlobStore, **compare_opts) -> dict:
    """compare(a, b): its metrics, and its common grid per target pair (rates of both
    sides; cells that either side covers less than half of are left empty)."""
    from ..compare import compare, metrics_json

    res = compare(a, b, **compare_opts)
    metrics = json.loads(metrics_json(res.metrics))
    for big in ("per_time", "wss_series"):
        metrics.pop(big, None)
    spaces = []
    cells = getattr(res, "cells", None)
    if cells is not None and len(cells):
        for (ka, kb), c in cells.groupby(["target_a", "target_b"], sort=True):
            t0 = np.unique(c["t0_ns"].to_numpy(np.int64))
            t1 = np.unique(c["t1_ns"].to_numpy(np.int64))
            edges = np.concatenate([t0, t1[-1:]]).astype(np.float64)
            bins = c[["start", "end"]].drop_duplicates().sort_values("start")
            bs = bins["start"].to_numpy(np.uint64)
            be = bins["end"].to_numpy(np.uint64)
            ti = np.searchsorted(t0, c["t0_ns"].to_numpy(np.int64))
            bj = np.searchsorted(bs, c["start"].to_numpy(np.uint64))
            valid = c["valid"].to_numpy(bool)
            ra = np.full((len(t0), len(bs)), np.nan, np.float32)
            rb = np.full((len(t0), len(bs)), np.nan, np.float32)
            ra[ti, bj] = np.where(valid, c["rate_a"].to_numpy(np.float64), np.nan)
            rb[ti, bj] = np.where(valid, c["rate_b"].to_numpy(np.float64), np.nan)
            segs = T.Axis.of(np.stack([bs, be], 1) if len(bs) else np.zeros((0, 2)))
            # the bins are laid over the common ranges: collapse only the gaps between ranges
            from ..grid import merge_intervals

            rng = merge_intervals(bs, be)
            axis = T.Axis.of(rng)
            _check_safe("address", "compare", int(rng[-1, 1]) if len(rng) else 0)
            bx0 = axis.to_x(bs)
            spaces.append({
                "key": int(ka),
                "key_b": int(kb),
                "label": f"{int(ka)} vs {int(kb)}",
                "segments": axis.to_json(),
                "length": axis.length,
                "t0": float(edges[0]),
                "t1": float(edges[-1]),
                "nt": int(len(t0)),
                "nb": int(len(bs)),
                "edges_blob": blobs.add(edges.tobytes()),
                "bins_blob": blobs.add(np.concatenate([
                    bs.astype(np.float64), be.astype(np.float64), bx0.astype(np.float64)
                ]).tobytes()),
                "rate_a_blob": blobs.add(ra.tobytes()),
                "rate_b_blob": blobs.add(rb.tobytes()),
            })
            del segs
    return {"kind": "diff", "metrics": metrics, "spaces": spaces}


# ----------------------------------------------------------------------------------
# samples
# ----------------------------------------------------------------------------------
def find_samples_trace(src, h: History, samples_from=None):
    """The trace directory whose samples the report draws: ``samples_from``, SRC itself
    when it is a trace directory with samples, else the one its replay metadata names."""
    from ...trace import open_trace

    if samples_from is not None:
        tr = open_trace(samples_from)
        if not tr.has("samples"):
            raise InputError(f"{samples_from}: holds no samples table")
        return tr
    p = Path(src) if isinstance(src, (str, Path)) else None
    if p is not None and p.is_dir():
        tr = open_trace(p)
        if tr.has("samples"):
            return tr
    trace = None
    rep = h.meta.get("replay") if isinstance(h.meta.get("replay"), dict) else None
    if rep is None and isinstance(h.meta.get("parquet"), dict):
        rep = h.meta["parquet"].get("replay")
    if isinstance(rep, dict):
        trace = (rep.get("input") or {}).get("trace")
    cands = []
    if trace:
        cands.append(Path(trace))
        if p is not None:
            cands.append(p.parent / Path(trace).name)
    for c in cands:
        if c.is_dir() and (c / "samples.parquet").exists():
            return open_trace(c)
    raise InputError(
        f"{src}: no samples table found (SRC is not a trace directory with samples and its "
        "metadata names none that exists); give --samples-from DIR"
    )


def samples_layer(tr, spaces: list[dict], phys: bool, blobs: T.BlobStore, *,
                  max_points: int = 100_000, seed: int = 0) -> dict:
    """A uniform random subset (at most ``max_points``) of the samples that fall inside
    a space's segments, streamed in batches."""
    col = "phys_addr" if phys else "addr"
    rng = np.random.default_rng(seed)
    keep = None  # DataFrame of the current subset, with a random key
    total = 0
    inside_total = 0
    axes = {s["key"]: T.Axis.of(np.array([[a, b] for a, b, _ in s["segments"]], np.uint64)
                                .reshape(-1, 2)) for s in spaces}
    by_pid = not phys and all(s["label"].startswith("pid ") for s in spaces)
    cols = ["time_ns", "pid", "event", col, "mem_level"]
    for t in tr.iter_tables("samples", columns=cols):
        df = t.to_pandas()
        total += len(df)
        df = df[df[col].notna() & df["time_ns"].notna()]
        if not len(df):
            continue
        addr = df[col].to_numpy(np.uint64)
        space = np.full(len(df), -1, np.int64)
        xs = np.full(len(df), -1, np.int64)
        for k, ax in axes.items():
            sel = np.ones(len(df), bool)
            if by_pid:
                sel = df["pid"].to_numpy() == k
            x = np.where(sel, ax.to_x(addr), -1)
            m = (x >= 0) & (space < 0)
            space[m] = k
            xs[m] = x[m]
        m = space >= 0
        if not m.any():
            continue
        d = pd.DataFrame({
            "time_ns": df["time_ns"].to_numpy(np.int64)[m],
            "addr": addr[m],
            "x": xs[m],
            "space": space[m],
            "pid": df["pid"].fillna(-1).to_numpy(np.int64)[m],
            "event": df["event"].astype(str).to_numpy()[m],
            "level": df["mem_level"].astype(object).where(df["mem_level"].notna(), "")
            .astype(str).to_numpy()[m],
        })
        inside_total += len(d)
        d["r"] = rng.random(len(d))
        keep = d if keep is None else pd.concat([keep, d], ignore_index=True)
        if len(keep) > max_points:
            keep = keep.nsmallest(max_points, "r")
    if keep is None or not len(keep):
        return {"kind": "samples", "n": 0, "total": total, "inside": 0, "column": col,
                "events": [], "pids": [], "levels": []}
    keep = keep.sort_values("time_ns", kind="stable").reset_index(drop=True)
    _check_safe("sample address", "samples", int(keep["addr"].max()))
    events = sorted(keep["event"].unique().tolist())
    pids = sorted(int(p) for p in keep["pid"].unique())
    levels = sorted(keep["level"].unique().tolist())
    ev = np.searchsorted(events, keep["event"].to_numpy())
    pi = np.searchsorted(pids, keep["pid"].to_numpy())
    lv = np.searchsorted(levels, keep["level"].to_numpy())
    blob = blobs.add(np.concatenate([
        keep["time_ns"].to_numpy(np.float64), keep["addr"].to_numpy(np.float64),
        keep["x"].to_numpy(np.float64), keep["space"].to_numpy(np.float64),
        ev.astype(np.float64), pi.astype(np.float64), lv.astype(np.float64),
    ]).tobytes())
    return {"kind": "samples", "n": int(len(keep)), "total": int(total),
            "inside": int(inside_total), "column": col, "events": events, "pids": pids,
            "levels": levels, "blob": blob}


# ----------------------------------------------------------------------------------
# DAMOS applications and ground truth
# ----------------------------------------------------------------------------------
def read_damos(path) -> pd.DataFrame:
    from ...trace import open_trace

    tr = open_trace(path)
    p = Path(path)
    name = p.stem if p.is_file() else "damos_apply"
    if not tr.has(name):
        raise InputError(f"{path}: holds no damos_apply table (ingest a DAMON trace with "
                         "damos_before_apply events, or run tracedamon damos)")
    df = tr.df(name)
    need = ["time_ns", "scheme", "target", "start", "end", "nr_accesses"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{path}: not a damos_apply table: missing column(s) "
                         f"{', '.join(missing)}")
    return df


def damos_layer(df: pd.DataFrame, h: History, spaces: list[dict], blobs: T.BlobStore, *,
                max_marks: int = 200_000, seed: int = 0) -> dict:
    """Scheme applications placed in the spaces they act on (by target index; in a
    pid-keyed history the target's pid), at most ``max_marks`` (a uniform subset)."""
    # DAMON target index -> space key
    tk = h.df.groupby("target")["key"].first().to_dict() if len(h.df) else {}
    keys = {s["key"]: s for s in spaces}
    total = len(df)
    tgt = df["target"].to_numpy(np.int64)
    space = np.array([tk.get(int(t), -10**18) for t in tgt], np.int64) if total else \
        np.zeros(0, np.int64)
    ok = np.isin(space, list(keys))
    x = np.full(total, -1, np.int64)
    st = df["start"].to_numpy(np.uint64)
    en = df["end"].to_numpy(np.uint64)
    for k, s in keys.items():
        ax = T.Axis.of(np.array([[a, b] for a, b, _ in s["segments"]], np.uint64).reshape(-1, 2))
        m = ok & (space == k)
        x[m] = ax.to_x(st[m])
    ok &= x >= 0
    idx = np.flatnonzero(ok)
    if len(idx) > max_marks:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_marks, replace=False))
    d = df.iloc[idx]
    schemes = sorted(int(v) for v in d["scheme"].unique()) if len(d) else []
    if len(d):
        _check_safe("DAMOS address", "damos", int(en[idx].max()))
    age = pd.to_numeric(d["age"], errors="coerce").to_numpy(np.float64) if "age" in d else \
        np.full(len(d), np.nan)
    blob = blobs.add(np.concatenate([
        d["time_ns"].to_numpy(np.float64), st[idx].astype(np.float64), en[idx].astype(np.float64),
        x[idx].astype(np.float64), space[idx].astype(np.float64),
        d["scheme"].to_numpy(np.float64), d["nr_accesses"].to_numpy(np.float64),
        np.where(np.isfinite(age), age, -1.0),
    ]).tobytes())
    return {"kind": "damos", "n": int(len(d)), "total": int(total),
            "placed": int(ok.sum()), "schemes": schemes, "blob": blob}


def truth_layer(path, spaces: list[dict]) -> dict:
    from ..compare import load_truth

    tr = load_truth(path)
    out = []
    for s in spaces:
        ax = T.Axis.of(np.array([[a, b] for a, b, _ in s["segments"]], np.uint64).reshape(-1, 2))
        st = tr["start"].to_numpy(np.uint64)
        en = tr["end"].to_numpy(np.uint64)
        x0 = ax.to_x(st)
        x1 = ax.to_x(en - np.uint64(1)) + 1
        m = (x0 >= 0) & (x1 > 0)
        out.append({"key": s["key"],
                    "ranges": [[int(a), int(b), int(c), int(d), str(lab)] for a, b, c, d, lab in
                               zip(st[m], en[m], x0[m], x1[m], tr["label"].to_numpy()[m])]})
    labels = sorted(set(str(v) for v in tr["label"]))
    return {"kind": "truth", "n": int(len(tr)), "labels": labels, "spaces": out,
            "name": Path(path).name if isinstance(path, (str, Path)) else "truth"}


def math_ok(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
