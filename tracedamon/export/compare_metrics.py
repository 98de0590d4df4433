"""The metrics of a comparison, from the joint distributions that
:func:`tracedamon.export.compare_sweep.sweep_overlay` accumulated (see the metric
definitions in :mod:`tracedamon.export.compare`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .overlay import clean as _clean
from .overlay import hot_set, prf, step_sum, wmedian, wpearson, wspearman

__all__ = ["heat_agreement", "metrics_from"]


def heat_agreement(x, y, w, act, mxa: float, mxb: float) -> dict:
    """Heat agreement over the pieces ``act`` (inside the space where either side saw
    an access)."""
    xa, ya, wa = x[act], y[act], w[act]
    if wa.sum() <= 0:
        return {
            "spearman": None,
            "pearson": None,
            "mean_abs_rate_diff": None,
            "rms_rate_diff": None,
            "mean_rate_a": None,
            "mean_rate_b": None,
        }
    ra, rb = xa / mxa, ya / mxb
    d = rb - ra
    return {
        "spearman": _clean(wspearman(xa, ya, wa)),
        "pearson": _clean(wpearson(xa, ya, wa)),
        "mean_abs_rate_diff": _clean(np.average(np.abs(d), weights=wa)),
        "rms_rate_diff": _clean(math.sqrt(np.average(d * d, weights=wa))),
        "mean_rate_a": _clean(np.average(ra, weights=wa)),
        "mean_rate_b": _clean(np.average(rb, weights=wa)),
    }


def metrics_from(acc: dict, ha, hb, thresholds, edges) -> dict:
    """The metrics dict (compared, heat, hot, wss, age, per_time) of a sweep's
    accumulators ``acc``; also leaves the working-set series and the per-time-bin table
    as DataFrames in ``acc["wss"]`` and ``acc["per_time_df"]``."""
    (ins, x, y), w = acc["joint"]
    out: dict[str, Any] = _heat_and_hot(ins, x, y, w, ha, hb, thresholds)
    wss, out["wss"], out["wss_series"] = _working_set(acc["pieces"])
    out["age"] = _age(acc["age"], acc["age_unknown"], ha, hb)
    mx = out["hot_max_nr_accesses"]
    per_time = _per_time(acc["per_time"], edges, ha, hb, mx["a"], mx["b"])
    out["per_time"] = {
        c: [_clean(v) if isinstance(v, float) else v for v in per_time[c].tolist()]
        for c in per_time.columns
    }
    acc["wss"] = wss
    acc["per_time_df"] = per_time
    return out


def _heat_and_hot(ins, x, y, w, ha, hb, thresholds) -> dict:
    """The compared byte-seconds, the heat agreement over the accessed space and the
    hot-set precision/recall per threshold, from the joint distribution (inside the
    accessed space, nr_accesses of a and of b; weights bytes × ns)."""
    tot = float(w.sum())
    act = ins > 0.5
    act_w = float(w[act].sum())
    out: dict[str, Any] = {
        "compared": {
            "byte_seconds": tot / 1e9,
            "active_byte_seconds": act_w / 1e9,
        }
    }
    heat = heat_agreement(x, y, w, act, ha.max_nr_accesses, hb.max_nr_accesses)
    heat["active_fraction"] = _clean(act_w / tot) if tot > 0 else None
    out["heat"] = heat
    mxa = float(x.max()) if len(x) else 0.0
    mxb = float(y.max()) if len(y) else 0.0
    out["hot"] = (
        {str(th): prf(hot_set(y, th, mxb), hot_set(x, th, mxa), w) for th in thresholds}
        if tot > 0
        else {}
    )
    out["hot_max_nr_accesses"] = {"a": mxa, "b": mxb}
    return out


def _working_set(pieces) -> tuple[pd.DataFrame, dict, dict]:
    """The working set of each side as a function of time, from the sweep's pieces
    (t0, t1, wss of a, wss of b, bytes compared): the series as a DataFrame, its
    summary metrics and the series as lists."""
    if pieces:
        lo, hi, wa, wb, cb = (np.array(v) for v in zip(*pieces))
        u, (sa, sb, sc), active = step_sum(lo, hi, [wa, wb, cb])
        seg_t0, seg_t1 = u[:-1][active], u[1:][active]
        sa, sb, sc = sa[active], sb[active], sc[active]
    else:
        seg_t0 = seg_t1 = np.zeros(0, np.int64)
        sa = sb = sc = np.zeros(0)
    wss = pd.DataFrame({"t0_ns": seg_t0, "t1_ns": seg_t1, "wss_a": sa, "wss_b": sb, "bytes": sc})
    dtw = (seg_t1 - seg_t0).astype(np.float64)
    summary: dict[str, Any] = {}
    if len(dtw) and dtw.sum() > 0:
        err = sb - sa
        mean_a = float(np.average(sa, weights=dtw))
        mae = float(np.average(np.abs(err), weights=dtw))
        summary = {
            "segments": int(len(dtw)),
            "seconds": float(dtw.sum() / 1e9),
            "mean_a": mean_a,
            "mean_b": float(np.average(sb, weights=dtw)),
            "mae_bytes": mae,
            "rmse_bytes": float(math.sqrt(np.average(err * err, weights=dtw))),
            "max_abs_error_bytes": float(np.abs(err).max()),
            "relative_error": _clean(mae / mean_a) if mean_a > 0 else None,
            "pearson": _clean(wpearson(sa, sb, dtw)),
        }
    series = {
        "t0_ns": [int(v) for v in seg_t0],
        "t1_ns": [int(v) for v in seg_t1],
        "a_bytes": sa.tolist(),
        "b_bytes": sb.tolist(),
    }
    return wss, summary, series


def _age(joint, unknown: float, ha, hb) -> dict:
    """Age agreement over the pieces where both sides record an age (ages in
    aggregations × each side's median snapshot spacing); ``unknown``: the weight of
    the pieces where one does not."""
    (ga, gb), aw = joint
    known = float(aw.sum())
    if len(aw) and known > 0:
        da = ga * ha.aggr_ns_measured
        db = gb * hb.aggr_ns_measured
        diff = np.abs(da - db) / 1e9
        return {
            "known_fraction": _clean(known / (known + unknown)),
            "spearman": _clean(wspearman(da, db, aw)),
            "mean_abs_diff_s": _clean(np.average(diff, weights=aw)),
            "median_abs_diff_s": _clean(wmedian(diff, aw)),
        }
    return {
        "known_fraction": 0.0 if unknown > 0 else None,
        "spearman": None,
        "mean_abs_diff_s": None,
        "median_abs_diff_s": None,
    }


_PER_TIME_COLUMNS = [
    "t0_ns",
    "t1_ns",
    "spearman",
    "pearson",
    "mean_abs_rate_diff",
    "hot_precision",
    "hot_recall",
    "hot_f1",
]


def _per_time(joint, edges, ha, hb, mxa: float, mxb: float) -> pd.DataFrame:
    """Heat agreement and hot precision/recall/F1 (θ = 0.5 of each side's largest
    nr_accesses over the whole comparison, ``mxa``/``mxb``) per time bin."""
    (bi, pin, px, py), pw = joint
    rate_a, rate_b = ha.max_nr_accesses, hb.max_nr_accesses
    rows = []
    if len(pw):
        bi = bi.astype(np.int64)
        for i in np.unique(bi).tolist():
            m = bi == i
            xi, yi, wi = px[m], py[m], pw[m]
            h = heat_agreement(xi, yi, wi, pin[m] > 0.5, rate_a, rate_b)
            hp = prf(hot_set(yi, 0.5, mxb), hot_set(xi, 0.5, mxa), wi)
            rows.append(
                (
                    int(edges[i]),
                    int(edges[i + 1]),
                    h["spearman"],
                    h["pearson"],
                    h["mean_abs_rate_diff"],
                    hp["precision"],
                    hp["recall"],
                    hp["f1"],
                )
            )
    return pd.DataFrame(rows, columns=_PER_TIME_COLUMNS)
