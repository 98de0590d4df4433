"""``tracedamon replay ... --scheme FILE``: DAMOS schemes inside the replayed kdamond loop.

The replay (:func:`tracedamon.pipeline.replay.replay`) runs the schemes where the kernel
does (:class:`tracedamon.engine.damos.inloop.InLoop`), so their splits and age resets
shape the region history it writes.  This module is the orchestration around that:

* :func:`scheme_files` reads the ``--scheme`` arguments (presets, damo JSON, sysfs
  dumps: :func:`tracedamon.schemes.load_schemes`) and :func:`monitoring_defaults` the
  monitoring attributes a sysfs dump or damo kdamonds JSON carries (they become the
  replay's defaults);
* :class:`ReplaySchemes` builds the in-loop driver for a replay (the DAMOS context from
  the replay's configuration, the ops model over the trace's pagemap snapshots with the
  defaults of ``tracedamon damos``) and, after the run, the same outputs as
  ``tracedamon damos`` (:class:`tracedamon.pipeline.damos_tables.DamosResult`: ``damos_apply`` in the
  schema of ingested ``damos_before_apply`` events, ``damos_stats``, the modelled
  ``damos_outcome``, ``meta.json``), reusing its tables and outcome models.

Where the replay writes ``X.parquet`` the DAMOS outputs go beside it, ``X.damos/``
(:func:`damos_output`), the directory ``tracedamon damos X.parquet`` writes too.  The
history's snapshots are the kernel's ``damon_aggregated`` lines: written after DAMOS ran
(applied regions at age 0, DAMOS splits visible); ``tracedamon damos`` reads the
applications in ``X.damos/damos_apply.parquet`` as the recorded ones and takes them
back out before its own walk, as for a real trace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from .. import __version__
from ..engine.damos import Context, Scheme, profile as _profile
from ..engine.damos.inloop import InLoop
from ..engine.damos.ops_model import PageModel, action_kind
from ..errors import ConfigError
from ..store.atomic import TRACE_DIR, check_output
from ..store.parquet import read_metadata
from ..units import PAGE_SIZE
from .damos_history import PagemapOracle, Source
from .damos_outcome import inside_history, load_samples, model_outcome
from .damos_tables import DamosResult, apps_table, stats_table
from .schemes import SchemeFile, load_schemes

#: the suffix of the DAMOS output directory beside a replay's ``.parquet``
SUFFIX = ".damos"
#: monitoring attributes of a scheme file that become the replay's defaults
MONITORING_KEYS = ("ops", "sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions")


def damos_output(history: str | os.PathLike) -> Path:
    """Where the DAMOS outputs of a replay writing ``history`` go: ``X.damos``."""
    return Path(history).with_suffix(SUFFIX)


def scheme_files(
    schemes, *, sample_us: int | None = None, aggr_us: int | None = None
) -> list[SchemeFile]:
    """The ``--scheme`` arguments read (``sample_us``/``aggr_us``: the replay's
    intervals, for presets' thresholds and damo values in percent or time units)."""
    if isinstance(schemes, (str, os.PathLike, Scheme, SchemeFile)):
        schemes = [schemes]
    out = []
    for s in schemes:
        if isinstance(s, SchemeFile):
            out.append(s)
        elif isinstance(s, Scheme):
            out.append(SchemeFile([s], None, "Scheme object"))
        else:
            out.append(load_schemes(s, sample_us=sample_us, aggr_us=aggr_us))
    return out


def monitoring_defaults(files: Sequence[SchemeFile]) -> dict:
    """The monitoring attributes the first scheme file that has them gives (a sysfs dump
    or damo kdamonds JSON; presets give none): ``ops``, ``sample_us``, ``aggr_us``,
    ``update_us``, ``min_nr_regions``, ``max_nr_regions``."""
    for f in files:
        if f.monitoring is not None and not f.source.startswith("preset"):
            return {
                k: f.monitoring[k] for k in MONITORING_KEYS if f.monitoring.get(k) not in (None, "")
            }
    return {}


class InLoopSetup:
    """What :func:`in_loop` returns: the schemes and options, before the replay knows its
    configuration and targets (the replay calls :meth:`start`)."""

    def __init__(self, schemes, options: dict):
        self.schemes = schemes
        self.options = options

    @staticmethod
    def output_for(history) -> Path:
        return damos_output(history)

    def start(
        self, config, ops: str, target_pids, *, pagemap=None, trace_dir=None
    ) -> "ReplaySchemes":
        files = scheme_files(self.schemes, sample_us=config.sample_us, aggr_us=config.aggr_us)
        return ReplaySchemes(
            files, config, ops, target_pids, pagemap=pagemap, trace_dir=trace_dir, **self.options
        )


def in_loop(
    schemes,
    *,
    unknown_pages: str = "pass",
    hz: int = 250,
    success: float = 1.0,
    fast_tier: int | None = None,
    bin_ns: int | None = None,
    weight: str = "period",
    ns_per_region_call: int = 0,
    ns_per_byte: float = 0.0,
) -> InLoopSetup:
    """DAMOS schemes for ``tracedamon.replay(..., damos=in_loop([...]))``: presets, damo
    JSON, sysfs dumps (``--scheme`` arguments) or Scheme objects; the options are those
    of :func:`tracedamon.pipeline.damos.damos`."""
    return InLoopSetup(
        schemes,
        dict(
            unknown_pages=unknown_pages,
            hz=hz,
            success=success,
            fast_tier=fast_tier,
            bin_ns=bin_ns,
            weight=weight,
            ns_per_region_call=ns_per_region_call,
            ns_per_byte=ns_per_byte,
        ),
    )


class ReplaySchemes:
    """The schemes of one replay: the in-loop driver and, afterwards, the outputs.

    Parameters
    ----------
    files : the scheme files (:func:`scheme_files`)
    config : the replay's MonitorConfig (intervals, kernel profile, min_region)
    ops : the replay's operations set
    target_pids : pid of each target (None: unknown / every process)
    pagemap : the replay's pagemap snapshots (a DataFrame or table) or None
    trace_dir : the trace directory the samples come from (outcome model), or None
    unknown_pages, hz, success, fast_tier, bin_ns, weight, ns_per_region_call,
        ns_per_byte : as for :func:`tracedamon.pipeline.damos.damos`
    """

    def __init__(
        self,
        files: Sequence[SchemeFile],
        config,
        ops: str,
        target_pids: Sequence[int | None],
        *,
        pagemap=None,
        trace_dir=None,
        unknown_pages: str = "pass",
        hz: int = 250,
        success: float = 1.0,
        fast_tier: int | None = None,
        bin_ns: int | None = None,
        weight: str = "period",
        ns_per_region_call: int = 0,
        ns_per_byte: float = 0.0,
    ):
        self.files = list(files)
        self.schemes = [s for f in self.files for s in f.schemes]
        if not self.schemes:
            raise ConfigError("no schemes")
        if config.tuning:
            raise ConfigError(
                "schemes with intervals auto-tuning: the replay does not model DAMOS "
                "under changing intervals; drop goal_aggrs or the schemes",
                cli_message="--scheme with intervals auto-tuning (--goal-aggrs) is not "
                "modelled; drop one of the two",
            )
        for j, s in enumerate(self.schemes):
            if s.wmarks.metric != "none":
                name = f" ({s.name})" if s.name else ""
                msg = (
                    f"scheme {j}{name} has {s.wmarks.metric} watermarks, which read the "
                    "machine's free memory while the replay has none: drop them (a "
                    "preset: PRESET:wmarks=none)"
                )
                raise ConfigError(msg)
        self.ops = ops
        self.notes: list[str] = []
        mon = monitoring_defaults(self.files)
        au = 1
        for f in self.files:
            if f.monitoring is not None and not f.source.startswith("preset"):
                au = f.monitoring.get("addr_unit") or 1
                break
        min_region = max(PAGE_SIZE // au, 1)
        if config.min_region < min_region:
            # sub-page regions: DAMON_MIN_REGION is the replay's own region size
            min_region = config.min_region
        if mon.get("ops") and mon["ops"] != ops:
            self.notes.append(
                f"the scheme file's context is {mon['ops']}; the replay's "
                f"operations set is {ops} (its scores and actions apply)"
            )
        self.ctx = Context(
            ops if ops != "fvaddr" else "fvaddr",
            int(config.sample_us),
            int(config.aggr_us),
            int(min_region),
            int(hz),
            int(ns_per_region_call),
            float(ns_per_byte),
        )
        self.prof = _profile(config.kernel)
        self.target_pids = list(target_pids)
        self.trace_dir = Path(trace_dir) if trace_dir is not None else None
        self.unknown_pages = unknown_pages
        self.success = success
        self.fast_tier = fast_tier
        self.bin_ns = bin_ns
        self.weight = weight
        # -- page data for the ops filters (the defaults of `tracedamon damos`) -----
        self.pm_table = None
        if pagemap is not None and len(pagemap):
            self.pm_table = (
                pagemap
                if isinstance(pagemap, pa.Table)
                else pa.Table.from_pandas(pagemap, preserve_index=False)
            )
        self.oracle = None
        if self.pm_table is not None and self.pm_table.num_rows:
            self.oracle = PagemapOracle(self.pm_table, ops, self.target_pids)
        self._page_notes()
        self.model = PageModel(self.oracle, unknown_pages, success)
        self.inloop = InLoop(self.schemes, self.ctx, self.prof, ops_model=self.model)

    def _page_notes(self) -> None:
        ops, unknown = self.ops, self.unknown_pages
        ss = self.schemes
        if (
            any(s.ops_filters and action_kind(ops, s.action) in ("filtered", "stat") for s in ss)
            and self.oracle is None
        ):
            names = sorted({f.type for s in ss for f in s.ops_filters})
            self.notes.append(
                f"ops filters ({', '.join(names)}) but no page data (pagemap snapshots): "
                f"every page's verdict is the default --unknown-pages {unknown}; "
                "sz_ops_filter_passed and sz_applied are modelled from it"
            )
        for s in ss:
            if s.ops_filters and action_kind(ops, s.action) in ("madvise", "none"):
                self.notes.append(
                    f"{ops} {s.action} evaluates no ops filters: the scheme's "
                    f"{', '.join(f.type for f in s.ops_filters)} filter(s) have no effect "
                    "(as in the kernel)"
                )

    def result(
        self, *, t0: int, n_snapshots: int, coverage, history_path=None, inputs: Sequence[dict] = ()
    ):
        """The outputs of ``tracedamon damos`` for what the schemes did in the replay."""
        il = self.inloop
        applications = apps_table(il.apps)
        stats = stats_table(il.stat_rows)
        notes = list(self.notes)
        ctx = self.ctx
        aggr_ns = ctx.aggr_us * 1000
        # the history's time span (snapshot k is taken at t0 + (k + 1) * aggr) and the
        # monitored address ranges (the outcome counts samples inside them only)
        snap_t = np.array([t0 + aggr_ns, t0 + max(n_snapshots, 1) * aggr_ns], np.int64)
        cov = [c for c in coverage if c[3] > c[2]]
        reg = {
            "run": np.zeros(2, np.int64),
            "time_ns": snap_t,
            "target": np.array([c[1] for c in cov], np.int64),
            "start": np.array([c[2] for c in cov], np.int64),
            "end": np.array([c[3] for c in cov], np.int64),
        }
        spaces = (
            {
                int(p): i + 1
                for i, p in enumerate(
                    np.unique(self.pm_table.column("pid").to_numpy(zero_copy_only=False))
                )
            }
            if self.ops == "paddr" and self.oracle is not None
            else {}
        )
        events = self._events(spaces)
        smp = None
        if self.trace_dir is not None:
            src = Source(self.trace_dir, "replay", None, None, {}, self.trace_dir)
            smp = load_samples(None, src, self.ops, self.target_pids, spaces, 0, self.weight)
            if smp is not None and self.ops != "paddr" and reg["start"].size:
                smp = inside_history(smp, reg)
        outcome_meta, outcome = model_outcome(
            events, smp, reg, ctx, self.fast_tier, self.bin_ns, notes.append
        )
        meta = {
            "engine": f"tracedamon {__version__}",
            "source": {
                "path": str(history_path) if history_path is not None else None,
                "kind": "replay --scheme",
            },
            "schemes": [s.to_dict() for s in self.schemes],
            "scheme_sources": [f.source for f in self.files],
            "scheme_notes": [n for f in self.files for n in f.notes],
            "kernel": self.prof.name,
            "profile": self.prof.to_dict(),
            "context": ctx.to_dict(),
            "in_loop": {
                "steps": il.steps,
                "steps_that_changed_regions": il.changed_steps,
                "applications": int(applications.num_rows),
            },
            "resume": [],
            "ops_model": {
                "page_data": self.oracle is not None,
                "unknown_pages": self.unknown_pages,
                "success": self.success,
                "bytes_decided_by_default": self.model.unknown_bytes,
                "modelled": ["sz_ops_filter_passed", "sz_applied", "nr_applied"],
            },
            "outcome": outcome_meta,
            "notes": notes,
            "inputs": list(inputs)
            + [
                {"name": f.source, "role": "scheme"}
                if f.path is None
                else {"name": str(f.path), "role": "scheme"}
                for f in self.files
            ],
        }
        return DamosResult(applications, stats, outcome, meta, None)

    def _events(self, spaces: dict) -> list[tuple]:
        """The in-loop action runs keyed as the outcome models key samples (paddr frames
        a snapshotted process maps: by its virtual page)."""
        if self.ops != "paddr":
            return self.inloop.events
        if self.oracle is None:
            return [(r, t, k, 0, x, y) for r, t, k, _, x, y in self.inloop.events]
        out = []
        for r, t, k, _, x, y in self.inloop.events:
            for pid_, x2, y2 in zip(*self.oracle.owners(x, y, t)):
                out.append((r, t, k, spaces.get(pid_, 0), x2, y2))
        return out

    @staticmethod
    def output_for(history) -> Path:
        return damos_output(history)


def recorded_input(history: str | os.PathLike) -> Path | None:
    """The applications file a replay with schemes wrote beside ``history`` (which
    ``tracedamon damos`` reads as the recorded applications: an input of it), or None."""
    p = Path(history)
    if p.suffix != ".parquet" or not p.is_file():
        return None
    try:
        meta = read_metadata(p) or {}
    except Exception:  # an unreadable file is refused where it is read
        return None
    d = ((meta.get("replay") or {}).get("damos") or {}).get("output")
    return p.parent / d / "damos_apply.parquet" if d else None


def start_damos(damos, config, ops: str, targets, pm, source, output, force: bool):
    """DAMOS schemes inside the loop: their output is checked before any work, and the
    in-loop driver is made for this replay's context."""
    if damos is None:
        return None
    src_path = source if isinstance(source, (str, os.PathLike)) else None
    if output is not None:
        check_output(damos.output_for(output), TRACE_DIR, force=force, inputs=[src_path])
    return damos.start(config, ops, [t.pid for t in targets], pagemap=pm, trace_dir=src_path)


def damos_result(in_loop, metadata: dict, t0: int, hist, output, force: bool):
    """The schemes' outputs after the run; written to ``X.damos/`` beside ``output`` (before
    the history itself is put in place)."""
    dest = in_loop.output_for(output) if output is not None else None
    res = in_loop.result(
        t0=t0, n_snapshots=hist.n_snapshots, coverage=hist.coverage, history_path=output, inputs=[]
    )
    metadata["damos"] = {
        "schemes": res.metadata["schemes"],
        "scheme_sources": res.metadata["scheme_sources"],
        "kernel": res.metadata["kernel"],
        "context": res.metadata["context"],
        "applications": int(res.applications.num_rows),
        "output": dest.name if dest is not None else None,
        "snapshots": "written after DAMOS ran (as the kernel's damon_aggregated): applied "
        "regions at age 0, DAMOS splits visible",
    }
    if dest is not None:
        res.to_dir(dest, force=force)
    return res
