"""The numba DAMOS walk against the slow reference (tests/damos_reference.py).

Random region lists (one or two targets, gaps, page-aligned), random schemes (every
action, patterns, size/time quotas, weights, core filters), random resume points and
every kernel profile; several consecutive steps with time passing and ages growing.
Both programs must agree on every application (trace order, region, nr_accesses, age,
nr_regions, core filter verdict), the regions after each step, the quota state
(esz, min_score, charged bytes, resume point) and the stats.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import damos_reference as ref
from tracedamon.engine.damos import (
    ACTIONS,
    PROFILES,
    AccessPattern,
    Context,
    Filter,
    Quota,
    Scheme,
    apply_schemes,
    new_state,
    set_resume,
)

PAGE = 4096


@st.composite
def targets(draw):
    out = []
    for _ in range(draw(st.integers(1, 2))):
        n = draw(st.integers(1, 14))
        addr = draw(st.integers(0, 64)) * PAGE
        regs = []
        for _ in range(n):
            addr += draw(st.sampled_from([0, 0, 0, PAGE, 3 * PAGE]))
            size = draw(st.sampled_from([1, 1, 2, 3, 5, 8, 16, 40])) * PAGE
            nr = draw(st.integers(0, 10))
            bp = nr * 10000 + draw(st.sampled_from([0, 0, 3, 9999]))
            regs.append(
                (
                    addr,
                    addr + size,
                    nr,
                    bp,
                    draw(st.integers(0, 10)),
                    draw(st.sampled_from([0, 1, 2, 5, 12, 13, 30, 60, 200, 500])),
                )
            )
            addr += size
        out.append(regs)
    return out


@st.composite
def schemes(draw, span):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(ACTIONS))
        lo_nr = draw(st.integers(0, 4))
        pattern = AccessPattern(
            draw(st.sampled_from([0, PAGE, 3 * PAGE])),
            draw(st.sampled_from([2**64 - 1, 20 * PAGE])),
            lo_nr,
            draw(st.sampled_from([lo_nr, lo_nr + 3, 2**32 - 1])),
            draw(st.sampled_from([0, 1, 12])),
            draw(st.sampled_from([2**32 - 1, 100])),
        )
        quota = Quota(
            ms=draw(st.sampled_from([0, 0, 1, 50])),
            sz=draw(st.sampled_from([0, 5 * PAGE, 17 * PAGE, 20 * PAGE + 100, 64 * PAGE])),
            reset_interval_ms=draw(st.sampled_from([0, 1000, 20000])),
            weight_sz=draw(st.integers(0, 3)),
            weight_nr_accesses=draw(st.sampled_from([0, 1, 7])),
            weight_age=draw(st.sampled_from([0, 1, 1000])),
        )
        filters = []
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                a = draw(st.integers(0, span // PAGE)) * PAGE + draw(st.sampled_from([0, 100]))
                b = a + draw(st.integers(0, 30)) * PAGE
                filters.append(
                    Filter(
                        "addr", draw(st.booleans()), draw(st.booleans()), addr_start=a, addr_end=b
                    )
                )
            else:
                filters.append(
                    Filter(
                        "target",
                        draw(st.booleans()),
                        draw(st.booleans()),
                        target_idx=draw(st.integers(0, 1)),
                    )
                )
        if draw(st.booleans()):
            filters.append(Filter("anon", True, draw(st.booleans())))
        out.append(
            Scheme(
                action,
                pattern,
                quota,
                filters=tuple(filters),
                apply_interval_us=draw(st.sampled_from([0, 0, 0, 200000])),
            )
        )
    return out


def _numba_regions(tg):
    rows = [r for t in tg for r in t]
    a = np.array(rows, np.int64).reshape(len(rows), 6)
    toff = np.concatenate([[0], np.cumsum([len(t) for t in tg])]).astype(np.int64)
    return {
        "start": a[:, 0],
        "end": a[:, 1],
        "nr": a[:, 2],
        "bp": a[:, 3],
        "last": a[:, 4],
        "age": a[:, 5],
        "toff": toff,
    }


def _ref_targets(tg):
    return [[ref.Region(*r) for r in t] for t in tg]


def _rows(regs):
    toff = regs["toff"]
    out = []
    for t in range(len(toff) - 1):
        out.append(
            [
                (
                    int(regs["start"][i]),
                    int(regs["end"][i]),
                    int(regs["nr"][i]),
                    int(regs["bp"][i]),
                    int(regs["last"][i]),
                    int(regs["age"][i]),
                )
                for i in range(toff[t], toff[t + 1])
            ]
        )
    return out


def _ref_rows(targets_):
    return [
        [(r.start, r.end, r.nr_accesses, r.nr_accesses_bp, r.last_nr_accesses, r.age) for r in t]
        for t in targets_
    ]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_walk_equals_reference(data):
    tg = data.draw(targets())
    span = max(r[1] for t in tg for r in t)
    sch = data.draw(schemes(span))
    prof = PROFILES[data.draw(st.sampled_from(sorted(PROFILES)))]
    ctx = Context(
        "paddr" if data.draw(st.booleans()) else "vaddr",
        100000,
        1000000,
        min_region=PAGE,
        hz=data.draw(st.sampled_from([0, 250])),
    )
    state = new_state(sch, ctx, prof)
    rc = ref.Ctx(sch, ctx, prof, _ref_targets(tg))
    if data.draw(st.booleans()):
        tgt = data.draw(st.integers(0, len(tg) - 1))
        addr = data.draw(st.integers(0, span // PAGE + 2)) * PAGE + data.draw(
            st.sampled_from([0, 1])
        )
        set_resume(state, 0, tgt, addr)
        rc.schemes[0].quota.charge_target_from = tgt
        rc.schemes[0].quota.charge_addr_from = addr
    regs = _numba_regions(tg)
    t_ns = 10**9
    for step in range(data.draw(st.integers(1, 3))):
        sis = (step + 1) * 10
        rc.passed_sample_intervals = sis
        rc.trace = []
        ref.kdamond_apply_schemes(rc, (t_ns * ctx.hz // 10**9) if ctx.hz else t_ns)
        res = apply_schemes(state, regs, sis=sis, now_ns=t_ns)
        got = list(
            zip(
                *(
                    res.applications[k].tolist()
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
                )
            )
        )
        assert got == rc.trace
        assert _rows(res.regions) == _ref_rows(rc.targets)
        for j, (a, b) in enumerate(zip(state.states, rc.schemes)):
            assert (
                a.esz,
                a.min_score,
                a.charged_sz,
                a.qt_exceeds,
                a.nr_tried,
                a.sz_tried,
                a.next_apply_sis,
            ) == (
                b.quota.esz,
                b.quota.min_score,
                b.quota.charged_sz,
                b.stat.qt_exceeds,
                b.stat.nr_tried,
                b.stat.sz_tried,
                b.next_apply_sis,
            ), j
            assert (a.charge_target_from, a.charge_addr_from) == (
                -1 if b.quota.charge_target_from is None else b.quota.charge_target_from,
                b.quota.charge_addr_from,
            )
        # time passes: every region one aggregation older, counts as they were
        regs = dict(res.regions)
        regs["age"] = regs["age"] + 1
        for t in rc.targets:
            for r in t:
                r.age += 1
        t_ns += data.draw(st.sampled_from([10**8, 10**9, 5 * 10**9]))
