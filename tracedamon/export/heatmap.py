"""Time × address heatmaps of region histories, of raw samples, and of the
difference between two region histories.

Every heatmap is a :class:`Heatmap`: a matrix (rows = time bins, columns =
address bins) plus its bin edges. The address axis shows only the ranges that
hold data — gaps between them are collapsed, and in a sparse space (a paddr
trace over many GiB where little is ever accessed) the long never-accessed
stretches are collapsed too (``grid.guide_ranges``) — so the picture is never an
empty frame with a thin line of data in it. Collapsed gaps are drawn as white
separators and the address of each shown range is written on the axis.

Values: for region histories the area-weighted mean ``nr_accesses`` of each cell
(``value="rate"`` divides by aggr/sample; ``"hz"`` divides by the aggregation
interval in seconds, damo's unit); for samples the number of samples per cell;
for a difference the rate of b minus the rate of a (see ``compare``).
PNGs are drawn with matplotlib's Agg backend (no gnuplot).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from .grid import (
    PAGE,
    History,
    heat_ranges,
    address_unit,
    auto_bin_bytes,
    coverage,
    guide_ranges,
    load_history,
    mean_grid,
    merge_intervals,
    raster,
    time_edges,
    uniform_bins,
)


@dataclass
class Heatmap:
    matrix: np.ndarray  # (time bins, address bins); NaN = no data
    t_edges: np.ndarray  # int64 ns, len = rows + 1
    bin_start: np.ndarray  # uint64, len = columns
    bin_end: np.ndarray
    segments: np.ndarray  # (n, 2) address ranges shown, in order
    kind: str  # regions | samples | diff
    unit: str  # what a value means
    source: str = ""
    notes: list = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def column_of(self, addr: int) -> int | None:
        """The column holding address ``addr`` (None when it is not shown)."""
        j = int(np.searchsorted(self.bin_end, np.uint64(addr), side="right"))
        if j < len(self.bin_start) and int(self.bin_start[j]) <= addr:
            return j
        return None

    def columns_in(self, start: int, end: int) -> np.ndarray:
        """Columns lying entirely inside ``[start, end)``."""
        return np.flatnonzero(
            (self.bin_start >= np.uint64(start)) & (self.bin_end <= np.uint64(end))
        )

    def to_frame(self) -> pd.DataFrame:
        nt, nb = self.matrix.shape
        ti = np.repeat(np.arange(nt), nb)
        bj = np.tile(np.arange(nb), nt)
        return pd.DataFrame(
            {
                "t0_ns": self.t_edges[:-1][ti],
                "t1_ns": self.t_edges[1:][ti],
                "start": self.bin_start[bj],
                "end": self.bin_end[bj],
                "value": self.matrix.ravel(),
            }
        )

    def write_cells(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """The matrix as a Parquet table (one row per cell), written atomically."""
        import pyarrow as pa

        from ..atomic import HEATMAP_CELLS
        from ..ingest.writer import write_table_atomic

        t = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {"table": "heatmap", "kind": self.kind, "unit": self.unit, "source": self.source}
        return write_table_atomic(t, path, metadata=meta, kind=HEATMAP_CELLS, force=force)

    def ascii(self, rows: int = 40, cols: int = 80) -> str:
        """Digit rows 0-9 (damo's stdout style): one line per time slot, oldest first."""
        m = _downsample(self.matrix, rows, cols)
        finite = m[np.isfinite(m)]
        lines = []
        if len(finite) == 0:
            return "(no data)"
        lo, hi = float(finite.min()), float(finite.max())
        span = hi - lo
        for row in m:
            s = []
            for v in row:
                if not np.isfinite(v):
                    s.append(" ")
                else:
                    lvl = 0 if span <= 0 else int(min(9, math.floor((v - lo) / span * 10)))
                    s.append(str(lvl))
            lines.append("".join(s))
        lines.append(
            f"# x-axis: space, {len(self.segments)} range(s): "
            + ", ".join(f"[{int(a):#x}, {int(b):#x})" for a, b in self.segments[:6])
            + (" ..." if len(self.segments) > 6 else "")
        )
        lines.append(
            f"# y-axis: time [{int(self.t_edges[0])}, {int(self.t_edges[-1])}) ns "
            f"({(int(self.t_edges[-1]) - int(self.t_edges[0])) / 1e9:.3f} s)"
        )
        lines.append(f"# values: {self.unit}, levels 0-9 from {lo:.4g} to {hi:.4g}")
        return "\n".join(lines)

    def to_png(
        self,
        path: str | os.PathLike,
        *,
        width: int = 1000,
        height: int = 700,
        title: str | None = None,
        force: bool = False,
    ) -> Path:
        return render_png(self, path, width=width, height=height, title=title, force=force)


def _downsample(m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean over blocks (NaN-aware) so that the matrix has at most rows × cols."""
    nt, nb = m.shape
    ri = np.minimum((np.arange(nt) * rows) // max(nt, 1), rows - 1) if nt > rows else np.arange(nt)
    ci = np.minimum((np.arange(nb) * cols) // max(nb, 1), cols - 1) if nb > cols else np.arange(nb)
    R, C = int(ri.max()) + 1 if nt else 0, int(ci.max()) + 1 if nb else 0
    s = np.zeros((R, C))
    n = np.zeros((R, C))
    fin = np.isfinite(m)
    np.add.at(s, (ri[:, None].repeat(nb, 1)[fin], ci[None, :].repeat(nt, 0)[fin]), m[fin])
    np.add.at(n, (ri[:, None].repeat(nb, 1)[fin], ci[None, :].repeat(nt, 0)[fin]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def _pick_key(h: History, target):
    keys = h.keys
    if target is not None:
        if target not in keys:
            raise InputError(f"{h.name}: no target {target} (targets: {keys[:10]})")
        return target
    counts = h.df.groupby("key").size()
    return counts.idxmax()


def _segments(held: np.ndarray, active, collapse: str, ranges) -> np.ndarray:
    if ranges:
        segs = merge_intervals([int(a) for a, _ in ranges], [int(b) for _, b in ranges])
        from .grid import intersect_intervals

        out = intersect_intervals(segs, held) if len(held) else segs
        if len(out) == 0:
            raise InputError("the requested address ranges hold no data")
        return out
    if collapse == "none":
        return np.array([[held[0, 0], held[-1, 1]]], dtype=np.uint64)
    if collapse == "gaps":
        return held
    if collapse == "auto":
        return guide_ranges(held, active)
    raise ConfigError(f"collapse must be auto, gaps or none, not {collapse!r}")


def region_heatmap(
    src,
    *,
    time_bins: int = 400,
    addr_bins: int = 400,
    target=None,
    ranges: Sequence[tuple[int, int]] | None = None,
    collapse: str = "auto",
    value: str = "nr_accesses",
    time_range: tuple[int, int] | None = None,
) -> Heatmap:
    """Heatmap of a region history (one target: ``target``, else the one with most rows)."""
    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("heatmap resolution must be at least 1 × 1")
    h = load_history(src)
    key = _pick_key(h, target)
    hk = h.for_key(key)
    held = coverage(hk)
    segs = _segments(held, heat_ranges(hk), collapse, ranges)
    total = int((segs[:, 1] - segs[:, 0]).sum())
    unit = address_unit(hk)
    bs, be = uniform_bins(segs, auto_bin_bytes(total, addr_bins, unit))
    t0, t1 = time_range if time_range else (hk.t_start, hk.t_end)
    edges = time_edges(t0, t1, max(1.0, (t1 - t0) / time_bins))
    edges[-1] = t1
    nr = hk.df["nr_accesses"].to_numpy()
    (mean,), _ = mean_grid(hk, edges, bs, be, [nr])
    if value == "rate":
        mean = mean / h.max_nr_accesses
        unit_s = "access rate (nr_accesses / max)"
    elif value == "hz":
        if not h.aggr_us:
            raise ConfigError(
                f"{h.name}: the aggregation interval is unknown; use value nr_accesses"
            )
        mean = mean / (h.aggr_us / 1e6)
        unit_s = "accesses per second (Hz)"
    elif value == "nr_accesses":
        unit_s = "mean nr_accesses"
    else:
        raise ConfigError(f"value must be nr_accesses, rate or hz, not {value!r}")
    notes = []
    if len(h.keys) > 1:
        notes.append(f"target {key} of {len(h.keys)}")
    return Heatmap(mean, edges, bs, be, segs, "regions", unit_s, h.name, notes)


def sample_heatmap(
    src,
    *,
    time_bins: int = 400,
    addr_bins: int = 400,
    phys: bool = False,
    pid: int | None = None,
    events: Sequence[str] | None = None,
    ranges: Sequence[tuple[int, int]] | None = None,
    min_gap: int = 1 << 20,
) -> Heatmap:
    """Heatmap of raw samples (count per page range and time bin) from a trace
    directory's ``samples`` table: the input as it is before any replay.
    ``phys`` uses physical addresses; ``pid``/``events`` filter the samples."""
    from ..trace import Trace, open_trace

    tr = src if isinstance(src, Trace) else open_trace(src)
    if not tr.has("samples"):
        raise InputError(f"{tr.path}: holds no samples table")
    col = "phys_addr" if phys else "addr"
    t = tr.table("samples", columns=["time_ns", "pid", "event", col])
    df = t.to_pandas()
    df = df[df[col].notna() & df["time_ns"].notna()]
    if pid is not None:
        df = df[df["pid"] == pid]
    if events:
        df = df[df["event"].astype(str).isin(list(events))]
    if len(df) == 0:
        raise InputError(
            f"{tr.path}: no samples with a {'physical' if phys else 'data'} address"
            + (" for the given filters" if (pid is not None or events) else "")
        )
    addr = df[col].to_numpy(np.uint64)
    tns = df["time_ns"].to_numpy(np.int64)
    pages = np.unique(addr // np.uint64(PAGE)) * np.uint64(PAGE)
    held = merge_intervals(pages, pages + np.uint64(PAGE))
    if ranges:
        segs = _segments(held, None, "gaps", ranges)
    else:
        nbytes = int((held[:, 1] - held[:, 0]).sum())
        segs = merge_intervals(held[:, 0], held[:, 1], gap=max(min_gap, int(0.05 * nbytes)))
    total = int((segs[:, 1] - segs[:, 0]).sum())
    bs, be = uniform_bins(segs, auto_bin_bytes(total, addr_bins, PAGE))
    t0, t1 = int(tns.min()), int(tns.max()) + 1
    edges = time_edges(t0, t1, max(1.0, (t1 - t0) / time_bins))
    edges[-1] = t1
    j = np.searchsorted(be, addr, side="right")
    inb = j < len(bs)
    inb[inb] &= bs[j[inb]] <= addr[inb]
    i = np.clip(np.searchsorted(edges, tns, side="right") - 1, 0, len(edges) - 2)
    nt, nb = len(edges) - 1, len(bs)
    m = np.bincount(i[inb] * nb + j[inb], minlength=nt * nb).reshape(nt, nb).astype(float)
    notes = [f"{int(inb.sum())} samples on {len(pages)} pages"]
    return Heatmap(m, edges, bs, be, segs, "samples", "samples per cell", str(tr.path), notes)


def diff_heatmap(a, b, **compare_opts) -> Heatmap:
    """Rate of ``b`` minus rate of ``a`` on the common grid of :func:`compare`
    (NaN where one side does not cover the cell)."""
    from .compare import compare

    res = compare(a, b, **compare_opts)
    c = res.cells
    first = c["target_a"].iloc[0]
    c = c[c["target_a"] == first]
    t0 = np.unique(c["t0_ns"].to_numpy())
    t1 = np.unique(c["t1_ns"].to_numpy())
    edges = np.concatenate([t0, t1[-1:]]).astype(np.int64)
    bins = c[["start", "end"]].drop_duplicates().sort_values("start")
    bs = bins["start"].to_numpy(np.uint64)
    be = bins["end"].to_numpy(np.uint64)
    nt, nb = len(t0), len(bs)
    ti = np.searchsorted(t0, c["t0_ns"].to_numpy())
    bj = np.searchsorted(bs, c["start"].to_numpy(np.uint64))
    m = np.full((nt, nb), np.nan)
    v = np.where(c["valid"].to_numpy(), c["diff_rate"].to_numpy(), np.nan)
    m[ti, bj] = v
    rng = res.metrics["grid"]["ranges"][0]["ranges"]
    segs = np.array(rng, dtype=np.uint64).reshape(-1, 2)
    hm = Heatmap(
        m,
        edges,
        bs,
        be,
        segs,
        "diff",
        "rate difference (b - a)",
        f"{res.metrics['b']['source']} - {res.metrics['a']['source']}",
    )
    hm.notes.append(f"heat spearman {res.metrics['heat']['spearman']}")
    return hm


def render_png(
    hm: Heatmap,
    path: str | os.PathLike,
    *,
    width: int = 1000,
    height: int = 700,
    title: str | None = None,
    force: bool = False,
) -> Path:
    """Draw a heatmap into a PNG of ``width`` × ``height`` pixels, atomically."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if width < 100 or height < 100:
        raise ConfigError("the PNG must be at least 100 × 100 pixels")
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    m = hm.matrix
    nt, nb = m.shape
    t = (hm.t_edges - hm.t_edges[0]) / 1e9
    if hm.kind == "diff":
        lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
        lim = lim if lim > 0 else 1.0
        cmap = matplotlib.colormaps["RdBu_r"].copy()
        vmin, vmax = -lim, lim
    else:
        cmap = matplotlib.colormaps["inferno"].copy()
        vmin = vmax = None
    cmap = cmap.with_extremes(bad="#dddddd")
    im = ax.imshow(
        np.ma.masked_invalid(m.T),
        origin="lower",
        aspect="auto",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        extent=(float(t[0]), float(t[-1]), 0, nb),
    )
    # address ticks: the first bin of each shown range (separators between ranges),
    # plus evenly spaced bins in between, labelled with their start address
    seg_first = np.searchsorted(hm.bin_start, hm.segments[:, 0])
    for k, j in enumerate(seg_first):
        if k > 0:
            ax.axhline(j, color="white", lw=1.5)
    ticks = set(int(j) for j in seg_first[:: max(1, len(seg_first) // 8)])
    if len(ticks) < 8:
        ticks |= set(int(j) for j in np.linspace(0, nb - 1, 9 - len(ticks)).round())
    ticks = sorted(ticks)
    keep = [t for i, t in enumerate(ticks) if i == 0 or t - ticks[i - 1] >= max(1, nb // 30)]
    ax.set_yticks(keep)
    ax.set_yticklabels([f"{int(hm.bin_start[j]):#x}" for j in keep], fontsize=7)
    ax.set_xlabel("time (s from start)")
    ax.set_ylabel("address (collapsed gaps marked)" if len(hm.segments) > 1 else "address")
    ax.set_title(title or f"{hm.kind}: {hm.source}", fontsize=9)
    fig.colorbar(im, ax=ax, label=hm.unit)
    fig.tight_layout()
    return _save_fig(fig, path, dpi, force=force)


def _save_fig(fig, path: str | os.PathLike, dpi: int, *, force: bool = False) -> Path:
    """Save a matplotlib figure as PNG atomically (with tracedamon's text chunk; an
    existing ``path`` is replaced only with ``force`` and only if it is tracedamon's
    PNG) and close it."""
    import matplotlib.pyplot as plt

    from ..atomic import PNG_PLOT, atomic_path, png_metadata

    try:
        with atomic_path(path, kind=PNG_PLOT, force=force, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", metadata=png_metadata())
    finally:
        plt.close(fig)
    return Path(path)


def damo_heatmap(
    src,
    *,
    time_bins: int = 500,
    addr_bins: int = 500,
    target=None,
    addr_range: tuple[int, int] | None = None,
) -> Heatmap:
    """The heatmap ``damo report heatmap`` draws, with its exact accounting, so the
    numbers can be put side by side with damo's (``--output raw``).

    damo's rules (damo_report_heatmap.py, 3.4.3): the time axis runs from the first
    snapshot's start minus its oldest region's age × aggregation interval to the last
    snapshot's end; each region of the *first* snapshot is backfilled over its age
    (later snapshots are clamped at the previous snapshot's end, i.e. not
    backfilled); pixels are ``(end - start) // resolution`` wide (integer ns and
    bytes); a pixel's heat is Σ Hz × overlap ns × overlap bytes / pixel area, with
    Hz = nr_accesses / aggregation seconds; pixels no region touches are NaN. The
    address axis is ``addr_range`` or the whole span of the target's regions (damo
    draws its "hottest" contiguous range, the same for a single-range target).
    """
    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("heatmap resolution must be at least 1 × 1")
    h = load_history(src)
    if not h.aggr_us:
        raise ConfigError(f"{h.name}: the aggregation interval is unknown (damo's heat is in Hz)")
    key = _pick_key(h, target)
    hk = h.for_key(key)
    aggr_ns = int(round(h.aggr_us * 1000))
    df = hk.df
    sn = hk.snaps
    first = df["snap"].to_numpy() == 0
    age0 = np.nan_to_num(df["age"].to_numpy()[first], nan=0.0).astype(np.int64)
    ages = np.unique(age0)
    G = len(ages)
    # the first snapshot becomes one pseudo snapshot per distinct age, backfilled over it
    new_snap = df["snap"].to_numpy() + (G - 1)
    new_snap[first] = np.searchsorted(ages, age0)
    df2 = (
        df.assign(snap=new_snap)
        .sort_values(["snap", "start"], kind="stable")
        .reset_index(drop=True)
    )
    t0_first, t1_first = int(sn["t0"].iat[0]), int(sn["t1"].iat[0])
    pseudo = pd.DataFrame(
        {
            "key": key,
            "run": sn["run"].iat[0],
            "target": sn["target"].iat[0],
            "snapshot": sn["snapshot"].iat[0],
            "t0": t0_first - ages * aggr_ns,
            "t1": t1_first,
        }
    )
    snaps2 = pd.concat([pseudo, sn.iloc[1:]], ignore_index=True)
    h2 = History(
        df2, snaps2, h.name, h.meta, h.sample_us, h.aggr_us, h.aggr_ns_est, h.aggr_ns_measured
    )
    t_start = t0_first - int(ages.max()) * aggr_ns
    t_end = int(sn["t1"].iat[-1])
    lo, hi = addr_range if addr_range else (int(df["start"].min()), int(df["end"].max()))
    tu = (t_end - t_start) // time_bins
    au = (hi - lo) // addr_bins
    if tu <= 0 or au <= 0:
        raise ConfigError("the resolution is finer than the data's time or address span")
    edges = t_start + np.arange(time_bins + 1, dtype=np.int64) * tu
    bs = (lo + np.arange(addr_bins, dtype=np.int64) * au).astype(np.uint64)
    be = bs + np.uint64(au)
    (s,), cover = raster(h2, edges, bs, be, [df2["nr_accesses"].to_numpy()])
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(cover > 0, s / (float(tu) * float(au)) / (h.aggr_us / 1e6), np.nan)
    segs = np.array([[lo, lo + au * addr_bins]], dtype=np.uint64)
    return Heatmap(
        m,
        edges,
        bs,
        be,
        segs,
        "regions",
        "accesses per second (Hz), damo's accounting",
        h.name,
        [f"damo-compatible, target {key}"],
    )
