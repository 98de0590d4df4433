"""Working-set size of a region history over time, and its percentiles.

The working set of a snapshot is the bytes of its regions with
``nr_accesses >= acc_thres`` and size ``>= sz_thres`` (damo's ``report wss``
definition). Snapshots of several targets taken at the same aggregation are
summed (damo's ``--collapse_targets``). Percentiles use damo's rule: the value at
index ``int(p / 100 × n)`` (clamped to n - 1) of the sorted sizes, so the
numbers match ``damo report wss --exclude_samples 0 --raw_number`` on an
exported record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .grid import load_history

DEFAULT_PERCENTILES = (0, 25, 50, 75, 100)


def wss_series(
    src, *, acc_thres: float = 1, sz_thres: int = 1, per_target: bool = False
) -> pd.DataFrame:
    """One row per snapshot: time_ns (end of the aggregation), wss_bytes,
    total_bytes, nr_regions (and key when ``per_target``)."""
    h = load_history(src)
    df = h.df
    size = (df["end"].to_numpy() - df["start"].to_numpy()).astype(np.float64)
    ws = np.where((df["nr_accesses"].to_numpy() >= acc_thres) & (size >= sz_thres), size, 0.0)
    g = pd.DataFrame({"snap": df["snap"].to_numpy(), "wss": ws, "size": size})
    agg = g.groupby("snap").agg(
        wss_bytes=("wss", "sum"), total_bytes=("size", "sum"), nr_regions=("size", "size")
    )
    sn = h.snaps.join(agg, how="left")
    sn["time_ns"] = sn["t1"]
    if per_target:
        return sn[["key", "run", "snapshot", "time_ns", "wss_bytes", "total_bytes", "nr_regions"]]
    # collapse targets: the k-th snapshot of every target together (damo's rule)
    sn["idx"] = sn.groupby("key").cumcount()
    out = (
        sn.groupby("idx")
        .agg(
            time_ns=("time_ns", "min"),
            wss_bytes=("wss_bytes", "sum"),
            total_bytes=("total_bytes", "sum"),
            nr_regions=("nr_regions", "sum"),
        )
        .reset_index(drop=True)
    )
    return out


def percentiles(values: Sequence[float], ps: Sequence[float]) -> dict:
    """damo's percentile rule over sorted values."""
    v = np.sort(np.asarray(values, dtype=float))
    out = {}
    for p in ps:
        if not 0 <= p <= 100:
            raise ConfigError(f"percentile {p} is not in [0, 100]")
        i = min(int(p / 100.0 * len(v)), len(v) - 1)
        out[p] = float(v[i])
    return out


def wss_report(
    src,
    *,
    acc_thres: float = 1,
    sz_thres: int = 1,
    ps: Sequence[float] = DEFAULT_PERCENTILES,
    exclude: int = 0,
) -> dict:
    """Mean and percentiles of the working-set size (the first ``exclude``
    snapshots dropped, damo's ``--exclude_samples``) plus the series."""
    s = wss_series(src, acc_thres=acc_thres, sz_thres=sz_thres)
    if exclude < 0:
        raise ConfigError("exclude must be >= 0")
    s = s.iloc[exclude:]
    if len(s) == 0:
        return {"snapshots": 0, "mean_bytes": None, "percentiles": {}, "series": s}
    w = s["wss_bytes"].to_numpy()
    return {
        "snapshots": int(len(s)),
        "mean_bytes": float(w.mean()),
        "percentiles": percentiles(w, ps),
        "series": s,
    }


def wss_png(
    rep: dict,
    path: str | os.PathLike,
    *,
    width: int = 1000,
    height: int = 500,
    title: str = "working set size",
    force: bool = False,
) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from .heatmap import _save_fig

    s = rep["series"]
    dpi = 100
    fig, (a1, a2) = plt.subplots(
        1, 2, figsize=(width / dpi, height / dpi), dpi=dpi, gridspec_kw={"width_ratios": [3, 1]}
    )
    if len(s):
        t = (s["time_ns"].to_numpy() - s["time_ns"].iloc[0]) / 1e9
        a1.step(
            t, s["wss_bytes"].to_numpy() / 2**20, where="pre"
        )  # a value holds until its time_ns
        ps = np.arange(0, 101)
        pv = percentiles(s["wss_bytes"].to_numpy(), ps)
        a2.plot(ps, np.array([pv[p] for p in ps]) / 2**20)
    a1.set_xlabel("time (s from the first snapshot)")
    a1.set_ylabel("working set (MiB)")
    a1.set_title(title, fontsize=9)
    a2.set_xlabel("percentile")
    a2.set_title("distribution", fontsize=9)
    fig.tight_layout()
    return _save_fig(fig, path, dpi, force=force)
