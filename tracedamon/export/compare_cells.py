"""The cells grid of a comparison (``CompareResult.cells``, ``--cells``): per time bin,
address bin and side, area-weighted means of the heat, the accessed fraction and the
age, and how much of the cell the side covers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grid import Raster, cell_area, uniform_bins

__all__ = ["CellsGrid"]


class CellsGrid:
    """The cells grid: per (time bin, address bin) and side, area-weighted means,
    accumulated from batches (:meth:`add`) as the sweep reads them, or by a pass of
    its own (:meth:`fill`)."""

    def __init__(self, ha, hb, pairs, granges, bin_bytes, edges, applied, acc_thres):
        self.h = {"a": ha, "b": hb}
        self.pairs, self.edges, self.acc_thres = pairs, edges, acc_thres
        self.off = {"a": 0, "b": int(applied)}
        self.bins = []
        self.acc = []
        for segs in granges:
            bs, be = (
                uniform_bins(segs, bin_bytes)
                if len(segs)
                else (np.zeros(0, np.uint64), np.zeros(0, np.uint64))
            )
            self.bins.append((bs, be))
            self.acc.append(
                {
                    tag: Raster(
                        edges,
                        bs,
                        be,
                        h.snaps["t0"].to_numpy(np.int64) + self.off[tag],
                        h.snaps["t1"].to_numpy(np.int64) + self.off[tag],
                        4,
                    )
                    for tag, h in self.h.items()
                }
            )

    def add(self, i: int, tag: str, bt) -> None:
        if not len(self.bins[i][0]):
            return
        nr = bt.nr_accesses
        known = np.isfinite(bt.age)
        meas = self.h[tag].aggr_ns_measured
        vals = [
            nr,
            (nr >= self.acc_thres).astype(float),
            np.where(known, bt.age, 0.0) * meas,
            known.astype(float),
        ]
        snap = bt.row_snap
        step = 400_000
        for c0 in range(0, len(snap), step):
            c1 = c0 + step
            self.acc[i][tag].add(
                snap[c0:c1], bt.start[c0:c1], bt.end[c0:c1], [v[c0:c1] for v in vals]
            )

    def fill(self) -> "CellsGrid":
        for i, (ka, kb) in enumerate(self.pairs):
            for tag, key in (("a", ka), ("b", kb)):
                for bt in self.h[tag].iter_batches(key=key, time_ns=False):
                    self.add(i, tag, bt)
        return self

    def frame(self) -> pd.DataFrame:
        frames = []
        edges = self.edges
        for (ka, kb), (bs, be), acc in zip(self.pairs, self.bins, self.acc):
            if len(bs) == 0:
                continue
            area = cell_area(edges, bs, be)
            nt, nb = len(edges) - 1, len(bs)
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
                (heat, accd, agesum, ageknown), cover = acc[tag].result()
                with np.errstate(invalid="ignore", divide="ignore"):
                    heat = np.where(cover > 0, heat / cover, np.nan)
                    accd = np.where(cover > 0, accd / cover, np.nan)
                    # the mean age over the covered part whose age is known (at least half)
                    age_mean = np.where(
                        ageknown > 0.5 * cover, agesum / np.where(ageknown > 0, ageknown, 1), np.nan
                    )
                    frac = np.where(area > 0, cover / area, 0.0)
                d[f"heat_{tag}"] = heat.ravel()
                d[f"rate_{tag}"] = heat.ravel() / self.h[tag].max_nr_accesses
                d[f"accessed_{tag}"] = accd.ravel()
                d[f"age_{tag}_ns"] = age_mean.ravel()
                d[f"cover_{tag}"] = frac.ravel()
            frames.append(pd.DataFrame(d))
        if not frames:
            return pd.DataFrame()
        cells = pd.concat(frames, ignore_index=True)
        cells["valid"] = (cells["cover_a"] >= 0.5) & (cells["cover_b"] >= 0.5)
        cells["diff_rate"] = cells["rate_b"] - cells["rate_a"]
        cells["area"] = (cells["t1_ns"] - cells["t0_ns"]).to_numpy(float) * (
            cells["end"].to_numpy() - cells["start"].to_numpy()
        ).astype(float)
        return cells
