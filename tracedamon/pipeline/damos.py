"""``tracedamon damos SRC``: DAMOS schemes applied to an existing region history.

``tracedamon.damos(src, schemes, ...)`` is the notebook entry point; ``tracedamon
damos`` is a thin layer over it.  The source is a region history: a trace directory
holding an ingested DAMON trace (its ``regions`` table, and its ``damos_apply`` table
when the kernel recorded ``damos_before_apply`` events) or a replay output
(``.parquet``).  The engine's DAMOS step (:mod:`tracedamon.engine.damos`) runs once per
snapshot, at the kernel's place: each snapshot is the region list right after an
aggregation's merge, which is what DAMOS sees -- once what DAMOS itself did to the
snapshot is taken back out.

Pre-apply state (``damos-spec.md`` §9.3, §10).  A real trace's ``damon_aggregated``
snapshot is emitted *after* DAMOS ran: regions an action was applied to show age 0,
and the quota split and the resume split show as extra boundaries.  When the source
holds the recorded applications of a snapshot, they are undone before the walk: every
applied region gets back its recorded pre-reset age; the last applied region of a
scheme is merged with its right neighbour when the trace shows the quota split (the
last event's ``nr_regions`` one more than the first's, or a lone application whose
neighbour holds the same ``nr_accesses`` and age); a boundary at the previous
application's end (or one page after it) whose two sides hold equal counts and ages is
merged (the resume split).  The schemes' own age resets carry into later snapshots:
a byte reset ``k`` aggregations ago is at most ``k`` old (a region's age is the
size-weighted mean over its bytes, as the kernel's merge computes it).  DAMOS splits the
prediction makes do not carry: every snapshot's boundaries are the recorded ones.

Quota state.  Each ``run`` (a kdamond start; a restart is a new run) starts with fresh
schemes: no charge window, no resume point, stats at 0.  ``resume="auto"`` sets, at the
first recorded application of each scheme in a run, the resume point the quota must
have had there (the start of that application's first region: the quota state before a
recording started is otherwise unknown).  Windows are measured on the snapshots' clock.

Outputs (:class:`DamosResult`, written by ``to_dir``): ``damos_apply`` (the predicted
applications, in the schema of ingested ``damos_before_apply`` events), ``damos_stats``
(per scheme per step), ``damos_outcome`` (modelled outcome per time bin) and
``meta.json`` (the schemes, the kernel profile, the context, every model and default
used, the check against the recorded applications).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa

from .. import __version__
from .damos_history import (
    PagemapOracle,
    ResetCarry,
    Source,
    assign_recorded,
    compare_applications,
    open_source,
    pagemap_table,
    region_arrays,
    subtract_intervals,
    undo_recorded,
)
from .damos_history import target_pids as history_target_pids
from ..engine.damos import (
    Context,
    Scheme,
    apply_schemes,
    new_state,
    profile as _profile,
    set_resume,
    update_watermarks,
)
from ..engine.damos.ops_model import PageModel, action_kind
from ..engine.damos.outcome import keys as addr_keys, pageout_outcome, tier_outcome
from ..errors import ConfigError, InputError
from ..schema import DAMOS_APPLY, DAMOS_OUTCOME, DAMOS_STATS, conform
from .schemes import SchemeFile, load_schemes, schemes_of
from ..units import PAGE_SIZE

DEFAULT_DIRNAME = "damos"
PAGEOUT_ACTIONS = ("pageout", "cold")
HOT_ACTIONS = ("migrate_hot", "lru_prio")
COLD_ACTIONS = ("migrate_cold", "lru_deprio")
KIND_OF = {
    **{a: "pageout" for a in PAGEOUT_ACTIONS},
    **{a: "hot" for a in HOT_ACTIONS},
    **{a: "cold" for a in COLD_ACTIONS},
}


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _series(spec) -> tuple[np.ndarray, np.ndarray] | None:
    """A (times, values) series from a CSV path (time_ns,value lines) or a pair of arrays."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if not p.exists():
            raise InputError(f"{p}: no such file")
        times, vals = [], []
        for ln, line in enumerate(p.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#") or line.lower().startswith("time"):
                continue
            parts = line.replace(",", " ").split()
            if len(parts) != 2:
                from ..errors import TraceFormatError

                raise TraceFormatError(p, "expected 'time_ns,value'", line=ln)
            try:
                times.append(int(parts[0]))
                vals.append(int(float(parts[1])))
            except ValueError:
                from ..errors import TraceFormatError

                raise TraceFormatError(p, f"not numbers: {line!r}", line=ln) from None
        if not times:
            raise InputError(f"{p}: the series is empty")
        t, v = np.array(times, np.int64), np.array(vals, np.int64)
    else:
        t, v = (np.asarray(x, np.int64) for x in spec)
    o = np.argsort(t, kind="stable")
    return t[o], v[o]


def _value_at(series, t: int):
    if series is None:
        return None
    ts, vs = series
    i = int(np.searchsorted(ts, t, side="right")) - 1
    return int(vs[i]) if i >= 0 else None


@dataclass
class DamosResult:
    """The predicted applications, stats, outcome and how they were made."""

    applications: pa.Table
    stats: pa.Table
    outcome: pa.Table
    metadata: dict
    check: dict | None = None

    def to_dir(self, dest: str | os.PathLike, *, force: bool = False) -> Path:
        from ..store.writer import TraceDirWriter

        with TraceDirWriter(
            dest,
            provenance={"inputs": self.metadata.get("inputs", [])},
            force=force,
            tables=("damos_apply", "damos_stats", "damos_outcome"),
        ) as w:
            w.write("damos_apply", self.applications)
            w.write("damos_stats", self.stats)
            w.write("damos_outcome", self.outcome)
            w.meta["damos"] = self.metadata
        return Path(dest)

    def summary(self) -> str:
        m = self.metadata
        lines = [
            f"schemes: {len(m['schemes'])} ({'; '.join(m['scheme_sources'])}), kernel "
            f"{m['kernel']}, {m['context']['ops']}, sample {m['context']['sample_us']} us,"
            f" aggr {m['context']['aggr_us']} us"
        ]
        st = self.stats.to_pandas()
        for run, g in st.groupby("run") if len(st) else []:
            for sch, h in g.groupby("scheme"):
                last = h.iloc[-1]
                lines.append(
                    f"run {run} scheme {sch}: {int(h.applied.sum())} steps applied of "
                    f"{len(h)} due; tried {int(last.nr_tried)} regions "
                    f"({int(last.sz_tried) / 2**20:.1f} MiB), applied {int(last.nr_applied)} "
                    f"({int(last.sz_applied) / 2**20:.1f} MiB, modelled), quota exceeded "
                    f"{int(last.qt_exceeds)} times"
                )
        o = m.get("outcome") or {}
        if o.get("pageout"):
            p = o["pageout"]
            lines.append(
                f"pageout (modelled): {p['bytes_paged_out'] / 2**20:.1f} MiB paged out; "
                + (
                    f"{p['reaccesses']} pages re-accessed later "
                    f"({p['reaccess_bytes'] / 2**20:.2f} MiB); saving "
                    f"{p['saving_gib_s']:.3f} GiB*s"
                    if p.get("samples")
                    else "re-accesses unknown (no samples)"
                )
            )
        if o.get("tier"):
            t = o["tier"]
            fr = t["fast_ratio"]
            fr0 = t["fast_ratio_first_touch"]
            lines.append(
                f"two tiers (modelled, fast {t['fast_bytes'] / 2**20:.1f} MiB): "
                + (
                    f"{fr:.3f} of sampled accesses from the fast tier (first-touch only: "
                    f"{fr0:.3f}); promoted {t['bytes_promoted'] / 2**20:.1f} MiB, demoted "
                    f"{t['bytes_demoted'] / 2**20:.1f} MiB"
                    if fr is not None
                    else "no samples"
                )
            )
        if self.check is not None:
            lines.append(format_check(self.check))
        return "\n".join(lines)


def format_check(c: dict) -> str:
    s = (
        f"check: {c['matched']} of {c['recorded']} recorded applications reproduced region "
        f"for region (start, end, nr_accesses, age)"
    )
    if c.get("first_excluded"):
        s += (
            f"; after the first of each run: {c['matched_after_first']} of "
            f"{c['recorded_after_first']}"
        )
    s += (
        f"; {c['predicted']} predicted, {c['predicted_only']} not in the trace; rows "
        f"{c['rows_matched']} of {c['rows_recorded']}"
    )
    for d in c.get("mismatches", [])[:3]:
        s += (
            f"\n  run {d['run']} snapshot {d['snapshot']} scheme {d['scheme']}: "
            f"{d['recorded_rows']} recorded rows, {d['predicted_rows']} predicted, first "
            f"difference at row {d['first_difference']}"
        )
    return s


def damos(
    src,
    schemes,
    *,
    resume: str | int | None = None,
    check: bool = False,
    kernel: str = "released",
    ops: str | None = None,
    sample_us: int | None = None,
    aggr_us: int | None = None,
    min_region: int | None = None,
    hz: int = 250,
    unknown_pages: str = "pass",
    pagemap=None,
    samples=None,
    offset_ns: int = 0,
    fast_tier: int | None = None,
    free_mem=None,
    goal_series: Mapping | None = None,
    bin_ns: int | None = None,
    success: float = 1.0,
    weight: str = "period",
    ns_per_region_call: int = 0,
    ns_per_byte: float = 0.0,
    warn=None,
) -> DamosResult:
    """Apply DAMOS schemes to a region history; see the module docstring.

    Parameters
    ----------
    src : trace directory (an ingested DAMON trace) or a replay's regions ``.parquet``
    schemes : ``--scheme`` arguments (preset, damo JSON, sysfs dump), :class:`Scheme`
        objects or :class:`~tracedamon.schemes.SchemeFile` s (a list, or one)
    resume : ``"auto"`` (the recorded first application of each scheme of each run),
        an address (every scheme, target 0) or ``"T:ADDR"``; None: no resume point
    check : compare with the recorded applications (needs a ``damos_apply`` table)
    kernel : kernel profile (``released``, ``released-nofix``, ``mainline-2026``)
    ops, sample_us, aggr_us, min_region : the DAMON context; default: the scheme file's
        (a sysfs dump or damo kdamonds JSON says it), else the source's
    hz : jiffies per second the charge windows are counted in (0: exact ms)
    unknown_pages : ops-filter verdict of pages no page data describes: pass / reject
    pagemap : a trace directory with pagemap snapshots (default: the source's own)
    samples : a trace directory with the workload's samples (default: the source's own);
        ``offset_ns`` is added to their times (to put them on the history's clock)
    fast_tier : bytes of the fast tier for the two-tier model (migrate_*/lru_*)
    free_mem : free-memory series for free_mem_rate watermarks: a CSV (time_ns,permil)
        or (times, values)
    goal_series : {metric: CSV or (times, values)} for quota goals other than user_input
    bin_ns : outcome time bins (default: the aggregation interval)
    success : fraction of passed bytes an action achieves (sz_applied model)
    weight : sample weight of the tier model: period, latency (the weight column where
        recorded, else period) or count
    ns_per_region_call, ns_per_byte : the time the ops take per applied region and per
        byte (the kernel measures it for time quotas; default 0: its "nothing measured"
        throughput, 4 MiB/ms)
    warn : callable receiving warning lines (default: collected into the metadata only)
    """
    source = open_source(src)
    warnings: list[str] = []

    def say(msg: str) -> None:
        warnings.append(msg)
        if warn is not None:
            warn(msg)

    files, ctx = _context(
        source,
        schemes,
        ops,
        sample_us,
        aggr_us,
        min_region,
        hz,
        ns_per_region_call,
        ns_per_byte,
        say,
    )
    ops = ctx.ops
    prof = _profile(kernel)
    all_schemes = schemes_of(files, free_mem)
    pages = _page_data(all_schemes, ops, source, pagemap, unknown_pages, success, say)
    w = _Walk(all_schemes, ctx, prof, pages, resume)
    w.reg = region_arrays(source.regions)
    w.runs_meta = {r.get("run"): r for r in source.meta.get("damon_runs", [])}
    w.rec_by_step, rec_unassigned = assign_recorded(
        source.recorded, w.reg, w.runs_meta, ctx.aggr_us
    )
    if source.recorded is not None and source.recorded.num_rows and rec_unassigned:
        say(
            f"{rec_unassigned} recorded damos_before_apply events belong to no snapshot of "
            "the history (left out)"
        )
    if check and source.recorded is None:
        msg = f"{source.path} holds no recorded applications (no damos_apply table)"
        raise ConfigError(f"check=True: {msg}", cli_message=f"--check: {msg}")
    if resume == "auto" and source.recorded is None:
        msg = f"{source.path} holds no recorded applications; give an address"
        raise ConfigError(
            f"resume='auto': {msg} (resume=ADDR) or none",
            cli_message=f"--resume auto: {msg} (--resume ADDR) or none",
        )
    w.fixed_resume = _parse_resume(resume) if resume not in (None, "auto") else None
    w.free = _series(free_mem)
    if w.free is not None and w.reg["time_ns"].size and w.free[0][0] > w.reg["time_ns"].min():
        say(
            "the free-memory series starts after the history's first snapshot: until its "
            "first value the watermarks keep the kernel's initial state (active)"
        )
    w.goals = {k: _series(v) for k, v in (goal_series or {}).items()}
    for run in np.unique(w.reg["run"]):
        _walk_run(w, run)
    applications = _apps_table(w.app_cols)
    stats = _stats_table(w.stat_rows)

    # -- outcome ------------------------------------------------------------------------
    smp = _load_samples(samples, source, ops, pages.target_pids, pages.spaces, offset_ns, weight)
    if smp is not None and ops != "paddr":
        smp = _inside_history(smp, w.reg)
    outcome_meta, outcome = _outcome(w.events, smp, w.reg, ctx, fast_tier, bin_ns, say)

    meta = {
        "engine": f"tracedamon {__version__}",
        "source": {"path": str(source.path), "kind": source.kind},
        "schemes": [s.to_dict() for s in all_schemes],
        "scheme_sources": [f.source for f in files],
        "scheme_notes": [n for f in files for n in f.notes],
        "kernel": prof.name,
        "profile": prof.to_dict(),
        "context": ctx.to_dict(),
        "resume": w.resume_info,
        "reconstruction": w.counters,
        "ops_model": {
            "page_data": pages.oracle is not None,
            "unknown_pages": unknown_pages,
            "success": success,
            "bytes_decided_by_default": pages.model.unknown_bytes,
            "modelled": ["sz_ops_filter_passed", "sz_applied", "nr_applied"],
        },
        "outcome": outcome_meta,
        "notes": warnings,
        "inputs": _provenance(source, files),
    }
    chk = compare_applications(w.rec_by_step, w.app_cols, resume == "auto") if check else None
    if chk is not None:
        meta["check"] = chk
    return DamosResult(applications, stats, outcome, meta, chk)


@dataclass
class _Pages:
    """The page data of a damos run: the pagemap oracle (or None), the ops model, the
    outcome models' address spaces and the history's target pids."""

    target_pids: object
    oracle: object
    model: PageModel
    spaces: dict


def _page_data(all_schemes, ops, source, pagemap, unknown_pages, success, say) -> _Pages:
    """The page data the ops filters and the outcome models read, with what it lacks."""
    needs_pages = any(
        s.ops_filters and action_kind(ops, s.action) in ("filtered", "stat") for s in all_schemes
    )
    for s in all_schemes:
        if s.ops_filters and action_kind(ops, s.action) in ("madvise", "none"):
            say(
                f"{ops} {s.action} evaluates no ops filters: the scheme's "
                f"{', '.join(f.type for f in s.ops_filters)} filter(s) have no effect "
                "(as in the kernel)"
            )
    target_pids = history_target_pids(source)
    oracle = None
    pm_table = pagemap_table(pagemap, source)
    if pm_table is not None and pm_table.num_rows:
        oracle = PagemapOracle(pm_table, ops, target_pids)
    if needs_pages and oracle is None:
        names = sorted({f.type for s in all_schemes for f in s.ops_filters})
        say(
            f"ops filters ({', '.join(names)}) but {source.path} has no page data "
            "(pagemap snapshots): every page's verdict is the default "
            f"--unknown-pages {unknown_pages}; sz_ops_filter_passed and sz_applied are "
            "modelled from it"
        )
    if ops == "paddr" and any(
        s.action == "pageout" and not any(f.type == "young" for f in s.ops_filters)
        for s in all_schemes
    ):
        say(
            "paddr pageout checks each page's accessed bit again (an implicit 'reject "
            "young' filter after the scheme's own): no page data says whether a page is "
            f"young, so the pages it decides get --unknown-pages {unknown_pages}"
        )
    if needs_pages and oracle is not None:
        unknown = sorted(
            {
                f.type
                for s in all_schemes
                for f in s.ops_filters
                if f.type in ("young", "active", "memcg")
            }
        )
        if unknown:
            say(
                f"ops filter(s) {', '.join(unknown)} read live page state no snapshot has: "
                f"pages they decide get --unknown-pages {unknown_pages}"
            )
    model = PageModel(oracle, unknown_pages, success)
    # address spaces of the outcome models: paddr frames are keyed by physical address
    # (space 0) or, where a pagemap snapshot names their owner, by the owner's virtual
    # page (a refaulted page comes back in another frame); vaddr: by target
    spaces = (
        {
            int(p): i + 1
            for i, p in enumerate(np.unique(pm_table.column("pid").to_numpy(zero_copy_only=False)))
        }
        if ops == "paddr" and oracle is not None
        else {}
    )
    return _Pages(target_pids, oracle, model, spaces)


class _Walk:
    """What the walk over a history's runs reads and what it collects."""

    def __init__(self, all_schemes, ctx, prof, pages: _Pages, resume):
        self.all_schemes, self.ctx, self.prof, self.pages = all_schemes, ctx, prof, pages
        self.resume = resume
        self.reg = self.runs_meta = self.rec_by_step = None
        self.fixed_resume = self.free = None
        self.goals: dict = {}
        self.app_cols: dict[str, list] = {
            k: []
            for k in (
                "run",
                "snapshot",
                "time_ns",
                "scheme",
                "target",
                "nr_regions",
                "start",
                "end",
                "nr_accesses",
                "age",
                "kdamond_pid",
            )
        }
        self.stat_rows: list[tuple] = []
        self.events: list[tuple] = []  # (run, time, kind, space, start, end)
        self.counters: dict = {}
        self.resume_info: list = []
        self.aggr_samples = max(ctx.aggr_us // max(ctx.sample_us, 1), 1)


def _walk_run(w: _Walk, run) -> None:
    """The schemes over one run of the history, snapshot by snapshot."""
    reg = w.reg
    rsel = np.flatnonzero(reg["run"] == run)
    state = new_state(w.all_schemes, w.ctx, w.prof)
    carry = ResetCarry()
    prev_end: dict = {}
    run_pid = (w.runs_meta.get(int(run)) or {}).get("kdamond_pid")
    if w.fixed_resume is not None:
        for j in range(len(w.all_schemes)):
            set_resume(state, j, *w.fixed_resume)
        w.resume_info.append({"run": int(run), "resume": list(w.fixed_resume), "from": "--resume"})
    auto_done: set = set()
    snaps = reg["snapshot"][rsel]
    bounds = np.flatnonzero(np.diff(snaps)) + 1
    t_prev = None
    for seg in np.split(rsel, bounds):
        snap = int(reg["snapshot"][seg[0]])
        t = int(reg["time_ns"][seg[0]])
        rows = {k: reg[k][seg] for k in ("target", "start", "end", "nr", "bp", "age")}
        recorded = w.rec_by_step.get((int(run), snap), [])
        sis = (snap + 1) * w.aggr_samples
        due = {j for j, sst in enumerate(state.states) if sis >= sst.next_apply_sis}
        if recorded or prev_end:
            rows = undo_recorded(rows, recorded, prev_end, w.ctx.min_region, w.counters, due)
        for j in due:
            prev_end.pop(j, None)  # a resume point is used by the next walk
        for e in recorded:
            prev_end[e[0]] = (e[1], e[3])
        rows["age"] = carry.apply(rows["target"], rows["start"], rows["end"], rows["age"], snap)
        if w.resume == "auto":
            for e in recorded:
                if e[0] not in auto_done and e[0] < len(w.all_schemes):
                    set_resume(state, e[0], e[1], e[2])
                    auto_done.add(e[0])
                    w.resume_info.append(
                        {
                            "run": int(run),
                            "scheme": int(e[0]),
                            "snapshot": snap,
                            "target": int(e[1]),
                            "resume": int(e[2]),
                            "from": "first recorded application",
                        }
                    )
        # watermarks: every change of the metric since the last step, then now
        if w.free is not None:
            ts, vs = w.free
            lo = 0 if t_prev is None else int(np.searchsorted(ts, t_prev, side="right"))
            hi = int(np.searchsorted(ts, t, side="right"))
            for v in vs[lo:hi]:
                update_watermarks(state, int(v))
        t_prev = t
        _apply_step(w, state, carry, rows, recorded, int(run), snap, t, sis, run_pid)


def _apply_step(
    w: _Walk, state, carry, rows, recorded, run: int, snap: int, t: int, sis: int, run_pid
) -> None:
    """One snapshot's application of the schemes; collects its rows and events."""
    ntg = int(rows["target"].max()) + 1 if rows["target"].size else 1
    toff = np.searchsorted(rows["target"], np.arange(ntg + 1)).astype(np.int64)
    regs = {
        "start": rows["start"],
        "end": rows["end"],
        "nr": rows["nr"],
        "bp": rows["bp"],
        "age": rows["age"],
        "toff": toff,
    }
    gv = {k: _value_at(v, t) for k, v in w.goals.items()}
    gv = {k: v for k, v in gv.items() if v is not None}
    model, oracle = w.pages.model, w.pages.oracle
    res = apply_schemes(state, regs, sis=sis, now_ns=t, goal_values=gv or None, ops_model=model)
    a = res.applications
    n = res.n_applications
    app_cols = w.app_cols
    app_cols["run"].extend([run] * n)
    app_cols["snapshot"].extend([snap] * n)
    app_cols["time_ns"].extend([t] * n)
    app_cols["kdamond_pid"].extend([run_pid] * n)
    for k, c in (
        ("scheme", "scheme"),
        ("target", "target"),
        ("start", "start"),
        ("end", "end"),
        ("nr_accesses", "nr_accesses"),
        ("age", "age"),
        ("nr_regions", "nr_regions"),
    ):
        app_cols[k].extend(a[c].tolist())
    _carry_resets(carry, a, w.all_schemes, recorded, snap)
    acts = (
        np.array([KIND_OF.get(w.all_schemes[int(x)].action, "") for x in a["scheme"]], dtype=object)
        if n
        else np.zeros(0, object)
    )
    for q in np.flatnonzero(acts[model.seg_app] != "") if model.seg_app.size else ():
        i = int(model.seg_app[q])
        x, y = int(model.seg_start[q]), int(model.seg_end[q])
        if w.ctx.ops != "paddr":
            w.events.append((run, t, acts[i], int(a["target"][i]), x, y))
        elif oracle is None:
            w.events.append((run, t, acts[i], 0, x, y))
        else:  # frames a process maps: keyed by its virtual page
            for pid_, x2, y2 in zip(*oracle.owners(x, y, t)):
                w.events.append((run, t, acts[i], w.pages.spaces.get(pid_, 0), x2, y2))
    for j, sst in enumerate(state.states):
        if not res.due[j]:
            continue
        w.stat_rows.append(
            (
                run,
                snap,
                t,
                j,
                bool(res.ran[j]),
                sst.nr_tried,
                sst.sz_tried,
                sst.nr_applied,
                sst.sz_applied,
                sst.sz_ops_filter_passed,
                sst.qt_exceeds,
                sst.min_score,
                sst.esz,
                sst.charged_sz,
            )
        )


def _context(
    source: Source,
    schemes,
    ops,
    sample_us,
    aggr_us,
    min_region,
    hz,
    ns_per_region_call,
    ns_per_byte,
    say,
) -> tuple[list[SchemeFile], Context]:
    """The scheme files and the DAMON context they run in.

    The history's intervals (options, else a replay's configuration, else the trace's
    recorded or inferred ones) convert presets and damo units; the context's (options,
    else a sysfs dump's or damo kdamonds JSON's -- the kdamond's configured values --
    else the history's) go into the scores."""
    rc = source.replay_config or {}
    iv = source.meta.get("intervals") or {}
    h_sample = sample_us or rc.get("sample_us") or iv.get("sample_us")
    h_aggr = aggr_us or rc.get("aggr_us") or iv.get("aggr_us")
    files = _scheme_files(schemes, h_sample, h_aggr)
    mon = next(
        (
            f.monitoring
            for f in files
            if f.monitoring is not None and not f.source.startswith("preset")
        ),
        None,
    )
    src_ops = (source.meta.get("replay") or {}).get("ops")
    if ops is None:
        if src_ops and mon and mon.get("ops") and mon["ops"] != src_ops:
            msg = (
                f"{source.path} is a {src_ops} history but the scheme file's context is "
                f"{mon['ops']}: pass "
            )
            raise ConfigError(msg + "ops= to choose", cli_message=msg + "--ops to choose")
        ops = (
            src_ops
            or (mon or {}).get("ops")
            or next((f.monitoring["ops"] for f in files if f.monitoring), None)
        )
        if ops is None:
            msg = (
                f"{source.path}: the operations set is unknown (no replay metadata, no "
                "scheme file context): pass "
            )
            raise ConfigError(msg + "ops='paddr' or 'vaddr'", cli_message=msg + "--ops paddr|vaddr")
    c_sample = sample_us or (mon or {}).get("sample_us") or h_sample
    c_aggr = aggr_us or (mon or {}).get("aggr_us") or h_aggr
    if not c_sample or not c_aggr:
        msg = f"{source.path}: the sampling and aggregation intervals are unknown: pass "
        raise ConfigError(
            msg + "sample_us and aggr_us", cli_message=msg + "--sample-us and --aggr-us"
        )
    if not (sample_us or aggr_us or mon or rc) and iv.get("source") == "inferred":
        say(
            f"intervals inferred from the trace's snapshot spacing (sample {c_sample} us, "
            f"aggr {c_aggr} us); scores turn ages into seconds with the configured "
            "aggregation interval: give --sample-us/--aggr-us (or a sysfs dump) for exact "
            "scores"
        )
    if min_region is None:
        au = (mon or {}).get("addr_unit") or 1
        min_region = max(PAGE_SIZE // au, 1) if mon else (rc.get("min_region") or PAGE_SIZE)
    return files, Context(
        ops,
        int(c_sample),
        int(c_aggr),
        int(min_region),
        hz,
        int(ns_per_region_call),
        float(ns_per_byte),
    )


def _carry_resets(carry: ResetCarry, apps: dict, schemes, recorded: list, snap: int) -> None:
    """Predicted age resets carry into later snapshots, except where the kernel made the
    same reset (the recorded ages already hold it)."""
    n = apps["start"].size
    resets = (
        np.array([schemes[int(x)].action != "stat" for x in apps["scheme"]], bool)
        if n
        else np.zeros(0, bool)
    )
    for tg in np.unique(apps["target"][resets]):
        mine = resets & (apps["target"] == tg)
        ks = [(e[2], e[3]) for e in recorded if e[1] == tg and e[5]]
        ps, pe = subtract_intervals(
            apps["start"][mine].astype(np.int64),
            apps["end"][mine].astype(np.int64),
            np.array([x for x, _ in ks], np.int64),
            np.array([y for _, y in ks], np.int64),
        )
        carry.add(int(tg), ps, pe, snap)


def _provenance(source: Source, files: list[SchemeFile]) -> list[dict]:
    """Name, size and sha256 of what the run read: the history's tables, scheme files."""
    from ..store.writer import file_provenance

    paths = (
        [source.path]
        if source.path.is_file()
        else [
            source.path / f"{n}.parquet"
            for n in ("regions", "damos_apply")
            if (source.path / f"{n}.parquet").exists()
        ]
    )
    out = [dict(file_provenance(p), role="history") for p in paths]
    for f in files:
        if f.path is not None:
            out.append(dict(file_provenance(f.path), role="scheme"))
        else:
            out.append({"name": f.source, "role": "scheme"})
    return out


def _scheme_files(schemes, sample_us, aggr_us) -> list[SchemeFile]:
    if isinstance(schemes, (str, os.PathLike, Scheme, SchemeFile)):
        schemes = [schemes]
    files = []
    for s in schemes:
        if isinstance(s, SchemeFile):
            files.append(s)
        elif isinstance(s, Scheme):
            files.append(SchemeFile([s], None, "Scheme object"))
        else:
            files.append(load_schemes(s, sample_us=sample_us, aggr_us=aggr_us))
    return files


def _parse_resume(resume) -> tuple[int, int]:
    if isinstance(resume, int):
        return 0, resume
    text = str(resume)
    t, _, a = text.rpartition(":")
    try:
        return (int(t, 0) if t else 0), int(a.replace("_", ""), 0)
    except ValueError:
        raise ConfigError(
            f"resume={text!r}: 'auto', ADDR or 'TARGET:ADDR'",
            cli_message=f"--resume {text!r}: auto, ADDR or TARGET:ADDR",
        ) from None


def _apps_table(c: dict) -> pa.Table:
    n = len(c["start"])
    pid = np.array([-1 if p is None else p for p in c["kdamond_pid"]], np.int64)
    age = np.array(c["age"], np.int64)
    return pa.table(
        {
            "time_ns": pa.array(np.array(c["time_ns"], np.int64), pa.int64()),
            "kdamond_pid": pa.array(pid.astype(np.int32), pa.int32(), mask=pid < 0),
            "cpu": pa.nulls(n, pa.int32()),
            "context": pa.array(np.zeros(n, np.int32), pa.int32()),
            "scheme": pa.array(np.array(c["scheme"], np.int32), pa.int32()),
            "target": pa.array(np.array(c["target"], np.int64), pa.int64()),
            "nr_regions": pa.array(np.array(c["nr_regions"], np.uint32), pa.uint32()),
            "start": pa.array(np.array(c["start"], np.uint64), pa.uint64()),
            "end": pa.array(np.array(c["end"], np.uint64), pa.uint64()),
            "nr_accesses": pa.array(np.array(c["nr_accesses"], np.uint32), pa.uint32()),
            "age": pa.array(age.astype(np.uint32), pa.uint32()),
        },
        schema=DAMOS_APPLY,
    )


def _stats_table(rows: list[tuple]) -> pa.Table:
    names = [
        "run",
        "snapshot",
        "time_ns",
        "scheme",
        "applied",
        "nr_tried",
        "sz_tried",
        "nr_applied",
        "sz_applied",
        "sz_ops_filter_passed",
        "qt_exceeds",
        "min_score",
        "esz",
        "charged_sz",
    ]
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    d = dict(zip(names, cols))
    n = len(rows)
    esz = np.array([min(int(x), 2**64 - 1) for x in d["esz"]], np.uint64)
    return pa.table(
        {
            "run": pa.array(np.array(d["run"], np.int32), pa.int32()),
            "snapshot": pa.array(np.array(d["snapshot"], np.int64), pa.int64()),
            "time_ns": pa.array(np.array(d["time_ns"], np.int64), pa.int64()),
            "context": pa.array(np.zeros(n, np.int32), pa.int32()),
            "scheme": pa.array(np.array(d["scheme"], np.int32), pa.int32()),
            "applied": pa.array(np.array(d["applied"], bool), pa.bool_()),
            **{
                k: pa.array(np.array(d[k], np.uint64), pa.uint64())
                for k in (
                    "nr_tried",
                    "sz_tried",
                    "nr_applied",
                    "sz_applied",
                    "sz_ops_filter_passed",
                    "qt_exceeds",
                )
            },
            "min_score": pa.array(np.array(d["min_score"], np.uint32), pa.uint32()),
            "esz": pa.array(esz, pa.uint64()),
            "charged_sz": pa.array(np.array(d["charged_sz"], np.uint64), pa.uint64()),
        },
        schema=DAMOS_STATS,
    )


# ---------------------------------------------------------------------------------------
# samples and the outcome models
# ---------------------------------------------------------------------------------------
@dataclass
class Samples:
    time_ns: np.ndarray
    key: np.ndarray
    weight: np.ndarray
    note: str = ""
    dropped: int = 0
    outside: int = 0


def _load_samples(
    samples, source: Source, ops: str, target_pids, spaces: dict, offset_ns: int, weight: str
) -> Samples | None:
    """The workload's samples as (time, address key, weight), in time order.

    paddr: a sample of a process the pagemap snapshots cover is keyed by its virtual
    page (``spaces``), any other by its physical address (needs ``phys_addr``); vaddr:
    by the target its pid is (a target without a pid takes every process's samples, as
    in replay)."""
    from ..store.trace import open_trace

    if weight not in ("period", "latency", "count"):
        raise ConfigError(
            f"weight={weight!r}: 'period', 'latency' or 'count'",
            cli_message=f"--weight {weight!r}: period, latency or count",
        )
    cols = ["time_ns", "pid", "addr", "phys_addr", "period", "weight"]
    if isinstance(samples, pa.Table):  # a samples table in memory (a sweep worker's)
        from ..schema import SAMPLES

        d = "samples table (in memory)"
        have = [c for c in cols if c in samples.column_names]
        tables = [conform(samples.select(have), SAMPLES, cols)]
    else:
        d = Path(samples) if samples is not None else source.trace_dir
        if d is None or not (Path(d) / "samples.parquet").exists():
            if samples is not None:
                raise InputError(f"{samples}: no samples table")
            return None
        tables = open_trace(d).iter_tables("samples", columns=cols)
    ts, ks, ws = [], [], []
    dropped = 0
    from .samples import targets_of

    for t in tables:
        time = t.column("time_ns").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        pid = t.column("pid").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        addr = t.column("addr").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if weight == "count":
            w = np.ones(time.size)
        else:
            per = t.column("period").fill_null(1).to_numpy(zero_copy_only=False).astype(float)
            w = np.where(per > 0, per, 1.0)
            if weight == "latency":
                lat = t.column("weight")
                lv = lat.fill_null(0).to_numpy(zero_copy_only=False).astype(float)
                w = np.where(lv > 0, lv, w)
        if ops == "paddr":
            phys = (
                t.column("phys_addr").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            )
            sp = (
                np.array([spaces.get(int(p), 0) for p in pid], np.int64)
                if spaces and pid.size
                else np.zeros(pid.size, np.int64)
            )
            virt = (sp > 0) & (addr != 0)
            ok = (virt | (phys != 0)) & (time >= 0)
            key = np.where(virt, addr_keys(sp, addr), addr_keys(np.zeros_like(sp), phys))[ok]
        else:
            tix = targets_of(pid, list(target_pids))
            ok = (tix >= 0) & (addr != 0) & (time >= 0)
            key = addr_keys(tix[ok], addr[ok])
        dropped += int((~ok).sum())
        ts.append(time[ok] + int(offset_ns))
        ks.append(key)
        ws.append(w[ok])
    if not ts:
        return Samples(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), str(d), 0)
    time = np.concatenate(ts)
    o = np.argsort(time, kind="stable")
    return Samples(time[o], np.concatenate(ks)[o], np.concatenate(ws)[o], str(d), dropped)


def _inside_history(smp: Samples, reg: dict) -> Samples:
    """vaddr: only the samples inside the monitored regions (of any snapshot) take part in
    the outcome -- pages outside them are none of the schemes' business."""
    from ..engine.translate import merge_intervals

    _, us, ue = merge_intervals(
        reg["target"], addr_keys(reg["target"], reg["start"]), addr_keys(reg["target"], reg["end"])
    )
    j = np.searchsorted(us, smp.key, side="right") - 1
    inside = (j >= 0) & (smp.key < ue[np.maximum(j, 0)])
    return Samples(
        smp.time_ns[inside],
        smp.key[inside],
        smp.weight[inside],
        smp.note,
        smp.dropped,
        int((~inside).sum()),
    )


def _outcome(events, smp: Samples | None, reg: dict, ctx: Context, fast_tier, bin_ns, say):
    meta: dict = {"modelled": True}
    parts = []
    if not events:
        return meta, _outcome_table([])
    ev_run = np.array([e[0] for e in events], np.int64)
    ev_t = np.array([e[1] for e in events], np.int64)
    ev_kind = np.array([e[2] for e in events])
    ev_key_s = addr_keys([e[3] for e in events], [e[4] for e in events])
    ev_key_e = addr_keys([e[3] for e in events], [e[5] for e in events])
    bin_ns = int(bin_ns or ctx.aggr_us * 1000)
    if bin_ns <= 0:
        raise ConfigError("bin_ns must be positive", cli_message="--bin must be positive")
    s_t = smp.time_ns if smp is not None else np.zeros(0, np.int64)
    s_k = smp.key if smp is not None else np.zeros(0, np.int64)
    s_w = smp.weight if smp is not None else np.zeros(0)
    if smp is not None:
        meta["samples"] = {
            "source": smp.note,
            "used": int(s_t.size),
            "without_address": smp.dropped,
            "outside_the_monitored_regions": smp.outside,
        }
    pageout = ev_kind == "pageout"
    tier = (ev_kind == "hot") | (ev_kind == "cold")
    for run in np.unique(reg["run"]):
        rt = reg["time_ns"][reg["run"] == run]
        t0, t1 = int(rt.min()) - ctx.aggr_us * 1000, int(rt.max())
        edges = np.arange(t0, t1 + bin_ns, bin_ns, dtype=np.int64)
        if edges.size < 2:
            edges = np.array([t0, t0 + bin_ns], np.int64)
        ins = (s_t > t0) & (s_t <= t1)
        m = pageout & (ev_run == run)
        if m.any():
            r = pageout_outcome(ev_t[m], ev_key_s[m], ev_key_e[m], s_t[ins], s_k[ins], t1, edges)
            r["samples"] = bool(smp is not None and ins.any())
            meta["pageout"] = _merge_totals(meta.get("pageout"), r)
            pb = r["per_bin"]
            for i in range(edges.size - 1):
                parts.append(
                    {
                        "run": int(run),
                        "time_ns": int(edges[i + 1]),
                        "model": "pageout",
                        "bytes_applied": int(pb["bytes_applied"][i]),
                        "bytes_out": int(pb["bytes_out"][i]),
                        "reaccesses": int(pb["reaccesses"][i]) if r["samples"] else None,
                        "reaccess_bytes": int(pb["reaccesses"][i]) * PAGE_SIZE
                        if r["samples"]
                        else None,
                    }
                )
        m = tier & (ev_run == run)
        if m.any() or fast_tier is not None:
            if fast_tier is None:
                say("migrate/lru actions: give --fast-tier BYTES for the two-tier outcome model")
                continue
            d = np.where(ev_kind[m] == "hot", 1, -1)
            r = tier_outcome(
                ev_t[m],
                ev_key_s[m],
                ev_key_e[m],
                d,
                s_t[ins],
                s_k[ins],
                s_w[ins],
                int(fast_tier),
                edges,
            )
            meta["tier"] = {k: v for k, v in r.items() if k != "per_bin"}
            pb = r["per_bin"]
            for i in range(edges.size - 1):
                fr, fr0 = pb["fast_ratio"][i], pb["fast_ratio_first_touch"][i]
                parts.append(
                    {
                        "run": int(run),
                        "time_ns": int(edges[i + 1]),
                        "model": "tier",
                        "weight": float(pb["weight"][i]),
                        "fast_ratio": None if np.isnan(fr) else float(fr),
                        "fast_ratio_first_touch": None if np.isnan(fr0) else float(fr0),
                        "bytes_promoted": int(pb["bytes_promoted"][i]),
                        "bytes_demoted": int(pb["bytes_demoted"][i]),
                    }
                )
    return meta, _outcome_table(parts)


def _merge_totals(a: dict | None, b: dict) -> dict:
    b = {k: v for k, v in b.items() if k != "per_bin"}
    if a is None:
        return b
    out = dict(a)
    for k in (
        "bytes_applied",
        "bytes_paged_out",
        "reaccesses",
        "reaccess_bytes",
        "bytes_out_at_end",
        "saving_gib_s",
    ):
        out[k] = a[k] + b[k]
    out["samples"] = a.get("samples") or b.get("samples")
    return out


def _outcome_table(rows: list[dict]) -> pa.Table:
    if not rows:
        from ..schema import empty

        return empty(DAMOS_OUTCOME)
    names = DAMOS_OUTCOME.names
    data = {n: [r.get(n) for r in rows] for n in names}
    return pa.table(
        {
            n: pa.array(data[n], type=DAMOS_OUTCOME.field(n).type if n != "model" else pa.string())
            for n in names
        }
    ).cast(DAMOS_OUTCOME)
