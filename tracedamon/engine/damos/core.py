"""The DAMOS step of the kdamond loop: ``kdamond_apply_schemes`` over region arrays.

:func:`apply_schemes` is called where the kernel calls ``kdamond_apply_schemes``:
after the merge of an aggregation and before ``kdamond_reset_aggregated`` and the
random split (``damos-spec.md`` §1.1).  It takes the regions as the monitor holds
them -- ``start``, ``end``, ``nr`` (nr_accesses), ``bp`` (nr_accesses_bp), ``last``
(last_nr_accesses), ``age`` as int64 arrays, target after target, with ``toff[t]:
toff[t+1]`` the rows of target ``t`` (the layout of :mod:`tracedamon.engine.core`) --
and a :class:`DamosState`, and returns the regions after the step (DAMOS splits
inserted, ages of acted-on regions reset) with the applications it made, in the
order the kernel's ``damos_before_apply`` tracepoint would report them.  No I/O.

What runs where:

* Python (once per scheme per step): due/active tests, the charge window and the
  effective quota (``damos_adjust_quota``, ``damos_set_effective_quota`` and the goal
  feed loop, in unbounded integers masked to 64 bits like the kernel's
  ``unsigned long``; :mod:`.quota`), the watermarks (:func:`.state.update_watermarks`),
  the next apply time.
* numba (:func:`.score.min_score`, :func:`.walk.walk`): the score histogram and
  ``min_score`` over every region, and the region walk -- resume-point skip, access pattern, score,
  quota split, core filters, charging, the resume point, the age reset -- which is a
  loop with splits that depend on everything before them.
* the ops' side of an application (which pages the ops filters pass, what the action
  achieves) is not decided here: the walk reports, per application, whether a core
  filter allowed it, and an ops model (:mod:`.ops_model`) fills in
  ``sz_ops_filter_passed`` and ``sz_applied``.  Nothing in the walk depends on them
  (charging is by region size, spec §3.6).

From the replay's kdamond loop (:class:`tracedamon.engine.core.Monitor`, whose region
arrays carry these names), at the kernel's place -- after ``_merge`` (and apply-mode's
split), before the snapshot, the reset and ``_split``::

    state = new_state(schemes, Context(ops, sample_us, aggr_us, min_region))   # at init
    ...
    res = apply_schemes(state, dict(mon.arr, toff=mon.toff), sis=psi,
                        now_ns=psi * sample_us * 1000)
    mon.arr = {k: res.regions[k] for k in FIELDS}
    mon.toff = res.regions["toff"]

A scheme whose apply interval is not the aggregation interval is due between
aggregations: the loop then needs a segment boundary at each ``next_apply_sis`` and
the partial window's ``left_window_bp``.  Watermarks are checked with
:func:`.state.update_watermarks` at every sample (or at each change of the metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .layout import (
    A_AGE,
    A_CORE_ALLOWED,
    A_END,
    A_NR,
    A_NRREG,
    A_SCHEME,
    A_START,
    A_TARGET,
    C_AGGR,
    C_EXCL,
    C_HISTCF,
    C_MAXNR,
    C_MINREG,
    C_QFULL,
    C_QSET,
    C_RESUME_LAST,
    C_VISIT,
    FT_ADDR,
    FT_TARGET,
    I64_MAX,
    NA,
    NC,
    NP,
    NS,
    S_AFROM,
    S_CALLS,
    S_CHARGED,
    S_NRTRIED,
    S_SZTRIED,
    S_TFROM,
)
from .ops_model import default_ops_model, has_mm_rows, without_mm
from .quota import next_charge_window, ticks
from .score import min_score
from .scheme import ACTIONS, Profile, score_kind
from .state import DamosState
from .walk import walk

APP_COLUMNS = (
    "scheme",
    "target",
    "start",
    "end",
    "nr_accesses",
    "age",
    "nr_regions",
    "core_allowed",
)


@dataclass
class StepResult:
    """What one :func:`apply_schemes` step did.

    ``regions``: the region arrays after the step (``start``, ``end``, ``nr``, ``bp``,
    ``last``, ``age`` and ``toff``).  ``applications``: one row per region handed to
    the ops, in trace order -- ``scheme``, ``target``, ``start``, ``end``,
    ``nr_accesses`` (as the tracepoint prints it), ``age`` (before the reset),
    ``nr_regions`` (the target's count at that moment), ``core_allowed`` (a core
    filter allowed it, so the ops filters are bypassed), ``has_mm`` (0: the target's
    process had no mm, the ops applied nothing), ``sz_ops_filter_passed`` and
    ``sz_applied`` (the ops model's).  ``ran``: per scheme, whether
    it was due and active and walked (``due``: due, active or not).  ``windows``: per scheme, whether a new charge
    window opened.  ``esz``/``min_score``: per scheme after the adjustment.
    """

    regions: dict
    applications: dict
    ran: list
    windows: list
    due: list
    esz: list
    min_score: list

    @property
    def n_applications(self) -> int:
        return int(self.applications["start"].size)


def _param_arrays(state: DamosState):
    ctx = state.ctx
    S = len(state.schemes)
    sp = np.zeros((S, NP), np.int64)
    cfl = []
    cfo = np.zeros(S + 1, np.int64)
    for j, s in enumerate(state.schemes):
        p = s.pattern
        sp[j] = (
            ACTIONS.index(s.action),
            min(p.min_sz_region, I64_MAX),
            min(p.max_sz_region, I64_MAX),
            p.min_nr_accesses,
            p.max_nr_accesses,
            p.min_age_region,
            p.max_age_region,
            score_kind(ctx.ops, s.action),
            s.quota.weight_nr_accesses,
            s.quota.weight_age,
            int(s.quota.is_set),
            int(s.core_filters_default_reject),
            int(s.action == "stat"),
        )
        for f in s.core_filters:
            typ = FT_ADDR if f.type == "addr" else FT_TARGET
            a, b = (
                (min(f.addr_start, I64_MAX), min(f.addr_end, I64_MAX))
                if typ == FT_ADDR
                else (min(f.target_idx, I64_MAX), 0)
            )
            cfl.append((typ, j, int(f.matching), int(f.allow), a, b))
        cfo[j + 1] = len(cfl)
    cf = np.array(cfl, np.int64).reshape(len(cfl), 6)
    prof = state.profile
    cfg = np.zeros(NC, np.int64)
    cfg[C_MAXNR] = ctx.max_nr_accesses
    cfg[C_AGGR] = ctx.aggr_us
    cfg[C_MINREG] = ctx.min_region
    cfg[C_EXCL] = int(prof.resume_exclusive)
    cfg[C_QSET] = int(prof.quota_is_set)
    cfg[C_QFULL] = int(prof.quota_full_min_region)
    cfg[C_VISIT] = int(prof.visit_split_right)
    cfg[C_RESUME_LAST] = int(prof.resume_until_last)
    cfg[C_HISTCF] = int(prof.hist_core_filters)
    return sp, cf, cfo, cfg


def _params_of(state: DamosState):
    """:func:`_param_arrays`, built once per state (its schemes and context are fixed)."""
    params = state.__dict__.get("_params")
    if params is None:
        params = state.__dict__["_params"] = _param_arrays(state)
    return params


def pattern_nr_accesses(nr, bp, last, prof: Profile, left_window_bp: int = 0) -> np.ndarray:
    """The ``nr_accesses`` the pattern test and the tracepoint read (spec §2.2).

    Released kernels: ``nr_accesses_bp / 10000`` (the region's ``nr_accesses`` when
    ``bp`` is not known: at an aggregation boundary the two agree).  mainline-2026:
    ``damon_nr_accesses_mvsum`` -- ``last`` while the whole window is left,
    ``nr + last * left_window_bp / 10000`` otherwise (the kernel's KUnit vectors);
    at a boundary (``left_window_bp == 0``) it is ``nr``.
    """
    nr = np.asarray(nr, np.int64)
    if prof.mvsum_nr_accesses:
        last = np.asarray(last, np.int64)
        if left_window_bp >= 10000:
            return last.copy()
        return nr + last * int(left_window_bp) // 10000
    if bp is None:
        return nr.copy()
    return np.asarray(bp, np.int64) // 10000


def apply_schemes(
    state: DamosState,
    regions: Mapping[str, np.ndarray],
    *,
    sis: int,
    now_ns: int,
    left_window_bp: int = 0,
    goal_values: Mapping[str, int] | None = None,
    ops_model: Callable | None = None,
    mm_exit_ns: Sequence[int | None] | None = None,
) -> StepResult:
    """One ``kdamond_apply_schemes`` (spec §1.2, §11) over ``regions``.

    Parameters
    ----------
    state : DamosState (updated in place)
    regions : mapping with int64 arrays ``start``, ``end``, ``nr``, ``age``, ``toff``
        and optionally ``bp`` (nr_accesses_bp; None/absent: taken as ``nr * 10000``)
        and ``last`` (last_nr_accesses; absent: 0).  Not modified.
    sis : passed sample intervals (what ``next_apply_sis`` is compared with)
    now_ns : the time the charge windows are measured against
    left_window_bp : the part of the aggregation window still ahead, in basis points
        (0 at an aggregation boundary; mainline-2026's moving-sum ``nr_accesses``)
    goal_values : current values of quota-goal metrics other than ``user_input``
    ops_model : ``f(state, applications, now_ns) -> (sz_ops_filter_passed, sz_applied)``
        per application (arrays); default :func:`.ops_model.default_ops_model` (no page
        data: every page passes the ops filters)
    mm_exit_ns : per target, the time from which its process has no mm (its leader
        exited), None where it never loses it; None: every target keeps its mm.  A
        vaddr/fvaddr target without an mm at ``now_ns`` is walked as any other (tried,
        charged, its regions' ages reset), but the ops apply nothing to it
        (:func:`.ops_model.without_mm`)

    The kernel's steps, in its order: which schemes are due and active; each running
    scheme's quota (charge window, effective quota, ``min_score``); the region walk
    (resume point, pattern, score, quota split, core filters, charge, age reset); the
    ops' side of each application; the stats; the next apply times.
    """
    regs = _region_arrays(regions)
    pnr = pattern_nr_accesses(
        regs["nr"], regions.get("bp"), regs["last"], state.profile, left_window_bp
    )
    due = [sis >= st.next_apply_sis for st in state.states]
    run = [d and st.activated for d, st in zip(due, state.states)]
    windows = [False] * len(state.schemes)
    if not any(run):
        empty = {k: np.zeros(0, np.int64) for k in APP_COLUMNS}
        return _result(state, regs, empty, run, windows, due)
    windows = _adjust_quotas(state, regs, pnr, run, now_ns, goal_values)
    out, apps, ss = _walk_regions(state, regs, pnr, run)
    apps["has_mm"] = has_mm_rows(state.ctx.ops, apps["target"], mm_exit_ns, now_ns)
    _ops_side(state, apps, now_ns, ops_model)
    _update_stats(state, run, ss, apps)
    _next_apply_times(state, due, sis)
    return _result(state, out, apps, run, windows, due)


def _region_arrays(regions: Mapping[str, np.ndarray]) -> dict:
    """The step's input as contiguous int64 arrays (``bp`` and ``last`` filled in)."""
    nr = np.ascontiguousarray(regions["nr"], np.int64)
    bp_in = regions.get("bp")
    last = regions.get("last")
    return {
        "start": np.ascontiguousarray(regions["start"], np.int64),
        "end": np.ascontiguousarray(regions["end"], np.int64),
        "nr": nr,
        "bp": nr * 10000 if bp_in is None else np.ascontiguousarray(bp_in, np.int64),
        "last": np.zeros_like(nr) if last is None else np.ascontiguousarray(last, np.int64),
        "age": np.ascontiguousarray(regions["age"], np.int64),
        "toff": np.ascontiguousarray(regions["toff"], np.int64),
    }


def _result(state: DamosState, regs: dict, apps: dict, run, windows, due) -> StepResult:
    return StepResult(
        regs,
        apps,
        run,
        windows,
        due,
        [st.esz for st in state.states],
        [st.min_score for st in state.states],
    )


def _adjust_quotas(state: DamosState, regs: dict, pnr, run, now_ns: int, goal_values) -> list:
    """``damos_adjust_quota`` of each running scheme with a quota: its charge window
    (:func:`.quota.next_charge_window`) and the ``min_score`` the score histogram gives
    for its effective quota.  Returns, per scheme, whether a new window opened."""
    ctx, prof = state.ctx, state.profile
    sp, cf, cfo, cfg = _params_of(state)
    now = ticks(ctx, int(now_ns))
    windows = [False] * len(state.schemes)
    for j, (s, st) in enumerate(zip(state.schemes, state.states)):
        if not run[j] or not s.quota.is_set:
            continue
        windows[j] = next_charge_window(s, st, ctx, prof, now, goal_values)
        st.min_score = int(
            min_score(
                regs["start"],
                regs["end"],
                pnr,
                regs["nr"],
                regs["age"],
                regs["toff"],
                sp,
                j,
                min(st.esz, I64_MAX),
                cfg,
                cf,
                cfo[j],
                cfo[j + 1],
            )
        )
    return windows


def _walk_regions(state: DamosState, regs: dict, pnr, run) -> tuple[dict, dict, np.ndarray]:
    """The region walk (:func:`.walk.walk`) with the schemes' state packed into ``ss``:
    returns the regions after it, the applications in trace order and ``ss`` after it."""
    sp, cf, cfo, cfg = _params_of(state)
    S = len(state.schemes)
    ss = np.zeros((S, NS), np.int64)
    for j, st in enumerate(state.states):
        ss[j] = (
            int(run[j]),
            min(st.esz, I64_MAX),
            st.charged_sz,
            st.charge_target_from,
            st.charge_addr_from,
            st.min_score,
            0,
            0,
            0,
            0,
        )
    toff = regs["toff"]
    n = int(toff[-1])
    nf = cf.shape[0]
    pcap = 4 + 2 * S + 2 * nf
    cap = n * (1 + 2 * nf) + 2 * S + 4
    out = {k: np.empty(cap, np.int64) for k in ("start", "end", "nr", "bp", "last", "age", "pnr")}
    o_toff = np.empty_like(toff)
    ap = np.empty((cap * max(S, 1), NA), np.int64)
    w, na = walk(
        regs["start"],
        regs["end"],
        regs["nr"],
        regs["bp"],
        regs["last"],
        regs["age"],
        pnr,
        toff,
        sp,
        ss,
        cf,
        cfo,
        cfg,
        out["start"],
        out["end"],
        out["nr"],
        out["bp"],
        out["last"],
        out["age"],
        out["pnr"],
        o_toff,
        ap,
        pcap,
    )
    ap = ap[:na]
    cols = (A_SCHEME, A_TARGET, A_START, A_END, A_NR, A_AGE, A_NRREG, A_CORE_ALLOWED)
    apps = {k: ap[:, c].copy() for k, c in zip(APP_COLUMNS, cols)}
    after = {k: out[k][:w] for k in ("start", "end", "nr", "bp", "last", "age")}
    after["toff"] = o_toff
    return after, apps, ss


def _ops_side(state: DamosState, apps: dict, now_ns: int, ops_model: Callable | None) -> None:
    """The ops' side of each application (ops filters, what the action achieves): adds
    ``sz_ops_filter_passed`` and ``sz_applied`` to ``apps``."""
    model = default_ops_model if ops_model is None else ops_model
    passed, applied = model(state, apps, now_ns)
    apps["sz_ops_filter_passed"], apps["sz_applied"] = without_mm(apps, passed, applied)


def _update_stats(state: DamosState, run, ss: np.ndarray, apps: dict) -> None:
    """``damos_update_stat`` and the quota's charge of each running scheme: the walk's
    state back into :class:`.state.SchemeState`, the time the ops took (modelled)."""
    ctx = state.ctx
    passed, applied = apps["sz_ops_filter_passed"], apps["sz_applied"]
    for j, st in enumerate(state.states):
        if not run[j]:
            continue
        st.charged_sz = int(ss[j, S_CHARGED])
        st.charge_target_from = int(ss[j, S_TFROM])
        st.charge_addr_from = int(ss[j, S_AFROM])
        st.nr_tried += int(ss[j, S_NRTRIED])
        st.sz_tried += int(ss[j, S_SZTRIED])
        mine = apps["scheme"] == j
        # the ops' time: a call that finds no mm returns at once
        idle = mine & (apps["has_mm"] == 0)
        calls = int(ss[j, S_CALLS]) - int(np.count_nonzero(idle))
        nbytes = int(ss[j, S_SZTRIED]) - int((apps["end"][idle] - apps["start"][idle]).sum())
        st.total_charged_ns += int(ctx.ns_per_region_call * calls + ctx.ns_per_byte * nbytes)
        st.nr_applied += int(np.count_nonzero(applied[mine]))
        st.sz_applied += int(applied[mine].sum())
        st.sz_ops_filter_passed += int(passed[mine].sum())


def _next_apply_times(state: DamosState, due, sis: int) -> None:
    """Each due scheme's next apply time: one apply interval (the aggregation interval
    when 0) after ``sis``."""
    ctx = state.ctx
    smp = max(ctx.sample_us, 1)
    for j, (s, st) in enumerate(zip(state.schemes, state.states)):
        if due[j]:
            st.next_apply_sis = sis + (s.apply_interval_us or ctx.aggr_us) // smp
