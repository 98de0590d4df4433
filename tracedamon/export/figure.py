"""PNG pictures: matplotlib figures of a fixed pixel size on the Agg backend
(:func:`new_figure`), the heatmap's figure (:func:`heatmap_figure`), and saving a
figure through the output rule (:func:`save_figure`: atomic, tracedamon's text chunk,
an existing file replaced only when it is tracedamon's). matplotlib is imported on
first use: it is an optional dependency and slow to import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..store.atomic import PNG_PLOT, atomic_path, png_metadata
from ..units import format_bytes

if TYPE_CHECKING:
    from .heatmap import Heatmap

__all__ = ["DPI", "new_figure", "heatmap_figure", "render_png", "save_figure"]


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
    return save_figure(
        heatmap_figure(hm, width=width, height=height, title=title), path, DPI, force=force
    )


DPI = 100


def new_figure(width: int, height: int, **kw):
    """A matplotlib figure of ``width`` × ``height`` pixels on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if width < 100 or height < 100:
        raise ConfigError("the PNG must be at least 100 × 100 pixels")
    return plt.subplots(figsize=(width / DPI, height / DPI), dpi=DPI, **kw)


def heatmap_figure(hm: Heatmap, *, width: int = 1000, height: int = 700, title: str | None = None):
    """The matplotlib figure :func:`render_png` saves (axes labelled with units, a
    colour bar, the notes at the bottom)."""
    from matplotlib.colors import Normalize

    fig, ax = new_figure(width, height)
    nt, nb = hm.matrix.shape
    t = (hm.t_edges - hm.t_edges[0]) / 1e9
    lev = hm.level(hm.matrix)
    norm = Normalize(-1.0, 1.0) if hm.kind == "diff" else Normalize(0.0, 1.0)
    im = ax.imshow(
        np.ma.masked_invalid(lev.T),
        origin="lower",
        aspect="auto",
        cmap=hm._cmap(),
        norm=norm,
        interpolation="nearest",
        extent=(float(t[0]), float(t[-1]), 0, nb),
    )
    # address ticks: the first bin of each shown range (separators between ranges),
    # plus evenly spaced bins in between, labelled with their start address
    seg_first = np.searchsorted(hm.bin_start, hm.segments[:, 0])
    for k, j in enumerate(seg_first):
        if k > 0:
            ax.axhline(j, color="white", lw=1.5)
    first = [int(j) for j in seg_first[:: max(1, len(seg_first) // 8)]]
    even = [int(j) for j in np.linspace(0, max(nb - 1, 0), 9).round()]
    keep = []
    for t in sorted(set(first)) + [t for t in even if t not in first]:
        if all(abs(t - k) >= max(1, nb // 30) for k in keep):
            keep.append(t)
    keep.sort()
    ax.set_yticks(keep)
    ax.set_yticklabels([f"{int(hm.bin_start[j]):#x}" for j in keep], fontsize=7)
    ax.set_xlabel("time (s from the start of the history)")
    shown = int((hm.segments[:, 1] - hm.segments[:, 0]).sum()) if len(hm.segments) else 0
    sizes = np.unique((hm.bin_end - hm.bin_start)[:-1] if nb > 1 else hm.bin_end - hm.bin_start)
    rows = format_bytes(int(sizes.max())) if len(sizes) else "-"
    ylabel = f"{hm.space} ({format_bytes(shown)} shown, {rows} per row"
    if len(hm.segments) > 1:
        ylabel += f"; {len(hm.segments)} ranges, gaps between them left out"
    ax.set_ylabel(ylabel + ")", fontsize=8)
    what = {"regions": "access heat", "samples": "samples", "diff": "difference"}[hm.kind]
    ax.set_title(title or f"{what}: {hm.source}", fontsize=9)
    if hm.notes:
        fig.text(0.01, 0.005, "; ".join(hm.notes), fontsize=7, va="bottom")
    if hm.kind == "diff":
        cb = fig.colorbar(im, ax=ax)
        lim = hm.limit
        ticks = np.array([-1, -0.5, 0, 0.5, 1.0])
        cb.set_ticks(ticks)
        cb.set_ticklabels([f"{v * lim:+.2g}" if v else "0" for v in ticks])
        cb.set_label(f"{hm.unit} (limit ±{lim:.3g}; grey: not covered by both)", fontsize=8)
    else:
        cb = fig.colorbar(im, ax=ax, extend="min", extendfrac=0.04)
        lim = hm.limit
        vals = _nice_ticks(lim)
        cb.set_ticks(np.sqrt(np.asarray(vals) / lim))
        cb.set_ticklabels([f"{v:.3g}" for v in vals])
        cb.set_label(
            f"{hm.unit}: square-root scale; black: 0 (never), grey: not monitored", fontsize=8
        )
    fig.tight_layout(rect=(0, 0.02 if hm.notes else 0, 1, 1))
    return fig


def _nice_ticks(lim: float) -> list:
    """A few round values in (0, lim], the top included."""
    out = []
    for f in (0.01, 0.05, 0.1, 0.25, 0.5):
        v = float(f"{lim * f:.1g}")
        if 0 < v < lim and (not out or v > out[-1] * 1.5):
            out.append(v)
    return out + [lim]


def save_figure(fig, path: str | os.PathLike, dpi: int, *, force: bool = False) -> Path:
    """Save a matplotlib figure as PNG atomically (with tracedamon's text chunk; an
    existing ``path`` is replaced only with ``force`` and only if it is tracedamon's
    PNG) and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, kind=PNG_PLOT, force=force, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", metadata=png_metadata())
    finally:
        plt.close(fig)
    return Path(path)
