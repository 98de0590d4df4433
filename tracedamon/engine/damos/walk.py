"""The region walk of ``kdamond_apply_schemes`` (``damon_do_apply_schemes`` & co.,
``damos-spec.md`` §3.4-§3.6, §4.2) as one numba kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

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
    C_MAXNR,
    C_MINREG,
    C_QFULL,
    C_QSET,
    C_RESUME_LAST,
    C_VISIT,
    FT_TARGET,
    P_CORE_DEFREJ,
    P_IS_STAT,
    P_SCORE,
    P_STATIC_SET,
    P_WAGE,
    P_WNR,
    S_AFROM,
    S_CALLS,
    S_CHARGED,
    S_ESZ,
    S_MINSCORE,
    S_NRTRIED,
    S_RUN,
    S_SZTRIED,
    S_TFROM,
    S_ZEROTRIES,
)
from .score import pattern_ok, region_score


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
def walk(
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
                    if not pattern_ok(sp, s, sz, pnr[i], pa[cur]):
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
