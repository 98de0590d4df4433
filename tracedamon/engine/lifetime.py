"""Targets that exit: when a virtual-address target loses its mm, and when it stops
being valid (pure arithmetic over the exit times in :class:`~tracedamon.engine.regions.Target`).

What the kernel does (``mm/damon/vaddr.c``, ``mm/damon/core.c``):

* A vaddr/fvaddr target holds its process's ``struct pid``; ``damon_get_mm()`` takes
  the mm of that pid's task (``get_pid_task(pid, PIDTYPE_PID)`` then ``get_task_mm()``).
  Once the thread-group leader has run ``exit_mm()`` its ``task->mm`` is NULL, so from
  then on (``mm_exit_ns``):

  - ``damon_va_prepare_access_checks()`` skips the target (``if (!mm) continue``): no
    sampling address is drawn for its regions, so the random stream moves on without
    them (spec §15.1);
  - ``damon_va_check_accesses()`` finds no mm: each region gets
    ``damon_update_region_access_rate(r, false)`` (older kernels skip the target), i.e.
    no access counts, and the last-verdict cache is left alone;
  - ``damon_va_three_regions()`` fails, so ``damon_va_init()`` gives no regions and
    ``damon_va_update()`` leaves the regions as they are.

  A check at the end of a sample interval sees the mm gone when the exit came before it,
  so the interval in which the process exits draws (its prepare came first) but counts
  nothing: interval ``[a, b)`` draws iff ``a < mm_exit_ns`` and counts iff
  ``b < mm_exit_ns``.
* The target's regions stay in the context: ``kdamond_merge_regions()``,
  ``kdamond_reset_aggregated()`` (which emits ``damon_aggregated`` for every region of
  every target), ``kdamond_split_regions()`` and the schemes walk every target without
  asking whether it is valid.  A dead target's regions are therefore still reported, with
  ``nr_accesses`` 0 from the aggregation after its exit on, ageing, merging and splitting
  like any idle region.  The schemes' walk tries, charges and ages them too, while
  vaddr's ``apply_scheme`` finds no mm and applies nothing
  (:func:`tracedamon.engine.damos.ops_model.without_mm`).
* ``damon_va_target_valid()`` is true while ``get_pid_task()`` finds the task, i.e. until
  the leader is released: a leader that exits before its other threads stays a zombie
  (with no mm) until the last thread exits.  ``exit_ns`` is therefore the exit of the
  last thread of the group; the reaping by the parent, which perf does not record, is
  taken to follow at once.
* ``kdamond_need_stop()`` runs before every sample interval: it stops the kdamond when
  the ops set has a ``target_valid`` hook and no target is valid.  paddr has no hook, so
  a paddr context never stops this way.  The last aggregation the kdamond completes is the
  one whose every sample interval started while some target was valid; an aggregation cut
  short is never reported.
"""

from __future__ import annotations

import numpy as np

from .regions import Target


def mm_exit(tg: Target) -> int | None:
    """The time from which the target has no mm (its leader exited), or None."""
    return tg.mm_exit_ns if tg.mm_exit_ns is not None else tg.exit_ns


def has_mm(tg: Target, time_ns: int) -> bool:
    """Whether the target's mm exists at ``time_ns``."""
    g = mm_exit(tg)
    return g is None or time_ns < g


def valid_until_exit(tg: Target, time_ns: int) -> bool:
    """``damon_va_target_valid``: the target's task exists at ``time_ns``."""
    return tg.exit_ns is None or time_ns < tg.exit_ns


def stop_time(ops, targets: list[Target]) -> int | None:
    """The time from which ``kdamond_need_stop`` holds because the targets exited, or
    None when no exit ends this replay (an ops set without ``target_valid``, a target
    that never exits, or no target at all: :func:`need_stop` holds from the start
    then, and the loop's first check stops it)."""
    if ops.target_valid is None or not targets:
        return None
    ends = [tg.exit_ns for tg in targets]
    if any(e is None for e in ends):
        return None
    return max(ends)


def need_stop(ops, targets: list[Target], time_ns: int) -> bool:
    """``kdamond_need_stop`` at ``time_ns``: the ops set checks its targets, none is valid
    (with no target at all, none is: a vaddr/fvaddr context without targets stops at
    once, a paddr one never)."""
    if ops.target_valid is None:
        return False
    return not any(ops.target_valid(tg, time_ns) for tg in targets)


def first_interval_from(time_ns: int, tbase: int, psibase: int, S: int) -> int:
    """The first sample interval ``q`` (counted as the loop counts them) that starts at or
    after ``time_ns``: ``tbase + (q - psibase) * S >= time_ns``."""
    return psibase + max(0, -(-(time_ns - tbase) // S))


def live_intervals(targets: list[Target], t_from: int, S: int, k: int):
    """(draw_n, count_n) per target over ``k`` sample intervals from ``t_from``: the
    first ``draw_n[t]`` intervals draw sampling addresses for target ``t`` (its mm exists
    at their start), the first ``count_n[t]`` count accesses (its mm exists at their
    check, the interval's end)."""
    draw_n = np.full(len(targets), k, np.int64)
    count_n = np.full(len(targets), k, np.int64)
    for i, tg in enumerate(targets):
        g = mm_exit(tg)
        if g is None:
            continue
        d = -(-(g - t_from) // S)  # intervals j with t_from + j*S < g
        draw_n[i] = min(max(d, 0), k)
        count_n[i] = min(max(d - 1, 0), k)
    return draw_n, count_n


def counted_samples(window, count_n: np.ndarray, t_from: int, S: int, k: int):
    """The window's samples whose target's mm exists at their interval's check."""
    w_time, w_tgt, w_addr = window
    if count_n.size == 0 or count_n.min() >= k or w_time.size == 0:
        return window
    iv = (w_time - t_from) // S
    ok = (w_tgt >= 0) & (w_tgt < count_n.size)
    keep = ~ok | (iv < count_n[np.where(ok, w_tgt, 0)])
    return w_time[keep], w_tgt[keep], w_addr[keep]
