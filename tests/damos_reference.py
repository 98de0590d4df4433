"""A slow, obviously-correct pure-Python reference of one DAMOS step (kdamond_apply_schemes).

Written from docs/damos-spec.md §1.2, §2-§4, §7 and §11, in the kernel's own shape:
regions are small objects in a Python list per target (the kernel's linked list), the
walk is ``damon_for_each_region_safe`` (the next region is taken before the current one
is processed, so a region split off the right of the current one is not visited; the
mainline-2026 walk re-reads the list and does visit it), and every kernel function the
spec quotes has its own Python function of the same name.  Quota windows and the
effective size are recomputed here from the spec too.  It shares nothing with
``tracedamon.engine.damos`` but the scheme dataclasses (plain data) and the
conventions of its inputs; tests draw random regions and schemes and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAGE = 4096
ULONG = 2**64 - 1
ACTIONS_COLD_PADDR = ("pageout", "lru_deprio", "migrate_cold")
ACTIONS_HOT_PADDR = ("lru_prio", "migrate_hot")


@dataclass
class Region:
    start: int
    end: int
    nr_accesses: int
    nr_accesses_bp: int
    last_nr_accesses: int
    age: int


@dataclass
class Quota:
    esz: int = 0
    esz_bp: int = 0
    charged_sz: int = 0
    charged_from: int | None = None
    total_charged_sz: int = 0
    total_charged_ns: int = 0
    charge_target_from: int | None = None
    charge_addr_from: int = 0
    min_score: int = 0


@dataclass
class Stat:
    nr_tried: int = 0
    sz_tried: int = 0
    qt_exceeds: int = 0


@dataclass
class RefScheme:
    spec: object  # tracedamon Scheme (plain data)
    next_apply_sis: int = 0
    activated: bool = True
    quota: Quota = field(default_factory=Quota)
    stat: Stat = field(default_factory=Stat)
    core_filters_allowed: bool = False


class Ctx:
    def __init__(self, schemes, context, profile, targets):
        self.schemes = [RefScheme(s) for s in schemes]
        self.c = context
        self.p = profile
        self.targets = targets  # list of lists of Region
        self.passed_sample_intervals = 0
        smp = context.sample_us or 1
        for s in self.schemes:
            s.next_apply_sis = (s.spec.apply_interval_us or context.aggr_us) // smp
        self.trace = []

    # -- helpers ----------------------------------------------------------------------
    def max_nr_accesses(self):
        if not self.c.sample_us:
            return 1
        return max(min(self.c.aggr_us // self.c.sample_us, 2**32 - 1), 1)


def align_down(x, a):
    return x - x % a


def sz(r):
    return r.end - r.start


def damon_split_region_at(regions, r, sz_r):
    new = Region(r.start + sz_r, r.end, r.nr_accesses, r.nr_accesses_bp, r.last_nr_accesses, r.age)
    r.end = new.start
    regions.insert(regions.index(r) + 1, new)


def damon_hot_score(ctx, r, s):
    freq_weight = s.spec.quota.weight_nr_accesses
    age_weight = s.spec.quota.weight_age
    freq_subscore = r.nr_accesses * 100 // ctx.max_nr_accesses()
    freq_subscore = min(freq_subscore, 100)
    age_in_sec = r.age * ctx.c.aggr_us // 1000000
    age_in_log = 0
    while age_in_log < 32 and age_in_sec:
        age_in_log += 1
        age_in_sec >>= 1
    if freq_subscore == 0:
        age_in_log *= -1
    age_in_log += 32
    age_subscore = age_in_log * 100 // 32 // 2
    hotness = (freq_weight * freq_subscore + age_weight * age_subscore) % 2**32
    if (freq_weight + age_weight) % 2**32:
        hotness //= (freq_weight + age_weight) % 2**32
    if hotness >= 2**31:
        hotness -= 2**32
    q = abs(hotness) * 99 // 100
    return q if hotness >= 0 else -q


def get_scheme_score(ctx, r, s):
    a = s.spec.action
    if ctx.c.ops == "paddr":
        cold, hot = a in ACTIONS_COLD_PADDR, a in ACTIONS_HOT_PADDR
    else:
        cold, hot = a in ("pageout", "migrate_cold"), a == "migrate_hot"
    if cold:
        v = 99 - damon_hot_score(ctx, r, s)
    elif hot:
        v = damon_hot_score(ctx, r, s)
    else:
        v = 99
    return max(0, min(99, v))


def nr_for_pattern(ctx, r):
    return r.nr_accesses if ctx.p.mvsum_nr_accesses else r.nr_accesses_bp // 10000


def __damos_valid_target(ctx, r, s):
    p = s.spec.pattern
    n = nr_for_pattern(ctx, r)
    return (
        p.min_sz_region <= sz(r) <= p.max_sz_region
        and p.min_nr_accesses <= n <= p.max_nr_accesses
        and p.min_age_region <= r.age <= p.max_age_region
    )


def quota_is_set(ctx, s):
    q = s.spec.quota
    if ctx.p.quota_is_set:
        return bool(s.quota.esz or q.sz or q.ms or q.goals)
    return bool(s.quota.esz)


def damos_valid_target(ctx, t, r, s):
    ret = __damos_valid_target(ctx, r, s)
    if not ret or not quota_is_set(ctx, s):
        return ret
    return get_scheme_score(ctx, r, s) >= s.quota.min_score


def feed_loop(last_input, score):
    goal = 10000
    if score == goal:
        return last_input
    if score >= goal * 2:
        return 10000
    over = score > goal
    diff = score - goal if over else goal - score
    comp = last_input * diff // goal if last_input < ULONG // diff else last_input // goal * diff
    if over:
        return max(last_input - comp, 10000)
    return last_input + comp if last_input < ULONG - comp else ULONG


def damos_set_effective_quota(ctx, s, goal_values):
    q, st = s.spec.quota, s.quota
    if not q.ms and not q.goals:
        st.esz = q.sz
        return
    esz = ULONG
    if q.goals:
        best = 0
        for g in q.goals:
            cur = goal_values.get(g.metric, g.current_value) if goal_values else g.current_value
            best = max(best, (cur * 10000 % 2**64) // g.target_value)
        st.esz_bp = feed_loop(max(st.esz_bp, 10000), best)
        esz = st.esz_bp // 10000
    if q.ms:
        if st.total_charged_ns:
            thr = (st.total_charged_sz * 1000000) // st.total_charged_ns
        else:
            thr = PAGE * 1024
        et = (thr * q.ms) % 2**64
        if ctx.p.esz_time_floor:
            et = max(et, ctx.c.min_region)
        esz = min(et, esz)
    if q.sz and q.sz < esz:
        esz = q.sz
    st.esz = esz


def damos_filter_match(ctx, ti, regions, r, f):
    if f.type == "target":
        matched = ti == f.target_idx
    else:
        mr = ctx.c.min_region
        start, end = align_down(f.addr_start, mr), align_down(f.addr_end, mr)
        if start <= r.start and r.end <= end:
            matched = True
        elif r.end <= start or end <= r.start:
            matched = False
        elif r.start < start:
            damon_split_region_at(regions, r, start - r.start)
            matched = False
        else:
            damon_split_region_at(regions, r, end - r.start)
            matched = True
    return matched == f.matching


def damos_filter_out(ctx, ti, regions, r, s):
    s.core_filters_allowed = False
    for f in s.spec.core_filters:
        if damos_filter_match(ctx, ti, regions, r, f):
            if f.allow:
                s.core_filters_allowed = True
            return not f.allow
    return s.spec.core_filters_default_reject


def damos_adjust_quota(ctx, s, now, goal_values):
    q, st = s.spec.quota, s.quota
    if not q.ms and not q.sz and not q.goals:
        return
    c = ctx.c
    reset = (-(-q.reset_interval_ms * c.hz // 1000)) if c.hz else q.reset_interval_ms * 10**6
    if st.charged_from is None:
        new = True
    elif ctx.p.explicit_first_window:
        new = not (st.charged_from <= now < st.charged_from + reset)
    else:
        new = now >= st.charged_from + reset
    if new:
        if st.esz and st.charged_sz >= st.esz:
            s.stat.qt_exceeds += 1
        st.total_charged_sz += st.charged_sz
        st.charged_from = now
        st.charged_sz = 0
        damos_set_effective_quota(ctx, s, goal_values)
    hist = [0] * 100
    max_score = 0
    for ti, regions in enumerate(ctx.targets):
        for r in regions:
            if not __damos_valid_target(ctx, r, s):
                continue
            if (
                ctx.p.hist_core_filters
                and s.spec.core_filters
                and _core_rejects_nosplit(ctx, ti, r, s)
            ):
                continue
            sc = get_scheme_score(ctx, r, s)
            hist[sc] += sz(r)
            max_score = max(max_score, sc)
    cum, score = 0, max_score
    while True:
        cum += hist[score]
        if cum >= st.esz or score == 0:
            break
        score -= 1
    st.min_score = score


def _core_rejects_nosplit(ctx, ti, r, s):
    probe = [Region(r.start, r.end, 0, 0, 0, 0)]
    for f in s.spec.core_filters:
        if damos_filter_match(ctx, ti, probe, probe[0], f):
            return not f.allow
    return s.spec.core_filters_default_reject


def damos_skip_charged_region(ctx, ti, regions, r, s):
    """Returns (skip, r)."""
    st = s.quota
    if st.charge_target_from is None:
        return False, r
    if ti != st.charge_target_from:
        return True, r
    mr = ctx.c.min_region
    addr = st.charge_addr_from
    if r is regions[-1]:
        st.charge_target_from, st.charge_addr_from = None, 0
        if not ctx.p.resume_until_last:
            return True, r
    if addr and r.end <= addr:
        return True, r
    if addr and r.start < addr:
        to_skip = align_down(addr - r.start, mr)
        if not to_skip:
            if sz(r) <= mr:
                return True, r
            to_skip = mr
        damon_split_region_at(regions, r, to_skip)
        if ctx.p.visit_split_right:
            return True, r
        r = regions[regions.index(r) + 1]
    if not ctx.p.resume_until_last:
        st.charge_target_from, st.charge_addr_from = None, 0
    return False, r


def quota_full(ctx, s):
    st = s.quota
    if not quota_is_set(ctx, s):
        return False
    if ctx.p.quota_full_min_region:
        return st.esz - st.charged_sz < ctx.c.min_region
    return st.charged_sz >= st.esz


def damos_apply_scheme(ctx, ti, regions, r, s, si):
    st = s.quota
    size = sz(r)
    if quota_is_set(ctx, s) and st.charged_sz + size > st.esz:
        size = align_down(st.esz - st.charged_sz, ctx.c.min_region)
        if not size:
            s.stat.nr_tried += 1
            return
        damon_split_region_at(regions, r, size)
    if damos_filter_out(ctx, ti, regions, r, s):
        return
    size = sz(r)
    ctx.trace.append(
        (
            si,
            ti,
            r.start,
            r.end,
            nr_for_pattern(ctx, r),
            r.age,
            len(regions),
            int(s.core_filters_allowed),
        )
    )
    st.charged_sz += size
    if quota_is_set(ctx, s) and st.charged_sz >= st.esz:
        st.charge_target_from = ti
        st.charge_addr_from = r.end if ctx.p.resume_exclusive else r.end + 1
    if s.spec.action != "stat":
        r.age = 0
    s.stat.nr_tried += 1
    s.stat.sz_tried += size


def damon_do_apply_schemes(ctx, ti, regions, r):
    for si, s in enumerate(ctx.schemes):
        if ctx.passed_sample_intervals < s.next_apply_sis or not s.activated:
            continue
        if quota_full(ctx, s):
            continue
        skip, r = damos_skip_charged_region(ctx, ti, regions, r, s)
        if skip:
            continue
        if not damos_valid_target(ctx, ti, r, s):
            continue
        damos_apply_scheme(ctx, ti, regions, r, s, si)


def kdamond_apply_schemes(ctx, now, goal_values=None):
    has = False
    for s in ctx.schemes:
        if ctx.passed_sample_intervals < s.next_apply_sis:
            continue
        if not s.activated:
            continue
        has = True
        damos_adjust_quota(ctx, s, now, goal_values)
    if not has:
        return
    for ti, regions in enumerate(ctx.targets):
        if ctx.p.visit_split_right:
            i = 0
            while i < len(regions):  # damon_for_each_region: sees inserted regions
                damon_do_apply_schemes(ctx, ti, regions, regions[i])
                i += 1
        else:
            for r in list(regions):  # damon_for_each_region_safe
                damon_do_apply_schemes(ctx, ti, regions, r)
    smp = ctx.c.sample_us or 1
    for s in ctx.schemes:
        if ctx.passed_sample_intervals < s.next_apply_sis:
            continue
        s.next_apply_sis = (
            ctx.passed_sample_intervals + (s.spec.apply_interval_us or ctx.c.aggr_us) // smp
        )
