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

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..store.trace import Trace, open_trace
from ..units import PAGE_SIZE, format_bytes
from .figure import DPI, new_figure, save_figure
from .grid import merge_intervals
from .idle import iter_rows, open_source
from .wss import SIZE_CLASSES, format_large, region_rule, size_class_column, wss_series

DEFAULT_WEIGHTS = (0, 100, 100)
DEFAULT_PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


def _check(hs, weights) -> tuple[float, float, float]:
    if len(weights) != 3:
        raise ConfigError("temperature weights are three numbers: size, access rate, age")
    if not hs.aggr_us:
        raise ConfigError(
            f"{hs.name}: the monitoring intervals are unknown (no sample/aggr "
            "interval in its metadata); give them explicitly"
        )
    w0, w1, w2 = (float(x) for x in weights)
    if w0 and hs.sparse:
        raise ConfigError(
            f"{hs.name}: a sparse history (accessed regions only) does not record the sizes "
            "of its idle regions, so the size weight of the temperature cannot be applied; "
            "use a size weight of 0"
        )
    return w0, w1, w2


def iter_metrics(src, *, weights: Sequence[float] = DEFAULT_WEIGHTS) -> Iterator[dict]:
    """Per batch of whole snapshots: snap (index into the source's snapshots), start,
    end, size, nr_accesses, percent, age_us, temperature, idle_us — one entry per
    region; idle bytes of a sparse history with derived ages
    (:mod:`tracedamon.export.idle`)."""
    hs = open_source(src)
    w0, w1, w2 = _check(hs, weights)
    top = hs.max_nr_accesses
    for r in iter_rows(hs):
        size = (r.end - r.start).astype(np.float64)
        nr = r.nr_accesses
        pct = nr * 100.0 / top
        age_us = np.nan_to_num(r.age, nan=0.0) * hs.aggr_us
        score = size * w0 + pct * w1 + age_us * w2
        yield {
            "snap": r.snap,
            "start": r.start,
            "end": r.end,
            "size": size,
            "nr_accesses": nr,
            "percent": pct,
            "age_us": age_us,
            "temperature": np.where(pct > 0, score, -score),
            "idle_us": np.where(nr > 0, 0.0, age_us + hs.aggr_us),
        }


def region_metrics(src, *, weights: Sequence[float] = DEFAULT_WEIGHTS) -> pd.DataFrame:
    """The region table with size, percent, age_us, temperature and idle_us columns
    (in memory: for small histories; reports stream with :func:`iter_metrics`)."""
    parts = list(iter_metrics(src, weights=weights))
    if not parts:
        return pd.DataFrame(
            columns=[
                "snap",
                "start",
                "end",
                "size",
                "nr_accesses",
                "percent",
                "age_us",
                "temperature",
                "idle_us",
            ]
        )
    return pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


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


class ByteDistribution:
    """Bytes per distinct value, added to batch by batch: memory follows the number of
    distinct values (a few per aggregation for idle times and default temperatures),
    not the number of regions."""

    def __init__(self):
        self.values = np.zeros(0)
        self.bytes = np.zeros(0)
        self._pend: list = []
        self._n = 0

    def add(self, values: np.ndarray, sizes: np.ndarray) -> None:
        if len(values) == 0:
            return
        u, inv = np.unique(values, return_inverse=True)
        self._pend.append((u, np.bincount(inv, weights=sizes, minlength=len(u))))
        self._n += len(u)
        if self._n > 1 << 20:
            self._fold()

    def _fold(self) -> None:
        if not self._pend:
            return
        v = np.concatenate([self.values] + [p[0] for p in self._pend])
        w = np.concatenate([self.bytes] + [p[1] for p in self._pend])
        self.values, inv = np.unique(v, return_inverse=True)
        self.bytes = np.bincount(inv, weights=w, minlength=len(self.values))
        self._pend, self._n = [], 0

    def percentiles(self, ps: Sequence[float]) -> dict:
        self._fold()
        return byte_percentiles(self.values, self.bytes, ps)

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted values and the percent of bytes at or below each."""
        self._fold()
        c = np.cumsum(self.bytes)
        return self.values, (100.0 * c / c[-1]) if len(c) and c[-1] > 0 else c


def distributions(
    src, *, weights: Sequence[float] = DEFAULT_WEIGHTS, snapshots: Sequence[int] | None = None
) -> dict:
    """One streaming pass: the byte distributions of temperature and idle time, bytes
    idle for at least 1, 10, 60 s, accessed and total bytes, snapshots counted."""
    temp, idle = ByteDistribution(), ByteDistribution()
    thr = {1: 0.0, 10: 0.0, 60: 0.0}
    accessed = total = 0.0
    seen = set()
    want = None if snapshots is None else np.asarray(list(snapshots))
    for m in iter_metrics(src, weights=weights):
        if want is not None:
            keep = np.isin(m["snap"], want)
            m = {k: v[keep] for k, v in m.items()}
        if len(m["snap"]) == 0:
            continue
        seen.update(np.unique(m["snap"]).tolist())
        temp.add(m["temperature"], m["size"])
        idle.add(m["idle_us"], m["size"])
        for sec in thr:
            thr[sec] += float(m["size"][m["idle_us"] >= sec * 1e6].sum())
        accessed += float(m["size"][m["nr_accesses"] > 0].sum())
        total += float(m["size"].sum())
    return {
        "temperature": temp,
        "idle_us": idle,
        "idle_at_least": thr,
        "accessed": accessed,
        "total": total,
        "snapshots": len(seen),
    }


def access_report(
    src,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    ps: Sequence[float] = DEFAULT_PERCENTILES,
    snapshots: Sequence[int] | None = None,
) -> dict:
    """Temperature and idle-time percentiles of bytes, plus the bytes idle for at
    least 1, 10, 60 s (per snapshot on average). Streams the source; a sparse
    history's idle bytes count with derived ages (``idle_ages``: how)."""
    hs = open_source(src)
    d = distributions(hs, weights=weights, snapshots=snapshots)
    nsnap = d["snapshots"]
    if nsnap == 0:
        raise ConfigError("no snapshot selected")
    return {
        "snapshots": nsnap,
        "temperature": d["temperature"].percentiles(ps),
        "idle_us": d["idle_us"].percentiles(ps),
        "mean_bytes_idle_at_least": {f"{k}s": v / nsnap for k, v in d["idle_at_least"].items()},
        "mean_accessed_bytes": d["accessed"] / nsnap,
        "mean_total_bytes": d["total"] / nsnap,
        "weights": list(weights),
        "idle_ages": idle_ages_note(hs),
    }


def idle_ages_note(hs) -> str | None:
    """How the ages of idle bytes were obtained, when the source does not record them."""
    if not hs.sparse:
        return None
    return (
        "the history is sparse: ages of idle bytes are derived from the recorded "
        "nr_accesses with DAMON's age rule (exact at fixed granularity)"
    )


def summary(src) -> dict:
    """What a region history holds: snapshots, time span, intervals, targets,
    regions per snapshot, address coverage, nr_accesses and age ranges, WSS.
    Streams the source."""
    hs = open_source(src)
    keys = hs.keys
    cov = {k: np.zeros((0, 2), np.uint64) for k in keys}
    nr_max = 0.0
    nr_bytes = size_bytes = 0.0
    age_max = -np.inf
    for b in hs.iter_batches():
        size = (b.end - b.start).astype(np.float64)
        nr_bytes += float((b.nr_accesses * size).sum())
        size_bytes += float(size.sum())
        if len(b.nr_accesses):
            nr_max = max(nr_max, float(b.nr_accesses.max()))
        a = b.age[~b.filled]
        if np.isfinite(a).any():
            age_max = max(age_max, float(np.nanmax(a)))
        rk = b.key[b.row_local]
        for k in np.unique(b.key).tolist():
            m = rk == k
            c = cov[k]
            cov[k] = merge_intervals(
                np.concatenate([c[:, 0], b.start[m]]), np.concatenate([c[:, 1], b.end[m]])
            )
    ser = wss_series(hs)
    w = ser["wss_bytes"].to_numpy()
    recorded = hs.snaps["rows"].to_numpy()
    sn = hs.snaps
    return {
        "source": hs.name,
        "rows": int(hs.rows),
        "snapshots": int(hs.n_snapshots),
        "runs": int(sn["run"].nunique()),
        "targets": [int(k) for k in keys],
        "time_ns": [hs.t_start, hs.t_end],
        "duration_s": (hs.t_end - hs.t_start) / 1e9,
        "sample_us": hs.sample_us,
        "aggr_us": hs.aggr_us,
        "aggr_interval_used_ns": hs.aggr_ns_est,
        "sparse": bool(hs.sparse),
        "regions_per_snapshot": {
            "mean": float(recorded.mean()),
            "min": int(recorded.min()),
            "max": int(recorded.max()),
        },
        "address_ranges": [[[int(a), int(b)] for a, b in cov[k]] for k in keys],
        "covered_bytes": [int((cov[k][:, 1] - cov[k][:, 0]).sum()) for k in keys],
        "nr_accesses": {
            "max": nr_max,
            "mean_per_byte": nr_bytes / size_bytes if size_bytes else 0.0,
        },
        "age": {"max": age_max if np.isfinite(age_max) else None},
        "wss_bytes": {
            "mean": float(w.mean()),
            "max": float(w.max()),
            "from_large_regions": [
                {
                    "min_region_bytes": c,
                    "mean_bytes": float(ser[size_class_column(c)].mean()),
                    "share": float(ser[size_class_column(c)].mean() / w.mean())
                    if w.mean()
                    else 0.0,
                }
                for c in SIZE_CLASSES
            ],
        },
        "region_rule": region_rule(hs),
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
        f"(min {s['regions_per_snapshot']['min']}, max {s['regions_per_snapshot']['max']})"
        + (
            "; sparse: only accessed regions are recorded, idle bytes count with nr_accesses 0"
            if s.get("sparse")
            else ""
        ),
    ]
    for k, (rng, b) in enumerate(zip(s["address_ranges"], s["covered_bytes"])):
        shown = ", ".join(f"[{a:#x}, {e:#x})" for a, e in rng[:4]) + (
            " ..." if len(rng) > 4 else ""
        )
        lines.append(
            f"addresses     target {s['targets'][k]}: {format_bytes(b)} in {len(rng)} range(s): {shown}"
        )
    lines.append(
        f"nr_accesses   max {s['nr_accesses']['max']:.0f}, byte-weighted mean {s['nr_accesses']['mean_per_byte']:.3f}"
    )

    lines.append(
        f"working set   mean {format_bytes(s['wss_bytes']['mean'])}, max {format_bytes(s['wss_bytes']['max'])}"
    )
    lines.append(f"              {format_large(s['wss_bytes'])}")
    lines.append(f"              ({s['region_rule']})")
    return "\n".join(lines)


def sample_summary(src) -> dict:
    """Samples of a trace directory: count, time span, pids, events, address spread."""
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
        "addr_pages": int((a.astype("uint64") // PAGE_SIZE).nunique()) if len(a) else 0,
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

    h = open_source(src)
    d = distributions(h, weights=weights)
    fig, axes = new_figure(width, height, ncols=2)
    w0, w1, w2 = (float(x) for x in weights)
    nsnap = d["snapshots"]
    aggr_s = h.aggr_us / 1e6
    for ax, col, scale in ((axes[0], "temperature", 1.0), (axes[1], "idle_us", 1e-6)):
        v, pc = d[col].cdf()
        v = v * scale
        if len(v):
            ax.step(np.concatenate([[v[0]], v]), np.concatenate([[0.0], pc]), where="post")
        ax.set_ylabel("% of bytes at or below")
        ax.set_ylim(0, 100)
    from matplotlib.ticker import FixedLocator

    lt = max(1.0, w1 * 1.0, w2 * h.aggr_us)
    axes[0].set_xscale("symlog", linthresh=lt)
    tv, _ = d["temperature"].cdf()
    top = float(np.abs(tv).max()) if len(tv) else lt
    # 0 and powers of ten clear of the linear part around it (labels would collide)
    k0 = int(np.ceil(np.log10(2 * lt)))
    dec = [10.0**k for k in range(k0, max(k0, int(np.ceil(np.log10(max(top, 1.0))))) + 1)]
    axes[0].xaxis.set_major_locator(FixedLocator([-x for x in dec[::-1]] + [0.0] + dec))
    axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short_number(x)))
    axes[0].set_xlabel(
        f"temperature = size × {w0:g} + access rate % × {w1:g} + age µs × {w2:g}; negated when idle"
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
    src,
    path,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    width: int = 1000,
    height: int = 450,
    force: bool = False,
):
    """:func:`access_figure` as PNG, written atomically."""

    return save_figure(
        access_figure(src, weights=weights, width=width, height=height), path, DPI, force=force
    )
