"""Region lists at an operations set's init and update (Python; run at init/update only).

The kernel's helpers the operations sets use -- ``damon_set_regions``, the vaddr
init's even split -- over one target's rows (``[start, end, nr, bp, last, age]``
lists), the fixed-granularity grid of the RFC, and :class:`Target`, one monitoring
target of a context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .address import check_ranges


def align_down(x: int, a: int) -> int:
    return (x // a) * a


def align_up(x: int, a: int) -> int:
    return ((x + a - 1) // a) * a


def new_region(s: int, e: int) -> list:
    return [int(s), int(e), 0, 0, 0, 0]


def evenly_split(s: int, e: int, nr_pieces: int, minsz: int, maxsz: int = 0) -> list[list]:
    """damon_va_evenly_split_region (spec §10.2), with the RFC's max-size cap (§13.4)."""
    size = e - s
    if maxsz:
        piece = align_down(size // max(nr_pieces, 1), minsz) if nr_pieces else maxsz
        piece = min(piece, maxsz) if piece else maxsz
        limit = None
    else:
        if nr_pieces <= 1:
            return [new_region(s, e)]
        piece = align_down(size // nr_pieces, minsz)
        limit = nr_pieces
    if piece == 0 or size <= piece:
        return [new_region(s, e)]
    out = []
    cur = s
    while (limit is None or len(out) < limit) and cur + piece <= e:
        out.append(new_region(cur, cur + piece))
        cur += piece
    out[-1][1] = e
    return out


def set_regions(
    regs: list[list], ranges: Sequence[tuple[int, int]], min_sz: int, maxsz: int = 0
) -> list[list]:
    """damon_set_regions (spec §10.4) on one target's region list (rows as lists).

    Regions that intersect no range are dropped, the first/last region intersecting
    a range are stretched to its aligned bounds, holes are filled with new regions,
    and a range no region intersects gets a new region.  Kept regions keep their
    counters.  With the RFC's ``maxsz`` set, new regions, and a first or last region that
    grew, are cut into ``maxsz`` pieces (only the first piece keeps the counters).
    """

    def inter(r, R):
        return not (r[1] <= R[0] or R[1] <= r[0])

    def fresh(s, e):
        return evenly_split(s, e, 0, min_sz, maxsz) if maxsz else [new_region(s, e)]

    regs = [list(r) for r in regs if any(inter(r, R) for R in ranges)]
    i = 0
    for R in ranges:
        first = last = None
        while i < len(regs):
            r = regs[i]
            if inter(r, R):
                if first is None:
                    first = i
                last = i
            if r[0] >= R[1]:
                break
            i += 1
        if first is None:
            new = fresh(align_down(R[0], min_sz), align_up(R[1], min_sz))
            regs[i:i] = new
            i += len(new)
        else:
            grown_down = align_down(R[0], min_sz) < regs[first][0]
            grown_up = align_up(R[1], min_sz) > regs[last][1]
            regs[first][0] = align_down(R[0], min_sz)
            regs[last][1] = align_up(R[1], min_sz)
            # the RFC (split=true) cuts a grown first or last region in maxsz pieces too:
            # the first piece keeps the region's counters, the others start at zero
            single = first == last
            if maxsz and grown_down:
                new = fresh(regs[first][0], regs[first][1])
                new[0][2:] = regs[first][2:]
                regs[first : first + 1] = new
                last += len(new) - 1
                i += len(new) - 1
                if single:
                    continue
            if maxsz and grown_up:
                new = fresh(regs[last][0], regs[last][1])
                new[0][2:] = regs[last][2:]
                regs[last : last + 1] = new
                i += len(new) - 1
                last += len(new) - 1
            j = first
            while j < last:
                if regs[j][1] != regs[j + 1][0]:
                    new = fresh(regs[j][1], regs[j + 1][0])
                    regs[j + 1 : j + 1] = new
                    last += len(new)
                    i += len(new)
                    j += len(new)
                j += 1
    return regs


def fixed_grid(ranges: Sequence[tuple[int, int]], size: int) -> np.ndarray:
    """Fixed-granularity regions: the ranges aligned out to ``size``, cut in ``size`` pieces.

    Overlapping or touching aligned ranges are united.  Returns the region starts.
    """
    spans = sorted((align_down(s, size), align_up(e, size)) for s, e in ranges if e > s)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    if not merged:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(s, e, size, dtype=np.int64) for s, e in merged])


@dataclass
class Target:
    """One monitoring target.

    ``ranges_at(time_ns)`` gives the address ranges to monitor at that time ((k, 2)
    int64, sorted, non-overlapping) or ``None`` when they cannot be determined.  What
    the monitor does with them (read once at start, or again at every ops update) is
    its operations set's business (:mod:`tracedamon.engine.ops`).

    ``exit_ns``: the time from which the target is gone (every thread of its process
    exited; the virtual sets' ``target_valid`` is false from then on); ``mm_exit_ns``: the
    time from which it has no mm (its leader thread exited; default ``exit_ns``).  None:
    it does not exit.  See :mod:`tracedamon.engine.lifetime`.
    """

    ranges_at: Callable[[int], np.ndarray | None]
    pid: int | None = None
    name: str = ""
    exit_ns: int | None = None
    mm_exit_ns: int | None = None


def target_ranges(tg: "Target", time_ns: int) -> list[tuple[int, int]] | None:
    """``tg.ranges_at(time_ns)`` as a list of (start, end), checked against the engine's
    address invariant (:mod:`tracedamon.engine.address`); None when unknown."""
    ranges = tg.ranges_at(time_ns)
    if ranges is None:
        return None
    return [(int(s), int(e)) for s, e in check_ranges(ranges, "target range")]
