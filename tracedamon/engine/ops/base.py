"""The operations-set interface (:class:`Operations`) and the pieces the sets share.

See :mod:`tracedamon.engine.ops` for who calls what, and when.  The monitor passed to
the hooks (``mon``) is a :class:`tracedamon.engine.core.Monitor`: the hooks read its
``cfg``, ``access``, region arrays and generator state, and call the region-list
helpers of :mod:`tracedamon.engine.regions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..checks import PAGE_MASK, abit_check, perf_count
from ..lifetime import counted_samples, has_mm, live_intervals, mm_exit, valid_until_exit
from ..regions import Target, set_regions, target_ranges

Ranges = list[tuple[int, int]]


@dataclass(frozen=True)
class Operations:
    """One operations set (the kernel's ``struct damon_operations``).

    ``space``: which address of a sample its targets see, ``"virtual"`` or
    ``"physical"`` (the replay picks the samples' address column from it).
    ``update`` is None for a set without an update hook (the core then never calls it);
    ``target_valid`` is None for a set without one (paddr: the kdamond never stops for
    its targets, ``kdamond_need_stop``).
    """

    name: str
    space: str
    init_ranges: Callable[[Target, int], Ranges | None]
    init_regions: Callable[[Any, Ranges], list[list]]
    update: Callable[[Target, int], Ranges | None] | None
    prepare_access_checks: Callable[..., tuple]
    check_accesses: Callable[..., None]
    target_valid: Callable[[Target, int], bool] | None


def given_ranges(tg: Target, time_ns: int) -> Ranges | None:
    """init_ranges of the sets whose ranges are given (fvaddr, paddr; vaddr reads its
    target's mappings through the same callable)."""
    return target_ranges(tg, time_ns)


def process_valid(tg: Target, time_ns: int) -> bool:
    """target_valid of the virtual sets (``damon_va_target_valid``): the process exists."""
    return valid_until_exit(tg, time_ns)


def process_ranges(tg: Target, time_ns: int) -> Ranges | None:
    """vaddr's ranges at init and update: none once the process's mm is gone
    (``damon_va_three_regions`` fails: no regions at init, the regions kept at an
    update)."""
    if not has_mm(tg, time_ns):
        return None
    return target_ranges(tg, time_ns)


def set_regions_init(mon, ranges: Ranges) -> list[list]:
    """init_regions by ``damon_set_regions`` (one region per range, cut at the RFC's
    maximum region size)."""
    return set_regions([], ranges, mon.minsz, mon.maxsz)


def _abit_keys(mon, window, k: int, t_from: int, S: int, key_target: np.ndarray, lives):
    w_time, _, w_addr = window
    pg = w_addr & PAGE_MASK  # the accessed bit is per page
    iv = (w_time - t_from) // S
    order = np.lexsort((pg, key_target, iv))
    w_off = np.searchsorted(iv[order], np.arange(k + 1), side="left")
    return (
        w_off.astype(np.int64),
        np.ascontiguousarray(key_target[order]),
        np.ascontiguousarray(pg[order]),
        t_from,
        S,
        lives[0],
        lives[1],
    )


def prepare_per_target(mon, window, k: int, t_from: int, S: int) -> tuple:
    """prepare_access_checks of the virtual sets: each sample counts for its target while
    the target's mm exists (:mod:`tracedamon.engine.lifetime`: a target whose process
    exited draws no sampling address and counts no access)."""
    if mon.access == "perf" and all(mm_exit(tg) is None for tg in mon.targets):
        return window  # (no target exits: every sample counts)
    lives = live_intervals(mon.targets, t_from, S, k)
    if mon.access == "perf":
        return counted_samples(window, lives[1], t_from, S, k)
    return _abit_keys(mon, window, k, t_from, S, window[1], lives)


def prepare_one_space(mon, window, k: int, t_from: int, S: int) -> tuple:
    """prepare_access_checks of paddr: one physical address space, so a sample counts for
    every target (the accessed bit is keyed by target 0); physical memory never exits."""
    if mon.access == "perf":
        return window
    every = np.full(len(mon.targets), k, np.int64)
    return _abit_keys(mon, window, k, t_from, S, np.zeros_like(window[1]), (every, every))


def check(
    mon,
    prepared: tuple,
    k: int,
    stamp: np.ndarray,
    tbase: int,
    S: int,
    psibase: int,
    *,
    one_space: bool,
    cache_across_targets: bool,
) -> None:
    """The access check over one prepared window: ``k`` sample intervals from interval
    ``psibase + 1 + (t_from - tbase) // S`` on; the counts go to ``mon.arr["nr"]``."""
    a = mon.arr
    if mon.access == "perf":
        w_time, w_tgt, w_addr = prepared
        perf_count(
            a["start"], a["end"], mon.toff, a["nr"], stamp, w_tgt, w_addr, w_time, tbase, S, psibase
        )
        return
    w_off, k_tgt, k_page, t_from, S, draw_n, count_n = prepared
    if mon.folios is not None:  # the folios of pagemap snapshots (THP, hugetlb)
        mon.folios.check(
            mon,
            k,
            w_off,
            k_tgt,
            k_page,
            t_from,
            S,
            draw_n,
            count_n,
            one_space=one_space,
            cache_across_targets=cache_across_targets,
        )
        return
    abit_check(
        a["start"],
        a["end"],
        mon.toff,
        a["nr"],
        k,
        w_off,
        k_tgt,
        k_page,
        one_space,
        cache_across_targets,
        mon.cache,
        mon.rng,
        mon.cfg.fix_rand32,
        mon.inj,
        mon.injpos,
        draw_n,
        count_n,
    )


def check_per_target(mon, prepared, k, stamp, tbase, S, psibase) -> None:
    """check_accesses of the virtual sets: the last-verdict cache holds within a target."""
    check(mon, prepared, k, stamp, tbase, S, psibase, one_space=False, cache_across_targets=False)
