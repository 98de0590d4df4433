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

This module runs the walk; around it: :mod:`.damos_inputs` (scheme files, context,
resume point, metric series, page data), :mod:`.damos_history` (the history and the
pre-apply state), :mod:`.damos_outcome` (samples and the outcome models),
:mod:`.damos_tables` (:class:`DamosResult` and its tables), :mod:`.damos_summary` (what
the command prints).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .. import __version__
from ..engine.damos import (
    apply_schemes,
    new_state,
    profile as _profile,
    set_resume,
    update_watermarks,
)
from ..engine.damos.inloop import KIND_OF
from ..errors import ConfigError
from .damos_history import (
    ResetCarry,
    Source,
    assign_recorded,
    compare_applications,
    open_source,
    region_arrays,
    subtract_intervals,
    target_mm_exits,
    undo_recorded,
)
from .damos_inputs import Pages, context_of, page_data, parse_resume, provenance, series, value_at
from .damos_outcome import inside_history, load_samples, model_outcome
from .damos_tables import DamosResult, apps_table, stats_table
from .schemes import schemes_of

DEFAULT_DIRNAME = "damos"


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

    files, ctx = context_of(
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
    pages = page_data(all_schemes, ops, source, pagemap, unknown_pages, success, say)
    w = _Walk(all_schemes, ctx, prof, pages, resume)
    w.mm_exits = target_mm_exits(source)
    _read_recorded(w, source, check, resume, say)
    w.fixed_resume = parse_resume(resume) if resume not in (None, "auto") else None
    w.free = series(free_mem)
    if w.free is not None and w.reg["time_ns"].size and w.free[0][0] > w.reg["time_ns"].min():
        say(
            "the free-memory series starts after the history's first snapshot: until its "
            "first value the watermarks keep the kernel's initial state (active)"
        )
    w.goals = {k: series(v) for k, v in (goal_series or {}).items()}
    for run in np.unique(w.reg["run"]):
        _walk_run(w, run)
    applications = apps_table(w.app_cols)
    stats = stats_table(w.stat_rows)

    # the outcome
    smp = load_samples(samples, source, ops, pages.target_pids, pages.spaces, offset_ns, weight)
    if smp is not None and ops != "paddr":
        smp = inside_history(smp, w.reg)
    outcome_meta, outcome = model_outcome(w.events, smp, w.reg, ctx, fast_tier, bin_ns, say)

    meta = _metadata(w, source, files, outcome_meta, warnings, unknown_pages, success)
    chk = compare_applications(w.rec_by_step, w.app_cols, resume == "auto") if check else None
    if chk is not None:
        meta["check"] = chk
    return DamosResult(applications, stats, outcome, meta, chk)


class _Walk:
    """What the walk over a history's runs reads and what it collects."""

    def __init__(self, all_schemes, ctx, prof, pages: Pages, resume):
        self.all_schemes, self.ctx, self.prof, self.pages = all_schemes, ctx, prof, pages
        self.resume = resume
        self.reg = self.runs_meta = self.rec_by_step = None
        self.mm_exits: list[int | None] | None = None  # per target: when its mm went
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
        w.resume_info.append(
            {"run": int(run), "resume": list(w.fixed_resume), "from": "--quota-resume"}
        )
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
    gv = {k: value_at(v, t) for k, v in w.goals.items()}
    gv = {k: v for k, v in gv.items() if v is not None}
    model, oracle = w.pages.model, w.pages.oracle
    res = apply_schemes(
        state,
        regs,
        sis=sis,
        now_ns=t,
        goal_values=gv or None,
        ops_model=model,
        mm_exit_ns=w.mm_exits,
    )
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


def _read_recorded(w: "_Walk", source: Source, check: bool, resume, say) -> None:
    """The history's region arrays and its recorded applications, each put in the
    snapshot emitted right after it; ``check`` and ``resume="auto"`` need them."""
    w.reg = region_arrays(source.regions)
    w.runs_meta = {r.get("run"): r for r in source.meta.get("damon_runs", [])}
    w.rec_by_step, rec_unassigned = assign_recorded(
        source.recorded, w.reg, w.runs_meta, w.ctx.aggr_us
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
            cli_message=f"--quota-resume auto: {msg} (--quota-resume ADDR) or none",
        )


def _metadata(w: "_Walk", source: Source, files, outcome_meta, warnings, unknown_pages, success):
    """``meta.json``'s ``damos``: the schemes, the kernel profile, the context, every
    model and default used, what the run read."""
    pages, prof = w.pages, w.prof
    return {
        "engine": f"tracedamon {__version__}",
        "source": {"path": str(source.path), "kind": source.kind},
        "schemes": [s.to_dict() for s in w.all_schemes],
        "scheme_sources": [f.source for f in files],
        "scheme_notes": [n for f in files for n in f.notes],
        "kernel": prof.name,
        "profile": prof.to_dict(),
        "context": w.ctx.to_dict(),
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
        "inputs": provenance(source, files),
    }
