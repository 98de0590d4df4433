"""Access checks over a window of samples (spec §12, §13): numba kernels.

The operations sets (:mod:`tracedamon.engine.ops`) call these from their
``check_accesses``: :func:`perf_count`, the perf-histogram check, is the same for every
set; :func:`abit_check`, the accessed-bit emulation, takes the set's rules as
arguments (``one_space``: the samples of every target share one address space, paddr;
``cache_across_targets``: the last-verdict cache is reused across targets and
intervals, paddr's quirk Q5).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from .config import PAGE_SIZE
from .draw import draw

PAGE_MASK = ~np.int64(PAGE_SIZE - 1)


@njit(cache=True)
def find_region(start, end, lo, hi, a):
    """Index of the region of rows [lo, hi) holding address ``a``, or -1.

    Branch-free binary search (sample addresses are random, so a branchy search
    mispredicts at almost every level).
    """
    n = hi - lo
    if n <= 0 or a < start[lo]:
        return -1
    base = lo
    while n > 1:
        half = n >> 1
        base = base + half if start[base + half] <= a else base
        n -= half
    if a < end[base]:
        return base
    return -1


@njit(cache=True)
def perf_count(start, end, toff, nr, stamp, s_tgt, s_addr, s_time, tbase, S, psibase):
    """Perf-histogram check over a run of samples (spec §13.2/13.3).

    Region r gains one access per sample interval in which at least one sample of its
    target lay in it (``stamp`` remembers the last interval counted).  With regions
    aligned to pages this is the RFC's page histogram; below a page it is the same rule
    at the minimum region size.  The interval of a sample at time t is
    ``psibase + 1 + (t - tbase) // S``.
    """
    ntgt = toff.shape[0] - 1
    for i in range(s_addr.shape[0]):
        t = s_tgt[i]
        if t < 0 or t >= ntgt:
            continue
        j = find_region(start, end, toff[t], toff[t + 1], s_addr[i])
        if j >= 0:
            psi = psibase + 1 + (s_time[i] - tbase) // S
            if stamp[j] != psi:
                stamp[j] = psi
                nr[j] += 1


@njit(cache=True)
def has_key(k_tgt, k_page, lo, hi, t, p):
    a = lo
    h = hi
    while a < h:
        m = (a + h) >> 1
        if k_tgt[m] < t or (k_tgt[m] == t and k_page[m] < p):
            a = m + 1
        else:
            h = m
    return a < hi and k_tgt[a] == t and k_page[a] == p


@njit(cache=True)
def abit_check(
    start,
    end,
    toff,
    nr,
    n_intervals,
    w_off,
    k_tgt,
    k_page,
    one_space,
    cache_across_targets,
    cache,
    st,
    fix_rand32,
    inj,
    injpos,
    draw_n,
    count_n,
):
    """Accessed-bit emulation over ``n_intervals`` sample intervals (spec §10.5, §11, §12).

    Each interval: one ``damon_rand(start, end)`` per region (targets in order, regions
    in address order); the region is accessed iff a sample of that interval hit the
    sampling address's 4 KiB page.  The last-verdict cache is kept as the kernel keeps
    it: per target for vaddr, global and across intervals for paddr (quirk Q5,
    ``cache_across_targets``).  ``w_off[j]:w_off[j+1]`` are interval j's (target, page)
    keys, sorted; with ``one_space`` every key's target is 0 (one address space for all
    targets).  ``cache`` is ``[last_addr, last_accessed]``.  Target ``t`` draws in the
    first ``draw_n[t]`` intervals and is checked in the first ``count_n[t]`` (a vaddr
    target whose mm is gone, :mod:`tracedamon.engine.lifetime`, does neither).
    """
    ntgt = toff.shape[0] - 1
    for j in range(n_intervals):
        lo = w_off[j]
        hi = w_off[j + 1]
        for t in range(ntgt):
            if j >= draw_n[t]:
                continue
            same = False
            kt = 0 if one_space else t
            for r in range(toff[t], toff[t + 1]):
                sa = start[r] + draw(st, end[r] - start[r], fix_rand32, inj, injpos)
                if j >= count_n[t]:
                    continue
                page = sa & -PAGE_SIZE
                if (cache_across_targets or same) and (cache[0] & -PAGE_SIZE) == page:
                    acc = cache[1] != 0
                else:
                    acc = has_key(k_tgt, k_page, lo, hi, kt, page)
                    cache[0] = sa
                    cache[1] = 1 if acc else 0
                same = True
                if acc:
                    nr[r] += 1


def abit_subpage_error(min_region: int) -> ConfigError:
    """Why the accessed-bit check refuses regions below a page (in the API's words, and
    in the command line's)."""
    why = (
        f"the accessed bit is per page ({PAGE_SIZE} bytes), so it cannot tell regions "
        "below a page apart; sub-page regions need the perf checks"
    )
    return ConfigError(
        f"access='abit' with min_region={min_region}: {why} (access='perf' or 'perf-phys')",
        cli_message=f"--access abit with --min-region {min_region}: {why} "
        "(--access perf or perf-phys)",
    )
