"""What the kernel keeps about the schemes of one DAMON context: each scheme's quota and
stats fields (``struct damos``), its resume point and watermark activation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

from ...errors import ConfigError
from .scheme import Context, Profile, Scheme, profile as _profile


@dataclass
class SchemeState:
    """The private part of one scheme (``struct damos`` quota and stats fields)."""

    next_apply_sis: int = 0
    activated: bool = True
    esz: int = 0
    esz_bp: int = 0
    charged_sz: int = 0
    charged_from: int | None = None  # window start, in ticks; None: never opened
    total_charged_sz: int = 0
    total_charged_ns: int = 0
    charge_target_from: int = -1
    charge_addr_from: int = 0
    min_score: int = 0
    nr_tried: int = 0
    sz_tried: int = 0
    nr_applied: int = 0
    sz_applied: int = 0
    sz_ops_filter_passed: int = 0
    qt_exceeds: int = 0
    windows: int = 0

    def stats(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "nr_tried",
                "sz_tried",
                "nr_applied",
                "sz_applied",
                "sz_ops_filter_passed",
                "qt_exceeds",
            )
        }


@dataclass
class DamosState:
    """Schemes of one DAMON context and everything the kernel keeps about them."""

    schemes: tuple[Scheme, ...]
    ctx: Context
    profile: Profile
    states: list[SchemeState] = field(default_factory=list)

    @property
    def resume(self) -> list[tuple[int, int]]:
        return [(s.charge_target_from, s.charge_addr_from) for s in self.states]


def new_state(
    schemes: Sequence[Scheme], ctx: Context, profile: str | Profile = "released", *, sis: int = 0
) -> DamosState:
    """Fresh state at kdamond start (``kdamond_init_ctx``: each scheme's first apply time
    is one apply interval -- the aggregation interval when 0 -- after ``sis``)."""
    schemes = tuple(schemes)
    for s in schemes:
        if not isinstance(s, Scheme):
            raise ConfigError(f"not a Scheme: {s!r}")
    prof = _profile(profile)
    st = DamosState(schemes, ctx, prof)
    smp = max(ctx.sample_us, 1)
    for s in schemes:
        st.states.append(
            SchemeState(next_apply_sis=sis + (s.apply_interval_us or ctx.aggr_us) // smp)
        )
    return st


def set_resume(state: DamosState, scheme: int, target: int, addr: int) -> None:
    """Set a scheme's quota resume point (what a window exhausted before the state
    started would have left: ``tracedamon damos --quota-resume``)."""
    st = state.states[scheme]
    st.charge_target_from = int(target)
    st.charge_addr_from = int(addr)


def update_watermarks(state: DamosState, free_mem_rate: int | None) -> int:
    """``kdamond_wait_activation``'s per-scheme check (spec §5) with the current value of
    the ``free_mem_rate`` metric (permil of free pages; None when unknown).  Returns the
    time (us) the kernel would sleep without monitoring, 0 when any scheme is active or
    there are no schemes."""
    if not state.schemes:
        return 0
    waits = []
    for s, st in zip(state.schemes, state.states):
        w = s.wmarks
        if w.metric == "none":
            waits.append(0)
            continue
        if free_mem_rate is None:
            raise ConfigError(
                f"a scheme has {w.metric} watermarks, but no {w.metric} "
                "value was given (a series of the metric: permil of free "
                "memory over time)"
            )
        m = int(free_mem_rate)
        if m > w.high or w.low > m:
            st.activated = False
            waits.append(w.interval_us)
            continue
        if w.high >= m >= w.mid and not st.activated:
            waits.append(w.interval_us)
            continue
        st.activated = True
        waits.append(0)
    return min(waits) if all(waits) else 0


def snapshot_state(state: DamosState) -> list[dict]:
    """The per-scheme private state as plain dicts (for output metadata)."""
    return [dataclasses.asdict(st) for st in state.states]
