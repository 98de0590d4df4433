"""Compare two region histories (and score them against a ground truth).

``compare(a, b)`` puts two region histories — a replay and a real DAMON trace, two
replays with other parameters, two DAMON traces — on one time × address grid,
restricted to the address ranges both cover and to the time both span, and
measures how far apart they are. ``a`` is the *reference*, ``b`` the *candidate*.

Grid (chosen automatically, each overridable):

* address ranges: those both sides cover, less the long stretches neither side
  ever saw accessed (``focus="active"``, see :func:`compare`);
* address bins: ``unit × 2^k`` bytes (unit 4096 when every region boundary is page
  aligned), the smallest giving at most ``max_addr_bins`` bins over the common
  ranges; bins never straddle a gap between ranges;
* time bins: the longer of the two aggregation intervals (so every cell holds at
  least one snapshot of each side), widened to at most ``max_time_bins`` bins.

Per cell and side: the area-weighted mean ``nr_accesses`` (*heat*), the accessed
fraction (``nr_accesses >= acc_thres``), the mean age in ns (``age`` × the median
spacing of the side's snapshots) and the covered fraction. A cell counts when both sides cover at
least half of it. Every metric weights cells by their area (bytes × ns).

Metrics (``CompareResult.metrics``):

``heat``
    Spearman and Pearson correlation of the two heats; mean absolute and RMS
    difference of the normalised heat (*rate* = nr_accesses / (aggr/sample), or /
    the largest nr_accesses seen when the intervals are unknown).
``hot``
    for each threshold θ in ``hot_thresholds`` (default 0.25, 0.5, 0.75): a cell is
    hot on a side when its heat is > 0 and ≥ θ × that side's hottest cell;
    precision = |hot_a ∩ hot_b| / |hot_b|, recall = |hot_a ∩ hot_b| / |hot_a|, F1.
``wss``
    working-set size (bytes with nr_accesses ≥ acc_thres) per time bin inside the
    common ranges: means, mean absolute error, RMSE, relative error (MAE / mean of
    a), largest error, Pearson correlation of the two series.
``age``
    Spearman correlation of the mean ages, mean and median absolute difference (s).
``regions``
    regions per snapshot (mean/min/max) of each side, overall and inside the
    common ranges.
``per_time``
    heat correlations, mean rate difference and hot F1 (θ = 0.5) per time bin:
    how the agreement evolves (e.g. while adaptive regions settle).
``alignment``
    the offset applied to ``b`` and the best lag found by cross-correlating the two
    total-heat (or WSS) series over candidate lags, with its correlation.

With a ground truth (ranges labelled hot/warm/cold, see :func:`load_truth`) each
side is also scored against it (:func:`score_truth`): mean nr_accesses and
accessed fraction per label, correlation with the truth level (hot 1, warm 0.5,
cold 0), hot precision/recall/F1 against the hot label.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..atomic import COMPARE_METRICS, marked, write_text_atomic
from ..errors import ConfigError, InputError, TraceFormatError
from .grid import (
    PAGE,
    History,
    active_ranges,
    address_unit,
    auto_bin_bytes,
    coverage,
    guide_ranges,
    intersect_intervals,
    load_history,
    mean_grid,
    merge_intervals,
    raster,
    snapshot_stats,
    time_edges,
    uniform_bins,
)

TRUTH_LEVEL = {"hot": 1.0, "warm": 0.5, "cold": 0.0}
DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75)


# ----------------------------------------------------------------------------------
# weighted statistics
# ----------------------------------------------------------------------------------
def _clean(x: float) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if (math.isnan(x) or math.isinf(x)) else x


def wpearson(x, y, w=None) -> float:
    """Weighted Pearson correlation (NaN when either side is constant)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    if len(x) < 2 or w.sum() <= 0:
        return float("nan")
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    dx, dy = x - mx, y - my
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    # relative tolerance: a side that is constant up to rounding has no correlation
    if vx <= 1e-24 * max(1.0, mx * mx) or vy <= 1e-24 * max(1.0, my * my):
        return float("nan")
    return float(np.clip((w * dx * dy).sum() / math.sqrt(vx * vy), -1.0, 1.0))


def wrank(x, w=None) -> np.ndarray:
    """Weighted mid-ranks: the weight below each value plus half the weight of its ties."""
    x = np.asarray(x, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    o = np.argsort(x, kind="mergesort")
    xs, ws = x[o], w[o]
    new = np.ones(len(xs), bool)
    new[1:] = xs[1:] != xs[:-1]
    gid = np.cumsum(new) - 1
    gw = np.bincount(gid, weights=ws)
    below = np.concatenate([[0.0], np.cumsum(gw)[:-1]])
    r = np.empty(len(x))
    r[o] = (below + gw / 2.0)[gid]
    return r


def wspearman(x, y, w=None) -> float:
    """Weighted Spearman correlation: the weighted Pearson of weighted mid-ranks."""
    return wpearson(wrank(x, w), wrank(y, w), w)


def prf(pred: np.ndarray, ref: np.ndarray, w: np.ndarray) -> dict:
    """Weighted precision, recall and F1 of a predicted set against a reference set."""
    tp = float(w[pred & ref].sum())
    pp = float(w[pred].sum())
    rp = float(w[ref].sum())
    p = tp / pp if pp > 0 else float("nan")
    r = tp / rp if rp > 0 else float("nan")
    if pp > 0 and rp > 0:
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    else:
        f = float("nan")
    return {
        "precision": _clean(p),
        "recall": _clean(r),
        "f1": _clean(f),
        "ref_fraction": _clean(rp / w.sum()) if w.sum() > 0 else None,
        "pred_fraction": _clean(pp / w.sum()) if w.sum() > 0 else None,
    }


def hot_mask(heat: np.ndarray, theta: float) -> np.ndarray:
    """Cells whose heat is > 0 and at least ``theta`` × the hottest cell."""
    if len(heat) == 0:
        return np.zeros(0, bool)
    m = float(np.nanmax(heat)) if np.isfinite(heat).any() else 0.0
    if m <= 0:
        return np.zeros(len(heat), bool)
    return (heat > 0) & (heat >= theta * m)


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
                        "no CSV header with start, end and label before " "the first range",
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
            f"truth ranges overlap ({st[bad[0] + 1]:#x} starts before " f"{en[bad[0]]:#x})",
            line=int(df['line'].iat[bad[0] + 1]),
        )
    df["start"] = df["start"].astype(np.uint64)
    df["end"] = df["end"].astype(np.uint64)
    return df.drop(columns=["line"])


def _truth_raster(h: History, truth: pd.DataFrame, t_edges: np.ndarray, acc_thres: float):
    """Per (time bin, truth range): heat sum, accessed sum, cover (summed over keys
    when the truth does not name one)."""
    bs = truth["start"].to_numpy(np.uint64)
    be = truth["end"].to_numpy(np.uint64)
    nr = h.df["nr_accesses"].to_numpy()
    sums_h = 0.0
    sums_a = 0.0
    cov = 0.0
    for key in h.keys:
        hk = h.for_key(key)
        nrk = hk.df["nr_accesses"].to_numpy()
        (sh, sa), c = raster(hk, t_edges, bs, be, [nrk, (nrk >= acc_thres).astype(float)])
        sums_h, sums_a, cov = sums_h + sh, sums_a + sa, cov + c
    del nr
    return sums_h, sums_a, cov


def split_truth(truth: pd.DataFrame, *, max_bins: int = 65536, unit: int = PAGE) -> pd.DataFrame:
    """The truth ranges cut into equal bins (``unit × 2^k`` bytes, at most about
    ``max_bins`` of them; a range's last bin may be shorter), each keeping its label
    and area, so that hot sets and correlations are judged at that granularity and
    not one whole (possibly huge) truth range at a time."""
    segs = truth[["start", "end"]].to_numpy(np.uint64)
    total = int((segs[:, 1] - segs[:, 0]).sum())
    bb = auto_bin_bytes(total, max_bins, unit)
    bs, be = uniform_bins(segs, bb)
    idx = np.searchsorted(truth["end"].to_numpy(np.uint64), bs, side="right")
    out = truth.iloc[idx].reset_index(drop=True).copy()
    out["start"], out["end"] = bs, be
    return out


def score_truth(
    src,
    truth,
    *,
    t_range: tuple[int, int] | None = None,
    hot_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    acc_thres: float = 1,
    per_snapshot: bool = False,
) -> dict:
    """Score one region history against ground-truth ranges.

    Returns a dict: ``labels`` (per label: bytes, mean nr_accesses, mean rate,
    accessed fraction), ``areas`` (the same per original area name),
    ``correlation`` (byte-weighted Spearman/Pearson of heat vs truth level) and
    ``hot`` (precision/recall/F1 of the hot bins at each threshold against the hot
    label), both over the truth ranges cut into equal bins (:func:`split_truth`)
    and, with ``per_snapshot``, ``timeline``: a DataFrame with one row per
    snapshot window and the mean nr_accesses / accessed fraction of each label.
    Heat is averaged over ``t_range`` (default: the whole history).
    """
    h = load_history(src)
    truth = load_truth(truth)
    unit = address_unit(h)
    if unit == PAGE and ((truth["start"] % PAGE).any() or (truth["end"] % PAGE).any()):
        unit = 1
    bins = split_truth(truth, unit=unit)
    t0, t1 = t_range if t_range else (h.t_start, h.t_end)
    if t1 <= t0:
        raise InputError("empty time range for truth scoring")
    edges = np.array([t0, t1], dtype=np.int64)
    sh, sa, cov = _truth_raster(h, bins, edges, acc_thres)
    sh, sa, cov = sh[0], sa[0], cov[0]
    dt = float(t1 - t0)
    size = (bins["end"].to_numpy() - bins["start"].to_numpy()).astype(float)
    covered = cov / (size * dt)
    ok = covered >= 0.5
    mx = h.max_nr_accesses
    with np.errstate(invalid="ignore", divide="ignore"):
        heat = np.where(cov > 0, sh / cov, np.nan)
    out: dict[str, Any] = {
        "source": h.name,
        "time_range_ns": [int(t0), int(t1)],
        "bin_bytes": int(bins["end"].iat[0] - bins["start"].iat[0]),
        "bins": int(len(bins)),
        "max_nr_accesses": mx,
        "max_nr_accesses_from": h.max_source,
        "truth_bytes": float(size.sum()),
        "covered_bytes": float((cov / dt).sum()),
    }

    def group(col):
        res = {}
        for lab, idx in bins.groupby(col).indices.items():
            c = cov[idx].sum()
            m = float(sh[idx].sum() / c) if c > 0 else float("nan")
            res[str(lab)] = {
                "bytes": float(size[idx].sum()),
                "covered_fraction": _clean(c / (size[idx].sum() * dt)),
                "mean_nr_accesses": _clean(m),
                "mean_rate": _clean(m / mx),
                "accessed_fraction": _clean(sa[idx].sum() / c) if c > 0 else None,
            }
        return res

    out["labels"] = group("label")
    out["areas"] = group("area")
    lvl = bins["label"].map(TRUTH_LEVEL).to_numpy(float)
    w = size * ok
    if ok.sum() >= 2:
        out["correlation"] = {
            "spearman": _clean(wspearman(lvl[ok], heat[ok], w[ok])),
            "pearson": _clean(wpearson(lvl[ok], heat[ok], w[ok])),
        }
    else:
        out["correlation"] = {"spearman": None, "pearson": None}
    ref = (bins["label"].to_numpy() == "hot")[ok]
    out["hot"] = {str(th): prf(hot_mask(heat[ok], th), ref, size[ok]) for th in hot_thresholds}
    if per_snapshot:
        out["timeline"] = truth_timeline(h, truth, acc_thres=acc_thres)
    return out


def truth_timeline(src, truth, *, acc_thres: float = 1) -> pd.DataFrame:
    """Per snapshot window (of the first address space's first run ordering):
    mean nr_accesses and accessed fraction of every truth label and area."""
    h = load_history(src)
    truth = load_truth(truth)
    sn = h.snaps.sort_values("t1")
    t1 = np.unique(sn["t1"].to_numpy(np.int64))
    first = int(sn["t0"].min())
    edges = np.concatenate([[first], t1]).astype(np.int64)
    sh, sa, cov = _truth_raster(h, truth, edges, acc_thres)
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


# ----------------------------------------------------------------------------------
# time alignment
# ----------------------------------------------------------------------------------
def _series(h: History, key_ranges: list, dt: int, phase: int, kind: str, acc_thres: float):
    k0 = (h.t_start - phase) // dt
    t0 = phase + k0 * dt
    edges = time_edges(t0, h.t_end, dt)
    tot = np.zeros(len(edges) - 1)
    cov = np.zeros(len(edges) - 1)
    for key, segs in key_ranges:
        if len(segs) == 0:
            continue
        hk = h.for_key(key)
        nr = hk.df["nr_accesses"].to_numpy()
        v = nr if kind == "heat" else (nr >= acc_thres).astype(float)
        (s,), c = raster(hk, edges, segs[:, 0], segs[:, 1], [v])
        tot += s.sum(axis=1)
        cov += c.sum(axis=1)
    return int(k0), tot / dt, cov > 0


def estimate_lag(
    a: History,
    b: History,
    key_pairs: list,
    ranges: list,
    *,
    dt_ns: float | None = None,
    max_lag_ns: float | None = None,
    kind: str = "heat",
    acc_thres: float = 1,
) -> dict:
    """Best lag (ns to add to ``b``'s times) by cross-correlating the two sides'
    total-heat (``kind="heat"``) or working-set (``"wss"``) series over the common
    address ranges, at candidate lags that are multiples of ``dt_ns`` (default: half
    the shorter aggregation interval), with at least half of the shorter series
    overlapping. Ties go to the smallest lag. Over short recordings a monitoring
    delay (one side finding a hot area later) also shows as a lag: the estimate is
    reported always but applied only with ``align="auto"``."""
    if dt_ns is None:
        dt_ns = max(1.0, min(a.aggr_ns_est, b.aggr_ns_est) / 2.0)
    span = max(a.t_end - a.t_start, b.t_end - b.t_start)
    dt = int(max(1, round(dt_ns), math.ceil(span / 4000)))
    phase = a.t_start
    ka, sa, va = _series(
        a, [(k[0], r) for k, r in zip(key_pairs, ranges)], dt, phase, kind, acc_thres
    )
    kb, sb, vb = _series(
        b, [(k[1], r) for k, r in zip(key_pairs, ranges)], dt, phase, kind, acc_thres
    )
    na, nb = len(sa), len(sb)
    min_overlap = max(3, int(0.5 * min(na, nb)))
    best = None
    results = []
    # b's bin n sits at absolute index kb + n; shifted by lag k it meets a's bin kb + n + k - ka
    kmin = -(kb + nb - ka) + min_overlap
    kmax = (ka + na - kb) - min_overlap
    if max_lag_ns is not None:
        lim = int(max_lag_ns // dt)
        kmin, kmax = max(kmin, -lim), min(kmax, lim)
    for k in range(kmin, kmax + 1):
        off = kb + k - ka  # a index of b's bin 0
        lo = max(0, off)
        hi = min(na, off + nb)
        if hi - lo < min_overlap:
            continue
        xa = sa[lo:hi]
        xb = sb[lo - off : hi - off]
        m = va[lo:hi] & vb[lo - off : hi - off]
        if m.sum() < min_overlap:
            continue
        r = wpearson(xa[m], xb[m])
        if math.isnan(r):
            continue
        results.append((k, r))
        if (
            best is None
            or r > best[1] + 1e-12
            or (abs(r - best[1]) <= 1e-12 and abs(k) < abs(best[0]))
        ):
            best = (k, r)
    out = {"series": kind, "resolution_ns": dt, "candidates": len(results)}
    if best is None:
        out.update({"lag_ns": None, "correlation": None, "correlation_at_zero": None})
        return out
    at0 = dict(results).get(0)
    out.update(
        {
            "lag_ns": int(best[0] * dt),
            "correlation": _clean(best[1]),
            "correlation_at_zero": _clean(at0) if at0 is not None else None,
        }
    )
    return out


# ----------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------
@dataclass
class CompareResult:
    """What :func:`compare` found: ``metrics`` (a JSON-ready dict) and ``cells``
    (one row per grid cell: time and address bounds, both sides' heat, rate,
    accessed fraction, age and coverage, and the rate difference b - a)."""

    metrics: dict
    cells: pd.DataFrame
    wss: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_time: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_json(self, path: str | os.PathLike | None = None, *, force: bool = False) -> str:
        """The metrics as strict JSON text; with ``path``, also written there (with
        tracedamon's marker; ``force=True`` replaces only metrics tracedamon wrote)."""
        if path is None:
            return metrics_json(self.metrics)
        text = metrics_json(marked(COMPARE_METRICS, self.metrics))
        write_text_atomic(Path(path), text + "\n", kind=COMPARE_METRICS, force=force)
        return text

    def write_cells(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        from ..atomic import COMPARE_CELLS
        from ..ingest.writer import write_table_atomic

        t = pa.Table.from_pandas(self.cells, preserve_index=False)
        return write_table_atomic(
            t,
            path,
            metadata={
                "table": "compare_cells",
                "metrics": {k: self.metrics.get(k) for k in ("a", "b", "grid", "alignment")},
            },
            kind=COMPARE_CELLS,
            force=force,
        )


def _sanitize(o):
    """JSON-safe copy: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(o, dict):
        return {str(k): _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_sanitize(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return _clean(float(o))
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, pd.DataFrame):
        return _sanitize(o.to_dict("records"))
    return o


def metrics_json(metrics: dict) -> str:
    """Strict JSON text of a metrics dict (no NaN: unknown values are null)."""
    return json.dumps(_sanitize(metrics), indent=2, allow_nan=False, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return _clean(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pd.DataFrame):
        return o.to_dict("records")
    return str(o)




def match_keys(a: History, b: History) -> list[tuple]:
    """Pairs of address spaces to compare: equal keys (pid, else target index); when
    none are equal and each side has a single address space, those two."""
    ka, kb = a.keys, b.keys
    common = [k for k in ka if k in set(kb)]
    if common:
        return [(k, k) for k in common]
    if len(ka) == 1 and len(kb) == 1:
        return [(ka[0], kb[0])]
    raise InputError(
        f"{a.name} and {b.name} share no monitoring target " f"(targets {ka[:5]} vs {kb[:5]})"
    )


def _region_counts(h: History, key, ranges: np.ndarray, t0: int, t1: int) -> dict:
    hk = h.for_key(key)
    st = snapshot_stats(hk)
    df = hk.df
    inside = np.zeros(len(df), bool)
    s, e = df["start"].to_numpy(), df["end"].to_numpy()
    for lo, hi in ranges:
        inside |= (s < hi) & (e > lo)
    tsn = hk.snaps
    in_time = (tsn["t1"].to_numpy() > t0) & (tsn["t0"].to_numpy() < t1)
    cnt_in = np.bincount(df["snap"].to_numpy()[inside], minlength=len(tsn))[in_time]
    n = st["nr_regions"].to_numpy()
    return {
        "snapshots": int(len(n)),
        "mean": float(n.mean()),
        "min": int(n.min()),
        "max": int(n.max()),
        "in_common": {
            "snapshots": int(in_time.sum()),
            "mean": float(cnt_in.mean()) if len(cnt_in) else None,
            "min": int(cnt_in.min()) if len(cnt_in) else None,
            "max": int(cnt_in.max()) if len(cnt_in) else None,
        },
    }


def _side_info(h: History) -> dict:
    return {
        "source": h.name,
        "snapshots": int(len(h.snaps)),
        "rows": int(len(h.df)),
        "time_ns": [h.t_start, h.t_end],
        "aggr_ns": h.aggr_ns_est,
        "snapshot_spacing_ns": h.aggr_ns_measured,
        "sample_us": h.sample_us,
        "aggr_us": h.aggr_us,
        "max_nr_accesses": h.max_nr_accesses,
        "max_nr_accesses_from": h.max_source,
        "targets": [int(k) for k in h.keys],
    }


def compare(
    a,
    b,
    *,
    offset_ns: int = 0,
    align: str = "none",
    max_lag_ns: float | None = None,
    lag_series: str = "heat",
    addr_bin: int | None = None,
    time_bin_ns: int | None = None,
    max_addr_bins: int = 2048,
    max_time_bins: int = 512,
    hot_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    acc_thres: float = 1,
    truth=None,
    focus: str = "active",
    name_a: str | None = None,
    name_b: str | None = None,
) -> CompareResult:
    """Compare region history ``b`` (candidate) with ``a`` (reference).

    ``a``/``b``: a trace directory holding ``regions.parquet``, a region ``.parquet``
    file, an Arrow table or a DataFrame with the REGIONS columns.
    ``offset_ns`` is added to every time of ``b``; ``align="auto"`` then adds the best
    lag found by :func:`estimate_lag` (which is always computed and reported).
    ``truth``: ground-truth ranges (see :func:`load_truth`) to score each side against.
    ``focus="active"`` (default) leaves out of the grid the long address stretches
    where neither side ever saw an access, when they make up more than half of the
    common ranges (``grid.guide_ranges``; the bytes left out are reported);
    ``focus="all"`` keeps every common byte.
    """
    if align not in ("none", "auto"):
        raise ConfigError(f"align must be 'none' or 'auto', not {align!r}")
    if lag_series not in ("heat", "wss"):
        raise ConfigError(f"lag series must be 'heat' or 'wss', not {lag_series!r}")
    for th in hot_thresholds:
        if not 0 < th <= 1:
            raise ConfigError(f"hot threshold {th} is not in (0, 1]")
    if addr_bin is not None and addr_bin <= 0:
        raise ConfigError("the address bin must be positive")
    if time_bin_ns is not None and time_bin_ns <= 0:
        raise ConfigError("the time bin must be positive")
    ha = load_history(a, name=name_a)
    hb = load_history(b, name=name_b)
    pairs = match_keys(ha, hb)
    ranges = [
        intersect_intervals(coverage(ha.for_key(ka)), coverage(hb.for_key(kb))) for ka, kb in pairs
    ]
    if sum(len(r) for r in ranges) == 0:
        raise InputError(f"{ha.name} and {hb.name} cover no common address range")

    idle_excluded = 0
    if focus == "active":
        # leave out long stretches where neither side ever saw an access (vaddr's huge
        # idle regions, a paddr range mostly idle): their 0-0 cells would only dilute
        # the grid and inflate correlations
        focused = []
        for (ka, kb), r in zip(pairs, ranges):
            both = np.concatenate([active_ranges(ha.for_key(ka)), active_ranges(hb.for_key(kb))])
            act = merge_intervals(both[:, 0], both[:, 1])
            g = guide_ranges(r, intersect_intervals(act, r)) if len(act) else r
            idle_excluded += int((r[:, 1] - r[:, 0]).sum()) - int((g[:, 1] - g[:, 0]).sum())
            focused.append(g)
        ranges = focused
    elif focus != "all":
        raise ConfigError(f"focus must be 'active' or 'all', not {focus!r}")

    hb_off = hb.shifted(int(offset_ns))
    lag = estimate_lag(
        ha, hb_off, pairs, ranges, max_lag_ns=max_lag_ns, kind=lag_series, acc_thres=acc_thres
    )
    applied = int(offset_ns)
    if align == "auto" and lag.get("lag_ns") is not None:
        applied += int(lag["lag_ns"])
    hb2 = hb.shifted(applied)
    t0 = max(ha.t_start, hb2.t_start)
    t1 = min(ha.t_end, hb2.t_end)
    if t1 <= t0:
        raise InputError(
            f"{ha.name} [{ha.t_start}, {ha.t_end}) and {hb.name} "
            f"[{hb2.t_start}, {hb2.t_end}) (offset {applied} ns) share no time; "
            "give --offset or --align auto"
        )

    unit = address_unit(ha, hb)
    total = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in ranges))
    bin_bytes = int(addr_bin) if addr_bin else auto_bin_bytes(total, max_addr_bins, unit)
    tb = float(time_bin_ns) if time_bin_ns else max(ha.aggr_ns_est, hb.aggr_ns_est, 1.0)
    tb = max(tb, (t1 - t0) / max_time_bins)
    edges = time_edges(t0, t1, tb)
    edges[-1] = t1  # the last bin stops where the common time does

    cells = []
    n_addr_bins = 0
    for (ka, kb), segs in zip(pairs, ranges):
        if len(segs) == 0:
            continue
        bs, be = uniform_bins(segs, bin_bytes)
        sides = {}
        for tag, h, key in (("a", ha, ka), ("b", hb2, kb)):
            hk = h.for_key(key)
            nr = hk.df["nr_accesses"].to_numpy()
            age = hk.df["age"].to_numpy()
            known = np.isfinite(age)
            # age counts aggregations: convert with the measured snapshot spacing (real
            # kdamonds run late: 5.12 s for a configured 5 s)
            age_ns = np.where(known, age, 0.0) * h.aggr_ns_measured
            (heat, acc, agesum, ageknown), frac = mean_grid(
                hk,
                edges,
                bs,
                be,
                [nr, (nr >= acc_thres).astype(float), age_ns, known.astype(float)],
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                age_mean = np.where(
                    ageknown > 0.5, agesum / np.where(ageknown > 0, ageknown, 1), np.nan
                )
            sides[tag] = (heat, acc, age_mean, frac, h.max_nr_accesses)
        nt, nb = len(edges) - 1, len(bs)
        n_addr_bins += nb
        ti = np.repeat(np.arange(nt), nb)
        bj = np.tile(np.arange(nb), nt)
        d = {
            "target_a": np.full(nt * nb, ka),
            "target_b": np.full(nt * nb, kb),
            "t0_ns": edges[:-1][ti],
            "t1_ns": edges[1:][ti],
            "start": bs[bj],
            "end": be[bj],
        }
        for tag in ("a", "b"):
            heat, acc, age_mean, frac, mx = sides[tag]
            d[f"heat_{tag}"] = heat.ravel()
            d[f"rate_{tag}"] = heat.ravel() / mx
            d[f"accessed_{tag}"] = acc.ravel()
            d[f"age_{tag}_ns"] = age_mean.ravel()
            d[f"cover_{tag}"] = frac.ravel()
        cells.append(pd.DataFrame(d))
    cells = pd.concat(cells, ignore_index=True)
    cells["valid"] = (cells["cover_a"] >= 0.5) & (cells["cover_b"] >= 0.5)
    cells["diff_rate"] = cells["rate_b"] - cells["rate_a"]
    area = (cells["t1_ns"] - cells["t0_ns"]).to_numpy(float) * (
        cells["end"].to_numpy() - cells["start"].to_numpy()
    ).astype(float)
    cells["area"] = area

    metrics = _metrics(cells, hot_thresholds)
    wss = _wss_series(cells)
    metrics["wss"] = _wss_metrics(wss)
    per_time = per_time_metrics(cells)
    metrics["per_time"] = {c: per_time[c].tolist() for c in per_time.columns}
    metrics["wss_series"] = {
        "t0_ns": wss["t0_ns"].astype(int).tolist(),
        "t1_ns": wss["t1_ns"].astype(int).tolist(),
        "a_bytes": wss["wss_a"].tolist(),
        "b_bytes": wss["wss_b"].tolist(),
    }
    counts_a = {str(ka): _region_counts(ha, ka, r, t0, t1) for (ka, _), r in zip(pairs, ranges)}
    counts_b = {str(kb): _region_counts(hb2, kb, r, t0, t1) for (_, kb), r in zip(pairs, ranges)}
    metrics["regions"] = {
        "a": next(iter(counts_a.values())) if len(pairs) == 1 else counts_a,
        "b": next(iter(counts_b.values())) if len(pairs) == 1 else counts_b,
    }
    metrics = {
        "a": _side_info(ha),
        "b": _side_info(hb),
        "grid": {
            "address_bin_bytes": bin_bytes,
            "address_unit": unit,
            "time_bin_ns": int(round(tb)),
            "time_bins": int(len(edges) - 1),
            "address_bins": n_addr_bins,
            "time_ns": [int(t0), int(t1)],
            "ranges": [
                {
                    "target_a": int(ka),
                    "target_b": int(kb),
                    "ranges": [[int(x), int(y)] for x, y in r],
                }
                for (ka, kb), r in zip(pairs, ranges)
            ],
            "common_bytes": total,
            "idle_bytes_left_out": idle_excluded,
            "focus": focus,
            "cells": int(len(cells)),
            "valid_cells": int(cells["valid"].sum()),
            "acc_thres": acc_thres,
            "hot_thresholds": list(hot_thresholds),
        },
        "alignment": {
            "offset_ns": int(offset_ns),
            "align": align,
            "applied_offset_ns": applied,
            "estimate": lag,
        },
        **metrics,
    }
    if truth is not None:
        tr = load_truth(truth)
        opts = dict(t_range=(t0, t1), hot_thresholds=hot_thresholds, acc_thres=acc_thres)
        metrics["truth"] = {"a": score_truth(ha, tr, **opts), "b": score_truth(hb2, tr, **opts)}
    return CompareResult(metrics, cells, wss, per_time)


def per_time_metrics(cells: pd.DataFrame, theta: float = 0.5) -> pd.DataFrame:
    """Agreement per time bin: Spearman/Pearson of the heats, mean |rate difference|,
    and hot-set precision/recall/F1 with cells hot relative to each side's hottest
    cell over the whole comparison (so a bin with no hot cell has no recall)."""
    v = cells[cells["valid"]]
    cols = [
        "t0_ns",
        "t1_ns",
        "spearman",
        "pearson",
        "mean_abs_rate_diff",
        "hot_precision",
        "hot_recall",
        "hot_f1",
    ]
    if len(v) == 0:
        return pd.DataFrame(columns=cols)
    hot_a = hot_mask(v["heat_a"].to_numpy(), theta)
    hot_b = hot_mask(v["heat_b"].to_numpy(), theta)
    rows = []
    for (t0, t1), idx in v.groupby(["t0_ns", "t1_ns"], sort=True).indices.items():
        w = v["area"].to_numpy()[idx]
        ha, hb = v["heat_a"].to_numpy()[idx], v["heat_b"].to_numpy()[idx]
        d = np.abs(v["rate_b"].to_numpy()[idx] - v["rate_a"].to_numpy()[idx])
        h = prf(hot_b[idx], hot_a[idx], w)
        rows.append(
            (
                int(t0),
                int(t1),
                _clean(wspearman(ha, hb, w)),
                _clean(wpearson(ha, hb, w)),
                _clean(np.average(d, weights=w)),
                h["precision"],
                h["recall"],
                h["f1"],
            )
        )
    return pd.DataFrame(rows, columns=cols)


def _metrics(cells: pd.DataFrame, thresholds) -> dict:
    v = cells[cells["valid"]]
    w = v["area"].to_numpy()
    ha, hb = v["heat_a"].to_numpy(), v["heat_b"].to_numpy()
    ra, rb = v["rate_a"].to_numpy(), v["rate_b"].to_numpy()
    out: dict[str, Any] = {}
    if len(v) == 0:
        out["heat"] = {
            "spearman": None,
            "pearson": None,
            "mean_abs_rate_diff": None,
            "rms_rate_diff": None,
        }
        out["hot"] = {}
        out["age"] = {}
        return out
    d = rb - ra
    out["heat"] = {
        "spearman": _clean(wspearman(ha, hb, w)),
        "pearson": _clean(wpearson(ha, hb, w)),
        "mean_abs_rate_diff": _clean(np.average(np.abs(d), weights=w)),
        "rms_rate_diff": _clean(math.sqrt(np.average(d * d, weights=w))),
        "mean_rate_a": _clean(np.average(ra, weights=w)),
        "mean_rate_b": _clean(np.average(rb, weights=w)),
    }
    out["hot"] = {str(th): prf(hot_mask(hb, th), hot_mask(ha, th), w) for th in thresholds}
    aa, ab = v["age_a_ns"].to_numpy(), v["age_b_ns"].to_numpy()
    m = np.isfinite(aa) & np.isfinite(ab)
    if m.sum() >= 2:
        diff = np.abs(aa[m] - ab[m]) / 1e9
        out["age"] = {
            "cells": int(m.sum()),
            "spearman": _clean(wspearman(aa[m], ab[m], w[m])),
            "mean_abs_diff_s": _clean(np.average(diff, weights=w[m])),
            "median_abs_diff_s": _clean(float(np.median(diff))),
        }
    else:
        out["age"] = {
            "cells": int(m.sum()),
            "spearman": None,
            "mean_abs_diff_s": None,
            "median_abs_diff_s": None,
        }
    return out


def _wss_series(cells: pd.DataFrame) -> pd.DataFrame:
    """Working-set bytes per time bin inside the common ranges, over the cells both
    sides cover."""
    v = cells[cells["valid"]]
    nbytes = (v["end"].to_numpy() - v["start"].to_numpy()).astype(float)
    df = pd.DataFrame(
        {
            "t0_ns": v["t0_ns"].to_numpy(),
            "t1_ns": v["t1_ns"].to_numpy(),
            "wss_a": v["accessed_a"].to_numpy() * v["cover_a"].to_numpy() * nbytes,
            "wss_b": v["accessed_b"].to_numpy() * v["cover_b"].to_numpy() * nbytes,
            "bytes": nbytes,
        }
    )
    return df.groupby(["t0_ns", "t1_ns"], as_index=False).sum()


def _wss_metrics(wss: pd.DataFrame) -> dict:
    if len(wss) == 0:
        return {}
    a, b = wss["wss_a"].to_numpy(), wss["wss_b"].to_numpy()
    err = b - a
    mae = float(np.abs(err).mean())
    return {
        "bins": int(len(wss)),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "mae_bytes": mae,
        "rmse_bytes": float(math.sqrt((err * err).mean())),
        "max_abs_error_bytes": float(np.abs(err).max()),
        "relative_error": _clean(mae / a.mean()) if a.mean() > 0 else None,
        "pearson": _clean(wpearson(a, b)),
    }
