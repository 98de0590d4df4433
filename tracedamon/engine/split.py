"""Split (spec §7): ``kdamond_split_regions`` and mainline-2026's
``damon_split_some_regions`` over the region arrays of all targets.

numba kernels: they read the monitor's region columns and write the split regions to
``o_*`` output columns (one random draw per attempt, :func:`tracedamon.engine.draw.draw`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .draw import draw


@njit(cache=True)
def _split_regions(
    start,
    end,
    nr,
    bp,
    last,
    age,
    toff,
    nr_subs,
    minsz,
    maxsz,
    st,
    fix_rand32,
    inj,
    injpos,
    o_start,
    o_end,
    o_nr,
    o_bp,
    o_last,
    o_age,
    ooff,
):
    ntgt = toff.shape[0] - 1
    cuts = np.empty(max(nr_subs, 1), np.int64)
    w = 0
    for t in range(ntgt):
        ooff[t] = w
        for i in range(toff[t], toff[t + 1]):
            a = start[i]
            b = end[i]
            sz = b - a
            nc = 0
            j = 0
            while j < nr_subs - 1 and sz > 2 * minsz:
                k = 1 + draw(st, 9, fix_rand32, inj, injpos)
                sub = (k * sz // 10) // minsz * minsz
                if maxsz > 0 and sub > maxsz:
                    sub = maxsz
                j += 1
                if sub == 0 or sub >= sz:
                    continue
                cuts[nc] = sub
                nc += 1
                sz = sub
            cur = a
            # ascending pieces: [a, a+cuts[nc-1]), [a+cuts[nc-1], a+cuts[nc-2]), ..., [.., b)
            for q in range(nc - 1, -2, -1):
                e = b if q < 0 else a + cuts[q]
                o_start[w] = cur
                o_end[w] = e
                o_nr[w] = nr[i]
                o_bp[w] = bp[i]
                o_last[w] = last[i]
                o_age[w] = age[i]
                w += 1
                cur = e
    ooff[ntgt] = w
    return w


@njit(cache=True)
def split_some_regions(
    start,
    end,
    nr,
    bp,
    last,
    age,
    toff,
    step,
    offset,
    minsz,
    maxsz,
    st,
    fix_rand32,
    inj,
    injpos,
    o_start,
    o_end,
    o_nr,
    o_bp,
    o_last,
    o_age,
    ooff,
):
    """damon_split_some_regions (mainline-2026): of the regions of all targets, counted
    in order from 0, split those whose index is ``offset`` modulo ``step`` in two, when
    at least ``2 * minsz`` large (one draw each; the right piece is not visited).
    Writes the result to the ``o_*`` arrays; returns the number of regions."""
    ntgt = toff.shape[0] - 1
    w = 0
    idx = 0
    for t in range(ntgt):
        ooff[t] = w
        for i in range(toff[t], toff[t + 1]):
            a = start[i]
            b = end[i]
            cut = 0
            chosen = idx % step == offset
            idx += 1
            if chosen and b - a >= 2 * minsz:
                sz = b - a
                k = 1 + draw(st, 9, fix_rand32, inj, injpos)
                sub = (k * sz // 10) // minsz * minsz
                if maxsz > 0 and sub > maxsz:
                    sub = maxsz
                if 0 < sub < sz:
                    cut = sub
            for q in range(2 if cut else 1):
                o_start[w] = a if q == 0 else a + cut
                o_end[w] = a + cut if (cut and q == 0) else b
                o_nr[w] = nr[i]
                o_bp[w] = bp[i]
                o_last[w] = last[i]
                o_age[w] = age[i]
                w += 1
    ooff[ntgt] = w
    return w
