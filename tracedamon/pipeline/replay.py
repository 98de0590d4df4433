"""Replay: a trace directory's samples → the region history DAMON would have produced.

``tracedamon.replay(trace_dir_or_samples, **options)`` is the notebook entry
point; ``tracedamon replay`` is a thin layer over it.  This module does the
I/O and the bookkeeping (reading tables, choosing targets and the access
source, the time grid, the output's metadata); the monitor itself is
:mod:`tracedamon.engine.core` (and :mod:`tracedamon.engine.fixed` for
fixed-granularity replays), with the operations set of :mod:`tracedamon.engine.ops`.

Time grid.  Sample interval ``k`` covers ``[t0 + k*S, t0 + (k+1)*S)`` where
``t0`` is ``start_ns`` or else the time of the first sample in the trace (any
pid, any event); aggregation ``n`` covers sample intervals ``[n*N, (n+1)*N)``
with ``N = aggr_us // sample_us``; only complete aggregations are emitted and
the replay ends with the interval of the trace's last sample.  A snapshot's
``time_ns`` is the end of its aggregation.  (With intervals auto-tuning the
interval length changes at tuning points; the grid continues from there.)

``start_ns="auto"`` (``--start auto``) helps vaddr on ``perf record -- cmd`` traces:
at the first sample the process has too few mappings for the kernel's
three-regions rule, so (like the kernel) the target would have no regions until
the first ops update.  ``auto`` starts instead at the time from which the
target's mappings give three regions covering the most of its samples until the
first ops update (:func:`tracedamon.engine.ops.vaddr.auto_start`); without it the
warning names that time.  The metadata's ``t0_auto`` records the choice and why.

Memory.  A trace directory's samples are streamed: a first pass over the narrow
columns (time_ns, pid, event) gives the time span, the event names and the
samples per pid; the monitor then gets the samples batch by batch (one Parquet
reader per row group, ``BATCH_ROWS`` rows a batch, :mod:`tracedamon.pipeline.samples`)
through :class:`tracedamon.engine.access.StreamedSamples`, so a replay holds a batch
plus one segment's samples whatever the trace's length (``--start auto`` adds two
cheap passes, see :func:`_auto_start`).  A samples file not in time order, and
perf-phys translation for vaddr/fvaddr, read the whole table instead.

Fixed granularity writes every region of every snapshot unless that exceeds
``max_rows``; then only regions with accesses are written (``accessed_only``), with
a warning and ``accessed_only_reason`` in the metadata.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc

from .. import __version__
from ..engine import ops as ops_sets
from ..engine.access import ACCESS, StreamedSamples
from ..engine.address import check_ranges, engine_addresses
from ..engine.checks import abit_subpage_error
from ..engine.config import MonitorConfig
from ..engine.core import HistoryArrays, Monitor, Target
from ..engine.fixed import FixedMonitor, expected_snapshots, grid_regions
from ..engine.folio import FolioModel
from ..engine.ops.base import Operations
from ..engine.ops.fvaddr import aligned_union, normalize_ranges
from ..engine.ops.paddr import default_range
from ..engine.ops.vaddr import VmaTimeline, auto_start, samples_covered
from ..engine.prng import GENERATOR as PRNG_GENERATOR
from ..engine.rng import GENERATOR
from ..engine.translate import Translator
from ..errors import ConfigError, InputError
from ..store.history import HistoryWriter
from ..store.trace import open_trace
from . import region_history
from .exits import ended_early, trace_tasks, with_exits
from .damos_replay import damos_result, start_damos
from .region_history import RegionHistory, history_table
from .samples import (
    SAMPLE_COLUMNS,
    SampleSource,
    as_table,
    choose_events,
    filter_events,
    load_source,
    physical_samples,
    scan_samples,
    translated_samples,
    virtual_samples,
)

OPS = ops_sets.NAMES
FOLIOS = ("auto", "4k")
DEFAULT_OUTPUT = "replay.parquet"
MAX_ROWS = 20_000_000  # default cap on rows written with every region listed
DENSE_FIXED_MAX_REGIONS = 1 << 22  # fixed granularity through the dense engine (abit)

__all__ = [
    "DEFAULT_OUTPUT",
    "MAX_ROWS",
    "OPS",
    "RegionHistory",
    "SAMPLE_COLUMNS",
    "every_stride",
    "history_table",
    "replay",
]


@dataclass
class _Replay:
    """What one replay found out about its input, step by step (see :func:`replay`)."""

    config: MonitorConfig
    ops: Operations
    access: str
    src: SampleSource
    meta: dict
    scan: dict
    chosen: list
    mm: object = None
    mp: object = None
    pm: object = None
    warnings: list = field(default_factory=list)
    per_pid: dict = field(default_factory=dict)
    translator: Translator | None = None
    address_source: str = ""
    use_pid: int = 1
    n_untrans: int = 0
    tpids: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    target_meta: list = field(default_factory=list)
    timelines: list = field(default_factory=list)

    @property
    def physical(self) -> bool:
        """The targets see physical addresses (paddr)."""
        return self.ops.space == "physical"

    @property
    def what(self) -> str:
        n_all = sum(q[0] for q in self.per_pid.values())
        return f"{n_all:,} samples" + (
            f" (events: {', '.join(self.chosen)})" if self.chosen else ""
        )

    def selected(self, columns=SAMPLE_COLUMNS):
        """The samples' ``columns`` of the chosen events, table by table."""
        for tb in self.src.tables(columns):
            yield filter_events(tb, self.chosen, self.scan["names"])

    def physical_of(self, tb):
        """(time_ns, phys_addr) of the samples: recorded, or translated by the pagemap."""
        if self.translator is None:
            return physical_samples(tb)
        s_ = tb.filter(pc.and_(pc.is_valid(tb.column("addr")), pc.is_valid(tb.column("pid"))))
        t_ = s_.column("time_ns").to_numpy(zero_copy_only=False).astype(np.int64)
        v_ = s_.column("addr").to_numpy(zero_copy_only=False).astype(np.uint64)
        p_ = s_.column("pid").to_numpy(zero_copy_only=False).astype(np.int64)
        ph = self.translator.virt_to_phys_present(p_, v_, t_)
        ok = ph != 0
        self.n_untrans += int((~ok).sum())
        a_, keep = engine_addresses(ph[ok])
        t_ = t_[ok]
        return (t_ if keep is None else t_[keep]), a_

    def convert(self, tb):
        """(time_ns, target, addr) of a table of samples, as the targets see them."""
        if self.physical:
            pt, pa_ = self.physical_of(tb)
            return pt, np.zeros(pt.size, np.int64), pa_
        if self.access == "perf-phys":
            t_, g_, a_, _ = translated_samples(tb, self.tpids, self.translator)
            return t_, g_, a_
        return virtual_samples(tb, self.tpids)


def replay(
    source,
    *,
    ops: str = "vaddr",
    pids=None,
    ranges=None,
    access: str = "perf",
    events=None,
    pagemap=None,
    start_ns: int | str | None = None,
    accessed_only: bool = False,
    max_rows: int | None = MAX_ROWS,
    mmaps=None,
    maps=None,
    tasks=None,
    config: MonitorConfig | None = None,
    fixed_engine: bool = True,
    progress=None,
    output: str | os.PathLike | None = None,
    force: bool = False,
    trace_meta: dict | None = None,
    folios: str = "auto",
    damos=None,
    **params,
) -> RegionHistory:
    """Run the DAMON monitor over recorded samples and return the region history.

    Parameters
    ----------
    source : trace directory path (or ``Trace``), or a samples table (Arrow table,
        pandas DataFrame or dict of columns: time_ns, pid, event, addr, phys_addr)
    ops : "vaddr" (targets are pids; regions follow their mappings), "fvaddr"
        (fixed ``ranges``, optionally of given ``pids``) or "paddr" (physical memory)
    pids : list of pids (vaddr default: the process with the most samples)
    ranges : list of "START-END" strings or (start, end) pairs (fvaddr, paddr)
    access : "perf" (the samples' virtual addresses; paddr: at the frames the pagemap
        maps them to), "perf-phys" (their physical addresses; vaddr/fvaddr: translated
        back through the pagemap) or "abit" (the accessed-bit check emulated)
    events : event names whose samples count (default: all; several are OR'ed)
    pagemap : a trace directory (or pagemap DataFrame) with pagemap snapshots, for
        perf-phys with vaddr/fvaddr and for paddr from virtual samples (default: the
        trace's own pagemap table)
    start_ns : t0 of the time grid (default: the first sample of the trace), or
        ``"auto"``: for vaddr, the time from which the targets' mappings give three
        regions that cover the most of their samples until the first ops update (see
        :func:`tracedamon.engine.ops.vaddr.auto_start`; the choice and why go into the
        metadata as ``t0_auto``); for fvaddr and paddr, the first sample
    accessed_only : write only regions with nr_accesses > 0
    max_rows : fixed granularity writes every region of every snapshot; when that would
        exceed ``max_rows`` rows (default 20 M) the replay writes only regions with
        accesses instead, with a warning and ``accessed_only_reason`` in the metadata
        (the result equals ``accessed_only=True``).  ``None``: no limit
    folios : the accessed-bit check's unit (abit only): "auto" = the folios of the
        pagemap snapshots (a THP or hugetlb page is checked as the kernel checks its
        folio, see :mod:`tracedamon.engine.folio`) when the snapshots show large folios,
        else 4 KiB pages; "4k" = 4 KiB pages always.  The metadata's ``folio_model``
        says which was used
    output : write the history to this Parquet file as the replay runs, snapshot by
        snapshot (memory stays bounded whatever the number of rows; the file appears
        whole or not at all); the returned history then reads its rows from the file
    tasks : for a samples table, the ``tasks`` table of its trace (COMM/FORK/EXIT rows):
        a process target's exits come from it (a trace directory's own by default; see
        :mod:`tracedamon.pipeline.exits`)
    trace_meta : for a samples table, the metadata of the trace it came from (the trace
        directory's ``meta.json``, :attr:`Trace.meta`): paddr without ``ranges`` takes its
        System RAM / MEM_TOPOLOGY from it, as a replay of the trace directory does
    damos : ``tracedamon.pipeline.damos_replay.in_loop(schemes, ...)``: DAMOS schemes run
        inside the loop at the kernel's place; ``.damos`` of the result is then their
        DamosResult, written beside ``output`` as ``X.damos/``
    config : a MonitorConfig; or give its fields as keyword arguments
        (sample_us=5000, aggr_us=100000, update_us=60000000, min_nr_regions=10,
        max_nr_regions=1000, min_region=4096, max_region=None, seed=0,
        min_nr_regions_mode=None (the kernel profile's: legacy for released kernels),
        kernel="released" (or "released-nofix", "mainline-2026": see
        :mod:`tracedamon.engine.profiles`), goal_*, fix_*)

    Raises InputError (ConfigError for contradictory options) when the replay has
    nothing to do, with the reason: no sample of the ``pids``, no sample with the address
    the access check needs, a trace shorter than one aggregation, no mapping of a vaddr
    process, no region in any snapshot.
    """
    config = _checked_options(ops, access, max_rows, config, params, folios)
    pids = [int(p) for p in (pids or [])]
    src, mm, mp, pm, meta, prov = _open(source, mmaps, maps, pagemap, trace_meta)
    opset = ops_sets.get(ops)
    if opset.space == "physical" and pids:
        why = f"does not apply to {ops} (physical memory has no process)"
        raise ConfigError(f"pids={pids} {why}", cli_message=f"--pid {why}")
    # which address of a sample the targets see: the virtual one (vaddr/fvaddr with perf
    # or abit), the physical one (paddr with perf-phys), or the other one translated
    # through pagemap snapshots (vaddr/fvaddr with perf-phys; paddr with perf, and paddr
    # with abit when the samples carry no physical address)
    want_phys = access == "perf-phys" or (opset.space == "physical" and access == "abit")
    # pass 1, narrow columns: time span, event names, samples (with addresses) per pid
    scan = scan_samples(src, phys=want_phys)
    if scan["t_first"] is None:
        raise InputError("the trace has no timed samples to replay")
    t_first, t_last = scan["t_first"], scan["t_last"]
    start_ns, auto = _start_option(start_ns)
    t0 = t_first if (start_ns in (None, "first") or auto) else int(start_ns)
    r = _Replay(
        config,
        opset,
        access,
        src,
        meta,
        scan,
        choose_events(scan["names"], list(events or [])),
        mm=mm,
        mp=mp,
        pm=pm,
    )
    _count_per_pid(r)
    _choose_address_source(r)
    _check_pids(r, pids)
    if not scan["ordered"] or (access == "perf-phys" and not r.physical):
        # streaming needs time order; the pagemap translation works on the whole table
        src.materialize()
    TARGETS[opset.name](r, pids, ranges)
    r.targets = with_exits(r.targets, r.target_meta, trace_tasks(r.src, tasks))
    access_batches = _access_batches(r)
    t0, t0_auto, t0_source = _start(r, access_batches, t0, auto, start_ns)
    _check_span(config, t0, t_last, t0_source)
    acc = StreamedSamples(access_batches(), t0)
    folio_model = _folio_model(r, access, folios)
    in_loop = start_damos(damos, config, ops, r.targets, pm, source, output, force)
    writer = (
        HistoryWriter(
            output,
            force=force,
            row_group_rows=region_history.ROW_GROUP_ROWS,
            inputs=[
                source if isinstance(source, (str, os.PathLike)) else None,
                pagemap if isinstance(pagemap, (str, os.PathLike)) else None,
            ],
        )
        if output is not None
        else None
    )
    try:
        hist, metadata = _run(
            r,
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            max_rows=max_rows,
            fixed_engine=fixed_engine,
            progress=progress,
            writer=writer,
            folios=folio_model,
            in_loop=in_loop,
        )
        used = acc.drain()  # the samples from t0 on (the rest of the stream)
        _check_result(r, hist, used, t0, t_last, t0_source)
        metadata.update(
            {
                "ops": opset.name,
                "access": access,
                "events": r.chosen,
                "targets": r.target_meta,
                "t0_ns": t0,
                "t0_source": t0_source,
                "address_source": r.address_source,
                "t0_auto": t0_auto,
                "t_last_ns": t_last,
                "samples_used": used,
                "input": prov,
                "warnings": r.warnings,
            }
        )
        damos_res = in_loop and damos_result(in_loop, metadata, t0, hist, output, force)
        if writer is not None:
            return RegionHistory(None, metadata, writer.close(metadata), damos=damos_res)
    except BaseException as e:
        if writer is None:
            raise
        raise writer.abort(e) from None
    return RegionHistory(history_table(hist, [t.pid for t in r.targets]), metadata, damos=damos_res)


def _folio_model(r: _Replay, access: str, folios: str):
    """The folios of the pagemap snapshots for the abit check, or None (4 KiB pages)."""
    if access == "abit" and folios == "auto" and r.pm is not None and len(r.pm):
        model = FolioModel(r.pm, [t.pid for t in r.targets], r.physical)
        if model.large:  # no large folio: 4 KiB pages, as without
            return model
    return None


def _checked_options(ops, access, max_rows, config, params, folios) -> MonitorConfig:
    """The MonitorConfig of the replay; refuses unknown ops or access modes."""
    if config is None:
        config = MonitorConfig(**params)
    elif params:
        config = config.replace(**params)
    ops_sets.get(ops)
    if access not in ACCESS:
        raise ConfigError(
            f"access must be one of {', '.join(ACCESS)}, not {access!r}",
            cli_message=f"--access must be one of {', '.join(ACCESS)}, not {access!r}",
        )
    if access == "abit" and config.subpage:
        raise abit_subpage_error(config.min_region)
    if folios not in FOLIOS:
        raise ConfigError(
            f"folios must be one of {', '.join(FOLIOS)}, not {folios!r}",
            cli_message=f"--folios must be one of {', '.join(FOLIOS)}, not {folios!r}",
        )
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0
    ):
        raise ConfigError(
            f"max_rows must be a non-negative integer, not {max_rows!r}",
            cli_message=f"--max-rows must be a non-negative integer, not {max_rows!r}",
        )
    return config


def _open(source, mmaps, maps, pagemap, trace_meta):
    """(samples source, mmaps df, maps df, pagemap df|None, trace meta, provenance)."""
    pm_in = None
    if pagemap is not None and not isinstance(pagemap, (str, os.PathLike)):
        pm_in = as_table(pagemap).to_pandas()
    src, mm, mp, pm, meta, prov = load_source(source, mmaps, maps, pm_in, trace_meta)
    if pagemap is not None and isinstance(pagemap, (str, os.PathLike)):
        ptr = open_trace(pagemap)
        if not ptr.has("pagemap"):
            raise InputError(f"{pagemap}: has no pagemap table")
        pm = ptr.df("pagemap")
    return src, mm, mp, pm, meta, prov


def _start_option(start_ns):
    """(start_ns as an int or None, auto) from the ``start_ns`` option."""
    if start_ns is None:
        return None, None  # the default: see _start
    if isinstance(start_ns, str) and start_ns.strip().lower() == "first":
        return "first", False
    auto = isinstance(start_ns, str) and start_ns.strip().lower() == "auto"
    if isinstance(start_ns, str) and not auto:
        try:
            start_ns = int(start_ns.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(
                f"start_ns: {start_ns!r} is not a time in ns, 'auto' or 'first'",
                cli_message=f"--start: {start_ns!r} is not a time in ns, 'auto' or 'first'",
            ) from None
    return start_ns, auto


def _count_per_pid(r: _Replay) -> None:
    """Samples per pid of the chosen events: all, with a virtual, with a physical address
    (and the warning about samples whose pid is a thread id)."""
    nulls = r.src.null_count("pid")[0] if r.src.pid_from_tid else 0
    if nulls:
        r.warnings.append(
            f"{nulls} samples carry a thread id but no pid (perf script text printed "
            "without the pid field shows the tid alone): "
            + (
                "the trace's COMM/FORK records give the pid of the threads they know, "
                if r.src.knows_threads
                else ""
            )
            + "a thread id stands for its pid otherwise (exact for single-threaded "
            "processes; print the pid field with perf script -F pid,tid,... to be sure)"
        )
    names = r.scan["names"]
    for (e, p_), c in r.scan["counts"].items():
        if r.chosen == names or e in r.chosen:
            q = r.per_pid.setdefault(p_, [0, 0, 0])
            for k in range(3):
                q[k] += c[k]


def _choose_address_source(r: _Replay) -> None:
    """Which address of the samples the targets see, and the pagemap translator when
    that address must be translated; refuses a trace whose samples lack it."""
    physical, access, pm = r.physical, r.access, r.pm
    n_virt = sum(q[1] for q in r.per_pid.values())
    n_phys = sum(q[2] for q in r.per_pid.values())
    regions_hint = (
        "; its regions table is a DAMON trace (DAMON's own result), not samples to replay"
        if r.meta.get("tables", {}).get("regions")
        else ""
    )

    def no_addresses(kind: str, how: str, cli_how: str | None = None):
        def msg(h):
            return (
                f"none of the trace's {r.what} carries a {kind} address, so the replay "
                f"has nothing to count; {h}{regions_hint}"
            )

        return InputError(msg(how), cli_message=msg(cli_how or how))

    if (
        (physical and access == "perf")
        or (not physical and access == "perf-phys")
        or (physical and access == "abit" and n_phys == 0 and pm is not None and len(pm))
    ):
        if pm is None or len(pm) == 0:
            if physical:
                msg = (
                    "paddr with {perf} counts the samples' virtual addresses at the "
                    "physical frames they map to, which needs pagemap snapshots: give "
                    "{pagemap} or ingest them into the trace directory; for samples "
                    "with physical addresses use {phys}"
                )
                raise ConfigError(
                    msg.format(
                        perf="access='perf'", pagemap="pagemap=DIR", phys="access='perf-phys'"
                    ),
                    cli_message=msg.format(
                        perf="--access perf", pagemap="--pagemap DIR", phys="--access perf-phys"
                    ),
                )
            msg = (
                "perf-phys with vaddr/fvaddr needs pagemap snapshots: give {} or ingest "
                "them into the trace directory"
            )
            raise InputError(msg.format("pagemap=DIR"), cli_message=msg.format("--pagemap DIR"))
        r.translator = Translator.from_tables(pm)
    r.address_source = (
        "virtual"
        if not physical and access != "perf-phys"
        else "physical"
        if r.translator is None
        else "physical, translated to virtual through pagemap snapshots"
        if not physical
        else "virtual, translated to physical through pagemap snapshots"
    )
    if r.address_source.startswith("virtual") and n_virt == 0:
        raise no_addresses(
            "data (virtual)",
            "record with `perf mem record`, or `perf record -d` (software events: page faults)",
        )
    if r.address_source.startswith("physical") and n_phys == 0:
        how = "record with `perf mem record --phys-data` (or `perf record --phys-data`)"
        alt = ", or replay the virtual addresses with {} and pagemap snapshots ({})"
        raise no_addresses(
            "physical",
            how + (alt.format("access='perf'", "pagemap=DIR") if physical else ""),
            how + (alt.format("--access perf", "--pagemap DIR") if physical else ""),
        )
    r.use_pid = 1 if r.address_source.startswith("virtual") else 2


def _pid_list(r: _Replay) -> str:
    """The processes with the most samples with addresses, for messages."""
    top = sorted(
        ((q[r.use_pid], p_) for p_, q in r.per_pid.items() if p_ is not None and q[r.use_pid]),
        reverse=True,
    )[:5]
    return ", ".join(f"{p_} ({n:,})" for n, p_ in top) or "none"


def _check_pids(r: _Replay, pids: list[int]) -> None:
    """Refuse ``pids`` none of which has a sample with an address; warn for some."""
    if not pids or (not r.physical and r.access == "perf-phys"):
        # (perf-phys finds the process of a frame in the pagemap, not in the sample)
        return

    def samples_of(p) -> str:
        q = r.per_pid.get(p)
        return (
            f"the trace has no sample of pid {p}"
            if q is None
            else f"pid {p} has {q[0]:,} samples, none with an address"
        )

    missing = [p for p in pids if not r.per_pid.get(p, [0, 0, 0])[r.use_pid]]
    if len(missing) == len(pids):

        def msg(given):
            return (
                f"{'; '.join(samples_of(p) for p in missing)} ({given}); the "
                f"processes with the most samples with addresses: {_pid_list(r)}"
            )

        raise InputError(msg(f"pids={pids}"), cli_message=msg(" ".join(f"--pid {p}" for p in pids)))
    for p in missing:
        r.warnings.append(f"pid {p}: no sample with an address (its target stays idle)")


# -- targets, one builder per operations set ------------------------------------------
def _paddr_targets(r: _Replay, pids, ranges) -> None:
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


def _fvaddr_targets(r: _Replay, pids, ranges) -> None:
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


def _vaddr_targets(r: _Replay, pids, ranges) -> None:
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


def _access_batches(r: _Replay):
    """A callable giving the (time_ns, target, addr) batches the targets see, in time
    order (called again for each pass); the whole table converted once when it is in
    memory."""

    def streamed_batches():
        for tb in r.selected():
            t_, g_, a_ = r.convert(tb)
            keep = g_ >= 0
            if not keep.all():
                t_, g_, a_ = t_[keep], g_[keep], a_[keep]
            yield t_, g_, a_

    if r.src.streamed:
        return streamed_batches
    # the whole table in memory: convert it once, sorted by time like AccessSamples
    tb = next(r.selected())
    if r.access == "perf-phys" and not r.physical:
        s_time, s_tgt, s_addr, untranslated = translated_samples(tb, r.tpids, r.translator)
        if untranslated:
            r.warnings.append(f"{untranslated} samples' physical addresses did not translate")
    else:
        s_time, s_tgt, s_addr = r.convert(tb)
    del tb
    keep = s_tgt >= 0
    if not keep.all():
        s_time, s_tgt, s_addr = s_time[keep], s_tgt[keep], s_addr[keep]
    if s_time.size > 1 and np.any(np.diff(s_time) < 0):
        order = np.argsort(s_time, kind="stable")
        s_time, s_tgt, s_addr = s_time[order], s_tgt[order], s_addr[order]
    one = (s_time, s_tgt, s_addr)

    def one_batch():
        yield one

    return one_batch


def _start(r: _Replay, access_batches, t0: int, auto: bool | None, start_ns):
    """(t0, t0_auto, t0_source): the start the targets' mappings call for with ``auto``
    (vaddr), and the vaddr targets' initial ranges in their metadata (warnings when they
    have none).  ``auto`` None (no start given): vaddr starts as ``auto`` does when the
    first sample gives a target no regions (a kdamond started at exec would see nothing
    until its first ops update; users start DAMON once the workload has mapped its memory),
    else at the first sample; ``start_ns='first'`` keeps the first sample."""
    t_first, t_last = r.scan["t_first"], r.scan["t_last"]
    source = (
        "auto"
        if auto
        else "--start"
        if start_ns is not None and start_ns != "first"
        else "first sample"
    )
    t0_auto = None
    if not r.timelines:
        if auto:
            t0_auto = {
                "time_ns": t0,
                "reason": f"--ops {r.ops.name} has fixed ranges: the first sample",
            }
        return t0, t0_auto, source
    if auto or any(tl.ranges_at(t0) is None for tl in r.timelines):
        t0_auto = _auto_start(
            r.timelines, access_batches, t_first, t_last, r.config.update_us * 1000
        )
    if auto is None and t0_auto is not None and t0_auto["time_ns"] is not None:
        auto, source = True, "auto (default: no regions at the first sample)"
        r.warnings.append(
            f"pid(s) {', '.join(str(p) for p in r.tpids)}: no three regions at the first "
            f"sample ({t_first} ns); starting at {t0_auto['time_ns']} ns as --start auto "
            "does (--start first keeps the first sample)"
        )
    if auto:
        if t0_auto["time_ns"] is None:

            def msg(start, fixed):
                return (
                    f"{start}: the mappings of pid(s) "
                    f"{', '.join(str(p) for p in r.tpids)} never give three regions in "
                    f"this trace, so vaddr has nothing to monitor (use {fixed})"
                )

            raise InputError(
                msg("start_ns='auto'", "ops='fvaddr' with ranges"),
                cli_message=msg("--start auto", "--ops fvaddr --range"),
            )
        t0 = t0_auto["time_ns"]
        t0_auto["reason"] = (
            "the first time from which the targets' mappings give three regions that "
            f"cover the most samples until the first ops update: {t0_auto['covered']} of "
            f"the {t0_auto['samples_in_window']} samples from then until "
            f"{r.config.update_us} us later; the first sample is at {t_first} ns"
        )
    for i, (tl, p) in enumerate(zip(r.timelines, r.tpids)):
        r0 = tl.ranges_at(t0)
        r.target_meta[i]["initial_ranges"] = None if r0 is None else r0.tolist()
        if r0 is None:
            hint = ""
            if t0_auto is not None and t0_auto["time_ns"] is not None:
                f3 = t0_auto["first_three_regions_ns"]
                hint = (
                    (f"; its mappings give three regions from {f3} ns on" if f3 is not None else "")
                    + f"; try --start {t0_auto['time_ns']} (what --start auto picks: "
                    f"the three regions then cover {t0_auto['covered']} of the "
                    f"{t0_auto['samples_in_window']} samples until the first ops "
                    "update)"
                )
            r.warnings.append(
                f"pid {p}: no three regions at replay start (mappings "
                f"known then: {len(tl.vmas_at(t0))}); the target has no "
                f"regions until an ops update finds them{hint}"
            )
    return t0, t0_auto, source


def _check_result(
    r: _Replay, hist: HistoryArrays, used: int, t0: int, t_last: int, t0_source: str
) -> None:
    """Warn about untranslated samples; refuse a replay that used no sample, wrote no
    snapshot or gave no target a region."""
    if r.translator is not None and r.physical and r.n_untrans:
        r.warnings.append(
            f"{r.n_untrans} samples' virtual addresses did not translate "
            "to a frame (their page is present in none of the pagemap "
            "snapshots of their pid)"
        )
    if used == 0:
        if r.translator is not None and r.n_untrans:
            raise InputError(
                f"no sample's address translated through the pagemap "
                f"snapshots ({r.n_untrans:,} did not): the snapshots must "
                "be of the same run and processes as the samples"
            )

        def msg(source):
            return (
                f"no sample of the targets from t0 on ({t0} ns, {source}; the last "
                f"sample is at {t_last} ns): nothing to replay"
            )

        raise InputError(
            msg("start_ns" if t0_source == "--start" else t0_source), cli_message=msg(t0_source)
        )
    if hist.n_snapshots == 0:
        ended_early(r.targets, r.ops, t0, r.config)
        _check_span(r.config, t0, t_last, t0_source, always=True)
    if all(e[2] == e[3] for e in hist.coverage):
        why = [w for w in r.warnings if "no three regions" in w]
        raise InputError(
            "no target had a region in any snapshot, so the history would be empty"
            + (": " + "; ".join(why) if why else " (the targets' ranges are empty)")
        )


def _run(
    r: _Replay,
    acc,
    t0,
    t_last,
    *,
    accessed_only,
    max_rows,
    fixed_engine,
    progress,
    writer,
    folios=None,
    in_loop=None,
) -> tuple[HistoryArrays, dict]:
    """Run the monitor; snapshots go to ``writer`` as they are taken (or stay in the
    returned arrays).  Returns the arrays and the engine's part of the metadata."""
    config, access, targets = r.config, r.access, r.targets
    pids = [t.pid for t in targets]
    sink = None
    if writer is not None:

        def sink(cols):
            writer.add(history_table(HistoryArrays(*cols), pids))

    use_fixed = (
        fixed_engine
        and config.fixed_granularity
        and access != "abit"
        and not config.tuning
        and in_loop is None
    )  # schemes: the listing engine
    reason = None
    if use_fixed:
        mon = FixedMonitor(config, targets, ops=r.ops)
        hist = mon.run(
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            max_rows=max_rows,
            progress=progress,
            sink=sink,
        )
        reason = mon.auto_accessed_only
    else:
        if config.fixed_granularity:
            # the grid at start, or at the end if the mappings grew by then
            nreg = max(grid_regions(targets, t, config.max_region) for t in (t0, t_last))
            rows = nreg * expected_snapshots(config, t0, t_last)
            if not accessed_only and max_rows is not None and rows > max_rows:
                accessed_only = True
                reason = (
                    f"every region of every snapshot would be {rows:,} rows (more "
                    f"than {max_rows:,}): only regions with accesses are written"
                )
        mon = Monitor(
            config,
            targets,
            ops=r.ops,
            access="abit" if access == "abit" else "perf",
            max_fixed_regions=DENSE_FIXED_MAX_REGIONS,
            folios=folios,
        )
        hist = mon.run(
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            progress=progress,
            sink=sink,
            damos=in_loop.inloop if in_loop is not None else None,
        )
    if reason is not None:
        accessed_only = True
        r.warnings.append(
            reason + " (pass --accessed-only to ask for this, or a larger "
            "--max-rows / --min-region)"
        )
    return hist, _engine_metadata(config, hist, accessed_only, reason, max_rows, use_fixed, folios)


def _engine_metadata(config, hist, accessed_only, reason, max_rows, use_fixed, folios) -> dict:
    metadata = {
        "engine": f"tracedamon {__version__}",
        "engine_path": "fixed-granularity (sparse)" if use_fixed else "adaptive",
        "config": config.to_dict(),
        "generator": GENERATOR if config.profile.prng == "pcg32" else PRNG_GENERATOR,
        "seed": config.seed,
        "snapshots": hist.n_snapshots,
        "accessed_only": bool(accessed_only),
        # the sparse-history contract: rows with nr_accesses 0 left out; coverage says
        # what was monitored (see RegionHistory)
        "sparse": bool(accessed_only),
        "coverage": [list(map(int, e)) for e in hist.coverage],
        "rows": "regions with nr_accesses > 0 only" if accessed_only else "every region",
        "accessed_only_reason": (
            reason if reason is not None else "asked for" if accessed_only else None
        ),
        "max_rows": max_rows,
        "folio_model": "4 KiB pages" if folios is None else folios.description,
        "tune_events": [list(map(int, e)) for e in hist.tune_events],
    }
    if folios is not None:  # (4 KiB pages: no key, as before)
        metadata["folios"] = folios.metadata()
    if config.kernel != "released":  # (the default profile: no key, as before)
        metadata["kernel"] = config.kernel
    return metadata


def _check_span(
    config: MonitorConfig, t0: int, t_last: int, t0_source: str, always: bool = False
) -> None:
    """Refuse a replay that cannot complete one aggregation (it would write no snapshot):
    the last sample must fall in the last sample interval of the first aggregation."""
    S = config.sample_us * 1000
    if not always and t_last >= t0 + (config.aggr_samples - 1) * S:
        return
    # t0_source names the option where the user gave t0 ("--start"): start_ns in the API
    api_source = "start_ns" if t0_source == "--start" else t0_source

    def late(source):
        return (
            f"the replay starts after the trace's last sample (t0 = {t0} ns ({source}), "
            f"last sample at {t_last} ns): no snapshot"
        )

    def short(source, aggr):
        return (
            f"the trace spans {(t_last - t0) / 1e6:.6g} ms from t0 = {t0} ns ({source}) "
            f"to its last sample, shorter than one aggregation interval "
            f"({config.aggr_us / 1000:g} ms, {aggr}): no snapshot"
        )

    if t_last < t0:
        raise InputError(late(api_source), cli_message=late(t0_source))
    raise InputError(
        short(api_source, f"aggr_us={config.aggr_us}"),
        cli_message=short(t0_source, f"--aggr-us {config.aggr_us}"),
    )


def every_stride(batches, stride: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per target ``i``: (time_ns, addr) of its samples number 0, ``stride[i]``,
    ``2*stride[i]``, ... (counted over all ``batches`` of (time_ns, target, addr))."""
    ntgt = len(stride)
    seen = np.zeros(ntgt, np.int64)
    thin: list[list] = [[] for _ in range(ntgt)]
    for t, g, a in batches:
        for i in range(ntgt):
            sel = np.nonzero(g == i)[0]
            k = (-seen[i]) % stride[i]  # the first index here that is a multiple
            thin[i].append((t[sel[k :: stride[i]]], a[sel[k :: stride[i]]]))
            seen[i] += sel.size
    return [
        (
            np.concatenate([x[0] for x in th]) if th else np.zeros(0, np.int64),
            np.concatenate([x[1] for x in th]) if th else np.zeros(0, np.int64),
        )
        for th in thin
    ]


def _auto_start(timelines, access_batches, t_first: int, t_last: int, window_ns: int) -> dict:
    """:func:`tracedamon.engine.ops.vaddr.auto_start` over streamed samples.

    ``auto_start`` scores the candidates on every ``stride``-th sample of each target
    (``stride = count // max_samples``) and counts the chosen candidate's coverage
    exactly over the samples of its window.  Here: one pass counts each target's
    samples, a second keeps the same every-``stride``-th samples (scored by
    ``auto_start`` itself, with nothing left to thin), and a third reads only the
    chosen window for the exact counts -- the same result without holding all samples.
    """
    max_samples = inspect.signature(auto_start).parameters["max_samples"].default
    ntgt = len(timelines)
    count = np.zeros(ntgt, np.int64)
    for _, g, _ in access_batches():
        count += np.bincount(g, minlength=ntgt)[:ntgt]
    per_tgt = every_stride(access_batches(), np.maximum(1, count // max_samples))
    res = auto_start(
        timelines, per_tgt, t_first, t_last, window_ns, max_samples=np.iinfo(np.int64).max
    )
    del per_tgt
    c = res["time_ns"]
    if c is None:
        return res
    regs = [tl.ranges_at(c) for tl in timelines]
    covered = within = 0
    for t, g, a in access_batches():
        if t.size == 0 or t[-1] < c:
            continue
        if t[0] >= c + window_ns:
            break
        for i in range(ntgt):
            sel = g == i
            ti, ai = t[sel], a[sel]
            covered += samples_covered(regs[i], ti, ai, c, c + window_ns)
            within += int(np.searchsorted(ti, c + window_ns) - np.searchsorted(ti, c))
    res["covered"], res["samples_in_window"] = covered, within
    return res
