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
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ...store.trace import open_trace
from ...units import PAGE_SIZE
from ..compare import compare, load_truth, metrics_json
from ..grid import merge_intervals
from ..history import open_history, replay_meta
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


def open_source(src):
    """Open a region history for streaming (``export.history``)."""
    return open_history(src)


def history_space(hs, key, blobs: T.BlobStore, *, offset_ns: int = 0) -> dict:
    """Everything the page needs to draw one address space of a region history, from two
    passes over its rows (bounded memory: whole snapshots a batch at a time). A sparse
    history is read filled (idle bytes inside its coverage as nr_accesses 0)."""
    where = hs.path or hs.name
    sn = hs.snaps
    idx = np.flatnonzero(sn["key"].to_numpy() == key)
    S = len(idx)
    local = np.full(len(sn), -1, np.int64)
    local[idx] = np.arange(S)
    t0s = sn["t0"].to_numpy(np.int64)[idx] + int(offset_ns)
    t1s = sn["t1"].to_numpy(np.int64)[idx] + int(offset_ns)
    # pass 1: the address ranges held, the heat profile, the address unit
    segs = np.zeros((0, 2), np.uint64)
    heat = T.HeatProfile()
    n_rows = 0
    unit = PAGE_SIZE
    page = np.uint64(PAGE_SIZE)
    for b in hs.iter_batches(key=key):
        n_rows += len(b)
        segs = merge_intervals(
            np.concatenate([segs[:, 0], b.start]), np.concatenate([segs[:, 1], b.end])
        )
        heat.add(b.start, b.end, b.nr_accesses)
        if unit == PAGE_SIZE and ((b.start % page).any() or (b.end % page).any()):
            unit = 1
    if n_rows == 0:
        raise InputError(f"{where}: no region of {key} in the history")
    axis = T.Axis.of(segs)
    _check_safe("address", where, int(segs[-1, 1]))
    _check_safe("time", where, int(t1s.max()))
    spacing = float(np.median(t1s - t0s)) if S else 1.0
    grid = T.choose_grid(int(t0s.min()), int(t1s.max()), axis.length, n_rows, spacing, unit)
    vmax = float(hs.max_nr_accesses)
    # pass 2: tiles, row chunks, series
    pb = T.PyramidBuilder(grid, t0s, t1s)
    enc = T.ChunkEncoder(S, unit, blobs)
    ser = T.SeriesBuilder(S, max(vmax, float(hs.nr_accesses_max)))
    for b in hs.iter_batches(key=key):
        snap = local[b.row_snap]
        x0, x1 = axis.rows_to_x(b.start, b.end)
        nr = b.nr_accesses
        pb.add(snap, x0, x1, nr)
        enc.add(snap, b.start, b.end, nr.astype(np.uint64), b.age, x0)
        ser.add(snap, b.start, b.end, nr)
    levels = {}
    for i, j, sums, cover in pb.levels():
        levels[f"{i},{j}"] = T.encode_tiles(T.quantize(sums, cover, vmax), i, j, blobs)
    del pb
    chunks = enc.finish()
    snaps_blob = blobs.add(
        np.concatenate(
            [
                t0s.astype(np.float64),
                t1s.astype(np.float64),
                sn["snapshot"].to_numpy(np.float64)[idx],
                sn["run"].to_numpy(np.float64)[idx],
            ]
        ).tobytes()
    )
    series_blob = blobs.add(np.concatenate([ser.wss, ser.regions, ser.total]).tobytes())
    hist_blob = blobs.add(ser.hist.tobytes())
    # the first view: where the accesses are, when they fill little of the axis
    view = [0, axis.length]
    hot = heat.ranges()
    if len(hot):
        hx0 = axis.to_x(hot[:, 0])
        hx1 = axis.to_x(hot[:, 1] - np.uint64(1)) + 1
        ok = (hx0 >= 0) & (hx1 > 0)
        if ok.any():
            a, c = int(hx0[ok].min()), int(hx1[ok].max())
            if c - a < 0.5 * axis.length:
                pad = max(unit, (c - a) // 10)
                view = [max(0, a - pad), min(axis.length, c + pad)]
    label = f"{hs.key_column} {int(key)}"
    return {
        "key": int(key),
        "label": label,
        "segments": axis.to_json(),
        "length": axis.length,
        "t0": int(t0s.min()),
        "t1": int(t1s.max()),
        "unit": unit,
        "vmax": vmax,
        "vmax_source": hs.max_source,
        "rows": int(n_rows),
        "snaps": S,
        "aggr_ns": float(hs.aggr_ns_measured),
        "snaps_blob": snaps_blob,
        "series_blob": series_blob,
        "hist": {"blob": hist_blob, "bins": int(ser.nbins), "width": ser.width},
        "grid": grid.to_json(),
        "levels": levels,
        "chunks": [c.to_json() for c in chunks],
        "view": view,
    }


def history_layer(hs, blobs: T.BlobStore, *, offset_ns: int = 0) -> dict:
    spaces = [history_space(hs, k, blobs, offset_ns=offset_ns) for k in hs.keys]
    info = {
        "name": hs.name,
        "rows": int(sum(s["rows"] for s in spaces)),
        "file_rows": int(hs.rows),
        "sample_us": hs.sample_us,
        "aggr_us": hs.aggr_us,
        "sparse": bool(hs.sparse),
    }
    return {"kind": "regions", "info": info, "spaces": spaces}


# ----------------------------------------------------------------------------------
# diff
# ----------------------------------------------------------------------------------
def diff_layer(a, b, blobs: T.BlobStore, **compare_opts) -> dict:
    """compare(a, b): its metrics, and its common grid per target pair (rates of both
    sides; cells that either side covers less than half of are left empty)."""
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
            # the bins are laid over the common ranges: collapse only the gaps between ranges
            rng = merge_intervals(bs, be)
            axis = T.Axis.of(rng)
            _check_safe("address", "compare", int(rng[-1, 1]) if len(rng) else 0)
            bx0 = axis.to_x(bs)
            spaces.append(
                {
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
                    "bins_blob": blobs.add(
                        np.concatenate(
                            [bs.astype(np.float64), be.astype(np.float64), bx0.astype(np.float64)]
                        ).tobytes()
                    ),
                    "rate_a_blob": blobs.add(ra.tobytes()),
                    "rate_b_blob": blobs.add(rb.tobytes()),
                }
            )
    return {"kind": "diff", "metrics": metrics, "spaces": spaces}


# ----------------------------------------------------------------------------------
# samples
# ----------------------------------------------------------------------------------
def find_samples_trace(src, hs, samples_from=None):
    """The trace directory whose samples the report draws: ``samples_from``, SRC itself
    when it is a trace directory with samples, else the one its replay metadata names."""
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

    rep = replay_meta(hs.meta)
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
    msg = (
        f"{src}: no samples table found (SRC is not a trace directory with samples and "
        "its metadata names none that exists); give "
    )
    raise InputError(msg + "samples_from=DIR", cli_message=msg + "--samples-from DIR")


def samples_layer(
    tr,
    spaces: list[dict],
    phys: bool,
    blobs: T.BlobStore,
    *,
    max_points: int = 100_000,
    seed: int = 0,
) -> dict:
    """A uniform random subset (at most ``max_points``) of the samples that fall inside
    a space's segments, streamed in batches."""
    col = "phys_addr" if phys else "addr"
    rng = np.random.default_rng(seed)
    keep = None  # DataFrame of the current subset, with a random key
    total = 0
    inside_total = 0
    axes = {
        s["key"]: T.Axis.of(
            np.array([[a, b] for a, b, _ in s["segments"]], np.uint64).reshape(-1, 2)
        )
        for s in spaces
    }
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
        d = pd.DataFrame(
            {
                "time_ns": df["time_ns"].to_numpy(np.int64)[m],
                "addr": addr[m],
                "x": xs[m],
                "space": space[m],
                "pid": df["pid"].fillna(-1).to_numpy(np.int64)[m],
                "event": df["event"].astype(str).to_numpy()[m],
                "level": df["mem_level"]
                .astype(object)
                .where(df["mem_level"].notna(), "")
                .astype(str)
                .to_numpy()[m],
            }
        )
        inside_total += len(d)
        d["r"] = rng.random(len(d))
        keep = d if keep is None else pd.concat([keep, d], ignore_index=True)
        if len(keep) > max_points:
            keep = keep.nsmallest(max_points, "r")
    if keep is None or not len(keep):
        return {
            "kind": "samples",
            "n": 0,
            "total": total,
            "inside": 0,
            "column": col,
            "events": [],
            "pids": [],
            "levels": [],
        }
    keep = keep.sort_values("time_ns", kind="stable").reset_index(drop=True)
    _check_safe("sample address", "samples", int(keep["addr"].max()))
    events = sorted(keep["event"].unique().tolist())
    pids = sorted(int(p) for p in keep["pid"].unique())
    levels = sorted(keep["level"].unique().tolist())
    ev = np.searchsorted(events, keep["event"].to_numpy())
    pi = np.searchsorted(pids, keep["pid"].to_numpy())
    lv = np.searchsorted(levels, keep["level"].to_numpy())
    blob = blobs.add(
        np.concatenate(
            [
                keep["time_ns"].to_numpy(np.float64),
                keep["addr"].to_numpy(np.float64),
                keep["x"].to_numpy(np.float64),
                keep["space"].to_numpy(np.float64),
                ev.astype(np.float64),
                pi.astype(np.float64),
                lv.astype(np.float64),
            ]
        ).tobytes()
    )
    return {
        "kind": "samples",
        "n": int(len(keep)),
        "total": int(total),
        "inside": int(inside_total),
        "column": col,
        "events": events,
        "pids": pids,
        "levels": levels,
        "blob": blob,
    }


# ----------------------------------------------------------------------------------
# DAMOS applications and ground truth
# ----------------------------------------------------------------------------------
def read_damos(path) -> pd.DataFrame:
    tr = open_trace(path)
    p = Path(path)
    name = p.stem if p.is_file() else "damos_apply"
    if not tr.has(name):
        raise InputError(
            f"{path}: holds no damos_apply table (ingest a DAMON trace with "
            "damos_before_apply events, or run tracedamon damos)"
        )
    df = tr.df(name)
    need = ["time_ns", "scheme", "target", "start", "end", "nr_accesses"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{path}: not a damos_apply table: missing column(s) {', '.join(missing)}")
    return df


def damos_layer(
    df: pd.DataFrame,
    hs,
    spaces: list[dict],
    blobs: T.BlobStore,
    *,
    max_marks: int = 200_000,
    seed: int = 0,
) -> dict:
    """Scheme applications placed in the spaces they act on (by target index; in a
    pid-keyed history the target's pid), at most ``max_marks`` (a uniform subset)."""
    # DAMON target index -> space key
    tk = hs.snaps.groupby("target")["key"].first().to_dict() if len(hs.snaps) else {}
    keys = {s["key"]: s for s in spaces}
    total = len(df)
    tgt = df["target"].to_numpy(np.int64)
    space = (
        np.array([tk.get(int(t), -(10**18)) for t in tgt], np.int64)
        if total
        else np.zeros(0, np.int64)
    )
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
    age = (
        pd.to_numeric(d["age"], errors="coerce").to_numpy(np.float64)
        if "age" in d
        else np.full(len(d), np.nan)
    )
    blob = blobs.add(
        np.concatenate(
            [
                d["time_ns"].to_numpy(np.float64),
                st[idx].astype(np.float64),
                en[idx].astype(np.float64),
                x[idx].astype(np.float64),
                space[idx].astype(np.float64),
                d["scheme"].to_numpy(np.float64),
                d["nr_accesses"].to_numpy(np.float64),
                np.where(np.isfinite(age), age, -1.0),
            ]
        ).tobytes()
    )
    return {
        "kind": "damos",
        "n": int(len(d)),
        "total": int(total),
        "placed": int(ok.sum()),
        "schemes": schemes,
        "blob": blob,
    }


def truth_layer(path, spaces: list[dict]) -> dict:
    tr = load_truth(path)
    out = []
    for s in spaces:
        ax = T.Axis.of(np.array([[a, b] for a, b, _ in s["segments"]], np.uint64).reshape(-1, 2))
        st = tr["start"].to_numpy(np.uint64)
        en = tr["end"].to_numpy(np.uint64)
        x0 = ax.to_x(st)
        x1 = ax.to_x(en - np.uint64(1)) + 1
        m = (x0 >= 0) & (x1 > 0)
        out.append(
            {
                "key": s["key"],
                "ranges": [
                    [int(a), int(b), int(c), int(d), str(lab)]
                    for a, b, c, d, lab in zip(
                        st[m], en[m], x0[m], x1[m], tr["label"].to_numpy()[m]
                    )
                ],
            }
        )
    labels = sorted(set(str(v) for v in tr["label"]))
    return {
        "kind": "truth",
        "n": int(len(tr)),
        "labels": labels,
        "spaces": out,
        "name": Path(path).name if isinstance(path, (str, Path)) else "truth",
    }
