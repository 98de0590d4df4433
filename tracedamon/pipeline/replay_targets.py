"""The replay's targets, one builder per operations set: what the user sets up in the
kernel (:func:`tracedamon.pipeline.replay.replay` calls ``TARGETS[ops](state, pids,
ranges)``).  Each builder fills the state's ``tpids``, ``targets`` and ``target_meta``
(vaddr also ``timelines``: the mappings its regions follow)."""

from __future__ import annotations

import numpy as np

from ..engine.address import check_ranges
from ..engine.core import Target
from ..engine.ops.fvaddr import aligned_union, normalize_ranges
from ..engine.ops.paddr import default_range
from ..engine.ops.vaddr import VmaTimeline
from ..errors import ConfigError, InputError
from .replay_state import ReplayState
from .replay_stream import access_batches


def _paddr_targets(r: ReplayState, pids, ranges) -> None:
    """One target over physical memory: the given ranges, else the trace's System RAM
    (see :func:`tracedamon.engine.ops.paddr.default_range`)."""
    r.tpids = [None]
    if ranges:
        rg, rsrc = normalize_ranges(ranges), "--range"
    else:
        try:
            rg, rsrc = default_range(r.meta, np.zeros(0, np.int64), r.config.profile.paddr_default)
        except InputError:
            # the span of the sampled physical addresses: their min and max suffice
            ext = []
            for tb in r.selected(["time_ns", "pid", "event", "addr", "phys_addr"]):
                a = r.physical_of(tb)[1]
                a = a[a > 0]
                if a.size:
                    ext += [a.min(), a.max()]
            r.n_untrans = 0
            rg, rsrc = default_range(
                r.meta, np.array(ext, np.int64), r.config.profile.paddr_default
            )
    rg = aligned_union(check_ranges(rg, "paddr range"), r.config.min_region)
    r.targets = [Target(lambda t, rg=rg: rg, pid=None)]
    r.target_meta.append({"target": 0, "pid": None, "ranges": rg.tolist(), "ranges_source": rsrc})
    if ranges:
        _warn_ranges_without_samples(r, rg)


def _fvaddr_targets(r: ReplayState, pids, ranges) -> None:
    """The given ranges, of each given pid (of every process without pids)."""
    if not ranges:
        raise ConfigError(
            "fvaddr needs at least one range (ranges=['START-END'])",
            cli_message="fvaddr needs at least one --range START-END",
        )
    rg = aligned_union(normalize_ranges(ranges), r.config.min_region)
    r.tpids = list(pids) if pids else [None]
    r.targets = [Target(lambda t, rg=rg: rg, pid=p) for p in r.tpids]
    for i, p in enumerate(r.tpids):
        r.target_meta.append(
            {"target": i, "pid": p, "ranges": rg.tolist(), "ranges_source": "--range"}
        )
    _warn_ranges_without_samples(r, rg)


def _warn_ranges_without_samples(r: ReplayState, rg: np.ndarray) -> None:
    """Warn when no sample of the targets lies in the fixed ranges: every region of the
    history then stays idle, which is a wrong --range far more often than a finding.
    Samples whose address must first be translated through pagemap snapshots are not
    looked at (the translation is the replay's own work)."""
    if r.translator is not None:
        return
    starts, ends = rg[:, 0].astype(np.uint64), rg[:, 1].astype(np.uint64)
    n = hit = 0
    lo = hi = None
    # the samples the targets see, as the run reads them (an in-memory source's arrays
    # are made once and shared with the run; a streamed one stops at the first hit)
    for _, _, addr in access_batches(r)():
        addr = addr.astype(np.uint64)
        if not addr.size:
            continue
        n += addr.size
        lo = min(lo, int(addr.min())) if lo is not None else int(addr.min())
        hi = max(hi, int(addr.max())) if hi is not None else int(addr.max())
        i = np.searchsorted(starts, addr, side="right") - 1
        hit += int(((i >= 0) & (addr < ends[np.maximum(i, 0)])).sum())
        if hit:
            return
    if n:
        shown = ", ".join(f"{int(s_):#x}-{int(e_):#x}" for s_, e_ in rg)
        whose = "" if r.tpids == [None] else f" of pid {', '.join(map(str, r.tpids))}"
        r.warnings.append(
            f"--range {shown}: no sample lies in it (the {n:,} samples{whose} with "
            f"addresses lie in {lo:#x}-{hi + 1:#x}), so every region of the history stays idle"
        )


def _vaddr_targets(r: ReplayState, pids, ranges) -> None:
    """Processes whose three regions follow their mappings (the trace's maps or mmaps);
    without pids, the process with the most samples with addresses."""
    if ranges:
        msg = (
            "{} applies to fvaddr and paddr; vaddr follows the process's "
            "mappings (use {} for fixed ranges)"
        )
        raise ConfigError(
            msg.format("ranges", "ops='fvaddr'"), cli_message=msg.format("--range", "--ops fvaddr")
        )
    if not pids:
        cand = {p_: q[r.use_pid] for p_, q in r.per_pid.items() if p_ is not None and q[r.use_pid]}
        if not cand:
            msg = f"none of the trace's {r.what} with addresses carries a pid; give "
            raise InputError(msg + "pids=[PID]", cli_message=msg + "--pid PID")
        most = max(cand.values())
        pids = [min(p_ for p_, n in cand.items() if n == most)]
        r.warnings.append(
            f"no --pid given: monitoring pid {pids[0]}, the process with "
            "the most samples with addresses"
        )
    r.tpids = list(pids)
    for i, p in enumerate(r.tpids):
        tl = VmaTimeline(p, r.mm, r.mp, arch=r.meta.get("arch"))
        r.timelines.append(tl)
        r.targets.append(Target(tl.ranges_at, pid=p))
        r.target_meta.append({"target": i, "pid": p, "vma_source": tl.source})
        if tl.dropped:
            # the gate area / kernel half: mapped in the trace, never in the mm
            r.target_meta[-1]["mappings_left_out"] = [
                {"start": s_, "end": e_, "name": n_} for s_, e_, n_ in tl.dropped
            ]
    no_vmas = [p for p, tl in zip(r.tpids, r.timelines) if tl.source == "none"]
    if no_vmas:

        def msg(fixed):
            return (
                f"vaddr follows a process's mappings, and the trace has none of "
                f"pid {', '.join(map(str, no_vmas))} (no perf MMAP records: "
                "`perf script` text shows them only with --show-mmap-events; no "
                f"/proc/PID/maps snapshots): replay fixed ranges with {fixed}, or "
                "ingest the perf.data"
            )

        raise InputError(
            msg("ops='fvaddr', ranges=['START-END']"),
            cli_message=msg("--ops fvaddr --range START-END"),
        )


#: the target builder of each operations set (what the user sets up in the kernel)
TARGETS = {"paddr": _paddr_targets, "fvaddr": _fvaddr_targets, "vaddr": _vaddr_targets}
