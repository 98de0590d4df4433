"""The quota's arithmetic (``damos-spec.md`` §3.2): charge windows counted in ticks,
the goal feed loop and the effective quota, in unbounded integers masked to 64 bits
like the kernel's ``unsigned long``."""

from __future__ import annotations

from typing import Mapping

from ...errors import ConfigError
from .layout import M64
from .scheme import PAGE_SIZE, Context, Profile, Scheme
from .state import SchemeState


def ticks(ctx: Context, ns: int) -> int:
    """``ns`` in the ticks the charge windows are counted in (jiffies; ns when ``hz`` is 0)."""
    return ns * ctx.hz // 1_000_000_000 if ctx.hz else ns


def _reset_ticks(ctx: Context, ms: int) -> int:
    """A reset interval (ms) in ticks."""
    if ctx.hz:
        return -(-ms * ctx.hz // 1000)  # msecs_to_jiffies rounds up
    return ms * 1_000_000


def feed_loop_next_input(last_input: int, score: int) -> int:
    """``damon_feed_loop_next_input`` (spec §3.2), in 64-bit unsigned arithmetic."""
    goal = 10000
    min_input = 10000
    if score == goal:
        return last_input
    if score >= goal * 2:
        return min_input
    over = score > goal
    diff = score - goal if over else goal - score
    if last_input < M64 // diff:
        comp = last_input * diff // goal
    else:
        comp = last_input // goal * diff
    if over:
        return max(last_input - comp, min_input)
    if last_input < M64 - comp:
        return last_input + comp
    return M64


def effective_quota(
    scheme: Scheme,
    st: SchemeState,
    ctx: Context,
    prof: Profile,
    goal_values: Mapping[str, int] | None = None,
) -> int:
    """``damos_set_effective_quota`` (spec §3.2); updates ``st.esz_bp`` for goals."""
    q = scheme.quota
    if not q.ms and not q.goals:
        return q.sz
    esz = M64
    if q.goals:
        score = 0
        for g in q.goals:
            cur = g.current_value if g.metric == "user_input" else None
            if goal_values is not None and g.metric in goal_values:
                cur = goal_values[g.metric]
            if cur is None:
                raise ConfigError(
                    f"quota goal {g.metric!r} reads live memory state: give its "
                    "values over time (a series)"
                )
            score = max(score, (int(cur) * 10000 & M64) // g.target_value)
        st.esz_bp = feed_loop_next_input(max(st.esz_bp, 10000), score)
        esz = st.esz_bp // 10000
    if q.ms:
        if st.total_charged_ns:
            throughput = (
                st.total_charged_sz * 1000000
                if prof.esz_time_floor
                else (st.total_charged_sz * 1000000) & M64
            ) // st.total_charged_ns
        else:
            throughput = PAGE_SIZE * 1024
        esz_time = (throughput * q.ms) & M64
        if prof.esz_time_floor:
            esz_time = max(esz_time, ctx.min_region)
        esz = min(esz_time, esz)
    if q.sz and q.sz < esz:
        esz = q.sz
    return esz


def next_charge_window(
    scheme: Scheme,
    st: SchemeState,
    ctx: Context,
    prof: Profile,
    now: int,
    goal_values: Mapping[str, int] | None = None,
) -> bool:
    """``damos_adjust_quota``'s charge window at ``now`` (ticks): when the reset interval
    has passed (or no window was ever opened), a new window opens -- the last one's
    charge goes into the totals, the quota-exceeded count and the effective quota are
    updated.  Returns whether a window opened."""
    reset = _reset_ticks(ctx, scheme.quota.reset_interval_ms)
    if st.charged_from is None:
        new_window = True
    elif prof.explicit_first_window:
        new_window = not (st.charged_from <= now < st.charged_from + reset)
    else:
        new_window = now >= st.charged_from + reset
    if new_window:
        st.windows += 1
        if st.esz and st.charged_sz >= st.esz:
            st.qt_exceeds += 1
        st.total_charged_sz += st.charged_sz
        st.charged_from = now
        st.charged_sz = 0
        st.esz = effective_quota(scheme, st, ctx, prof, goal_values)
    return new_window
