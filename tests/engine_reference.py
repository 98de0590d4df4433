"""An independent, slow model of DAMON's monitoring loop, for checking the numba engine.

Written from the kernel's description (docs/damon-engine-spec.md, the kernel's
mm/damon/core.c and vaddr.c, the perf-event RFC in the seed thread), not from
``tracedamon.engine``.  It is a different program on purpose:

* **State is kept per unit of address space**, not as a list of regions.  The unit is
  the minimum region size (every region boundary the kernel makes is a multiple of
  it); each target maps every monitored unit to the region object that owns it, and a
  region is nothing but its counters.  Region boundaries are *derived*: a region is a
  maximal run of consecutive units owned by the same object.  Merging two regions
  hands the right one's units to the left one; splitting hands the units right of the
  cut to a new object.
* One sample interval at a time; every region's ``nr_accesses_bp`` moving sum is
  updated in every interval (the engine advances it lazily in closed form).
* The perf-histogram check looks each sample's unit up in the unit map (the engine
  binary-searches region arrays); units below a page (a cache line, 64 bytes) make it
  sub-page monitoring.  The accessed-bit check works on pages and keeps the kernel's
  last-verdict cache as two variables.
* Integers are Python integers; nothing is imported from ``tracedamon`` (the caller
  passes a ``MonitorConfig`` and ``Target`` objects, read through their attributes).

What it shares with the engine is the input only: the configuration, the targets'
``ranges_at`` callables, the samples, and the random draws -- the PCG32 stream
(O'Neill's ``pcg32_srandom_r(seed, 0xDA3E39CB94B95BDB)``, XSH-RR output; a second
stream seeded with ``seed ^ 0x5EED5EED5EED5EED`` when ``rng_streams == "split"``),
implemented here again and reduced to ranges with the kernel's method (spec §3.1).

Kernel profiles (``cfg.kernel``).  ``"mainline-2026"`` is modelled from the mm tree's
``mm/damon/core.c`` (kernelorg-mirror/linux_kernel_git_mm_linux @ 43ecc9c4) and the
per-context PRNG patch, again without the engine: the random numbers come from the
kernel's ``prandom_u32_state`` (lfsr113, seeded as ``prandom_seed_state(seed)``) and are
mapped to a span by one multiplication (``word * span >> 32``; a span of 2**32 and more
takes two words, the first the high one, and the top 64 bits of the 128-bit product);
the split above ``max_nr_regions / 2`` cuts one region in every
``max / (max - n)`` from a rotating offset; the merge counts ages on its first pass and
never raises its threshold past ``aggr / sample``; ``nr_accesses_bp`` at a snapshot is
the moving sum read at the aggregation boundary, ``nr_accesses * 10000``.  Any other
profile name is a released kernel.

Targets that exit (``exit_ns`` / ``mm_exit_ns`` of a ``Target``, read with ``getattr``):
vaddr.c's ``damon_get_mm()`` finds no mm once the process's leader exited, so the
target draws no sampling address in an interval that starts after that, counts nothing
in an interval checked (at its end) after that, gets no three regions at start and keeps
its regions at an update; core.c's ``kdamond_need_stop()`` ends the loop before an
interval that starts when no target is valid (a process target: until its last thread
exited; paddr has no ``target_valid`` and never stops).

Conventions of the replay that are tracedamon's, not the kernel's (spec §12): sample
interval ``j`` covers ``[T0 + (j-1)·S, T0 + j·S)``; the run stops before an
aggregation whose last sample interval starts after the last sample; fixed
granularity (``min_region == max_region``) is a grid of regions of that size that
keeps each region's counters by address at an ops update.
"""

from __future__ import annotations

import bisect
from collections import deque

PAGE = 4096
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
PCG_MULT = 6364136223846793005
PCG_STREAM = 0xDA3E39CB94B95BDB
SPLIT_SALT = 0x5EED5EED5EED5EED


# ======================================================================================
# random numbers
# ======================================================================================
def pcg32(seed: int, stream: int = PCG_STREAM):
    """Endless 32-bit outputs of PCG32 (XSH-RR) seeded like ``pcg32_srandom_r``."""
    inc = ((stream << 1) | 1) & U64
    state = inc & U64  # state 0, one step: 0 * mult + inc
    state = (state + seed) & U64
    state = (state * PCG_MULT + inc) & U64
    while True:
        x = state
        state = (state * PCG_MULT + inc) & U64
        rotate = x >> 59
        word = (((x >> 18) ^ x) >> 27) & U32
        yield ((word >> rotate) | (word << (32 - rotate))) & U32


def lfsr113(seed: int):
    """Endless outputs of the kernel's ``prandom_u32_state`` after
    ``prandom_seed_state(state, seed)`` (lib/random32.c, include/linux/prandom.h)."""
    seed &= U64
    mixed = ((seed >> 32) ^ (seed << 10) ^ seed) & U32
    words = [mixed + low if mixed < low else mixed for low in (2, 8, 16, 128)]
    # (mask, shift a, shift b, shift d) of the four Tausworthe components
    taps = (
        (0xFFFFFFFE, 6, 13, 18),
        (0xFFFFFFF8, 2, 27, 2),
        (0xFFFFFFF0, 13, 21, 7),
        (0xFFFFFF80, 3, 12, 13),
    )
    while True:
        for k, (mask, a, b, d) in enumerate(taps):
            z = words[k]
            words[k] = (((z & mask) << d) & U32) ^ ((((z << a) & U32) ^ z) >> b)
        yield words[0] ^ words[1] ^ words[2] ^ words[3]


class MultiplyDraws:
    """mainline-2026's ``damon_rand``: a span is mapped by one multiplication, never
    rejected nor truncated.  ``forced``: results that replace draws, as in Draws."""

    def __init__(self, words, forced: deque):
        self.words = words
        self.forced = forced

    def below(self, n: int) -> int:
        if self.forced:
            return self.forced.popleft()
        if n < 1 << 32:
            return (next(self.words) * n) >> 32
        wide = (next(self.words) << 32) | next(self.words)
        return (wide * n) >> 64

    def rand(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo)


class Draws:
    """``get_random_u32_below`` over a word stream (spec §3.1), with forced results first.

    ``forced`` is a shared deque of results that replace draws (the spec's worked
    examples give the draws).  ``wide`` draws ranges of 2**32 and more over their full
    width (quirk Q1 fixed); otherwise the range is cut to its low 32 bits, as the
    kernel's ``u32`` argument does.
    """

    def __init__(self, words, forced: deque, wide: bool):
        self.words = words
        self.forced = forced
        self.wide = wide

    def word(self) -> int:
        return next(self.words)

    def below(self, n: int) -> int:
        if self.forced:
            return self.forced.popleft()
        if self.wide and n >= 1 << 32:
            bits = (n - 1).bit_length()
            while True:
                hi = self.word()
                x = ((hi << 32) | self.word()) & ((1 << bits) - 1)
                if x < n:
                    return x
        n &= U32
        word = self.word()
        if n == 0:
            return word  # the kernel's answer for a range of 0
        product = word * n
        if (product & U32) < n:  # Lemire: reject the biased low products
            floor = (1 << 32) % n  # == (2**32 - n) % n
            while (product & U32) < floor:
                product = self.word() * n
        return product >> 32

    def rand(self, lo: int, hi: int) -> int:
        """damon_rand(lo, hi)."""
        return lo + self.below(hi - lo)


# ======================================================================================
# state: one map per target from unit address to the owning region
# ======================================================================================
class Region:
    """A region's counters; where it lies is known only to the unit maps."""

    __slots__ = ("nr", "bp", "last", "age")

    def __init__(self, nr=0, bp=0, last=0, age=0):
        self.nr, self.bp, self.last, self.age = nr, bp, last, age

    def clone(self) -> "Region":
        return Region(self.nr, self.bp, self.last, self.age)


class Space:
    """One target's monitored units (``unit``-sized, keyed by address)."""

    def __init__(self, unit: int):
        self.unit = unit
        self.owner: dict[int, Region] = {}
        self._runs = None

    def changed(self):
        self._runs = None

    def assign(self, lo: int, hi: int, reg: Region, allow_taken=True):
        for u in range(lo, hi, self.unit):
            if not allow_taken and u in self.owner:
                raise AssertionError(
                    f"unit {u:#x} would have two regions (ranges closer "
                    "than the minimum region size)"
                )
            self.owner[u] = reg
        self.changed()

    def drop(self, lo: int, hi: int):
        for u in range(lo, hi, self.unit):
            self.owner.pop(u, None)
        self.changed()

    def runs(self) -> list[tuple[int, int, Region]]:
        """[start, end, region] of every region, by address."""
        if self._runs is None:
            out: list[list] = []
            for u in sorted(self.owner):
                reg = self.owner[u]
                if out and out[-1][2] is reg and out[-1][1] == u:
                    out[-1][1] = u + self.unit
                else:
                    out.append([u, u + self.unit, reg])
            seen = set()
            for _, _, reg in out:
                assert id(reg) not in seen, "a region owns two separate runs"
                seen.add(id(reg))
            self._runs = [tuple(x) for x in out]
        return self._runs

    def region_at(self, addr: int):
        return self.owner.get(addr - addr % self.unit)


def _down(x: int, a: int) -> int:
    return x - x % a


def _up(x: int, a: int) -> int:
    return -(-x // a) * a


# ======================================================================================
# the monitor
# ======================================================================================
class Reference:
    """The kdamond loop over recorded samples (spec §4), one sample interval at a time.

    ``access``: ``"perf"`` (perf-histogram check: a region is accessed in an interval
    iff a sample of its target fell on one of its pages) or ``"abit"`` (accessed-bit
    emulation: one random sampling address per region per interval).  ``ops``:
    ``"fvaddr"`` (the targets' ranges, read once), ``"vaddr"`` (ranges from three regions:
    split evenly at start in legacy mode, read again at every ops update) or ``"paddr"``
    (a sample of any process counts; the accessed-bit cache is kept across targets and
    intervals).  ``rand_inject``: results forced onto the first draws.
    """

    def __init__(self, cfg, targets, *, ops="fvaddr", access="perf", rand_inject=()):
        self.cfg = cfg
        self.targets = list(targets)
        self.access = access
        self.physical = ops == "paddr"
        self.vaddr = ops == "vaddr"  # three regions at start, updated at ops updates
        self.unit = cfg.min_region
        self.maxsz = cfg.max_region or 0
        self.grid = bool(self.maxsz) and self.maxsz == self.unit
        forced = deque(int(x) for x in rand_inject)
        self.mainline = getattr(cfg, "kernel", "released") == "mainline-2026"
        if self.mainline:

            def stream(seed):
                return MultiplyDraws(lfsr113(seed), forced)
        else:

            def stream(seed):
                return Draws(pcg32(seed), forced, cfg.fix_rand32)

        self.draw = stream(cfg.seed)
        self.draw_split = (
            self.draw if cfg.rng_streams == "single" else stream(cfg.seed ^ SPLIT_SALT)
        )
        self.rotation = 0  # split_some's static
        self.spaces = [Space(self.unit) for _ in self.targets]
        self.sample_us = cfg.sample_us
        self.aggr_us = cfg.aggr_us
        self.aggr_samples = cfg.aggr_us // cfg.sample_us  # kept through auto-tuning
        self.last_nr_regions = 0  # split's static variable
        self.cache_addr = 0  # last-verdict cache
        self.cache_young = False

    # -- views ------------------------------------------------------------------------
    def regions(self, t: int) -> list[tuple[int, int, int, int, int, int]]:
        """(start, end, nr, bp, last, age) of target t's regions, by address."""
        return [(s, e, r.nr, r.bp, r.last, r.age) for s, e, r in self.spaces[t].runs()]

    def _every_region(self):
        for sp in self.spaces:
            yield from sp.runs()

    def _count(self) -> int:
        return sum(len(sp.runs()) for sp in self.spaces)

    # -- building regions ----------------------------------------------------------------
    def _pieces(self, lo: int, hi: int, piece: int, limit: int | None):
        """Cut [lo, hi) into ``piece``-sized parts from lo, the last one taking the rest
        (damon_evenly_split_region); at most ``limit`` parts when given."""
        cuts = [lo]
        while (limit is None or len(cuts) < limit) and cuts[-1] + 2 * piece <= hi:
            cuts.append(cuts[-1] + piece)
        return list(zip(cuts, cuts[1:] + [hi]))

    def _new_regions(self, sp: Space, lo: int, hi: int, keep: Region | None = None):
        """A new region over [lo, hi), cut in max_region parts when that is set (the RFC's
        split=true).  ``keep``: the region that keeps the first part (an extended one)."""
        parts = [(lo, hi)]
        if self.maxsz and hi - lo > self.maxsz:
            parts = self._pieces(lo, hi, self.maxsz, None)
        for k, (a, b) in enumerate(parts):
            sp.assign(a, b, keep if (k == 0 and keep is not None) else Region())

    def _init_target(self, ti: int, ranges):
        sp = self.spaces[ti]
        if self.grid:
            for a, b in ranges:
                for u in range(_down(a, self.unit), _up(b, self.unit), self.unit):
                    if u not in sp.owner:
                        sp.owner[u] = Region()
            sp.changed()
            return
        if self.vaddr and self.cfg.min_nr_regions_mode == "legacy":
            # __damon_va_init_regions: regions of about total / min_nr_regions
            want = sum(b - a for a, b in ranges) // self.cfg.min_nr_regions
            want = max(want, self.unit)
            if self.maxsz:
                want = min(want, self.maxsz)
            for a, b in ranges:
                lo, hi = _down(a, self.unit), _up(b, self.unit)
                nr_pieces = (hi - lo) // want
                piece = _down((hi - lo) // nr_pieces, self.unit) if nr_pieces else 0
                if nr_pieces <= 1 or piece == 0:
                    sp.assign(lo, hi, Region(), allow_taken=False)
                    continue
                if self.maxsz:  # RFC: as many pieces as fit, none above max
                    parts = self._pieces(lo, hi, min(piece, self.maxsz), None)
                else:  # mainline since 2024: exactly nr_pieces pieces
                    parts = self._pieces(lo, hi, piece, nr_pieces)
                for p, q in parts:
                    sp.assign(p, q, Region(), allow_taken=False)
            return
        self._set_regions(ti, ranges)

    def _set_regions(self, ti: int, ranges):
        """damon_set_regions (spec §10.4, with the RFC's split of new and grown regions)."""
        sp = self.spaces[ti]
        unit = self.unit

        def touching(s, e):
            return [(a, b) for a, b in ranges if s < b and a < e]

        for s, e, _ in list(sp.runs()):
            if not touching(s, e):
                sp.drop(s, e)
        for a, b in ranges:
            lo, hi = _down(a, unit), _up(b, unit)
            hit = [(s, e, r) for s, e, r in sp.runs() if s < b and a < e]
            if not hit:
                for u in range(lo, hi, unit):
                    assert u not in sp.owner, "ranges closer than the minimum region size"
                self._new_regions(sp, lo, hi)
                continue
            fs, fe, first = hit[0]
            ls, le, last = hit[-1]
            # the first region's bottom and the last region's top move to the range's
            if lo < fs:
                sp.assign(lo, fs, first, allow_taken=False)
            else:
                sp.drop(fs, lo)
            if le < hi:
                sp.assign(le, hi, last, allow_taken=False)
            else:
                sp.drop(hi, le)
            grown_down, grown_up = lo < fs, le < hi
            if self.maxsz and grown_down:
                end = hi if first is last else fe
                self._new_regions(sp, lo, end, keep=first)
                if first is last:
                    continue
            if self.maxsz and grown_up:
                self._new_regions(sp, lo if first is last else ls, hi, keep=last)
            # holes between the regions now in [lo, hi): a new region each
            inside = [(s, e) for s, e, _ in sp.runs() if s < hi and lo < e]
            for (s1, e1), (s2, e2) in zip(inside, inside[1:]):
                if e1 != s2:
                    self._new_regions(sp, e1, s2)

    def _update_target(self, ti: int, ranges):
        if not self.grid:
            self._set_regions(ti, ranges)
            return
        sp = self.spaces[ti]
        keep = set()
        for a, b in ranges:
            keep.update(range(_down(a, self.unit), _up(b, self.unit), self.unit))
        for u in list(sp.owner):
            if u not in keep:
                del sp.owner[u]
        for u in keep:
            sp.owner.setdefault(u, Region())
        sp.changed()

    # -- limits ------------------------------------------------------------------------
    def _sz_limit(self) -> int:
        """damon_region_sz_limit: the total size over min_nr_regions, at least a unit."""
        total = sum(e - s for s, e, _ in self._every_region())
        return max(total // self.cfg.min_nr_regions, self.unit)

    def _apply_min(self) -> int:
        """damon_apply_min_nr_regions: no region larger than the limit, aligned up."""
        lim = _up(self._sz_limit(), self.unit)
        for sp in self.spaces:
            for s, e, reg in list(sp.runs()):
                cut = s + lim
                while cut < e:
                    sp.assign(cut, min(cut + lim, e), reg.clone())
                    cut += lim
        return lim

    # -- one sample interval ------------------------------------------------------------
    def _has_mm(self, ti: int, when: int) -> bool:
        """vaddr.c's damon_get_mm(): the process's leader still has its mm at ``when``
        (physical memory always has one)."""
        tg = self.targets[ti]
        gone = getattr(tg, "mm_exit_ns", None)
        if gone is None:
            gone = getattr(tg, "exit_ns", None)
        return self.physical or gone is None or when < gone

    def _some_target_valid(self, when: int) -> bool:
        """Not kdamond_need_stop(): paddr has no target_valid; a process target is valid
        until its last thread exited."""
        if self.physical or not self.targets:
            return True
        ends = [getattr(tg, "exit_ns", None) for tg in self.targets]
        return any(e is None or when < e for e in ends)

    def _sample_addresses(self, when: int):
        """One sampling address per region, at the interval's start; none for a target
        without an mm (prepare_access_checks skips it)."""
        return [
            [self.draw.rand(s, e) for s, e, _ in sp.runs()] if self._has_mm(ti, when) else None
            for ti, sp in enumerate(self.spaces)
        ]

    def _check(self, window, addrs, when: int) -> None:
        """Mark accesses of one interval (checked at its end, ``when``) and advance every
        region's moving sum.  A target without an mm then counts nothing."""
        seen = set()  # ids of regions accessed in this interval
        checked = [self._has_mm(ti, when) for ti in range(len(self.spaces))]
        window = [(t, a) for t, a in window if not (0 <= t < len(checked)) or checked[t]]
        if self.physical:  # paddr: a sample of any process counts for
            addrs_hit = {a for _, a in window}  # every target
            window = [(t, a) for t in range(len(self.spaces)) for a in addrs_hit]
        if self.access == "perf":
            # the unit holding the sampled byte: its page when units are pages or larger,
            # the cache line (or whatever the minimum region size is) below a page
            for t, addr in window:
                if 0 <= t < len(self.spaces):
                    reg = self.spaces[t].region_at(addr)
                    if reg is not None:
                        seen.add(id(reg))
        else:
            keys = {(t, a - a % PAGE) for t, a in window}  # the accessed bit: per page
            global_cache = self.physical and not self.cfg.fix_pa_cache
            for ti, sp in enumerate(self.spaces):
                if addrs[ti] is None or not checked[ti]:
                    continue
                first = True
                for (s, e, reg), addr in zip(sp.runs(), addrs[ti]):
                    page = addr - addr % PAGE
                    reusable = global_cache or not first
                    if reusable and self.cache_addr - self.cache_addr % PAGE == page:
                        young = self.cache_young
                    else:
                        young = (ti, page) in keys
                        self.cache_addr, self.cache_young = addr, young
                    first = False
                    if young:
                        seen.add(id(reg))
        window_len = min(self.aggr_us // self.sample_us, U32) or 1
        for _, _, reg in self._every_region():
            hit = id(reg) in seen
            reg.bp += (10000 if hit else 0) - reg.last * 10000 // window_len
            reg.nr += hit

    # -- aggregation steps ----------------------------------------------------------------
    def _merge_pass(self, thres: int, sz_limit: int, count_age: bool) -> int:
        cap = 0 if self.grid else (min(sz_limit, self.maxsz) if self.maxsz else sz_limit)
        for sp in self.spaces:
            left = None  # (start, end, region) merged into
            for s, e, reg in list(sp.runs()):
                if count_age:
                    if abs(reg.nr - reg.last) > thres:
                        reg.age = 0
                    elif self.cfg.age_zero_reset and (reg.nr == 0) != (reg.last == 0):
                        reg.age = 0
                    else:
                        reg.age += 1
                if left is not None:
                    ls, le, lreg = left
                    if le == s and abs(lreg.nr - reg.nr) <= thres and (le - ls) + (e - s) <= cap:
                        wl, wr = le - ls, e - s
                        lreg.nr = (lreg.nr * wl + reg.nr * wr) // (wl + wr)
                        lreg.bp = lreg.nr * 10000
                        lreg.age = (lreg.age * wl + reg.age * wr) // (wl + wr)
                        sp.assign(s, e, lreg)
                        left = (ls, e, lreg)
                        continue
                left = (s, e, reg)
        return self._count()

    def _merge(self, max_nr: int, sz_limit: int) -> None:
        """kdamond_merge_regions: passes with a threshold doubling from max_nr / 10 while
        more than max_nr_regions remain and the last pass's threshold was below the
        largest possible nr_accesses."""
        ceiling = self.aggr_us // self.sample_us
        thres = max_nr // 10
        passes = 0
        while True:
            once = self.cfg.fix_age_once or self.mainline
            n = self._merge_pass(thres, sz_limit, passes == 0 or not once)
            passes += 1
            used = thres
            if self.mainline:  # never past the ceiling; a pass at it is the last
                thres = min(max(1, thres * 2), ceiling) if thres < ceiling // 2 else ceiling
            else:
                thres = max(1, thres * 2)
            again = n > self.cfg.max_nr_regions and used < ceiling
            if not again or not self.cfg.merge_escalation or self.grid:
                return

    def _split_some(self, n: int) -> None:
        """mainline-2026 above max_nr_regions / 2: every step-th region, counted over
        all targets from a rotating offset, is cut once if at least two units wide."""
        most = self.cfg.max_nr_regions
        self.last_nr_regions = n
        if n >= most or self.grid:
            return
        step = most // (most - n)
        offset = self.rotation % step
        self.rotation += 1
        index = 0
        for sp in self.spaces:
            for s, e, reg in list(sp.runs()):
                pick = index % step == offset
                index += 1
                if not pick or e - s < 2 * self.unit:
                    continue
                left = _down((1 + self.draw_split.below(9)) * (e - s) // 10, self.unit)
                if self.maxsz:
                    left = min(left, self.maxsz)
                if 0 < left < e - s:
                    sp.assign(s + left, e, reg.clone())

    def _split(self) -> None:
        n = self._count()
        if self.mainline and n > self.cfg.max_nr_regions // 2:
            return self._split_some(n)
        if n > self.cfg.max_nr_regions // 2:
            return  # last_nr_regions stays (quirk Q11)
        subs = 3 if (n == self.last_nr_regions and n < self.cfg.max_nr_regions // 3) else 2
        limit = 2 * self.unit
        for sp in self.spaces:
            for s, e, reg in list(sp.runs()):
                size, tries = e - s, 0
                while tries < subs - 1 and size > limit:
                    tries += 1
                    left = _down((1 + self.draw_split.below(9)) * size // 10, self.unit)
                    if left == 0 or left >= size:
                        continue
                    if self.maxsz:
                        left = min(left, self.maxsz)
                    sp.assign(s + left, s + size, reg.clone())
                    size = left
        self.last_nr_regions = n

    def _tune(self) -> bool:
        """damon_set_attrs from the intervals goal (spec §9): True if the intervals changed."""
        regs = list(self._every_region())
        most = sum((e - s) * self.aggr_samples for s, e, _ in regs)
        seen = sum((e - s) * r.nr for s, e, r in regs)
        goal = most * self.cfg.goal_access_bp // 10000 or 1
        score = seen * 10000 // goal
        if score == 10000:
            return False
        if score < 10000:
            factor = 20000 - score
        elif score < 20000:
            factor = 5000 + (20000 - score) // 2
        else:
            factor = 5000
        new_s = self.sample_us * factor // 10000
        new_s = max(self.cfg.goal_min_sample_us, min(self.cfg.goal_max_sample_us, new_s))
        new_a = new_s * self.aggr_samples
        old_s, old_a = self.sample_us, self.aggr_us
        if old_s and old_a and new_s and new_a:
            old_max = min(old_a // old_s, U32)
            new_max = min(new_a // new_s, U32)
            for _, _, r in regs:
                r.nr = r.nr * 10000 // old_max * new_max // 10000
                r.bp = r.nr * 10000
                r.age = r.age * old_a // new_a
        self.sample_us, self.aggr_us = new_s, new_a
        return True

    # -- the loop ----------------------------------------------------------------------
    def run(self, times, tgts, pages, t0, t_last, accessed_only=False):
        """Rows (snapshot, time_ns, target, start, end, nr_accesses, age, nr_accesses_bp)
        of every damon_aggregated event, in order."""
        samples = sorted(
            zip((int(x) for x in times), (int(x) for x in tgts), (int(p) for p in pages)),
            key=lambda x: x[0],
        )
        stamps = [x[0] for x in samples]
        cfg = self.cfg
        t0, t_last = int(t0), int(t_last)
        rows: list[tuple] = []
        if not samples:
            return rows
        for ti, tg in enumerate(self.targets):
            if self.vaddr and not self._has_mm(ti, t0):
                continue  # no mm: no three regions
            rg = tg.ranges_at(t0)
            if rg is not None and len(rg):
                self._init_target(ti, [(int(a), int(b)) for a, b in rg])
        legacy = cfg.min_nr_regions_mode == "legacy"
        sz_limit = self._sz_limit() if legacy else self._apply_min()

        psi = 0  # passed sample intervals
        next_aggr = self.aggr_us // self.sample_us
        next_ops = cfg.update_us // self.sample_us
        next_tune = next_aggr * cfg.goal_aggrs
        origin_t, origin_psi = t0, 0  # interval origin_psi + k starts at
        width = self.sample_us * 1000  # origin_t + (k - 1) * width
        snapshot = 0
        while True:
            aggr_at, ops_at = next_aggr, next_ops
            if origin_t + (aggr_at - origin_psi - 1) * width > t_last:
                break  # that aggregation is incomplete
            w_lo = origin_t + (psi - origin_psi) * width
            if not self._some_target_valid(w_lo):
                break  # kdamond_need_stop
            addrs = self._sample_addresses(w_lo) if self.access == "abit" else None
            psi += 1
            i, j = bisect.bisect_left(stamps, w_lo), bisect.bisect_left(stamps, w_lo + width)
            self._check([(t, p) for _, t, p in samples[i:j]], addrs, w_lo + width)
            if psi >= aggr_at:
                max_nr = max((r.nr for _, _, r in self._every_region()), default=0)
                self._merge(max_nr, sz_limit)
                if not legacy:
                    sz_limit = self._apply_min()
                if cfg.goal_aggrs and psi >= next_tune:
                    next_aggr = aggr_at
                    next_tune += self.aggr_samples * cfg.goal_aggrs
                    if self._tune():
                        origin_t += (psi - origin_psi) * width
                        origin_psi = psi
                        width = self.sample_us * 1000
                        next_ops = psi + cfg.update_us // self.sample_us  # quirk Q8
                next_aggr = aggr_at + self.aggr_us // self.sample_us
                now = origin_t + (psi - origin_psi) * width
                for ti, sp in enumerate(self.spaces):
                    for s, e, r in sp.runs():
                        # mainline-2026 keeps no bp: its moving sum, read here, is nr
                        bp = r.nr * 10000 if self.mainline else r.bp
                        if r.nr or not accessed_only:
                            rows.append((snapshot, now, ti, s, e, r.nr, r.age, bp))
                        r.bp = r.nr * 10000
                        r.last, r.nr = r.nr, 0
                snapshot += 1
                self._split()
            if psi >= ops_at:
                next_ops = ops_at + cfg.update_us // self.sample_us
                now = origin_t + (psi - origin_psi) * width
                for ti, tg in enumerate(self.targets):
                    if not self.vaddr or not self._has_mm(ti, now):
                        continue
                    rg = tg.ranges_at(now)
                    if rg is not None and len(rg):
                        self._update_target(ti, [(int(a), int(b)) for a, b in rg])
                if legacy:
                    sz_limit = self._sz_limit()
        return rows
