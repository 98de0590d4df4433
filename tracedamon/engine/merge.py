"""Merge (spec §6): ``kdamond_merge_regions`` over the region arrays of all targets.

numba kernels over the monitor's ``int64`` region columns (``start``, ``end``, ``nr``,
``bp``, ``last``, ``age``; target ``t``'s rows are ``toff[t]:toff[t+1]``), in place.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _merge_pass(
    start, end, nr, bp, last, age, toff, thres, lim, update_age, age_zero_reset, newoff
):
    ntgt = toff.shape[0] - 1
    w = 0
    for t in range(ntgt):
        newoff[t] = w
        prev = -1
        for i in range(toff[t], toff[t + 1]):
            if update_age:
                d = nr[i] - last[i]
                if d < 0:
                    d = -d
                if d > thres:
                    age[i] = 0
                elif age_zero_reset and ((nr[i] == 0) != (last[i] == 0)):
                    age[i] = 0
                else:
                    age[i] += 1
            if prev >= 0 and end[prev] == start[i]:
                d2 = nr[prev] - nr[i]
                if d2 < 0:
                    d2 = -d2
                sl = end[prev] - start[prev]
                sr = end[i] - start[i]
                if d2 <= thres and sl + sr <= lim[t]:
                    nr[prev] = (nr[prev] * sl + nr[i] * sr) // (sl + sr)
                    bp[prev] = nr[prev] * 10000
                    age[prev] = (age[prev] * sl + age[i] * sr) // (sl + sr)
                    end[prev] = end[i]
                    continue
            if w != i:
                start[w] = start[i]
                end[w] = end[i]
                nr[w] = nr[i]
                bp[w] = bp[i]
                last[w] = last[i]
                age[w] = age[i]
            prev = w
            w += 1
    newoff[ntgt] = w
    return w


@njit(cache=True)
def merge_regions(
    start,
    end,
    nr,
    bp,
    last,
    age,
    toff,
    threshold,
    lim,
    max_nr_regions,
    max_thres,
    fix_age_once,
    age_zero_reset,
    escalate,
    thres_capped=False,
):
    """kdamond_merge_regions: merge passes with a doubling threshold (in place).

    Returns the new number of regions; ``toff`` is updated in place.  ``lim`` is the
    per-target merge size cap.  Released kernels double the threshold after every pass
    and stop after the first pass at or above ``max_thres``; ``thres_capped``
    (mainline-2026) stops once ``n <= max_nr_regions`` or after a pass at
    ``max_thres``, doubling only while the threshold is below ``max_thres // 2`` and
    else jumping to ``max_thres`` itself.
    """
    newoff = np.empty_like(toff)
    thres = threshold
    first = True
    n = toff[-1]
    while True:
        n = _merge_pass(
            start,
            end,
            nr,
            bp,
            last,
            age,
            toff,
            thres,
            lim,
            first or not fix_age_once,
            age_zero_reset,
            newoff,
        )
        toff[:] = newoff
        first = False
        if not escalate:
            break
        if thres_capped:
            if n <= max_nr_regions or max_thres <= thres:
                break
            thres = max(1, thres * 2) if thres < max_thres // 2 else max_thres
            continue
        thres = max(1, thres * 2)
        if not (n > max_nr_regions and thres // 2 < max_thres):
            break
    return n
