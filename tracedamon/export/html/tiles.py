"""What the HTML report embeds for one address space: a tile pyramid, row chunks and
per-snapshot series.

The page draws a time × address heatmap of one address space (a pid, or a DAMON
target). Its address axis is *collapsed*: the ranges that hold regions (the
space's ``segments``) are laid end to end, so a display coordinate ``x`` is a byte
offset into the concatenated segments, and the gaps between them take no room.

Two representations serve the page, chosen by the page per view:

* **tiles**: area-weighted mean ``nr_accesses`` on a pyramid of grids. Level
  ``(i, j)`` has ``256·2^i`` time bins × ``256·2^j`` address bins over the whole run,
  cut into 256 × 256 tiles; every level with ``i + j <= K`` is kept. The levels on
  the diagonal ``i + j == K`` are rasterised from the rows (one pass, numba); the
  coarser ones are exact sums of them (bins nest: the finest bin widths are whole
  ns and whole bytes, every coarser width a power-of-two multiple). A cell is one
  byte: 0 no region covers it, 1 covered with mean 0 (never accessed), 2..255 the
  mean as a fraction of the space's largest possible ``nr_accesses`` (so "accessed
  a little" never looks like "never accessed").
* **row chunks**: the region rows themselves, exact, for views with few enough rows.
  Rows are cut into blocks of whole snapshots and each block into address strips;
  a chunk's columns (LEB128 varints: rows per snapshot, gap to the previous
  region's end, size, nr_accesses, age + 1) are deflated separately from the rest.

Everything here is numpy/numba over arrays; nothing reads or writes files.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..grid import merge_intervals

TILE = 256  # cells per tile side, and bins of level 0 on each axis
MAX_K = 4  # deepest level sum i + j (memory: (K + 1) diagonal grids of 65536·2^K cells)
BLOCK_ROWS = 262_144  # rows per block of whole snapshots
STRIP_ROWS = 16_384  # rows per address strip inside a block


# ----------------------------------------------------------------------------------
# the collapsed address axis
# ----------------------------------------------------------------------------------
@dataclass
class Axis:
    """Segments ``[start, end)`` (sorted, disjoint) laid end to end from x = 0."""

    start: np.ndarray  # uint64
    end: np.ndarray  # uint64
    x0: np.ndarray  # int64 display offset of each segment

    @classmethod
    def of(cls, segments: np.ndarray) -> "Axis":
        seg = np.asarray(segments, dtype=np.uint64).reshape(-1, 2)
        ln = (seg[:, 1] - seg[:, 0]).astype(np.int64)
        x0 = np.concatenate([[0], np.cumsum(ln)[:-1]]).astype(np.int64)
        return cls(seg[:, 0].copy(), seg[:, 1].copy(), x0)

    @property
    def length(self) -> int:
        return int((self.end - self.start).astype(np.int64).sum())

    def to_x(self, addr: np.ndarray) -> np.ndarray:
        """Display coordinate of addresses inside the segments (int64); -1 outside."""
        a = np.asarray(addr, dtype=np.uint64)
        k = np.searchsorted(self.start, a, side="right") - 1
        kc = np.clip(k, 0, len(self.start) - 1)
        inside = (k >= 0) & (a < self.end[kc]) & (a >= self.start[kc])
        x = (a - self.start[kc]).astype(np.int64) + self.x0[kc]
        return np.where(inside, x, -1)

    def rows_to_x(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Display [x0, x1) of regions; each region lies inside one segment (the
        segments are the union of the regions)."""
        x0 = self.to_x(start)
        if (x0 < 0).any():
            raise ValueError("a region starts outside the axis segments")
        return x0, x0 + (np.asarray(end, np.uint64) - np.asarray(start, np.uint64)).astype(np.int64)

    def to_json(self) -> list:
        return [[int(s), int(e), int(x)] for s, e, x in zip(self.start, self.end, self.x0)]


# ----------------------------------------------------------------------------------
# rasterising
# ----------------------------------------------------------------------------------
@njit(cache=True)
def _raster_rows(t0s, t1s, snap, x0, x1, val, T0, tw, nt, aw, na, sums, cover):  # pragma: no cover
    """Add value × overlap (ns × bytes) of every row to the cells it overlaps.

    Row r covers time [t0s[snap[r]], t1s[snap[r]]) and display bytes [x0[r], x1[r]).
    Cell (i, j) covers [T0 + i·tw, T0 + (i+1)·tw) × [j·aw, (j+1)·aw).
    """
    for r in range(len(snap)):
        s = snap[r]
        t0 = t0s[s]
        t1 = t1s[s]
        if t1 <= t0:
            continue
        i0 = (t0 - T0) // tw
        i1 = (t1 - 1 - T0) // tw
        if i1 < 0 or i0 >= nt:
            continue
        if i0 < 0:
            i0 = 0
        if i1 >= nt:
            i1 = nt - 1
        a = x0[r]
        b = x1[r]
        j0 = a // aw
        j1 = (b - 1) // aw
        if j1 >= na:
            j1 = na - 1
        v = val[r]
        for i in range(i0, i1 + 1):
            lo = T0 + i * tw
            hi = lo + tw
            ot = float(min(t1, hi) - max(t0, lo))
            if ot <= 0:
                continue
            base = i * na
            for j in range(j0, j1 + 1):
                xl = j * aw
                xh = xl + aw
                ox = float(min(b, xh) - max(a, xl))
                if ox <= 0:
                    continue
                w = ot * ox
                cover[base + j] += w
                sums[base + j] += w * v


def quantize(sums: np.ndarray, cover: np.ndarray, vmax: float) -> np.ndarray:
    """One byte per cell: 0 uncovered, 1 mean 0, 2..255 the mean in (0, vmax]."""
    q = np.zeros(sums.shape, np.uint8)
    cov = cover > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cov, sums / np.where(cov, cover, 1.0), 0.0)
    q[cov] = 1
    pos = cov & (mean > 0)
    frac = np.minimum(mean[pos] / max(vmax, 1e-300), 1.0)
    q[pos] = (2 + np.minimum(np.floor(frac * 254), 253)).astype(np.uint8)
    return q


def dequantize(q: np.ndarray, vmax: float) -> np.ndarray:
    """The value a page shows for a code (the middle of its bin; NaN for 0)."""
    q = np.asarray(q)
    out = np.full(q.shape, np.nan)
    out[q == 1] = 0.0
    m = q >= 2
    out[m] = (q[m].astype(np.float64) - 2 + 0.5) / 254.0 * vmax
    return out


@dataclass
class Grid:
    """The pyramid's geometry: finest bin widths and the levels kept."""

    T0: int
    tw: int  # finest time bin (level i = K), ns
    aw: int  # finest address bin (level j = K), bytes
    K: int
    imax: int  # deepest time level worth keeping
    jmax: int  # deepest address level worth keeping

    def levels(self):
        for i in range(0, min(self.K, self.imax) + 1):
            for j in range(0, min(self.K - i, self.jmax) + 1):
                yield i, j

    def tw_at(self, i: int) -> int:
        return self.tw << (self.K - i)

    def aw_at(self, j: int) -> int:
        return self.aw << (self.K - j)

    def to_json(self) -> dict:
        return {
            "T0": self.T0,
            "tw": self.tw,
            "aw": self.aw,
            "K": self.K,
            "imax": self.imax,
            "jmax": self.jmax,
            "tile": TILE,
        }


def choose_grid(
    t_start: int, t_end: int, length: int, n_rows: int, snap_ns: float, unit: int
) -> Grid:
    """Levels for a space of ``length`` display bytes over ``[t_start, t_end)``.

    The depth K grows with the row count (views of more than a few hundred thousand
    rows are drawn from tiles, fewer from the rows themselves); a level finer than one
    snapshot in time or one ``unit`` in address is not kept.
    """
    K = int(min(MAX_K, max(1, math.ceil(math.log2(max(1.0, n_rows / 200_000))) + 1)))
    span = max(1, t_end - t_start)
    tw = max(1, math.ceil(span / (TILE << K)))
    aw = max(1, math.ceil(max(1, length) / (TILE << K)))
    imax = 0
    while imax < K and (tw << (K - imax - 1)) >= max(1.0, snap_ns) / 2:
        imax += 1
    jmax = 0
    while jmax < K and (aw << (K - jmax - 1)) >= unit:
        jmax += 1
    return Grid(int(t_start), int(tw), int(aw), K, imax, jmax)


class PyramidBuilder:
    """Accumulates rows (in batches of whole snapshots) into the diagonal levels."""

    def __init__(self, grid: Grid, t0s: np.ndarray, t1s: np.ndarray):
        self.g = grid
        self.t0s = np.asarray(t0s, np.int64)
        self.t1s = np.asarray(t1s, np.int64)
        self.diag = {}
        for i in range(0, min(grid.K, grid.imax) + 1):
            j = min(grid.K - i, grid.jmax)
            n = (TILE << i) * (TILE << j)
            self.diag[i] = (j, np.zeros(n), np.zeros(n))

    def add(self, snap: np.ndarray, x0: np.ndarray, x1: np.ndarray, val: np.ndarray) -> None:
        g = self.g
        snap = np.ascontiguousarray(snap, np.int64)
        x0 = np.ascontiguousarray(x0, np.int64)
        x1 = np.ascontiguousarray(x1, np.int64)
        val = np.ascontiguousarray(val, np.float64)
        for i, (j, sums, cover) in self.diag.items():
            _raster_rows(
                self.t0s,
                self.t1s,
                snap,
                x0,
                x1,
                val,
                np.int64(g.T0),
                np.int64(g.tw_at(i)),
                np.int64(TILE << i),
                np.int64(g.aw_at(j)),
                np.int64(TILE << j),
                sums,
                cover,
            )

    def levels(self):
        """Yield (i, j, sums, cover) as (nt, na) arrays for every kept level."""
        for i, (j, sums, cover) in self.diag.items():
            s = sums.reshape(TILE << i, TILE << j)
            c = cover.reshape(TILE << i, TILE << j)
            while True:
                yield i, j, s, c
                if j == 0:
                    break
                s = s.reshape(s.shape[0], -1, 2).sum(axis=2)
                c = c.reshape(c.shape[0], -1, 2).sum(axis=2)
                j -= 1


def encode_tiles(q: np.ndarray, i: int, j: int, blobs: "BlobStore") -> dict:
    """Cut a level's code matrix (nt, na) into 256 × 256 tiles: ``{"p,q": blob id}``
    for varied tiles, ``{"p,q": -(code + 1)}`` for uniform ones; all-uncovered tiles
    are left out."""
    out = {}
    for p in range(1 << i):
        for r in range(1 << j):
            t = q[p * TILE : (p + 1) * TILE, r * TILE : (r + 1) * TILE]
            first = int(t.flat[0])
            if (t == first).all():
                if first != 0:
                    out[f"{p},{r}"] = -(first + 1)
                continue
            out[f"{p},{r}"] = blobs.add(np.ascontiguousarray(t).tobytes())
    return out


# ----------------------------------------------------------------------------------
# varints and blobs
# ----------------------------------------------------------------------------------
def varint(x: np.ndarray) -> bytes:
    """LEB128 encoding of non-negative integers (vectorised)."""
    x = np.asarray(x, dtype=np.uint64).ravel()
    if len(x) == 0:
        return b""
    nb = np.ones(len(x), np.int64)
    v = x >> np.uint64(7)
    while True:
        more = v > 0
        if not more.any():
            break
        nb += more
        v = v >> np.uint64(7)
    pos = np.concatenate([[0], np.cumsum(nb)[:-1]])
    buf = np.zeros(int(nb.sum()), np.uint8)
    v = x.copy()
    for k in range(int(nb.max())):
        m = nb > k
        b = (v[m] & np.uint64(0x7F)).astype(np.uint8)
        b |= np.where(nb[m] > k + 1, 0x80, 0).astype(np.uint8)
        buf[pos[m] + k] = b
        v[m] = v[m] >> np.uint64(7)
    return buf.tobytes()


def unvarint(data: bytes, n: int, offset: int = 0) -> tuple[np.ndarray, int]:
    """Decode ``n`` LEB128 integers from ``data`` at ``offset`` (for tests)."""
    out = np.zeros(n, np.uint64)
    p = offset
    for k in range(n):
        shift = 0
        v = 0
        while True:
            b = data[p]
            p += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out[k] = v
    return out, p


class BlobStore:
    """Binary blobs for the page, each deflated (zlib) and base64-encoded on its own."""

    def __init__(self, level: int = 6):
        self.parts: list[bytes] = []
        self.level = level
        self.raw_bytes = 0

    def add(self, data: bytes) -> int:
        self.raw_bytes += len(data)
        self.parts.append(zlib.compress(data, self.level))
        return len(self.parts) - 1

    def add_array(self, a: np.ndarray, dtype) -> int:
        return self.add(np.ascontiguousarray(a, dtype=dtype).tobytes())

    @property
    def packed_bytes(self) -> int:
        return sum(len(p) for p in self.parts)


# ----------------------------------------------------------------------------------
# row chunks
# ----------------------------------------------------------------------------------
@dataclass
class Chunk:
    s0: int  # first dense snapshot index
    s1: int  # one past the last
    x0: int  # display extent of its rows
    x1: int
    n: int
    base: int  # address of the first row's start reference (see encode_chunks)
    blob: int

    def to_json(self) -> list:
        return [self.s0, self.s1, self.x0, self.x1, self.n, self.base, self.blob]


def encode_chunks(
    snap: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    nr: np.ndarray,
    age: np.ndarray,
    x0: np.ndarray,
    n_snaps: int,
    unit: int,
    blobs: BlobStore,
    *,
    block_rows: int = BLOCK_ROWS,
    strip_rows: int = STRIP_ROWS,
) -> list[Chunk]:
    """Cut rows sorted by (snap, start) into chunks and encode each.

    A chunk's blob holds five varint columns one after the other: rows per snapshot
    (``s1 - s0`` values), then per row: ``(start - previous end) / unit`` (the
    previous end of a snapshot's first row is the chunk's ``base``), ``(end -
    start) / unit``, ``nr_accesses``, ``age + 1`` (0: age unknown).
    """
    snap = np.asarray(snap, np.int64)
    n = len(snap)
    if n == 0:
        return []
    # blocks of whole snapshots, about block_rows rows each
    per_snap = np.bincount(snap, minlength=n_snaps)
    before = np.concatenate([[0], np.cumsum(per_snap)[:-1]])
    block_of_snap = before // block_rows
    # make block ids dense and increasing
    _, block_of_snap = np.unique(block_of_snap, return_inverse=True)
    row_block = block_of_snap[snap]
    bstarts = np.flatnonzero(np.r_[True, row_block[1:] != row_block[:-1]])
    bends = np.r_[bstarts[1:], n]
    u = np.uint64(unit)
    ages = np.asarray(age, np.float64)
    age_code = np.where(np.isfinite(ages), ages + 1, 0).astype(np.uint64)
    st_all = np.asarray(start, np.uint64)
    en_all = np.asarray(end, np.uint64)
    nr_all = np.asarray(nr, np.uint64)
    x0_all = np.asarray(x0, np.int64)
    x1_all = x0_all + (en_all - st_all).astype(np.int64)
    out = []
    for b0, b1 in zip(bstarts, bends):
        s_lo = int(snap[b0])
        s_hi = int(snap[b1 - 1]) + 1
        nb = b1 - b0
        nstrips = max(1, math.ceil(nb / strip_rows))
        xs = x0_all[b0:b1]
        if nstrips > 1:
            srt = np.sort(xs)
            cuts = np.unique(srt[(np.arange(1, nstrips) * nb) // nstrips])
            strip = np.searchsorted(cuts, xs, side="right")
        else:
            strip = np.zeros(nb, np.int64)
        order = np.argsort(strip, kind="stable")  # keeps (snap, start) order per strip
        strip_sorted = strip[order]
        sb = np.flatnonzero(np.r_[True, strip_sorted[1:] != strip_sorted[:-1]])
        se = np.r_[sb[1:], nb]
        for a, c in zip(sb, se):
            idx = b0 + order[a:c]
            sn = snap[idx]
            st = st_all[idx]
            en = en_all[idx]
            base = st.min()
            first = np.r_[True, sn[1:] != sn[:-1]]
            prev = np.empty(len(idx), np.uint64)
            prev[0] = base
            prev[1:] = en[:-1]
            prev[first] = base
            gap = st - prev
            size = en - st
            if (gap % u).any() or (size % u).any():
                raise ValueError("region boundaries are not multiples of the unit")
            counts = np.bincount(sn - s_lo, minlength=s_hi - s_lo)
            data = b"".join(
                [
                    varint(counts),
                    varint(gap // u),
                    varint(size // u),
                    varint(nr_all[idx]),
                    varint(age_code[idx]),
                ]
            )
            bid = blobs.add(data)
            out.append(
                Chunk(
                    s_lo,
                    s_hi,
                    int(x0_all[idx].min()),
                    int(x1_all[idx].max()),
                    int(len(idx)),
                    int(base),
                    bid,
                )
            )
    return out


class ChunkEncoder:
    """Streams rows (batches of whole snapshots, in time order) into row chunks: rows
    are buffered and cut into chunks about every ``block_rows`` rows."""

    def __init__(
        self,
        n_snaps: int,
        unit: int,
        blobs: BlobStore,
        *,
        block_rows: int = BLOCK_ROWS,
        strip_rows: int = STRIP_ROWS,
    ):
        self.n_snaps, self.unit, self.blobs = n_snaps, unit, blobs
        self.block_rows, self.strip_rows = block_rows, strip_rows
        self.buf: list[tuple] = []
        self.nbuf = 0
        self.chunks: list[Chunk] = []

    def add(self, snap, start, end, nr, age, x0) -> None:
        self.buf.append(
            (
                np.asarray(snap, np.int64),
                np.asarray(start, np.uint64),
                np.asarray(end, np.uint64),
                np.asarray(nr, np.uint64),
                np.asarray(age, np.float64),
                np.asarray(x0, np.int64),
            )
        )
        self.nbuf += len(snap)
        if self.nbuf >= self.block_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        cols = [np.concatenate([b[k] for b in self.buf]) for k in range(6)]
        self.buf, self.nbuf = [], 0
        o = np.lexsort((cols[1], cols[0]))  # (snap, start)
        cols = [c[o] for c in cols]
        self.chunks += encode_chunks(
            *cols[:5],
            cols[5],
            self.n_snaps,
            self.unit,
            self.blobs,
            block_rows=self.block_rows,
            strip_rows=self.strip_rows,
        )

    def finish(self) -> list[Chunk]:
        self.flush()
        return self.chunks


# ----------------------------------------------------------------------------------
# per-snapshot series and the heat profile
# ----------------------------------------------------------------------------------
class SeriesBuilder:
    """Working-set bytes (nr_accesses >= 1), region count, covered bytes per snapshot,
    and bytes per nr_accesses bin (at most 64 bins of equal width over [0, top])."""

    def __init__(self, n_snaps: int, top: float):
        top = max(1, int(math.ceil(top)))
        self.n = n_snaps
        self.nbins = min(64, top + 1)
        self.width = (top + 1) / self.nbins
        self.wss = np.zeros(n_snaps)
        self.regions = np.zeros(n_snaps)
        self.total = np.zeros(n_snaps)
        self.hist = np.zeros(n_snaps * self.nbins)

    def add(self, snap, start, end, nr) -> None:
        snap = np.asarray(snap, np.int64)
        size = (np.asarray(end, np.uint64) - np.asarray(start, np.uint64)).astype(np.float64)
        nr = np.asarray(nr, np.float64)
        n = self.n
        self.wss += np.bincount(snap, weights=size * (nr >= 1), minlength=n)
        self.regions += np.bincount(snap, minlength=n)
        self.total += np.bincount(snap, weights=size, minlength=n)
        b = np.minimum((nr / self.width).astype(np.int64), self.nbins - 1)
        self.hist += np.bincount(snap * self.nbins + b, weights=size, minlength=n * self.nbins)


class HeatProfile:
    """Per byte, the sum over snapshots of the nr_accesses of the regions covering it
    (``grid.heat_ranges``'s quantity), accumulated batch by batch: a step function kept
    as (boundary, jump) pairs, compacted when it grows."""

    def __init__(self, compact_at: int = 1 << 22):
        self.pts = np.zeros(0, np.uint64)
        self.delta = np.zeros(0, np.float64)
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending = 0
        self.compact_at = compact_at

    def add(self, start, end, nr) -> None:
        m = np.asarray(nr) > 0
        if not m.any():
            return
        v = np.asarray(nr, np.float64)[m]
        self.parts.append(
            (
                np.concatenate([np.asarray(start, np.uint64)[m], np.asarray(end, np.uint64)[m]]),
                np.concatenate([v, -v]),
            )
        )
        self.pending += 2 * len(v)
        if self.pending >= self.compact_at:
            self._compact()

    def _compact(self) -> None:
        p = np.concatenate([self.pts] + [a for a, _ in self.parts])
        d = np.concatenate([self.delta] + [b for _, b in self.parts])
        self.parts, self.pending = [], 0
        if len(p) == 0:
            return
        o = np.argsort(p, kind="stable")
        p, d = p[o], d[o]
        u, first = np.unique(p, return_index=True)
        self.pts, self.delta = u, np.add.reduceat(d, first)

    def ranges(self, min_fraction: float = 0.02) -> np.ndarray:
        """Address ranges whose heat is at least ``min_fraction`` of the hottest byte's."""
        self._compact()
        if len(self.pts) < 2:
            return np.zeros((0, 2), np.uint64)
        level = np.cumsum(self.delta)[:-1]
        keep = level >= min_fraction * level.max()
        if level.max() <= 0:
            return np.zeros((0, 2), np.uint64)
        lo, hi = self.pts[:-1][keep], self.pts[1:][keep]

        return merge_intervals(lo, hi)
