"""A slow, obviously-correct pure-Python reference of the whole DAMON replay loop.

Written straight from docs/damon-engine-spec.md (§3-§10, §12-§13), one sample
interval at a time, regions as small objects in Python lists, integers as Python
ints.  It shares nothing with ``tracedamon.engine`` except the input conventions:
the same ``MonitorConfig``, the same ``Target.ranges_at`` callables and the same
sorted sample arrays.  Its PCG32 is its own implementation, so the engine's
generator is checked too.  Tests compare the numba engine with it draw for draw.
"""
from __future__ import annotations

import bisect

PAGE = 4096
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


class PCG32:
    def __init__(self, seed: int):
        self.inc = ((0xDA3E39CB94B95BDB << 1) | 1) & M64
        self.state = 0
        self.next()
        self.state = (self.state + seed) & M64
        self.next()

    def next(self) -> int:
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        xs = (((old >> 18) ^ old) >> 27) & M32
        rot = old >> 59
        return ((xs >> rot) | (xs << ((32 - rot) & 31))) & M32


class Rand:
    """rand_below from spec §3.1 (kernel-compatible), with optional injected results."""

    def __init__(self, seed, inject=(), fix_rand32=False):
        self.g = PCG32(seed)
        self.inject = list(inject)
        self.fix = fix_rand32

    def below(self, n64: int) -> int:
        if self.inject:
            return self.inject.pop(0)
        if self.fix and n64 > M32:
            mask = (1 << (n64 - 1).bit_length()) - 1
            while True:
                x = ((self.g.next() << 32) | self.g.next()) & mask
                if x < n64:
                    return x
        n = n64 & M32
        x = self.g.next()
        if n == 0:
            return x
        m = x * n
        if (m & M32) < n:
            bound = (2**32 - n) % n
            while (m & M32) < bound:
                m = self.g.next() * n
        return m >> 32


class R:
    __slots__ = ("start", "end", "nr", "bp", "last", "age", "sa")

    def __init__(self, s, e, nr=0, bp=0, last=0, age=0):
        self.start, self.end, self.nr, self.bp, self.last, self.age = s, e, nr, bp, last, age
        self.sa = 0

    @property
    def size(self):
        return self.end - self.start

    def copy_counters_from(self, o):
        self.nr, self.bp, self.last, self.age = o.nr, o.bp, o.last, o.age


def adown(x, a):
    return x // a * a


def aup(x, a):
    return (x + a - 1) // a * a


def even_split(s, e, nr_pieces, minsz, maxsz):
    size = e - s
    if maxsz:
        piece = adown(size // nr_pieces, minsz) if nr_pieces else maxsz
        piece = min(piece, maxsz) if piece else maxsz
        limit = None
    else:
        if nr_pieces <= 1:
            return [R(s, e)]
        piece = adown(size // nr_pieces, minsz)
        limit = nr_pieces
    if piece == 0 or size <= piece:
        return [R(s, e)]
    out = []
    cur = s
    while (limit is None or len(out) < limit) and cur + piece <= e:
        out.append(R(cur, cur + piece))
        cur += piece
    out[-1].end = e
    return out


def set_regions(regs, ranges, minsz, maxsz):
    def inter(r, rg):
        return not (r.end <= rg[0] or rg[1] <= r.start)

    def fresh(s, e):
        return even_split(s, e, 0, minsz, maxsz) if maxsz else [R(s, e)]

    regs = [r for r in regs if any(inter(r, rg) for rg in ranges)]
    cur = 0
    for rg in ranges:
        first = last = None
        while cur < len(regs):
            if inter(regs[cur], rg):
                if first is None:
                    first = cur
                last = cur
            if regs[cur].start >= rg[1]:
                break
            cur += 1
        if first is None:
            new = fresh(adown(rg[0], minsz), aup(rg[1], minsz))
            for k, x in enumerate(new):
                regs.insert(cur + k, x)
            cur += len(new)
            continue
        regs[first].start = adown(rg[0], minsz)
        regs[last].end = aup(rg[1], minsz)
        j = first
        while j < last:
            if regs[j].end != regs[j + 1].start:
                new = fresh(regs[j].end, regs[j + 1].start)
                for k, x in enumerate(new):
                    regs.insert(j + 1 + k, x)
                last += len(new)
                cur += len(new)
                j += len(new)
            j += 1
    return regs


def grid(ranges, size):
    spans = sorted((adown(s, size), aup(e, size)) for s, e in ranges if e > s)
    starts = []
    for s, e in spans:
        x = s
        while x < e:
            if not starts or x > starts[-1]:
                starts.append(x)
            x += size
    return starts


class Reference:
    def __init__(self, cfg, targets, *, access="perf", physical=False, rand_inject=()):
        self.c = cfg
        self.targets = targets
        self.access = access
        self.physical = physical
        self.rand = Rand(cfg.seed, rand_inject, cfg.fix_rand32)
        self.rand_split = self.rand if cfg.rng_streams == "single" else \
            Rand(cfg.seed ^ 0x5EED5EED5EED5EED, (), cfg.fix_rand32)
        self.regs = [[] for _ in targets]
        self.last_nr_regions = 0
        self.sample_us, self.aggr_us = cfg.sample_us, cfg.aggr_us
        self.aggr_samples = cfg.aggr_us // cfg.sample_us
        self.minsz = cfg.min_region
        self.maxsz = cfg.max_region or 0
        self.fixed = bool(self.maxsz) and self.maxsz == self.minsz
        self.va = [0, False]
        self.pa = [0, False]

    # -- helpers --------------------------------------------------------------------
    def all(self):
        return [r for t in self.regs for r in t]

    def sz_limit(self):
        total = sum(r.size for r in self.all())
        if self.c.min_nr_regions:
            total //= self.c.min_nr_regions
        return max(total, self.minsz)

    def apply_min(self):
        lim = aup(self.sz_limit(), self.minsz)
        if self.fixed:
            return lim
        for ti, t in enumerate(self.regs):
            out = []
            for r in t:
                while r.size > lim:
                    left = R(r.start, r.start + lim)
                    left.copy_counters_from(r)
                    out.append(left)
                    r.start += lim
                out.append(r)
            self.regs[ti] = out
        return lim

    def init(self, t0):
        for ti, tg in enumerate(self.targets):
            rg = tg.ranges_at(t0)
            if rg is None or len(rg) == 0:
                continue
            rg = [(int(s), int(e)) for s, e in rg]
            if self.fixed:
                self.regs[ti] = [R(s, s + self.maxsz) for s in grid(rg, self.maxsz)]
            elif tg.three_regions and self.c.min_nr_regions_mode == "legacy":
                total = sum(e - s for s, e in rg)
                sz = max(total // self.c.min_nr_regions, self.minsz)
                if self.maxsz:
                    sz = min(sz, self.maxsz)
                out = []
                for s, e in rg:
                    s, e = adown(s, self.minsz), aup(e, self.minsz)
                    out += even_split(s, e, (e - s) // sz, self.minsz, self.maxsz)
                self.regs[ti] = out
            else:
                self.regs[ti] = set_regions([], rg, self.minsz, self.maxsz)

    def update(self, now):
        for ti, tg in enumerate(self.targets):
            if not tg.dynamic:
                continue
            rg = tg.ranges_at(now)
            if rg is None or len(rg) == 0:
                continue
            rg = [(int(s), int(e)) for s, e in rg]
            if self.fixed:
                old = {r.start: r for r in self.regs[ti]}
                self.regs[ti] = [old.get(s) or R(s, s + self.maxsz) for s in grid(rg, self.maxsz)]
            else:
                self.regs[ti] = set_regions(self.regs[ti], rg, self.minsz, self.maxsz)

    # -- per-interval check --------------------------------------------------------------
    def check(self, keys):
        ln = min(self.aggr_us // self.sample_us, 2**32 - 1) or 1
        for ti, t in enumerate(self.regs):
            same = False
            for r in t:
                if self.access == "perf":
                    acc = any((ti, p) in keys for p in range(adown(r.start, PAGE), r.end, PAGE))
                else:
                    page = adown(r.sa, PAGE)
                    cache = self.pa if self.physical else self.va
                    reuse = (same or (self.physical and not self.c.fix_pa_cache)) and \
                        adown(cache[0], PAGE) == page
                    if reuse:
                        acc = cache[1]
                    else:
                        acc = ((0 if self.physical else ti), page) in keys
                        cache[0], cache[1] = r.sa, acc
                    same = True
                r.bp = r.bp - (r.last * 10000) // ln + (10000 if acc else 0)
                if acc:
                    r.nr += 1
        return max((r.nr for r in self.all()), default=0)

    # -- aggregation steps -----------------------------------------------------------------
    def merge(self, thres, sz_limit):
        max_thres = self.aggr_us // self.sample_us
        first = True
        while True:
            n = 0
            for ti, t in enumerate(self.regs):
                lim = 0 if self.fixed else (min(sz_limit, self.maxsz) if self.maxsz else sz_limit)
                out = []
                for r in t:
                    if first or not self.c.fix_age_once:
                        if abs(r.nr - r.last) > thres:
                            r.age = 0
                        elif self.c.age_zero_reset and ((r.nr == 0) != (r.last == 0)):
                            r.age = 0
                        else:
                            r.age += 1
                    p = out[-1] if out else None
                    if p is not None and p.end == r.start and abs(p.nr - r.nr) <= thres \
                            and p.size + r.size <= lim:
                        sl, sr = p.size, r.size
                        p.nr = (p.nr * sl + r.nr * sr) // (sl + sr)
                        p.bp = p.nr * 10000
                        p.age = (p.age * sl + r.age * sr) // (sl + sr)
                        p.end = r.end
                    else:
                        out.append(r)
                self.regs[ti] = out
                n += len(out)
            thres = max(1, thres * 2)
            first = False
            if not self.c.merge_escalation or self.fixed:
                break
            if not (n > self.c.max_nr_regions and thres // 2 < max_thres):
                break

    def split(self):
        n = len(self.all())
        if n > self.c.max_nr_regions // 2:
            return
        nr_subs = 2
        if self.last_nr_regions == n and n < self.c.max_nr_regions // 3:
            nr_subs = 3
        if not self.fixed:
            for ti, t in enumerate(self.regs):
                out = []
                for r in t:
                    pieces = [r]
                    sz = r.size
                    i = 0
                    while i < nr_subs - 1 and sz > 2 * self.minsz:
                        sub = adown((1 + self.rand_split.below(9)) * sz // 10, self.minsz)
                        if self.maxsz and sub > self.maxsz:
                            sub = self.maxsz
                        i += 1
                        if sub == 0 or sub >= sz:
                            continue
                        left = pieces[0]
                        right = R(left.start + sub, left.end)
                        right.copy_counters_from(left)
                        left.end = right.start
                        pieces.insert(1, right)
                        sz = sub
                    out += pieces
                self.regs[ti] = out
        self.last_nr_regions = n

    def tune(self):
        regs = self.all()
        max_ev = sum(r.size * self.aggr_samples for r in regs)
        ev = sum(r.size * r.nr for r in regs)
        target = max_ev * self.c.goal_access_bp // 10000 or 1
        score = ev * 10000 // target
        if score < 10000:
            adapt = 20000 - score
        elif score == 10000:
            return None
        elif score < 20000:
            adapt = 5000 + (20000 - score) // 2
        else:
            adapt = 5000
        old_s, old_a = self.sample_us, self.aggr_us
        new_s = max(self.c.goal_min_sample_us, min(self.c.goal_max_sample_us, old_s * adapt // 10000))
        new_a = new_s * self.aggr_samples
        if old_s and old_a and new_s and new_a:
            om, nm = old_a // old_s, new_a // new_s
            for r in regs:
                r.nr = (r.nr * 10000 // om) * nm // 10000
                r.bp = r.nr * 10000
                r.age = r.age * old_a // new_a
        self.sample_us, self.aggr_us = new_s, new_a
        return new_s

    # -- the loop --------------------------------------------------------------------------
    def run(self, times, tgts, pages, t0, t_last, accessed_only=False):
        times = [int(x) for x in times]
        tgts = [int(x) for x in tgts]
        pages = [int(p) // PAGE * PAGE for p in pages]
        c = self.c
        psi = 0
        next_aggr = self.aggr_us // self.sample_us
        next_ops = c.update_us // self.sample_us
        next_tune = next_aggr * c.goal_aggrs
        self.init(t0)
        sz_limit = self.sz_limit() if c.min_nr_regions_mode == "legacy" else self.apply_min()
        tbase, psibase, S = t0, 0, self.sample_us * 1000
        rows, snap = [], 0
        while times:
            la, lo_ = next_aggr, next_ops
            if t_last < tbase + (la - psibase - 1) * S:
                break
            if self.access == "abit":
                for t in self.regs:
                    for r in t:
                        r.sa = r.start + self.rand.below(r.end - r.start)
            psi += 1
            w0 = tbase + (psi - psibase - 1) * S
            i0, i1 = bisect.bisect_left(times, w0), bisect.bisect_left(times, w0 + S)
            keys = {(tgts[i], pages[i]) for i in range(i0, i1)}
            max_nr = self.check(keys)
            s = self.sample_us
            if psi >= la:
                self.merge(max_nr // 10, sz_limit)
                if c.min_nr_regions_mode == "apply":
                    sz_limit = self.apply_min()
                if c.goal_aggrs and psi >= next_tune:
                    next_aggr = la
                    next_tune += self.aggr_samples * c.goal_aggrs
                    if self.tune() is not None:
                        tbase, psibase = tbase + (psi - psibase) * S, psi
                        S = self.sample_us * 1000
                        s = self.sample_us
                        next_ops = psi + c.update_us // s
                next_aggr = la + self.aggr_us // s
                t_end = tbase + (psi - psibase) * S
                for ti, t in enumerate(self.regs):
                    for r in t:
                        if not accessed_only or r.nr > 0:
                            rows.append((snap, t_end, ti, r.start, r.end, r.nr, r.age, r.bp))
                        r.bp = r.nr * 10000
                        r.last = r.nr
                        r.nr = 0
                snap += 1
                self.split()
            if psi >= lo_:
                next_ops = lo_ + c.update_us // s
                self.update(tbase + (psi - psibase) * S)
                if c.min_nr_regions_mode == "legacy":
                    sz_limit = self.sz_limit()
        return rows
