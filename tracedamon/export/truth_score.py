"""Scoring a region history against ground truth: address ranges labelled hot, warm or
cold (:func:`load_truth`), per byte and exactly (:func:`score_truth`), and per snapshot
(:func:`truth_timeline`). Histories are streamed; a sparse one reads as its dense
original."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, TraceFormatError
from .grid import raster_stream
from .history import as_source
from .overlay import (
    DEFAULT_THRESHOLDS,
    clean as _clean,
    group_sum,
    hot_set,
    prf,
    wpearson,
    wspearman,
)

TRUTH_LEVEL = {"hot": 1.0, "warm": 0.5, "cold": 0.0}


# ----------------------------------------------------------------------------------
# ground truth
# ----------------------------------------------------------------------------------
def _label_class(label: str) -> str | None:
    m = re.match(r"\s*(hot|warm|cold)", str(label).lower())
    return m.group(1) if m else None


def _int(v) -> int:
    if isinstance(v, (int, np.integer)):
        return int(v)
    s = str(v).strip().replace(",", "").replace("_", "")
    return int(s, 0)


def load_truth(src) -> pd.DataFrame:
    """Read ground-truth address ranges: columns ``start, end, label`` (label hot,
    warm or cold, optionally followed by anything, e.g. ``cold0``).

    Accepts a DataFrame, a CSV file with a header (decimal or ``0x`` hex values), or
    a JSON file holding a list of ``{"start", "end", "label"}`` objects (or
    ``{"ranges": [...]}``). Overlapping ranges are an error; adjacent ranges of the
    same label are kept apart (their areas may differ)."""
    if isinstance(src, pd.DataFrame):
        df = src.copy()
        where = "truth"
        rows = [(i + 2, r) for i, r in enumerate(df.to_dict("records"))]
    else:
        p = Path(src)
        where = str(p)
        if not p.exists():
            raise InputError(f"{p}: no such file")
        text = p.read_text(errors="replace")
        rows = []
        if text.lstrip().startswith(("[", "{")):
            try:
                data = json.loads(text)
            except ValueError as e:
                raise TraceFormatError(p, f"not valid JSON ({e.msg})", line=e.lineno) from None
            if isinstance(data, dict):
                data = data.get("ranges")
            if not isinstance(data, list):
                raise TraceFormatError(p, "expected a list of {start, end, label} objects")
            rows = [(i + 1, r) for i, r in enumerate(data)]
        else:
            delim = "\t" if text.count("\t") > text.count(",") else ","
            reader = csv.reader(io.StringIO(text), delimiter=delim)
            header = None
            for ln, rec in enumerate(reader, start=1):
                if not rec or not "".join(rec).strip():
                    continue
                names = [h.strip().lstrip("#").strip().lower() for h in rec]
                if header is None and {"start", "end", "label"} <= set(names):
                    header = names  # the header (it may be commented: "# start,...")
                    continue
                if rec[0].lstrip().startswith("#"):
                    continue  # a comment line
                if header is None:
                    raise TraceFormatError(
                        p,
                        "no CSV header with start, end and label before the first range",
                        line=ln,
                    )
                rows.append((ln, dict(zip(header, rec))))
    out = []
    for ln, r in rows:
        if not isinstance(r, dict):
            raise TraceFormatError(where, "expected an object with start, end, label", line=ln)
        try:
            s, e = _int(r["start"]), _int(r["end"])
            lab = str(r["label"]).strip()
        except (KeyError, ValueError, TypeError) as ex:
            raise TraceFormatError(where, f"bad truth range ({ex})", line=ln) from None
        cls = _label_class(lab)
        if cls is None:
            raise TraceFormatError(where, f"label {lab!r} is not hot, warm or cold", line=ln)
        if e <= s or s < 0:
            raise TraceFormatError(where, f"empty or negative range {s}-{e}", line=ln)
        out.append((s, e, cls, lab, ln))
    if not out:
        raise InputError(f"{where}: no truth ranges")
    df = pd.DataFrame(out, columns=["start", "end", "label", "area", "line"])
    df = df.sort_values("start", kind="stable").reset_index(drop=True)
    st, en = df["start"].to_numpy(), df["end"].to_numpy()
    bad = np.flatnonzero(st[1:] < en[:-1])
    if len(bad):
        raise TraceFormatError(
            where,
            f"truth ranges overlap ({st[bad[0] + 1]:#x} starts before {en[bad[0]]:#x})",
            line=int(df["line"].iat[bad[0] + 1]),
        )
    df["start"] = df["start"].astype(np.uint64)
    df["end"] = df["end"].astype(np.uint64)
    return df.drop(columns=["line"])


def _pairs_in_ranges(st, en, rs, re_):
    """(row, range) pairs of rows [st, en) and sorted disjoint ranges [rs, re_) that
    overlap, with the overlap's bounds."""
    j0 = np.searchsorted(re_, st, side="right")
    j1 = np.searchsorted(rs, en, side="left")
    cnt = np.maximum(j1 - j0, 0)
    P = int(cnt.sum())
    row = np.repeat(np.arange(len(st)), cnt)
    j = j0[row] + (np.arange(P) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    lo = np.maximum(st[row], rs[j])
    hi = np.minimum(en[row], re_[j])
    return row, j, lo, hi


def score_truth(
    src,
    truth,
    *,
    t_range: tuple[int, int] | None = None,
    hot_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    acc_thres: float = 1,
    per_snapshot: bool = False,
    offset_ns: int = 0,
) -> dict:
    """Score one region history against ground-truth ranges, per byte, exactly.

    Every byte of the truth ranges gets its heat: its nr_accesses averaged over the
    time a region covered it within ``t_range`` (default: the whole history), and the
    share of ``t_range`` it was covered. Returns a dict: ``labels`` (per label: bytes,
    covered fraction, mean nr_accesses, mean rate, accessed fraction -- all over the
    covered bytes × time), ``areas`` (the same per original area name),
    ``correlation`` (Spearman/Pearson of heat against the truth level hot 1, warm 0.5,
    cold 0, weighted by bytes) and ``hot`` (precision/recall/F1 of the bytes whose
    heat is at least θ × the hottest byte's, against the hot label), the last two over
    the bytes covered at least half the time; with ``per_snapshot``, ``timeline``
    (:func:`truth_timeline`). ``offset_ns`` is added to the history's times. All
    address spaces of the history are scored together (the truth names none).
    """
    hs = as_source(src)
    truth = load_truth(truth)
    off = int(offset_ns)
    t0, t1 = t_range if t_range else (hs.t_start + off, hs.t_end + off)
    if t1 <= t0:
        raise InputError("empty time range for truth scoring")
    ts = truth["start"].to_numpy(np.uint64)
    te = truth["end"].to_numpy(np.uint64)
    T0 = hs.snaps["t0"].to_numpy(np.int64) + off
    T1 = hs.snaps["t1"].to_numpy(np.int64) + off
    dt_snap = np.clip(np.minimum(T1, t1) - np.maximum(T0, t0), 0, None).astype(np.float64)
    parts = []  # address breakpoints -> deltas of (Σ nr·dt, Σ dt, Σ accessed·dt)
    for b in hs.iter_batches(age=False, time_ns=False):
        dt = dt_snap[b.row_snap]
        keep = dt > 0
        if not keep.any():
            continue
        st, en, nr, dt = b.start[keep], b.end[keep], b.nr_accesses[keep], dt[keep]
        row, _, lo, hi = _pairs_in_ranges(st, en, ts, te)
        if not len(row):
            continue
        v = [nr[row] * dt[row], dt[row], (nr[row] >= acc_thres) * dt[row]]
        pts = np.concatenate([lo, hi])
        # this batch's breakpoints, reduced (a region repeated over the snapshots of
        # the batch adds to the same two breakpoints)
        parts.append(_reduce_steps([([pts], [np.concatenate([x, -x]) for x in v])]))
        if sum(len(p[0][0]) for p in parts) > (1 << 21):
            parts = [_reduce_steps(parts)]
    parts.append(([np.concatenate([ts, te])], [np.zeros(2 * len(ts))] * 3))
    (u,), (dh, dc, da) = _reduce_steps(parts)
    H, C, A = np.cumsum(dh)[:-1], np.cumsum(dc)[:-1], np.cumsum(da)[:-1]
    left, right = u[:-1], u[1:]
    j = np.searchsorted(te, left, side="right")
    inside = (j < len(ts)) & (ts[np.minimum(j, len(ts) - 1)] <= left)
    left, right, j = left[inside], right[inside], j[inside]
    H, C, A = H[inside], C[inside], A[inside]
    C = np.where(np.abs(C) < 1e-9, 0.0, C)
    nbytes = (right - left).astype(np.float64)
    T = float(t1 - t0)
    size = (te - ts).astype(np.float64)
    mx = hs.max_nr_accesses
    out: dict[str, Any] = {
        "source": hs.name,
        "time_range_ns": [int(t0), int(t1)],
        "resolution": "exact (per byte)",
        "max_nr_accesses": mx,
        "max_nr_accesses_from": hs.max_source,
        "truth_bytes": float(size.sum()),
        "covered_bytes": float((nbytes * C).sum() / T),
    }

    def group(col):
        res = {}
        codes, names = pd.factorize(truth[col], sort=True)
        seg_code = codes[j]
        for c, lab in enumerate(names):
            m = seg_code == c
            cw = float((nbytes[m] * C[m]).sum())
            sz = float(size[codes == c].sum())
            mean = float((nbytes[m] * H[m]).sum()) / cw if cw > 0 else float("nan")
            res[str(lab)] = {
                "bytes": sz,
                "covered_fraction": _clean(cw / (sz * T)),
                "mean_nr_accesses": _clean(mean),
                "mean_rate": _clean(mean / mx),
                "accessed_fraction": _clean(float((nbytes[m] * A[m]).sum()) / cw)
                if cw > 0
                else None,
            }
        return res

    out["labels"] = group("label")
    out["areas"] = group("area")
    ok = C >= 0.5 * T
    with np.errstate(invalid="ignore", divide="ignore"):
        heat = np.where(C > 0, H / np.where(C > 0, C, 1.0), np.nan)
    lvl = truth["label"].map(TRUTH_LEVEL).to_numpy(float)[j]
    if ok.sum() >= 2:
        out["correlation"] = {
            "spearman": _clean(wspearman(lvl[ok], heat[ok], nbytes[ok])),
            "pearson": _clean(wpearson(lvl[ok], heat[ok], nbytes[ok])),
        }
    else:
        out["correlation"] = {"spearman": None, "pearson": None}
    ref = (truth["label"].to_numpy() == "hot")[j][ok]
    out["hot"] = {str(th): prf(hot_set(heat[ok], th), ref, nbytes[ok]) for th in hot_thresholds}
    if per_snapshot:
        out["timeline"] = truth_timeline(hs, truth, acc_thres=acc_thres, offset_ns=off)
    return out


def _reduce_steps(parts):
    """Breakpoint deltas of several parts summed per distinct breakpoint."""
    pts = np.concatenate([p[0][0] for p in parts])
    nv = len(parts[0][1])
    vals = [np.concatenate([p[1][i] for p in parts]) for i in range(nv)]
    (u,), sums = group_sum([pts], vals)
    return [u], sums


def truth_timeline(src, truth, *, acc_thres: float = 1, offset_ns: int = 0) -> pd.DataFrame:
    """Per snapshot window (the windows' ends of all address spaces): mean nr_accesses
    and accessed fraction of every truth label and area, over the covered bytes."""
    hs = as_source(src)
    truth = load_truth(truth)
    off = int(offset_ns)
    t1 = np.unique(hs.snaps["t1"].to_numpy(np.int64)) + off
    first = int(hs.snaps["t0"].min()) + off
    edges = np.concatenate([[first], t1]).astype(np.int64)
    (sh, sa), cov = raster_stream(
        hs,
        edges,
        truth["start"].to_numpy(np.uint64),
        truth["end"].to_numpy(np.uint64),
        lambda b: [b.nr_accesses, (b.nr_accesses >= acc_thres).astype(float)],
        2,
        offset_ns=off,
        age=False,
    )
    rows = {"t0_ns": edges[:-1], "t1_ns": edges[1:]}
    for col in ("label", "area"):
        for lab, idx in truth.groupby(col).indices.items():
            c = cov[:, idx].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows[f"{lab}_mean_nr_accesses"] = np.where(
                    c > 0, sh[:, idx].sum(axis=1) / c, np.nan
                )
                rows[f"{lab}_accessed_fraction"] = np.where(
                    c > 0, sa[:, idx].sum(axis=1) / c, np.nan
                )
    return pd.DataFrame(rows)
