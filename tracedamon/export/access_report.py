"""Access-pattern distributions of a region history (damo ``report access``
definitions) and a one-screen summary.

Per region of a snapshot (damo_report_access.temperature_of; docs §3):

* access rate (percent) = nr_accesses × 100 / (aggr / sample);
* age (µs) = age × aggr_us;
* temperature = size × w_size + percent × w_rate + age_us × w_age, negated when
  the rate is 0 (weights default 0, 100, 100: a hot region gets hotter with age,
  an idle one colder);
* idle time (recency, µs) = 0 when nr_accesses > 0, else (age + 1) × aggr_us.

Distributions are *of bytes*: the value below which p % of the bytes lie,
over every snapshot (or the snapshots chosen) — "how much memory has been idle
for at least 10 s", "how many bytes are hotter than X".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .grid import fmt_bytes, load_history, snapshot_stats

DEFAULT_WEIGHTS = (0, 100, 100)
DEFAULT_PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


def region_metrics(src, *, weights: Sequence[float] = DEFAULT_WEIGHTS) -> pd.DataFrame:
    """The region table with size, percent, age_us, temperature and idle_us columns."""
    h = load_history(src)
    if len(weights) != 3:
        raise ConfigError("temperature weights are three numbers: size, access rate, age")
    if not h.aggr_us:
        raise ConfigError(
            f"{h.name}: the monitoring intervals are unknown (no sample/aggr "
            "interval in its metadata); give them explicitly"
        )
    df = h.df
    size = (df["end"].to_numpy() - df["start"].to_numpy()).astype(np.float64)
    nr = df["nr_accesses"].to_numpy()
    pct = nr * 100.0 / h.max_nr_accesses
    age = np.nan_to_num(df["age"].to_numpy(), nan=0.0)
    age_us = age * h.aggr_us
    w0, w1, w2 = (float(x) for x in weights)
    score = size * w0 + pct * w1 + age_us * w2
    temp = np.where(pct > 0, score, -score)
    idle = np.where(nr > 0, 0.0, age_us + h.aggr_us)
    return pd.DataFrame(
        {
            "snap": df["snap"].to_numpy(),
            "time_ns": df["time_ns"].to_numpy(),
            "start": df["start"].to_numpy(),
            "end": df["end"].to_numpy(),
            "size": size,
            "nr_accesses": nr,
            "percent": pct,
            "age_us": age_us,
            "temperature": temp,
            "idle_us": idle,
        }
    )


def byte_percentiles(values: np.ndarray, sizes: np.ndarray, ps: Sequence[float]) -> dict:
    """For each p: the smallest value v such that at least p % of the bytes have a
    value <= v (p = 0 gives the smallest value)."""
    o = np.argsort(values, kind="stable")
    v, w = np.asarray(values, float)[o], np.asarray(sizes, float)[o]
    cum = np.cumsum(w)
    tot = cum[-1] if len(cum) else 0.0
    out = {}
    for p in ps:
        if not 0 <= p <= 100:
            raise ConfigError(f"percentile {p} is not in [0, 100]")
        if tot <= 0:
            out[p] = None
            continue
        i = int(np.searchsorted(cum, p / 100.0 * tot, side="left"))
        out[p] = float(v[min(i, len(v) - 1)])
    return out


def access_report(
    src,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    ps: Sequence[float] = DEFAULT_PERCENTILES,
    snapshots: Sequence[int] | None = None,
) -> dict:
    """Temperature and idle-time percentiles of bytes, plus the bytes idle for at
    least 1, 10, 60 s (per snapshot on average)."""
    r = region_metrics(src, weights=weights)
    if snapshots is not None:
        r = r[r["snap"].isin(list(snapshots))]
    if len(r) == 0:
        raise ConfigError("no snapshot selected")
    nsnap = int(r["snap"].nunique())
    idle_thr = {}
    for sec in (1, 10, 60):
        idle_thr[f"{sec}s"] = float(r.loc[r["idle_us"] >= sec * 1e6, "size"].sum() / nsnap)
    return {
        "snapshots": nsnap,
        "temperature": byte_percentiles(r["temperature"].to_numpy(), r["size"].to_numpy(), ps),
        "idle_us": byte_percentiles(r["idle_us"].to_numpy(), r["size"].to_numpy(), ps),
        "mean_bytes_idle_at_least": idle_thr,
        "mean_accessed_bytes": float(r.loc[r["nr_accesses"] > 0, "size"].sum() / nsnap),
        "mean_total_bytes": float(r["size"].sum() / nsnap),
        "weights": list(weights),
    }


def summary(src) -> dict:
    """What a region history holds: snapshots, time span, intervals, targets,
    regions per snapshot, address coverage, nr_accesses and age ranges, WSS."""
    from .grid import coverage
    from .wss import wss_series

    h = load_history(src)
    st = snapshot_stats(h)
    cov = [coverage(h.for_key(k)) for k in h.keys]
    w = wss_series(h)["wss_bytes"].to_numpy()
    age = h.df["age"].to_numpy()
    return {
        "source": h.name,
        "rows": int(len(h.df)),
        "snapshots": int(len(h.snaps)),
        "runs": int(h.df["run"].nunique()),
        "targets": [int(k) for k in h.keys],
        "time_ns": [h.t_start, h.t_end],
        "duration_s": (h.t_end - h.t_start) / 1e9,
        "sample_us": h.sample_us,
        "aggr_us": h.aggr_us,
        "aggr_interval_used_ns": h.aggr_ns_est,
        "regions_per_snapshot": {
            "mean": float(st["nr_regions"].mean()),
            "min": int(st["nr_regions"].min()),
            "max": int(st["nr_regions"].max()),
        },
        "address_ranges": [[[int(a), int(b)] for a, b in c] for c in cov],
        "covered_bytes": [int((c[:, 1] - c[:, 0]).sum()) for c in cov],
        "nr_accesses": {
            "max": float(h.df["nr_accesses"].max()),
            "mean_per_byte": float(
                np.average(h.df["nr_accesses"], weights=(h.df["end"] - h.df["start"]).astype(float))
            ),
        },
        "age": {"max": (float(np.nanmax(age)) if np.isfinite(age).any() else None)},
        "wss_bytes": {"mean": float(w.mean()), "max": float(w.max())},
    }


def format_summary(s: dict) -> str:
    lines = [
        f"source        {s['source']}",
        f"snapshots     {s['snapshots']} ({s['rows']} region rows, {s['runs']} run(s), targets {s['targets']})",
        f"time          {s['time_ns'][0]} .. {s['time_ns'][1]} ns ({s['duration_s']:.3f} s)",
        (
            f"intervals     sample {s['sample_us']} us, aggr {s['aggr_us']} us"
            if s["aggr_us"]
            else f"intervals     unknown (snapshot spacing {s['aggr_interval_used_ns'] / 1e6:.3f} ms)"
        ),
        f"regions       {s['regions_per_snapshot']['mean']:.1f} per snapshot "
        f"(min {s['regions_per_snapshot']['min']}, max {s['regions_per_snapshot']['max']})",
    ]
    for k, (rng, b) in enumerate(zip(s["address_ranges"], s["covered_bytes"])):
        shown = ", ".join(f"[{a:#x}, {e:#x})" for a, e in rng[:4]) + (
            " ..." if len(rng) > 4 else ""
        )
        lines.append(
            f"addresses     target {s['targets'][k]}: {fmt_bytes(b)} in {len(rng)} range(s): {shown}"
        )
    lines.append(
        f"nr_accesses   max {s['nr_accesses']['max']:.0f}, byte-weighted mean {s['nr_accesses']['mean_per_byte']:.3f}"
    )
    lines.append(
        f"working set   mean {fmt_bytes(s['wss_bytes']['mean'])}, max {fmt_bytes(s['wss_bytes']['max'])}"
    )
    return "\n".join(lines)


def sample_summary(src) -> dict:
    """Samples of a trace directory: count, time span, pids, events, address spread."""
    from ..errors import InputError
    from ..trace import Trace, open_trace
    from .grid import PAGE

    tr = src if isinstance(src, Trace) else open_trace(src)
    if not tr.has("samples"):
        raise InputError(f"{tr.path}: holds neither regions nor samples")
    df = tr.df("samples", columns=["time_ns", "pid", "event", "addr", "phys_addr"])
    t = df["time_ns"].dropna()
    a = df["addr"].dropna()
    p = df["phys_addr"].dropna()
    return {
        "source": str(tr.path),
        "samples": int(len(df)),
        "time_ns": [int(t.min()), int(t.max())] if len(t) else None,
        "duration_s": float((t.max() - t.min()) / 1e9) if len(t) else None,
        "pids": sorted(int(x) for x in df["pid"].dropna().unique())[:20],
        "events": {str(k): int(v) for k, v in df["event"].astype(str).value_counts().items()},
        "with_addr": int(len(a)),
        "addr_pages": int((a.astype("uint64") // PAGE).nunique()) if len(a) else 0,
        "with_phys_addr": int(len(p)),
    }


def access_png(
    src, path, *, weights: Sequence[float] = DEFAULT_WEIGHTS, width: int = 1000, height: int = 450,
    force: bool = False,
):
    """Cumulative distributions of bytes over temperature and idle time, as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from .heatmap import _save_fig

    r = region_metrics(src, weights=weights)
    dpi = 100
    fig, axes = plt.subplots(1, 2, figsize=(width / dpi, height / dpi), dpi=dpi)
    for ax, col, label, scale in (
        (axes[0], "temperature", "temperature", 1.0),
        (axes[1], "idle_us", "idle time (s)", 1e-6),
    ):
        o = np.argsort(r[col].to_numpy(), kind="stable")
        v = r[col].to_numpy()[o] * scale
        c = np.cumsum(r["size"].to_numpy()[o])
        ax.step(v, 100.0 * c / c[-1], where="post")
        ax.set_xlabel(label)
        ax.set_ylabel("% of bytes at or below")
    fig.tight_layout()
    return _save_fig(fig, path, dpi, force=force)
