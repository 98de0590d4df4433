"""Time × address heatmaps of region histories, of raw samples, and of the
difference between two region histories.

Every heatmap is a :class:`Heatmap`: a matrix (rows = time bins, columns =
address bins) plus its bin edges. The address axis shows only what matters:

* gaps no region covers are collapsed (white separators mark them, and the
  address of each shown range is written on the axis);
* by default (``collapse="auto"``) the axis is chosen from where the accesses
  are (:class:`AccessEvidence`): the regions where each access was last seen
  before it ended, not the huge regions DAMON starts with and splits until it
  has found the accessed pages; long idle stretches between them are collapsed
  too (``grid.guide_ranges``); a brief access seen only in a region far larger
  than everything else is left off (and said so in the notes);
* every shown range gets at least :data:`MIN_RANGE_SHARE` of the rows, at a
  finer bin size of its own if need be (:func:`view_bins`).

Values: for region histories the area-weighted mean ``nr_accesses`` of each cell
(``value="rate"`` divides by aggr/sample; ``"hz"`` divides by the aggregation
interval in seconds, damo's unit); for samples the number of samples per cell;
for a difference the rate of b minus the rate of a (see ``compare``).

Colours (:meth:`Heatmap.rgba`, the same scale for the PNG and the digit rows):
"never accessed" (exactly 0) is black and any access at all is coloured, on a
square-root scale up to the largest value the history can hold (aggr/sample
for nr_accesses), so one access in twenty intervals is plainly visible; cells
no region covers are grey. Differences use a symmetric blue-white-red scale
whose limit is at least :data:`DIFF_FLOOR` (a tenth of the maximum access rate:
DAMON itself treats regions within that of each other as alike), so two
histories that agree are drawn white, not as saturated noise.
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
from ..store.atomic import HEATMAP_CELLS
from ..store.trace import Trace, open_trace
from ..store.writer import write_table_atomic
from ..units import PAGE_SIZE, format_bytes
from .evidence import COARSE_RATIO, AccessEvidence  # noqa: F401  (kept importable here)
from .figure import (  # noqa: F401  (kept importable here)
    DPI,
    heatmap_figure,
    new_figure,
    render_png,
    save_figure,
)
from .grid import (
    HistoryFrame,
    auto_bin_bytes,
    guide_ranges,
    intersect_intervals,
    merge_intervals,
    raster,
    time_edges,
    uniform_bins,
)
from .idle import iter_rows, open_source

#: colour of "never accessed" (value exactly 0), of "not monitored" (NaN)
NEVER_COLOUR = "#000000"
NO_DATA_COLOUR = "#d0d0d0"
#: positive values start this far into the colour map, clear of "never"
_LOW = 0.3
#: smallest colour limit of a difference heatmap, in access rate (nr_accesses / max)
DIFF_FLOOR = 0.1


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
    #: the top of the colour scale: the largest value the source can hold (aggr/sample
    #: for nr_accesses), else the largest value present; for a difference, the limit
    #: of the symmetric scale
    scale_max: float | None = None
    #: what the addresses are (virtual, physical) for the axis label
    space: str = "address"

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

        t = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {"table": "heatmap", "kind": self.kind, "unit": self.unit, "source": self.source}
        return write_table_atomic(t, path, metadata=meta, kind=HEATMAP_CELLS, force=force)

    # ------------------------------------------------------------------ colours
    @property
    def limit(self) -> float:
        """The value drawn in the brightest colour (both ends of a difference scale)."""
        fin = self.matrix[np.isfinite(self.matrix)]
        if self.kind == "diff":
            top = float(np.abs(fin).max()) if len(fin) else 0.0
            return max(top, float(self.scale_max or 0.0), DIFF_FLOOR)
        top = float(fin.max()) if len(fin) else 0.0
        if self.scale_max and self.scale_max > 0:
            return float(self.scale_max)
        return top if top > 0 else 1.0

    def level(self, values) -> np.ndarray:
        """Position of values on the colour scale: NaN (no data) stays NaN; for a
        difference -1..1 (linear, 0 = agreement); otherwise -1 for "never" (<= 0)
        and (0, 1] for any access, on a square-root scale."""
        v = np.asarray(values, dtype=np.float64)
        lim = self.limit
        with np.errstate(invalid="ignore"):
            if self.kind == "diff":
                return np.clip(v / lim, -1.0, 1.0)
            return np.where(
                v > 0, np.sqrt(np.clip(v / lim, 0.0, 1.0)), np.where(np.isnan(v), np.nan, -1.0)
            )

    def _cmap(self):
        import matplotlib
        from matplotlib.colors import ListedColormap

        if self.kind == "diff":
            cmap = matplotlib.colormaps["RdBu_r"].copy()
        else:
            base = matplotlib.colormaps["inferno"]
            cmap = ListedColormap(base(np.linspace(_LOW, 1.0, 256)), name="inferno_accessed")
            cmap = cmap.with_extremes(under=NEVER_COLOUR)
        return cmap.with_extremes(bad=NO_DATA_COLOUR)

    def rgba(self, values=None) -> np.ndarray:
        """The colours the PNG draws for ``values`` (default: the whole matrix), as
        RGBA floats in [0, 1]."""
        from matplotlib.colors import Normalize

        lev = self.level(self.matrix if values is None else values)
        cmap = self._cmap()
        if self.kind == "diff":
            norm = Normalize(-1.0, 1.0)
        else:
            norm = Normalize(0.0, 1.0)
        return cmap(norm(np.ma.masked_invalid(lev)))

    def ascii(self, rows: int = 40, cols: int = 80) -> str:
        """Digit rows, one line per time slot, oldest first (damo's stdout style),
        on the colour scale of the PNG: ``0`` never accessed, ``1``-``9`` any access
        (square-root scale up to :attr:`limit`), blank no data. A difference: ``0``
        agreement (within a ninth of the limit), ``A``-``D`` b higher, ``a``-``d`` a
        higher (``D``/``d`` at least 7/9 of the limit)."""
        m = _downsample(self.matrix, rows, cols)
        if not np.isfinite(m).any():
            return "(no data)"
        lev = self.level(m)
        lines = []
        for row in lev:
            s = []
            for v in row:
                if not np.isfinite(v):
                    s.append(" ")
                elif self.kind == "diff":
                    k = int(min(4, math.floor(abs(v) * 4.5 + 0.5)))
                    s.append("0" if k == 0 else ("ABCD" if v > 0 else "abcd")[k - 1])
                else:
                    s.append("0" if v < 0 else str(1 + int(min(8, math.floor(v * 9)))))
            lines.append("".join(s))
        lines.append(
            f"# {self.space} axis (columns): {len(self.segments)} range(s): "
            + ", ".join(f"[{int(a):#x}, {int(b):#x})" for a, b in self.segments[:6])
            + (" ..." if len(self.segments) > 6 else "")
        )
        lines.append(
            f"# time axis (rows): [{int(self.t_edges[0])}, {int(self.t_edges[-1])}) ns "
            f"({(int(self.t_edges[-1]) - int(self.t_edges[0])) / 1e9:.3f} s)"
        )
        if self.kind == "diff":
            lines.append(
                f"# values: {self.unit}; 0: within ±{self.limit / 9:.3g}, A-D: b higher, "
                f"a-d: a higher, D/d: ≥ {self.limit * 7 / 9:.3g}"
            )
        else:
            lines.append(
                f"# values: {self.unit}; 0: never accessed, 1-9: accessed, square-root scale "
                f"up to {self.limit:.4g} (1: above 0, 9: ≥ {self.limit * (8 / 9) ** 2:.3g})"
            )
        for n in self.notes:
            lines.append(f"# {n}")
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


def _pick_key(h, target):
    """``target`` when the history (HistoryFrame or HistorySource) has it, else the address
    space with the most rows."""
    keys = h.keys
    if target is not None:
        if target not in keys:
            raise InputError(f"{h.name}: no target {target} (targets: {keys[:10]})")
        return target
    if isinstance(h, HistoryFrame):
        return h.df.groupby("key").size().idxmax()
    return h.snaps.groupby("key")["rows"].sum().idxmax()


# ----------------------------------------------------------------------------------
# the default view: where the accesses are
# ----------------------------------------------------------------------------------
#: every shown address range gets at least this share of the rows
MIN_RANGE_SHARE = 0.02


def access_evidence(src, key=None) -> tuple[np.ndarray, dict]:
    """:class:`AccessEvidence` of one address space of a history (``key``, else the only
    or busiest one)."""
    hs = open_source(src)
    return scan_space(hs, _pick_key(hs, key), evidence=True).evidence


@dataclass
class SpaceScan:
    held: np.ndarray  # the address ranges covered by any region
    unit: int  # PAGE_SIZE when every boundary is page aligned, else 1
    evidence: tuple | None  # access_evidence's result


def scan_space(hs, key, *, evidence: bool) -> SpaceScan:
    """One pass over one address space: what it covers, its address unit and (when
    asked) where its accesses are. The accessed regions are kept per snapshot for the
    backward pass of :class:`AccessEvidence` (16 bytes a region; a run of identical
    snapshots is kept as its first and last)."""
    held = np.zeros((0, 2), np.uint64)
    unit = PAGE_SIZE
    page = np.uint64(PAGE_SIZE)
    snaps_acc: list = []  # (start, end) of each snapshot's accessed regions
    same_run = False
    for b in hs.iter_batches(key=key):
        both = np.concatenate([held, np.stack([b.start, b.end], axis=1)])
        held = merge_intervals(both[:, 0], both[:, 1])
        if unit == PAGE_SIZE and ((b.start % page).any() or (b.end % page).any()):
            unit = 1
        if not evidence:
            continue
        off = b.offsets
        m = b.nr_accesses > 0
        for k in range(b.n_snapshots):
            sl = slice(int(off[k]), int(off[k + 1]))
            mk = m[sl]
            cur = (b.start[sl][mk], b.end[sl][mk])
            if snaps_acc and _same(cur, snaps_acc[-1]):
                if same_run:
                    snaps_acc[-1] = cur
                    continue
                same_run = True
            else:
                same_run = False
            snaps_acc.append(cur)
    ev = None
    if evidence:
        acc = AccessEvidence()
        for st, en in reversed(snaps_acc):
            acc.feed(st, en, np.ones(len(st)))
        ev = acc.ranges()
    return SpaceScan(held, unit, ev)


def _same(a, b) -> bool:
    return len(a[0]) == len(b[0]) and bool((a[0] == b[0]).all() and (a[1] == b[1]).all())


def _grid(hs, key, edges, bs, be, *, offset_ns: int = 0) -> np.ndarray:
    """Area-weighted mean nr_accesses of one address space per cell (NaN where no
    region covers the cell), streamed batch by batch through ``grid.raster``."""
    from types import SimpleNamespace

    nt, nb = len(edges) - 1, len(bs)
    sums = np.zeros((nt, nb))
    cover = np.zeros((nt, nb))
    snaps = pd.DataFrame(
        {
            "t0": hs.snaps["t0"].to_numpy(np.int64) + int(offset_ns),
            "t1": hs.snaps["t1"].to_numpy(np.int64) + int(offset_ns),
        }
    )
    for b in hs.iter_batches(key=key):
        rows = pd.DataFrame({"snap": b.row_snap, "start": b.start, "end": b.end})
        (s,), c = raster(SimpleNamespace(df=rows, snaps=snaps), edges, bs, be, [b.nr_accesses])
        sums += s
        cover += c
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cover > 0, sums / cover, np.nan)


def _key_span(hs, key) -> tuple[int, int]:
    m = hs.snaps["key"].to_numpy() == key
    return int(hs.snaps["t0"].to_numpy()[m].min()), int(hs.snaps["t1"].to_numpy()[m].max())


def view_bins(
    segments: np.ndarray, max_bins: int, unit: int = PAGE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Address bins over the shown ranges: one bin size for all (the smallest
    ``unit × 2^k`` that fits ``max_bins``), except that a range that would get fewer
    than :data:`MIN_RANGE_SHARE` of the bins is drawn with smaller bins of its own, so
    every shown range stays visible however small it is beside the others."""
    segments = np.asarray(segments, dtype=np.uint64).reshape(-1, 2)
    lens = (segments[:, 1] - segments[:, 0]).astype(np.float64)
    total = int(lens.sum())
    bb = auto_bin_bytes(total, max_bins, unit)
    # the floor is given up where the ranges are too many for it to fit
    floor = min(max(2, int(MIN_RANGE_SHARE * max_bins)), max_bins // (2 * max(len(segments), 1)))
    out_s, out_e = [], []
    for (a, b), ln in zip(segments, lens):
        size = bb
        while size > unit and ln / size < floor:
            size //= 2
        s, e = uniform_bins(np.array([[a, b]], dtype=np.uint64), size)
        out_s.append(s)
        out_e.append(e)
    if not out_s:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    return np.concatenate(out_s), np.concatenate(out_e)


def _segments(held: np.ndarray, evidence, collapse: str, ranges) -> np.ndarray:
    if ranges:
        segs = merge_intervals([int(a) for a, _ in ranges], [int(b) for _, b in ranges])

        out = intersect_intervals(segs, held) if len(held) else segs
        if len(out) == 0:
            raise InputError("the requested address ranges hold no data")
        return out
    if collapse == "none":
        return np.array([[held[0, 0], held[-1, 1]]], dtype=np.uint64)
    if collapse == "gaps":
        return held
    if collapse == "auto":
        return guide_ranges(held, evidence)
    raise ConfigError(f"collapse must be auto, gaps or none, not {collapse!r}")


def _space(h: HistoryFrame) -> str:
    """ "virtual address" or "physical address" when the history's metadata says
    which ops set made it, else "address"."""
    ops = None
    for m in (h.meta, h.meta.get("parquet")):
        rep = m.get("replay") if isinstance(m, dict) else None
        if isinstance(rep, dict) and isinstance(rep.get("ops"), str):
            ops = rep["ops"]
    return {
        "vaddr": "virtual address",
        "fvaddr": "virtual address",
        "paddr": "physical address",
    }.get(ops, "address")


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
    """Heatmap of a region history (one target: ``target``, else the one with most
    rows). Streams the source twice (what it covers and where its accesses are, then
    the cells); a sparse history draws exactly as its dense original."""
    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("heatmap resolution must be at least 1 × 1")
    if value not in ("nr_accesses", "rate", "hz"):
        raise ConfigError(f"value must be nr_accesses, rate or hz, not {value!r}")
    hs = open_source(src)
    if value == "hz" and not hs.aggr_us:
        raise ConfigError(f"{hs.name}: the aggregation interval is unknown; use value nr_accesses")
    key = _pick_key(hs, target)
    auto = collapse == "auto" and not ranges
    sc = scan_space(hs, key, evidence=auto)
    notes = []
    evidence = None
    if auto:
        evidence, left = sc.evidence
        if left["bytes"]:
            notes.append(
                f"left off the address axis: {format_bytes(left['bytes'])} seen accessed only "
                f"briefly, in regions of {format_bytes(left['min_region'])} or more "
                "(--collapse gaps draws them)"
            )
    segs = _segments(sc.held, evidence, collapse, ranges)
    bs, be = view_bins(segs, addr_bins, sc.unit)
    t0, t1 = time_range if time_range else _key_span(hs, key)
    edges = time_edges(t0, t1, max(1.0, (t1 - t0) / time_bins))
    edges[-1] = t1
    mean = _grid(hs, key, edges, bs, be)
    top = hs.max_nr_accesses
    if value == "rate":
        mean = mean / top
        top = 1.0
        unit_s = "access rate (nr_accesses / max), cell mean"
    elif value == "hz":
        mean = mean / (hs.aggr_us / 1e6)
        top = top / (hs.aggr_us / 1e6)
        unit_s = "accesses per second (Hz), cell mean"
    else:
        unit_s = "nr_accesses, cell mean"
    if len(hs.keys) > 1:
        notes.append(f"target {key} of {len(hs.keys)}")
    if hs.sparse:
        notes.append("sparse history: idle bytes drawn with nr_accesses 0")
    return Heatmap(mean, edges, bs, be, segs, "regions", unit_s, hs.name, notes, top, _space(hs))


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
    pages = np.unique(addr // np.uint64(PAGE_SIZE)) * np.uint64(PAGE_SIZE)
    held = merge_intervals(pages, pages + np.uint64(PAGE_SIZE))
    if ranges:
        segs = _segments(held, None, "gaps", ranges)
    else:
        nbytes = int((held[:, 1] - held[:, 0]).sum())
        segs = merge_intervals(held[:, 0], held[:, 1], gap=max(min_gap, int(0.05 * nbytes)))
    total = int((segs[:, 1] - segs[:, 0]).sum())
    bs, be = uniform_bins(segs, auto_bin_bytes(total, addr_bins, PAGE_SIZE))
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


def diff_heatmap(
    a,
    b,
    *,
    offset_ns: int = 0,
    time_bins: int = 400,
    addr_bins: int = 400,
    target_a=None,
    target_b=None,
    ranges: Sequence[tuple[int, int]] | None = None,
    collapse: str = "auto",
) -> Heatmap:
    """Access rate (nr_accesses / max) of ``b`` minus that of ``a``, per cell (NaN where
    one side does not cover the cell). ``offset_ns`` is added to ``b``'s times. The
    address axis is chosen from where either side saw accesses (as for
    :func:`region_heatmap`), over what either side covers. Streams both sources."""
    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("heatmap resolution must be at least 1 × 1")
    ha, hb = open_source(a), open_source(b)
    ka, kb = _pick_key(ha, target_a), _pick_key(hb, target_b)
    auto = collapse == "auto" and not ranges
    sa, sb = scan_space(ha, ka, evidence=auto), scan_space(hb, kb, evidence=auto)
    held = merge_intervals(
        np.concatenate([sa.held[:, 0], sb.held[:, 0]]),
        np.concatenate([sa.held[:, 1], sb.held[:, 1]]),
    )
    evidence = None
    if auto:
        ea, eb = sa.evidence[0], sb.evidence[0]
        evidence = merge_intervals(
            np.concatenate([ea[:, 0], eb[:, 0]]), np.concatenate([ea[:, 1], eb[:, 1]])
        )
    segs = _segments(held, evidence, collapse, ranges)
    bs, be = view_bins(segs, addr_bins, min(sa.unit, sb.unit))
    (a0, a1), (b0, b1) = _key_span(ha, ka), _key_span(hb, kb)
    t0, t1 = min(a0, b0 + int(offset_ns)), max(a1, b1 + int(offset_ns))
    edges = time_edges(t0, t1, max(1.0, (t1 - t0) / time_bins))
    edges[-1] = t1
    ma = _grid(ha, ka, edges, bs, be)
    mb = _grid(hb, kb, edges, bs, be, offset_ns=offset_ns)
    d = mb / hb.max_nr_accesses - ma / ha.max_nr_accesses
    hm = Heatmap(
        d,
        edges,
        bs,
        be,
        segs,
        "diff",
        "access rate difference (b - a), rate = nr_accesses / max",
        f"{hb.name} - {ha.name}",
        space=_space(ha),
    )
    both = np.isfinite(d)
    if both.any():
        w = np.broadcast_to((be - bs).astype(np.float64)[None, :], d.shape)[both]
        hm.notes.append(
            "byte-weighted mean |b - a| where both cover: "
            f"{np.average(np.abs(d[both]), weights=w):.3g}"
        )
    else:
        hm.notes.append("the two histories cover no common cell")
    return hm


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
    from types import SimpleNamespace

    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("heatmap resolution must be at least 1 × 1")
    h = open_source(src)
    if not h.aggr_us:
        raise ConfigError(f"{h.name}: the aggregation interval is unknown (damo's heat is in Hz)")
    key = _pick_key(h, target)
    aggr_ns = int(round(h.aggr_us * 1000))
    T0 = h.snaps["t0"].to_numpy(np.int64)
    T1 = h.snaps["t1"].to_numpy(np.int64)
    mine = np.flatnonzero(h.snaps["key"].to_numpy() == key)
    first = int(mine[0])
    # the first snapshot (its idle bytes aged as the monitor would, for a sparse source)
    r0 = next(iter_rows(h, key=key))
    sel = r0.snap == first
    st0, en0, nr0 = r0.start[sel], r0.end[sel], r0.nr_accesses[sel]
    age0 = np.nan_to_num(r0.age[sel], nan=0.0).astype(np.int64)
    ages = np.unique(age0)
    # it becomes one pseudo snapshot per distinct age, backfilled over it
    S = len(T0)
    t0_first, t1_first = int(T0[first]), int(T1[first])
    snaps = pd.DataFrame(
        {
            "t0": np.concatenate([T0, t0_first - ages * aggr_ns]),
            "t1": np.concatenate([T1, np.full(len(ages), t1_first, np.int64)]),
        }
    )
    t_start = t0_first - int(ages.max()) * aggr_ns
    t_end = int(T1[mine].max())
    if addr_range:
        lo, hi = addr_range
    else:
        held = scan_space(h, key, evidence=False).held
        lo, hi = int(held[0, 0]), int(held[-1, 1])
    tu = (t_end - t_start) // time_bins
    au = (hi - lo) // addr_bins
    if tu <= 0 or au <= 0:
        raise ConfigError("the resolution is finer than the data's time or address span")
    edges = t_start + np.arange(time_bins + 1, dtype=np.int64) * tu
    bs = (lo + np.arange(addr_bins, dtype=np.int64) * au).astype(np.uint64)
    be = bs + np.uint64(au)
    pseudo = S + np.searchsorted(ages, age0)
    o = np.lexsort((st0, pseudo))
    rows0 = pd.DataFrame({"snap": pseudo[o], "start": st0[o], "end": en0[o]})
    (s,), cover = raster(SimpleNamespace(df=rows0, snaps=snaps), edges, bs, be, [nr0[o]])
    for b in h.iter_batches(key=key):
        keep = b.row_snap != first
        rows = pd.DataFrame({"snap": b.row_snap[keep], "start": b.start[keep], "end": b.end[keep]})
        (s1,), c1 = raster(
            SimpleNamespace(df=rows, snaps=snaps), edges, bs, be, [b.nr_accesses[keep]]
        )
        s += s1
        cover += c1
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
