"""The DAMON core, re-implemented over numpy arrays with numba kernels.

Layout (stumpy-like): ``@njit`` kernels take plain arrays and scalars only (merge in
:mod:`tracedamon.engine.merge`, split in :mod:`tracedamon.engine.split`, the access checks
in :mod:`tracedamon.engine.checks`); :class:`Monitor` is the Python driver that runs the
kdamond main loop
(spec §4) one *segment* at a time -- a run of sample intervals between two
events (an aggregation or an ops update) -- and calls the kernels.  No file
I/O happens here: the caller (``replay.py``) hands in the targets, the
operations set and the access samples as arrays.

Regions of all targets live in one set of ``int64`` arrays (``start``,
``end``, ``nr`` = nr_accesses, ``bp`` = nr_accesses_bp, ``last`` =
last_nr_accesses, ``age``), target after target, each target's regions sorted
by address; ``toff[t]:toff[t+1]`` are target ``t``'s rows.

Cost model.  In the perf-histogram access modes a sample interval costs only
its samples (a binary search each: which region holds the address); a region's
``nr_accesses_bp`` moving sum is advanced lazily in closed form at the end of
each segment (``bp -= k * (last*10000 // len)`` plus 10000 per positive
interval), which is exactly what ``k`` per-interval updates give.  Aggregations
cost O(regions).  The accessed-bit (``abit``) mode draws one sampling address per
region per interval, like the kernel, so it costs regions x intervals.  Fixed
granularity over a large space goes through :mod:`tracedamon.engine.fixed`,
which keeps untouched regions implicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from . import ops as ops_sets
from .access import AccessSamples
from .checks import abit_subpage_error
from .config import PAGE_SIZE, MonitorConfig
from .draw import new_generator
from .history import Coverage, HistoryArrays, merged_ranges
from .lifetime import first_interval_from, need_stop, stop_time
from .merge import merge_regions
from .ops.base import Operations
from .split import _split_regions, split_some_regions
from .regions import (
    Target,
    align_down,
    align_up,
    evenly_split,
    fixed_grid,
    new_region,
    set_regions,
    target_ranges,
)

__all__ = [
    "AccessSamples",
    "Coverage",
    "HistoryArrays",
    "Monitor",
    "Target",
    "align_down",
    "align_up",
    "evenly_split",
    "fixed_grid",
    "merge_regions",
    "merged_ranges",
    "split_some_regions",
    "new_region",
    "set_regions",
    "target_ranges",
    "abit_subpage_error",
    "new_generator",
]

SPLIT_STREAM_SALT = 0x5EED5EED5EED5EED
FIELDS = ("start", "end", "nr", "bp", "last", "age")


def update_monitoring_result(nr, age, old_s: int, old_a: int, new_s: int, new_a: int):
    """Rescale counters when the intervals change (spec §9): returns (nr, bp, age).

    ``nr`` keeps its ratio to the maximum possible count; ``age`` (in aggregations)
    keeps its duration.  Nothing changes when any interval is 0.
    """
    nr = np.asarray(nr, np.int64)
    age = np.asarray(age, np.int64)
    if not (old_s and old_a and new_s and new_a):
        return nr.copy(), nr * 10000, age.copy()
    old_max = min(old_a // old_s, 2**32 - 1)
    new_max = min(new_a // new_s, 2**32 - 1)
    nr2 = (nr * 10000 // old_max) * new_max // 10000
    age2 = (age.astype(object) * old_a // new_a).astype(np.int64)
    return nr2, nr2 * 10000, age2


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------


class Monitor:
    """The kdamond main loop (spec §4) over recorded samples.

    Parameters
    ----------
    config : MonitorConfig
    targets : list of Target
    ops : the operations set (an :class:`tracedamon.engine.ops.Operations` or its name,
        ``"vaddr"``, ``"fvaddr"`` or ``"paddr"``; default fvaddr: the targets' ranges,
        read once)
    access : "perf" (histogram check, deterministic) or "abit" (accessed-bit emulation)
    rand_inject : optional sequence of ``rand_below`` results used before the generator
        (tests reproduce the spec's worked examples with it)
    max_fixed_regions : with fixed granularity, refuse (ConfigError) grids of more regions
        (at init or at an ops update); None = no limit
    folios : abit: the folios of pagemap snapshots
        (:class:`tracedamon.engine.folio.FolioModel`) the ops set's check uses, or None
        for 4 KiB pages
    """

    def __init__(
        self,
        config: MonitorConfig,
        targets: list[Target],
        *,
        ops: str | Operations = "fvaddr",
        access: str = "perf",
        rand_inject: Sequence[int] | None = None,
        max_fixed_regions: int | None = None,
        folios=None,
    ):
        if access == "abit" and config.min_region < PAGE_SIZE:
            raise abit_subpage_error(config.min_region)
        self.cfg = config
        self.targets = targets
        self.access = access
        self.ops = ops_sets.get(ops)
        self.profile = config.profile
        self.rng = new_generator(config.seed, self.profile.prng)
        # kernel-like single stream by default; "split": sampling and split draws come
        # from two generators, so switching the access check leaves the splits alone
        self.rng_split = (
            self.rng
            if config.rng_streams == "single"
            else new_generator(config.seed ^ SPLIT_STREAM_SALT, self.profile.prng)
        )
        self.inj = np.asarray(rand_inject if rand_inject is not None else [], dtype=np.int64)
        self.injpos = np.zeros(1, np.int64)
        # last-verdict cache [addr, accessed, folio_sz] (folio_sz stays a page without a
        # folio model)
        self.cache = np.array([0, 0, PAGE_SIZE], np.int64)
        # abit: folios from pagemap snapshots (tracedamon.engine.folio.FolioModel), or
        # None for 4 KiB pages
        self.folios = folios
        self.last_nr_regions = 0
        self.split_rotation = 0  # damon_split_some_regions' static counter
        self.sample_us = config.sample_us
        self.aggr_us = config.aggr_us
        self.aggr_samples = config.aggr_samples
        self.minsz = config.min_region
        self.maxsz = config.max_region or 0
        self.fixed = config.fixed_granularity
        self.max_fixed_regions = max_fixed_regions
        ntgt = len(targets)
        self.toff = np.zeros(ntgt + 1, np.int64)
        self.arr = {k: np.zeros(0, np.int64) for k in FIELDS}

    # -- region list plumbing --------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.toff[-1])

    def _rows_of(self, t: int) -> list[list]:
        lo, hi = int(self.toff[t]), int(self.toff[t + 1])
        return [[int(self.arr[k][i]) for k in FIELDS] for i in range(lo, hi)]

    def set_target_rows(self, per_target: list[list[list]]) -> None:
        counts = [len(r) for r in per_target]
        self.toff = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        flat = [row for rows in per_target for row in rows]
        mat = np.array(flat, dtype=np.int64).reshape(len(flat), 6)
        self.arr = {k: np.ascontiguousarray(mat[:, i]) for i, k in enumerate(FIELDS)}

    def regions(self, t: int | None = None) -> np.ndarray:
        """(n, 6) array of [start, end, nr, bp, last, age] rows (all targets, or one)."""
        lo, hi = (0, self.n) if t is None else (int(self.toff[t]), int(self.toff[t + 1]))
        return np.stack([self.arr[k][lo:hi] for k in FIELDS], axis=1)

    # -- limits ----------------------------------------------------------------------
    def region_sz_limit(self) -> int:
        total = int((self.arr["end"][: self.n] - self.arr["start"][: self.n]).sum())
        if self.cfg.min_nr_regions:
            total //= self.cfg.min_nr_regions
        return max(total, self.minsz)

    def merge_limits(self, sz_limit: int) -> np.ndarray:
        lim = sz_limit
        if self.fixed:
            lim = 0
        elif self.maxsz:
            lim = min(sz_limit, self.maxsz)
        return np.full(len(self.targets), lim, np.int64)

    def apply_min_nr_regions(self) -> int:
        """Split every region larger than the aligned size limit (apply mode, spec §8.2)."""
        lim = align_up(self.region_sz_limit(), self.minsz)
        if self.fixed or self.n == 0:
            return lim
        a = self.arr
        n = self.n
        size = a["end"][:n] - a["start"][:n]
        cnt = np.maximum(1, (size + lim - 1) // lim)
        if np.all(cnt == 1):
            return lim
        idx = np.repeat(np.arange(n), cnt)
        firsts = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(idx.size) - firsts
        new = {f: a[f][:n][idx] for f in FIELDS}
        new["start"] = a["start"][:n][idx] + k * lim
        new["end"] = np.minimum(new["start"] + lim, a["end"][:n][idx])
        cs = np.concatenate([[0], np.cumsum(cnt)])
        self.toff = cs[self.toff].astype(np.int64)
        self.arr = {f: np.ascontiguousarray(v) for f, v in new.items()}
        return lim

    # -- operations set hooks ----------------------------------------------------------
    def _check_grid(self, ranges) -> None:
        """Refuse a fixed-granularity grid of more than ``max_fixed_regions`` regions (this
        engine lists every region; the sparse one in ``fixed.py`` does not)."""
        if self.max_fixed_regions is None:
            return
        sz = self.maxsz
        n = sum((align_up(e, sz) - align_down(s, sz)) // sz for s, e in ranges)
        if n > self.max_fixed_regions:

            def msg(abit, perf, sizes):
                return (
                    f"fixed granularity over {n:,} regions: the engine for {abit} and "
                    "intervals auto-tuning lists every region (abit draws an address per "
                    "region per sample interval), and that is more than it handles "
                    f"({self.max_fixed_regions:,} regions); use {perf} without "
                    f"auto-tuning (its sparse engine handles any size) or larger {sizes}"
                )

            raise ConfigError(
                msg("access='abit'", "access='perf'", "min_region/max_region"),
                cli_message=msg("--access abit", "--access perf", "--min-region/--max-region"),
            )

    def _fit(self, rows: list[list], ranges) -> list[list]:
        """A target's regions fitted to ``ranges`` at an ops update: the fixed grid
        (surviving regions keep their state) or ``damon_set_regions``."""
        if self.fixed:
            self._check_grid(ranges)
            old = {r[0]: r for r in rows}
            return [
                old.get(int(s), new_region(s, s + self.maxsz))
                for s in fixed_grid(ranges, self.maxsz)
            ]
        return set_regions(rows, ranges, self.minsz, self.maxsz)

    def ops_init(self, time_ns: int) -> None:
        """The operations set's init: each target's first regions."""
        per_target = []
        for tg in self.targets:
            ranges = self.ops.init_ranges(tg, time_ns)
            rows: list[list] = []
            if ranges:
                if self.fixed:
                    self._check_grid(ranges)
                    rows = [new_region(s, s + self.maxsz) for s in fixed_grid(ranges, self.maxsz)]
                else:
                    rows = self.ops.init_regions(self, ranges)
            per_target.append(rows)
        self.set_target_rows(per_target)

    def ops_update(self, time_ns: int) -> None:
        """The operations set's update (none for sets without the hook)."""
        if self.ops.update is None:
            return
        per_target = []
        changed = False
        for t, tg in enumerate(self.targets):
            rows = self._rows_of(t)
            ranges = self.ops.update(tg, time_ns)
            if ranges:
                rows = self._fit(rows, ranges)
                changed = True
            per_target.append(rows)
        if changed:
            self.set_target_rows(per_target)

    # -- the loop ---------------------------------------------------------------------------
    def _max_thres(self) -> int:
        return self.aggr_us // max(self.sample_us, 1)

    def _len(self) -> int:
        return min(self.aggr_us // max(self.sample_us, 1), 2**32 - 1) or 1

    def _merge(self, max_nr: int, sz_limit: int) -> None:
        if self.n == 0:
            return
        a = self.arr
        n = merge_regions(
            a["start"],
            a["end"],
            a["nr"],
            a["bp"],
            a["last"],
            a["age"],
            self.toff,
            max_nr // 10,
            self.merge_limits(sz_limit),
            self.cfg.max_nr_regions,
            self._max_thres(),
            self.cfg.fix_age_once,
            self.cfg.age_zero_reset,
            self.cfg.merge_escalation and not self.fixed,
            self.profile.merge_thres_capped,
        )
        self.arr = {k: v[:n] for k, v in a.items()}

    def _split(self) -> None:
        n = self.n
        mx = self.cfg.max_nr_regions
        if self.profile.split_some and n > mx // 2:
            # mainline-2026: nothing at or above max_nr_regions, else one region in
            # every max / (max - n) from a rotating offset; last_nr_regions always set
            if n < mx and not self.fixed:
                step = mx // (mx - n)
                offset = self.split_rotation % step
                self.split_rotation += 1
                self._run_split(split_some_regions, 2 * n, step, offset)
            self.last_nr_regions = n
            return
        if n > mx // 2:
            return
        nr_subs = 2
        if self.last_nr_regions == n and n < self.cfg.max_nr_regions // 3:
            nr_subs = 3
        if not self.fixed and n:
            self._run_split(_split_regions, n * nr_subs, nr_subs)
        self.last_nr_regions = n

    def _run_split(self, kernel, cap: int, *how) -> None:
        """Run a split kernel (``how``: its own arguments after the target offsets) into
        fresh arrays of ``cap`` regions and keep what it wrote."""
        a = self.arr
        out = {k: np.empty(cap, np.int64) for k in FIELDS}
        ooff = np.empty_like(self.toff)
        w = kernel(
            a["start"],
            a["end"],
            a["nr"],
            a["bp"],
            a["last"],
            a["age"],
            self.toff,
            *how,
            self.minsz,
            self.maxsz,
            self.rng_split,
            self.cfg.fix_rand32,
            self.inj,
            self.injpos,
            out["start"],
            out["end"],
            out["nr"],
            out["bp"],
            out["last"],
            out["age"],
            ooff,
        )
        self.arr = {k: v[:w] for k, v in out.items()}
        self.toff = ooff

    def _tune(self, psi: int) -> tuple[int, int] | None:
        """Intervals auto-tuning (spec §9).  Returns (old, new) sample_us or None."""
        a = self.arr
        n = self.n
        size = (a["end"][:n] - a["start"][:n]).astype(object)
        max_ev = int((size * self.aggr_samples).sum()) if n else 0
        ev = int((size * a["nr"][:n].astype(object)).sum()) if n else 0
        target = max_ev * self.cfg.goal_access_bp // 10000 or 1
        score = ev * 10000 // target
        if score < 10000:
            adapt = 20000 - score
        elif score == 10000:
            return None
        elif score < 20000:
            adapt = 5000 + (20000 - score) // 2
        else:
            adapt = 5000
        if adapt == 10000:
            return None
        old_s, old_a = self.sample_us, self.aggr_us
        new_s = old_s * adapt // 10000
        new_s = max(self.cfg.goal_min_sample_us, min(self.cfg.goal_max_sample_us, new_s))
        new_a = new_s * self.aggr_samples
        nr, bp, age = update_monitoring_result(
            a["nr"][:n], a["age"][:n], old_s, old_a, new_s, new_a
        )
        a["nr"][:n], a["bp"][:n], a["age"][:n] = nr, bp, age
        self.sample_us, self.aggr_us = new_s, new_a
        return old_s, new_s

    def _note_coverage(self, cov: Coverage, snapshot_from: int) -> None:
        a = self.arr
        for t in range(len(self.targets)):
            lo, hi = int(self.toff[t]), int(self.toff[t + 1])
            cov.note(snapshot_from, t, merged_ranges(a["start"][lo:hi], a["end"][lo:hi]))

    def run(
        self,
        samples: AccessSamples,
        t0: int,
        t_last: int,
        *,
        accessed_only: bool = False,
        progress: Callable[[int], None] | None = None,
        sink=None,
        damos=None,
    ) -> HistoryArrays:
        """Replay the samples from ``t0``; stop after the last complete aggregation.

        An aggregation is complete when the last sample (time ``t_last``) lies at or
        after the start of its last sample interval, and (``kdamond_need_stop``) some
        target was valid at the start of each of its sample intervals: the loop ends at
        the first interval at which the operations set finds no valid target
        (:mod:`tracedamon.engine.lifetime`).  ``samples`` is an :class:`AccessSamples` or
        anything with its ``empty`` and ``window`` (a streamed source): the loop asks for
        one segment's samples at a time, in time order.

        ``sink``: called with each snapshot's rows as a tuple of column arrays in
        the :class:`HistoryArrays` order, as the snapshot is taken; the returned arrays then
        holds no rows (its counts, tuning events and coverage only).  Without a sink they
        hold every row.

        ``damos``: an :class:`~tracedamon.engine.damos.inloop.InLoop`, stepped where the
        kernel calls ``kdamond_apply_schemes`` (see there); it may replace the regions."""
        cfg = self.cfg
        s = max(self.sample_us, 1)
        ck = _Clock(
            S=self.sample_us * 1000,
            s=s,
            next_aggr=self.aggr_us // s,
            next_ops=cfg.update_us // s,
            next_tune=(self.aggr_us // s) * cfg.goal_aggrs,
            tbase=t0,
        )
        self.ops_init(t0)
        cov = Coverage(len(self.targets))
        self._note_coverage(cov, 0)
        self.sz_limit = (
            self.region_sz_limit()
            if cfg.min_nr_regions_mode == "legacy"
            else self.apply_min_nr_regions()
        )
        chunks: list[tuple] = []
        emit = sink if sink is not None else chunks.append
        self.tune_events = []
        stamp = np.full(self.n, -1, np.int64)
        stop_ns = stop_time(self.ops, self.targets)
        while True:
            local_aggr, local_ops = ck.next_aggr, ck.next_ops
            last_iv_start = ck.tbase + (local_aggr - ck.psibase - 1) * ck.S
            if t_last < last_iv_start or samples.empty:
                break
            if need_stop(self.ops, self.targets, ck.at(ck.psi)):
                break  # kdamond_need_stop: no target is valid any more
            seg_end = self._segment_end(ck, local_aggr, local_ops, damos, stop_ns)
            stamp = self._check_segment(samples, ck, seg_end, stamp)
            ck.psi = seg_end
            if progress is not None:
                progress(ck.psi)
            ck.s = max(self.sample_us, 1)
            if ck.psi >= local_aggr:
                self._aggregate(ck, local_aggr, emit, accessed_only, damos)
            elif damos is not None and ck.psi >= damos.next_due():  # between aggregations
                left = (local_aggr - ck.psi) * 10000 // max(self.aggr_us // ck.s, 1)
                damos.step(self, ck.psi, ck.at(ck.psi), ck.snap, left)
            if ck.psi >= local_ops:
                ck.next_ops = local_ops + cfg.update_us // ck.s
                self.ops_update(ck.at(ck.psi))
                self._note_coverage(cov, ck.snap)
                if cfg.min_nr_regions_mode == "legacy":
                    self.sz_limit = self.region_sz_limit()
        return HistoryArrays.from_chunks(chunks, ck.snap, self.tune_events, cov.sorted(ck.snap))

    def _segment_end(self, ck: "_Clock", local_aggr: int, local_ops: int, damos, stop_ns):
        """The end of the run of sample intervals from ``ck.psi`` in which nothing but
        access checks happens: the next aggregation, ops update, scheme application or
        ``kdamond_need_stop`` check that can stop the loop."""
        seg_end = min(local_aggr, max(local_ops, ck.psi + 1))
        if damos is not None:
            seg_end = min(seg_end, max(damos.next_due(), ck.psi + 1))
        if stop_ns is not None:
            stop_q = first_interval_from(stop_ns, ck.tbase, ck.psibase, ck.S)
            seg_end = min(seg_end, max(stop_q, ck.psi + 1))
        return seg_end

    def _check_segment(self, samples, ck: "_Clock", seg_end: int, stamp: np.ndarray):
        """prepare_access_checks and check_accesses over the sample intervals
        ``ck.psi .. seg_end``, and the ``nr_accesses_bp`` moving sum advanced over them.
        Returns the per-region stamp of the last counted interval."""
        k = seg_end - ck.psi
        t_from = ck.at(ck.psi)
        window = samples.window(t_from, ck.at(seg_end))
        a = self.arr
        nr0 = a["nr"].copy()
        if stamp.size != self.n:
            stamp = np.full(self.n, -1, np.int64)
        prepared = self.ops.prepare_access_checks(self, window, k, t_from, ck.S)
        self.ops.check_accesses(self, prepared, k, stamp, ck.tbase, ck.S, ck.psibase)
        # lazy nr_accesses_bp: k moving-sum steps in closed form (mainline-2026 has
        # no nr_accesses_bp: its on-demand moving sum is nr_accesses at a snapshot)
        ln = self._len()
        if self.profile.mvsum:
            a["bp"] = a["nr"] * 10000
        else:
            a["bp"] += -k * (a["last"] * 10000 // ln) + 10000 * (a["nr"] - nr0)
        return stamp

    def _aggregate(self, ck: "_Clock", local_aggr: int, emit, accessed_only: bool, damos):
        """The end of an aggregation (spec §4.2): merge, [apply-mode split], schemes,
        [intervals tuning], the snapshot (``damon_aggregated``), reset, split."""
        cfg = self.cfg
        a = self.arr
        max_nr = int(a["nr"].max()) if self.n else 0
        self._merge(max_nr, self.sz_limit)
        if cfg.min_nr_regions_mode == "apply":
            self.sz_limit = self.apply_min_nr_regions()
        if damos is not None:  # kdamond_apply_schemes: after the merge
            damos.step(self, ck.psi, ck.at(ck.psi), ck.snap, 0)
        if cfg.goal_aggrs and ck.psi >= ck.next_tune:
            ck.next_tune += self.aggr_samples * cfg.goal_aggrs
            tuned = self._tune(ck.psi)
            if tuned is not None:
                ck.tbase, ck.psibase = ck.at(ck.psi), ck.psi
                ck.S = self.sample_us * 1000
                ck.s = max(self.sample_us, 1)
                ck.next_ops = ck.psi + cfg.update_us // ck.s  # quirk Q8
                self.tune_events.append((ck.psi, ck.tbase, tuned[0], tuned[1]))
        ck.next_aggr = local_aggr + self.aggr_us // ck.s
        emit(self._snapshot(ck.snap, ck.at(ck.psi), accessed_only))
        ck.snap += 1
        a = self.arr
        a["bp"] = a["nr"] * 10000  # reset: kernel resyncs (Q4)
        a["last"] = a["nr"].copy()
        a["nr"] = np.zeros(self.n, np.int64)
        self._split()

    def _snapshot(self, snap: int, t_end: int, accessed_only: bool) -> tuple:
        """The regions as ``damon_aggregated`` reports them (every target's, valid or not:
        ``kdamond_reset_aggregated`` walks them all), in :class:`HistoryArrays` order."""
        a = self.arr
        tgt = np.repeat(np.arange(len(self.targets), dtype=np.int64), np.diff(self.toff))
        sel = slice(None) if not accessed_only else a["nr"] > 0
        cols = (a["start"], a["end"], a["nr"], a["age"], a["bp"], tgt)
        st_, en_, nr_, ag_, bp_, tg_ = (c[sel] for c in cols)
        m = st_.size
        return (
            np.full(m, snap, np.int64),
            np.full(m, t_end, np.int64),
            tg_,
            st_.copy(),
            en_.copy(),
            nr_.copy(),
            ag_.copy(),
            bp_.copy(),
        )


@dataclass
class _Clock:
    """Where :meth:`Monitor.run` is: ``psi`` sample intervals passed; interval ``q`` starts
    at :meth:`at` ``(q)`` (``S`` ns each since interval ``psibase``, which started at
    ``tbase``: intervals tuning moves them); ``s`` is ``max(sample_us, 1)`` as the loop
    last read it; ``snap`` counts the snapshots taken."""

    S: int
    s: int
    next_aggr: int
    next_ops: int
    next_tune: int
    tbase: int
    psi: int = 0
    psibase: int = 0
    snap: int = 0

    def at(self, q: int) -> int:
        return self.tbase + (q - self.psibase) * self.S
