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

    from .wss import SIZE_CLASSES, region_rule, size_class_column

    h = load_history(src)
    st = snapshot_stats(h)
    cov = [coverage(h.for_key(k)) for k in h.keys]
    ser = wss_series(h)
    w = ser["wss_bytes"].to_numpy()
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
        "wss_bytes": {
            "mean": float(w.mean()),
            "max": float(w.max()),
            "from_large_regions": [
                {
                    "min_region_bytes": c,
                    "mean_bytes": float(ser[size_class_column(c)].mean()),
                    "share": float(ser[size_class_column(c)].mean() / w.mean()) if w.mean() else 0.0,
                }
                for c in SIZE_CLASSES
            ],
        },
        "region_rule": region_rule(h),
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
    from .wss import format_large

    lines.append(
        f"working set   mean {fmt_bytes(s['wss_bytes']['mean'])}, max {fmt_bytes(s['wss_bytes']['max'])}"
    )
    lines.append(f"              {format_large(s['wss_bytes'])}")
    lines.append(f"              ({s['region_rule']})")
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


def access_figure(
    src, *, weights: Sequence[float] = DEFAULT_WEIGHTS, width: int = 1000, height: int = 450
):
    """Cumulative distributions of bytes over temperature and over idle time.

    Temperatures span many orders of magnitude and both signs (age in µs × 100
    for idle bytes, negated), so that axis is symmetric-logarithmic with plain
    tick labels (no ×1e10 offset); idle time is in seconds, logarithmic above one
    aggregation interval."""
    from matplotlib.ticker import FuncFormatter

    from .heatmap import new_figure

    h = load_history(src)
    r = region_metrics(h, weights=weights)
    fig, axes = new_figure(width, height, ncols=2)
    w0, w1, w2 = (float(x) for x in weights)
    nsnap = int(r["snap"].nunique())
    aggr_s = h.aggr_us / 1e6
    for ax, col, scale in ((axes[0], "temperature", 1.0), (axes[1], "idle_us", 1e-6)):
        o = np.argsort(r[col].to_numpy(), kind="stable")
        v = r[col].to_numpy()[o] * scale
        c = np.cumsum(r["size"].to_numpy()[o])
        if len(v):
            ax.step(np.concatenate([[v[0]], v]), np.concatenate([[0.0], 100.0 * c / c[-1]]),
                    where="post")
        ax.set_ylabel("% of bytes at or below")
        ax.set_ylim(0, 100)
    lt = max(1.0, w1 * 1.0, w2 * h.aggr_us)
    axes[0].set_xscale("symlog", linthresh=lt)
    axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short_number(x)))
    axes[0].set_xlabel(
        f"temperature = size × {w0:g} + access rate % × {w1:g} + age µs × {w2:g}; "
        "negated when idle"
    )
    axes[0].set_title(f"bytes by temperature ({nsnap} snapshots)", fontsize=9)
    axes[1].set_xscale("symlog", linthresh=aggr_s)
    axes[1].set_xlim(left=0)
    axes[1].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axes[1].set_xlabel("idle time (s; 0 = accessed in that snapshot)")
    axes[1].set_title(f"bytes by idle time ({nsnap} snapshots)", fontsize=9)
    for ax in axes:
        ax.xaxis.label.set_size(8)
    fig.tight_layout()
    return fig


def _short_number(x: float) -> str:
    """1.5k, -20M, 3G: an axis label without an offset."""
    a = abs(x)
    for suffix, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= f:
            return f"{x / f:g}{suffix}"
    return f"{x:g}"


def access_png(
    src, path, *, weights: Sequence[float] = DEFAULT_WEIGHTS, width: int = 1000, height: int = 450
):
    """:func:`access_figure` as PNG, written atomically."""
    from .heatmap import DPI, _save_fig

    return _save_fig(access_figure(src, weights=weights, width=width, height=height), path, DPI)
