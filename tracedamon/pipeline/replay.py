"""Replay: a trace directory's samples → the region history DAMON would have produced.

``tracedamon.replay(trace_dir_or_samples, **options)`` is the notebook entry
point; ``tracedamon replay`` is a thin layer over it.  This module does the
I/O and the bookkeeping (reading tables, choosing targets and the access
source, the time grid, the output's metadata); the monitor itself is
:mod:`tracedamon.engine.core` (and :mod:`tracedamon.engine.fixed` for
fixed-granularity replays), with the operations set of :mod:`tracedamon.engine.ops`.
The steps live beside it: :mod:`.replay_state` (the input opened, scanned and
surveyed), :mod:`.replay_targets` (one target builder per operations set),
:mod:`.replay_start` (the time grid's start), :mod:`.replay_stream` (the samples
streamed into the engine), :mod:`.replay_run` (the monitor run and the result's checks)
and :mod:`.replay_output` (the output file and the metadata).

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
cheap passes, see :mod:`tracedamon.pipeline.replay_start`).  A samples file not in time order, and
perf-phys translation for vaddr/fvaddr, read the whole table instead.

Fixed granularity writes every region of every snapshot unless that exceeds
``max_rows``; then only regions with accesses are written (``accessed_only``), with
a warning and ``accessed_only_reason`` in the metadata.
"""

from __future__ import annotations

import os

from ..engine import ops as ops_sets
from ..engine.access import ACCESS, StreamedSamples
from ..engine.checks import abit_subpage_error
from ..engine.config import MonitorConfig
from ..errors import ConfigError
from .damos_replay import damos_result, start_damos
from .exits import trace_tasks, with_exits
from .region_history import RegionHistory, history_table
from .replay_output import input_metadata, open_writer
from .replay_run import check_result, folio_model, run_monitor
from .replay_start import check_span, choose_start, every_stride, start_option
from .replay_state import open_input, survey
from .replay_stream import access_batches
from .replay_targets import TARGETS
from .samples import SAMPLE_COLUMNS

OPS = ops_sets.NAMES
FOLIOS = ("auto", "4k")
DEFAULT_OUTPUT = "replay.parquet"
MAX_ROWS = 20_000_000  # default cap on rows written with every region listed

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
    tasks : for a samples table, its trace's ``tasks`` table: the processes' exits (see
        :mod:`tracedamon.pipeline.exits`; a trace directory's own by default)
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
    r, prov = open_input(source, ops, access, config, pids, mmaps, maps, pagemap, trace_meta)
    start_ns, auto = start_option(start_ns)
    survey(r, pids, events)
    TARGETS[r.ops.name](r, pids, ranges)
    r.targets = with_exits(r.targets, r.target_meta, trace_tasks(r.src, tasks))
    batches = access_batches(r)
    t0, t0_auto, t0_source = choose_start(r, batches, start_ns, auto)
    t_last = r.scan["t_last"]
    check_span(config, t0, t_last, t0_source)
    acc = StreamedSamples(batches(), t0)
    folio = folio_model(r, access, folios)
    in_loop = start_damos(damos, config, ops, r.targets, r.pm, source, output, force)
    writer = open_writer(output, force, source, pagemap)
    try:
        hist, metadata = run_monitor(
            r,
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            max_rows=max_rows,
            fixed_engine=fixed_engine,
            progress=progress,
            writer=writer,
            folios=folio,
            in_loop=in_loop,
        )
        used = acc.drain()  # the samples from t0 on (the rest of the stream)
        check_result(r, hist, used, t0, t_last, t0_source)
        metadata.update(input_metadata(r, t0, t0_source, t0_auto, used, prov))
        damos_res = in_loop and damos_result(in_loop, metadata, t0, hist, output, force)
        if writer is not None:
            return RegionHistory(None, metadata, writer.close(metadata), damos=damos_res)
    except BaseException as e:
        if writer is None:
            raise
        raise writer.abort(e) from None
    return RegionHistory(history_table(hist, [t.pid for t in r.targets]), metadata, damos=damos_res)


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
