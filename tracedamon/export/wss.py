"""Working-set size of a region history over time, and its percentiles.

The working set of a snapshot is the bytes of its regions with
``nr_accesses >= acc_thres`` and size ``>= sz_thres`` (damo's ``report wss``
definition). Snapshots of several targets taken at the same aggregation are
summed (damo's ``--collapse_targets``). Percentiles use damo's rule: the value at
index ``int(p / 100 × n)`` (clamped to n - 1) of the sorted sizes, so the
numbers match ``damo report wss --exclude_samples 0 --raw_number`` on an
exported record.

A region's bytes all count once the region counts as accessed, however few of
its pages were touched (:func:`region_rule` says how the source's access check
decides that). So every series also says how much of the working set comes from
regions of :data:`SIZE_CLASSES` or more: a 47 GiB region that one sample hit in
one aggregation puts 47 GiB into that snapshot's working set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..units import format_bytes
from .figure import DPI, new_figure, save_figure
from .idle import open_source

DEFAULT_PERCENTILES = (0, 25, 50, 75, 100)
#: region sizes from which a region's share of the working set is reported: a huge
#: page (2 MiB) and 1 GiB
SIZE_CLASSES = (2 << 20, 1 << 30)


def size_class_column(min_bytes: int) -> str:
    """Name of the series column with the working set from regions of ``min_bytes`` or more."""
    return f"wss_ge_{_label(min_bytes).replace(' ', '').lower()}_bytes"


def _label(n: int) -> str:
    """A size class: ``"2 MiB"``."""
    return format_bytes(n, exact=True, largest="GiB")


def region_rule(h) -> str:
    """One line: when the monitor of a source (a HistoryFrame or HistorySource) counts a
    whole region as accessed."""
    access = None
    for m in (h.meta, h.meta.get("parquet") if isinstance(h.meta, dict) else None):
        rep = m.get("replay") if isinstance(m, dict) else None
        if isinstance(rep, dict) and rep.get("access"):
            access = str(rep["access"])
    if access in ("perf", "perf-phys"):
        how = "one perf sample falls in any of its pages during a sample interval"
    elif access == "abit":
        how = (
            "the one page it checks per sample interval (a random address) was "
            "accessed (accessed-bit check, emulated)"
        )
    else:
        how = (
            "the one page DAMON checks per sample interval (a random address) was "
            "accessed (accessed-bit check)"
        )
    return (
        f"a region counts as accessed, all of its bytes, when {how}; large regions "
        "therefore inflate the working set"
    )


def wss_series(
    src, *, acc_thres: float = 1, sz_thres: int = 1, per_target: bool = False
) -> pd.DataFrame:
    """One row per snapshot: t0_ns and time_ns (start and end of its window), wss_bytes,
    the part of it from regions of each of :data:`SIZE_CLASSES` or more
    (:func:`size_class_column`), total_bytes (bytes monitored), nr_regions (regions
    recorded: a sparse history records only the accessed ones), and key when
    ``per_target``. Streams the source snapshot by snapshot; a sparse source counts
    exactly as its dense original (except nr_regions)."""
    hs = open_source(src)
    n = hs.n_snapshots
    acc = {"wss_bytes": np.zeros(n)}
    for c in SIZE_CLASSES:
        acc[size_class_column(c)] = np.zeros(n)
    acc["total_bytes"] = np.zeros(n)
    nreg = np.zeros(n, np.int64)
    for b in hs.iter_batches():
        size = (b.end - b.start).astype(np.float64)
        ws = np.where((b.nr_accesses >= acc_thres) & (size >= sz_thres), size, 0.0)
        rs = b.row_snap
        acc["wss_bytes"] += np.bincount(rs, ws, minlength=n)
        for c in SIZE_CLASSES:
            acc[size_class_column(c)] += np.bincount(rs, np.where(size >= c, ws, 0.0), minlength=n)
        acc["total_bytes"] += np.bincount(rs, size, minlength=n)
        nreg += np.bincount(rs[~b.filled], minlength=n)
    sn = hs.snaps[["key", "run", "snapshot", "t0", "t1"]].copy()
    sn["t0_ns"] = sn["t0"]
    sn["time_ns"] = sn["t1"]
    for k, v in acc.items():
        sn[k] = v
    sn["nr_regions"] = nreg
    values = list(acc) + ["nr_regions"]
    if per_target:
        return sn[["key", "run", "snapshot", "t0_ns", "time_ns"] + values].reset_index(drop=True)
    # collapse targets: the k-th snapshot of every target together (damo's rule)
    sn["idx"] = sn.groupby("key").cumcount()
    spec = {"t0_ns": ("t0_ns", "min"), "time_ns": ("time_ns", "min")}
    spec.update({v: (v, "sum") for v in values})
    return sn.groupby("idx").agg(**spec).reset_index(drop=True)


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
    snapshots dropped, damo's ``--exclude_samples``), how much of the mean comes
    from large regions (``from_large_regions``: one entry per size class, with the
    mean bytes and their share of the mean), the rule that makes a region count
    (``region_rule``), plus the series."""
    if exclude < 0:
        raise ConfigError("exclude must be >= 0")
    hs = open_source(src)
    s = wss_series(hs, acc_thres=acc_thres, sz_thres=sz_thres)
    s = s.iloc[exclude:]
    rule = region_rule(hs)
    if len(s) == 0:
        return {
            "snapshots": 0,
            "mean_bytes": None,
            "percentiles": {},
            "from_large_regions": [],
            "region_rule": rule,
            "series": s,
        }
    w = s["wss_bytes"].to_numpy()
    mean = float(w.mean())
    large = []
    for c in SIZE_CLASSES:
        m = float(s[size_class_column(c)].to_numpy().mean())
        large.append(
            {"min_region_bytes": c, "mean_bytes": m, "share": (m / mean) if mean > 0 else 0.0}
        )
    return {
        "snapshots": int(len(s)),
        "mean_bytes": mean,
        "percentiles": percentiles(w, ps),
        "from_large_regions": large,
        "region_rule": rule,
        "series": s,
    }


def format_large(rep: dict) -> str:
    """One line: how much of the mean working set comes from large regions."""
    parts = [
        f"{_pct(e['share'])} ({format_bytes(e['mean_bytes'])}) from regions of "
        f"{_label(e['min_region_bytes'])} or more"
        for e in rep["from_large_regions"]
    ]
    out = "of the mean working set: " + ", ".join(parts)
    mean = rep.get("mean_bytes", rep.get("mean"))
    if rep["from_large_regions"] and mean is not None:
        e = rep["from_large_regions"][0]
        out += (
            f"; without regions of {_label(e['min_region_bytes'])} or more the mean is "
            f"{format_bytes(mean - e['mean_bytes'])}"
        )
    return out


def _pct(share: float) -> str:
    p = 100.0 * share
    if 99.95 <= p < 100.0:
        return "> 99.9 %"
    if 0.0 < p < 0.05:
        return "< 0.1 %"
    return f"{p:.1f} %"


def _bytes_axis(ax, values) -> None:
    """Byte-unit ticks; a log scale when the values span more than 64× (a 47 GiB
    spike must not flatten a 200 KiB working set to the axis)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    v = np.asarray(values, dtype=float)
    pos = v[v > 0]
    if len(pos) and pos.max() > 64 * pos.min():
        ax.set_yscale("log", base=2)
    elif len(pos):
        # round steps of a binary unit: 64 MiB, not 95.4 MiB
        top = float(pos.max())
        unit = 1 << (10 * max(0, min(4, int(np.log2(top) // 10))))
        step = top / unit / 5
        k = 10 ** np.floor(np.log10(step))
        step = min((m * k for m in (1, 2, 2.5, 5, 10) if m * k >= step), default=10 * k)
        ax.yaxis.set_major_locator(MultipleLocator(step * unit))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: _short_bytes(x)))


def _short_bytes(x: float) -> str:
    """An axis tick: three significant digits."""
    return "0" if x <= 0 else format_bytes(x, 3, significant=True)


def wss_figure(rep: dict, *, width: int = 1000, height: int = 500, title: str = "working set size"):
    """Working set over time (all regions, and only regions below each size class)
    and its distribution over snapshots; byte axes, log-scaled when the values
    span more than 64×."""

    s = rep["series"]
    fig, (a1, a2) = new_figure(width, height, ncols=2, gridspec_kw={"width_ratios": [3, 1]})
    w = s["wss_bytes"].to_numpy() if len(s) else np.zeros(0)
    if len(s):
        t1 = s["time_ns"].to_numpy()
        t0 = s["t0_ns"].to_numpy() if "t0_ns" in s else t1
        x = np.concatenate([t0, t1[-1:]]) - t0[0]
        x = x / 1e9

        def steps(y):  # each snapshot's value over its window [t0, t1)
            return np.concatenate([y, y[-1:]])

        a1.step(x, steps(w), where="post", color="black", lw=1.5, label="all regions")
        for c, colour in zip(SIZE_CLASSES, ("#1f77b4", "#ff7f0e")):
            below = w - s[size_class_column(c)].to_numpy()
            a1.step(
                x,
                steps(below),
                where="post",
                color=colour,
                lw=1,
                label=f"regions < {_label(c)} only",
            )
        a1.legend(fontsize=7, loc="best")
        ps = np.arange(0, 101)
        pv = percentiles(w, ps)
        a2.plot(ps, np.array([pv[p] for p in ps]))
    _bytes_axis(a1, w)
    _bytes_axis(a2, w)
    a1.set_xlabel("time (s from the start of the first snapshot)")
    a1.set_ylabel("working set (bytes)")
    a1.set_title(title, fontsize=9)
    a2.set_xlabel("percentile of snapshots")
    a2.set_ylabel("working set (bytes)")
    a2.set_title("distribution over snapshots", fontsize=9)
    if rep.get("region_rule"):
        import textwrap

        text = textwrap.fill(rep["region_rule"], width=max(60, int(width / 5.2)))
        fig.text(0.01, 0.005, text, fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.03 * (1 + (len(rep.get("region_rule", "")) > width / 5.2)), 1, 1))
    return fig


def wss_png(
    rep: dict,
    path: str | os.PathLike,
    *,
    width: int = 1000,
    height: int = 500,
    title: str = "working set size",
    force: bool = False,
) -> Path:

    return save_figure(
        wss_figure(rep, width=width, height=height, title=title), path, DPI, force=force
    )
