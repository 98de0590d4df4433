"""Scores (ops-common.c, ``damos-spec.md`` §3.3) and ``damos_adjust_quota``'s score
histogram, as numba kernels over the region arrays."""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import (
    C_AGGR,
    C_HISTCF,
    C_MAXNR,
    C_MINREG,
    FT_TARGET,
    P_CORE_DEFREJ,
    P_MAXAGE,
    P_MAXNR,
    P_MAXSZ,
    P_MINAGE,
    P_MINNR,
    P_MINSZ,
    P_SCORE,
    P_WAGE,
    P_WNR,
)
from .scheme import DAMOS_MAX_SCORE


@njit(cache=True)
def hot_score(nr, age, max_nr, aggr_us, w_nr, w_age):
    """``damon_hot_score``: C integer arithmetic (the weighted sum is an ``unsigned
    int`` in the kernel: it wraps at 2**32 and is divided as unsigned)."""
    freq = nr * 100 // max_nr
    if freq > 100:  # 2026 fix (Cc stable); only a stale count gets here
        freq = 100
    age_in_sec = age * aggr_us // 1000000
    age_in_log = 0
    while age_in_log < 32 and age_in_sec > 0:
        age_in_log += 1
        age_in_sec >>= 1
    if freq == 0:
        age_in_log = -age_in_log
    age_in_log += 32
    age_sub = age_in_log * 100 // 32 // 2
    hot = (w_nr * freq + w_age * age_sub) & 0xFFFFFFFF
    wsum = (w_nr + w_age) & 0xFFFFFFFF
    if wsum:
        hot = hot // wsum
    if hot > 0x7FFFFFFF:  # back into the kernel's int
        hot -= 1 << 32
    return hot * 99 // 100 if hot >= 0 else -((-hot * 99) // 100)


@njit(cache=True)
def region_score(kind, nr, age, max_nr, aggr_us, w_nr, w_age):
    """The ops' ``get_scheme_score``: 1 = cold, 2 = hot, else DAMOS_MAX_SCORE; clamped
    to the histogram's [0, 99] (the kernel's is in range for any sane weights)."""
    if kind == 0:
        return 99
    h = hot_score(nr, age, max_nr, aggr_us, w_nr, w_age)
    v = 99 - h if kind == 1 else h
    if v < 0:
        return 0
    if v > 99:
        return 99
    return v


@njit(cache=True)
def pattern_ok(sp, s, sz, pnr, age):
    return (
        sp[s, P_MINSZ] <= sz
        and sz <= sp[s, P_MAXSZ]
        and sp[s, P_MINNR] <= pnr
        and pnr <= sp[s, P_MAXNR]
        and sp[s, P_MINAGE] <= age
        and age <= sp[s, P_MAXAGE]
    )


@njit(cache=True)
def core_verdict_nosplit(cf, lo, hi, t, a, b, minreg, defrej):
    """Core filters of one scheme on [a, b) without splitting (mainline-2026 histogram):
    True when rejected.  A region straddling an addr range gets its left part's verdict."""
    for k in range(lo, hi):
        typ = cf[k, 0]
        if typ == FT_TARGET:
            m = t == cf[k, 4]
        else:
            fs = cf[k, 4] // minreg * minreg
            fe = cf[k, 5] // minreg * minreg
            if fs <= a and b <= fe:
                m = True
            elif b <= fs or fe <= a:
                m = False
            elif a < fs:
                m = False
            else:
                m = True
        if m == (cf[k, 2] != 0):
            return cf[k, 3] == 0
    return defrej != 0


@njit(cache=True)
def min_score(start, end, pnr, nr, age, toff, sp, s, esz, cfg, cf, cflo, cfhi):
    """``damos_adjust_quota``'s score histogram (sizes of pattern-valid regions per
    score) and the lowest score whose cumulative size from the top reaches ``esz``."""
    hist = np.zeros(DAMOS_MAX_SCORE + 1, np.int64)
    max_score = 0
    ntgt = toff.shape[0] - 1
    for t in range(ntgt):
        for i in range(toff[t], toff[t + 1]):
            sz = end[i] - start[i]
            if not pattern_ok(sp, s, sz, pnr[i], age[i]):
                continue
            if (
                cfg[C_HISTCF]
                and cfhi > cflo
                and core_verdict_nosplit(
                    cf, cflo, cfhi, t, start[i], end[i], cfg[C_MINREG], sp[s, P_CORE_DEFREJ]
                )
            ):
                continue
            sc = region_score(
                sp[s, P_SCORE],
                nr[i],
                age[i],
                cfg[C_MAXNR],
                cfg[C_AGGR],
                sp[s, P_WNR],
                sp[s, P_WAGE],
            )
            hist[sc] += sz
            if sc > max_score:
                max_score = sc
    cum = 0
    score = max_score
    while True:
        cum += hist[score]
        if cum >= esz or score == 0:
            break
        score -= 1
    return score
