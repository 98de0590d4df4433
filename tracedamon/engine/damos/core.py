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
  ``unsigned long``), the watermarks (:func:`update_watermarks`), the next apply time.
* numba (:func:`_min_score`, :func:`_walk`): the score histogram and ``min_score``
  over every region, and the region walk -- resume-point skip, access pattern, score,
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
:func:`update_watermarks` at every sample (or at each change of the metric).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from numba import njit

from ...errors import ConfigError
from .scheme import (
    ACTIONS,
    DAMOS_MAX_SCORE,
    PAGE_SIZE,
    ULONG_MAX,
    Context,
    Profile,
    Scheme,
    profile as _profile,
    score_kind,
)

M64 = ULONG_MAX
I64_MAX = 2**63 - 1

# scheme parameter columns (sp)
(
    P_ACTION,
    P_MINSZ,
    P_MAXSZ,
    P_MINNR,
    P_MAXNR,
    P_MINAGE,
    P_MAXAGE,
    P_SCORE,
    P_WNR,
    P_WAGE,
    P_STATIC_SET,
    P_CORE_DEFREJ,
    P_IS_STAT,
) = range(13)
NP = 13
# scheme state columns (ss)
(
    S_RUN,
    S_ESZ,
    S_CHARGED,
    S_TFROM,
    S_AFROM,
    S_MINSCORE,
    S_NRTRIED,
    S_SZTRIED,
    S_CALLS,
    S_ZEROTRIES,
) = range(10)
NS = 10
# context columns (cfg)
C_MAXNR, C_AGGR, C_MINREG, C_EXCL, C_QSET, C_QFULL, C_VISIT, C_RESUME_LAST, C_HISTCF = range(9)
NC = 9
# application record columns
A_SCHEME, A_TARGET, A_START, A_END, A_NR, A_AGE, A_NRREG, A_CORE_ALLOWED = range(8)
NA = 8
FT_ADDR, FT_TARGET = 0, 1
STAT = ACTIONS.index("stat")


# ----------------------------------------------------------------------------------------
# scores (ops-common.c, spec §3.3)
# ----------------------------------------------------------------------------------------
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
def _pattern_ok(sp, s, sz, pnr, age):
    return (
        sp[s, P_MINSZ] <= sz
        and sz <= sp[s, P_MAXSZ]
        and sp[s, P_MINNR] <= pnr
        and pnr <= sp[s, P_MAXNR]
        and sp[s, P_MINAGE] <= age
        and age <= sp[s, P_MAXAGE]
    )


@njit(cache=True)
def _core_verdict_nosplit(cf, lo, hi, t, a, b, minreg, defrej):
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
def _min_score(start, end, pnr, nr, age, toff, sp, s, esz, cfg, cf, cflo, cfhi):
    """``damos_adjust_quota``'s score histogram (sizes of pattern-valid regions per
    score) and the lowest score whose cumulative size from the top reaches ``esz``."""
    hist = np.zeros(DAMOS_MAX_SCORE + 1, np.int64)
    max_score = 0
    ntgt = toff.shape[0] - 1
    for t in range(ntgt):
        for i in range(toff[t], toff[t + 1]):
            sz = end[i] - start[i]
            if not _pattern_ok(sp, s, sz, pnr[i], age[i]):
                continue
            if (
                cfg[C_HISTCF]
                and cfhi > cflo
                and _core_verdict_nosplit(
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


# ----------------------------------------------------------------------------------------
# the walk (damon_do_apply_schemes & co., spec §3.4-§3.6, §4.2)
# ----------------------------------------------------------------------------------------
@njit(cache=True)
def _insert_after(ps, pe, pa, npieces, cur, at):
    """Split piece ``cur`` at address ``at``: the left part stays at ``cur``, the right
    part (same age) goes right after it."""
    for k in range(npieces, cur + 1, -1):
        ps[k] = ps[k - 1]
        pe[k] = pe[k - 1]
        pa[k] = pa[k - 1]
    ps[cur + 1] = at
    pe[cur + 1] = pe[cur]
    pa[cur + 1] = pa[cur]
    pe[cur] = at
    return npieces + 1


# long kernel: kdamond_apply_schemes' walk as one loop nest in the kernel's order (regions,
# their pieces, schemes); each step (quota, resume point, pattern, quota split, filters)
# ends in a `continue` of the scheme loop and may split the current piece, changing the
# piece list and counts that helpers would have to hand back through arrays
@njit(cache=True)
def _walk(
    start,
    end,
    nr,
    bp,
    last,
    age,
    pnr,
    toff,
    sp,
    ss,
    cf,
    cfo,
    cfg,
    o_start,
    o_end,
    o_nr,
    o_bp,
    o_last,
    o_age,
    o_pnr,
    o_toff,
    ap,
    pcap,
):
    S = sp.shape[0]
    ntgt = toff.shape[0] - 1
    minreg = cfg[C_MINREG]
    maxnr = cfg[C_MAXNR]
    aggr = cfg[C_AGGR]
    ps = np.empty(pcap, np.int64)
    pe = np.empty(pcap, np.int64)
    pa = np.empty(pcap, np.int64)
    w = 0
    na = 0
    for t in range(ntgt):
        o_toff[t] = w
        cnt = toff[t + 1] - toff[t]  # the target's region count, splits included
        for i in range(toff[t], toff[t + 1]):
            npieces = 1
            ps[0] = start[i]
            pe[0] = end[i]
            pa[0] = age[i]
            is_last_region = i == toff[t + 1] - 1
            p = 0
            while p < npieces:
                cur = p
                for s in range(S):
                    if ss[s, S_RUN] == 0:
                        continue
                    esz = ss[s, S_ESZ]
                    qset = esz != 0 or (cfg[C_QSET] != 0 and sp[s, P_STATIC_SET] != 0)
                    # quota exhausted?
                    if qset:
                        if cfg[C_QFULL]:
                            if esz - ss[s, S_CHARGED] < minreg:
                                continue
                        elif ss[s, S_CHARGED] >= esz:
                            continue
                    # resume point (damos_skip_charged_region)
                    if ss[s, S_TFROM] >= 0:
                        if t != ss[s, S_TFROM]:
                            continue
                        afrom = ss[s, S_AFROM]
                        last_here = is_last_region and cur == npieces - 1
                        if last_here:
                            ss[s, S_TFROM] = -1
                            ss[s, S_AFROM] = 0
                            if not cfg[C_RESUME_LAST]:
                                continue
                            if afrom and pe[cur] <= afrom:
                                continue
                        elif afrom and pe[cur] <= afrom:
                            continue
                        if afrom and ps[cur] < afrom:
                            skip = (afrom - ps[cur]) // minreg * minreg
                            if skip == 0:
                                if pe[cur] - ps[cur] <= minreg:
                                    continue
                                skip = minreg
                            npieces = _insert_after(ps, pe, pa, npieces, cur, ps[cur] + skip)
                            cnt += 1
                            if cfg[C_VISIT]:
                                continue  # the right part is the walk's next element
                            cur += 1
                        if not cfg[C_RESUME_LAST]:
                            ss[s, S_TFROM] = -1
                            ss[s, S_AFROM] = 0
                    # access pattern and score (damos_valid_target)
                    sz = pe[cur] - ps[cur]
                    if not _pattern_ok(sp, s, sz, pnr[i], pa[cur]):
                        continue
                    if qset:
                        sc = region_score(
                            sp[s, P_SCORE], nr[i], pa[cur], maxnr, aggr, sp[s, P_WNR], sp[s, P_WAGE]
                        )
                        if sc < ss[s, S_MINSCORE]:
                            continue
                    # damos_apply_scheme: quota split
                    if qset and ss[s, S_CHARGED] + sz > esz:
                        sz = (esz - ss[s, S_CHARGED]) // minreg * minreg
                        if sz == 0:
                            ss[s, S_NRTRIED] += 1
                            ss[s, S_ZEROTRIES] += 1
                            continue
                        npieces = _insert_after(ps, pe, pa, npieces, cur, ps[cur] + sz)
                        cnt += 1
                    # core filters (damos_filter_out); an addr filter may split
                    allowed = 0
                    out = sp[s, P_CORE_DEFREJ] != 0
                    for k in range(cfo[s], cfo[s + 1]):
                        if cf[k, 0] == FT_TARGET:
                            m = t == cf[k, 4]
                        else:
                            fs = cf[k, 4] // minreg * minreg
                            fe = cf[k, 5] // minreg * minreg
                            if fs <= ps[cur] and pe[cur] <= fe:
                                m = True
                            elif pe[cur] <= fs or fe <= ps[cur]:
                                m = False
                            elif ps[cur] < fs:
                                npieces = _insert_after(ps, pe, pa, npieces, cur, fs)
                                cnt += 1
                                m = False
                            else:
                                npieces = _insert_after(ps, pe, pa, npieces, cur, fe)
                                cnt += 1
                                m = True
                        if m == (cf[k, 2] != 0):
                            if cf[k, 3] != 0:
                                allowed = 1
                            out = cf[k, 3] == 0
                            break
                    if out:
                        continue
                    sz = pe[cur] - ps[cur]
                    ap[na, A_SCHEME] = s
                    ap[na, A_TARGET] = t
                    ap[na, A_START] = ps[cur]
                    ap[na, A_END] = pe[cur]
                    ap[na, A_NR] = pnr[i]
                    ap[na, A_AGE] = pa[cur]
                    ap[na, A_NRREG] = cnt
                    ap[na, A_CORE_ALLOWED] = allowed
                    na += 1
                    ss[s, S_NRTRIED] += 1
                    ss[s, S_SZTRIED] += sz
                    ss[s, S_CALLS] += 1
                    ss[s, S_CHARGED] += sz
                    if qset and ss[s, S_CHARGED] >= esz:
                        ss[s, S_TFROM] = t
                        ss[s, S_AFROM] = pe[cur] if cfg[C_EXCL] else pe[cur] + 1
                    if sp[s, P_IS_STAT] == 0:
                        pa[cur] = 0
                if not cfg[C_VISIT]:
                    break
                p += 1
            for k in range(npieces):
                o_start[w] = ps[k]
                o_end[w] = pe[k]
                o_nr[w] = nr[i]
                o_bp[w] = bp[i]
                o_last[w] = last[i]
                o_age[w] = pa[k]
                o_pnr[w] = pnr[i]
                w += 1
    o_toff[ntgt] = w
    return w, na


# ----------------------------------------------------------------------------------------
# state and the Python driver
# ----------------------------------------------------------------------------------------
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
    started would have left: ``--resume``)."""
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


def _ticks(ctx: Context, ns: int) -> int:
    return ns * ctx.hz // 1_000_000_000 if ctx.hz else ns


def _reset_ticks(ctx: Context, ms: int) -> int:
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


@dataclass
class StepResult:
    """What one :func:`apply_schemes` step did.

    ``regions``: the region arrays after the step (``start``, ``end``, ``nr``, ``bp``,
    ``last``, ``age`` and ``toff``).  ``applications``: one row per region handed to
    the ops, in trace order -- ``scheme``, ``target``, ``start``, ``end``,
    ``nr_accesses`` (as the tracepoint prints it), ``age`` (before the reset),
    ``nr_regions`` (the target's count at that moment), ``core_allowed`` (a core
    filter allowed it, so the ops filters are bypassed).  ``ran``: per scheme, whether
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
    """
    ctx, prof = state.ctx, state.profile
    start = np.ascontiguousarray(regions["start"], np.int64)
    end = np.ascontiguousarray(regions["end"], np.int64)
    nr = np.ascontiguousarray(regions["nr"], np.int64)
    age = np.ascontiguousarray(regions["age"], np.int64)
    toff = np.ascontiguousarray(regions["toff"], np.int64)
    bp_in = regions.get("bp")
    bp = nr * 10000 if bp_in is None else np.ascontiguousarray(bp_in, np.int64)
    last = regions.get("last")
    last = np.zeros_like(nr) if last is None else np.ascontiguousarray(last, np.int64)
    n = int(toff[-1])
    pnr = pattern_nr_accesses(nr, bp_in, last, prof, left_window_bp)
    S = len(state.schemes)

    due = [sis >= st.next_apply_sis for st in state.states]
    run = [d and st.activated for d, st in zip(due, state.states)]
    windows = [False] * S
    if not any(run):
        empty = {
            k: np.zeros(0, np.int64)
            for k in (
                "scheme",
                "target",
                "start",
                "end",
                "nr_accesses",
                "age",
                "nr_regions",
                "core_allowed",
            )
        }
        regs = {
            "start": start,
            "end": end,
            "nr": nr,
            "bp": bp,
            "last": last,
            "age": age,
            "toff": toff,
        }
        return StepResult(
            regs,
            empty,
            run,
            windows,
            due,
            [st.esz for st in state.states],
            [st.min_score for st in state.states],
        )

    sp, cf, cfo, cfg = _params_of(state)
    now = _ticks(ctx, int(now_ns))
    for j, (s, st) in enumerate(zip(state.schemes, state.states)):
        if not run[j] or not s.quota.is_set:
            continue
        reset = _reset_ticks(ctx, s.quota.reset_interval_ms)
        if st.charged_from is None:
            new_window = True
        elif prof.explicit_first_window:
            new_window = not (st.charged_from <= now < st.charged_from + reset)
        else:
            new_window = now >= st.charged_from + reset
        if new_window:
            windows[j] = True
            st.windows += 1
            if st.esz and st.charged_sz >= st.esz:
                st.qt_exceeds += 1
            st.total_charged_sz += st.charged_sz
            st.charged_from = now
            st.charged_sz = 0
            st.esz = effective_quota(s, st, ctx, prof, goal_values)
        st.min_score = int(
            _min_score(
                start,
                end,
                pnr,
                nr,
                age,
                toff,
                sp,
                j,
                min(st.esz, I64_MAX),
                cfg,
                cf,
                cfo[j],
                cfo[j + 1],
            )
        )

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
    nf = cf.shape[0]
    pcap = 4 + 2 * S + 2 * nf
    cap = n * (1 + 2 * nf) + 2 * S + 4
    out = {k: np.empty(cap, np.int64) for k in ("start", "end", "nr", "bp", "last", "age", "pnr")}
    o_toff = np.empty_like(toff)
    ap = np.empty((cap * max(S, 1), NA), np.int64)
    w, na = _walk(
        start,
        end,
        nr,
        bp,
        last,
        age,
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
    apps = {
        "scheme": ap[:, A_SCHEME].copy(),
        "target": ap[:, A_TARGET].copy(),
        "start": ap[:, A_START].copy(),
        "end": ap[:, A_END].copy(),
        "nr_accesses": ap[:, A_NR].copy(),
        "age": ap[:, A_AGE].copy(),
        "nr_regions": ap[:, A_NRREG].copy(),
        "core_allowed": ap[:, A_CORE_ALLOWED].copy(),
    }

    if ops_model is None:
        from .ops_model import default_ops_model

        ops_model = default_ops_model
    passed, applied = ops_model(state, apps, now_ns)
    passed = np.asarray(passed, np.int64)
    applied = np.asarray(applied, np.int64)
    apps["sz_ops_filter_passed"] = passed
    apps["sz_applied"] = applied
    smp = max(ctx.sample_us, 1)
    for j, (s, st) in enumerate(zip(state.schemes, state.states)):
        if run[j]:
            st.charged_sz = int(ss[j, S_CHARGED])
            st.charge_target_from = int(ss[j, S_TFROM])
            st.charge_addr_from = int(ss[j, S_AFROM])
            st.nr_tried += int(ss[j, S_NRTRIED])
            st.sz_tried += int(ss[j, S_SZTRIED])
            mine = apps["scheme"] == j
            st.total_charged_ns += int(
                ctx.ns_per_region_call * int(ss[j, S_CALLS])
                + ctx.ns_per_byte * int(ss[j, S_SZTRIED])
            )
            st.nr_applied += int(np.count_nonzero(applied[mine]))
            st.sz_applied += int(applied[mine].sum())
            st.sz_ops_filter_passed += int(passed[mine].sum())
        if due[j]:
            st.next_apply_sis = sis + (s.apply_interval_us or ctx.aggr_us) // smp
    regs = {
        "start": out["start"][:w],
        "end": out["end"][:w],
        "nr": out["nr"][:w],
        "bp": out["bp"][:w],
        "last": out["last"][:w],
        "age": out["age"][:w],
        "toff": o_toff,
    }
    return StepResult(
        regs,
        apps,
        run,
        windows,
        due,
        [st.esz for st in state.states],
        [st.min_score for st in state.states],
    )


def snapshot_state(state: DamosState) -> list[dict]:
    """The per-scheme private state as plain dicts (for output metadata)."""
    return [dataclasses.asdict(st) for st in state.states]
