"""`tracedamon replay`: re-run DAMON's monitor over a trace directory's samples."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

import tracedamon

from ..errors import ConfigError, InputError
from . import options as opt
from .progress import progress_bar

HELP = (
    "Replay recorded memory-access samples through an offline re-implementation of DAMON's "
    "monitor (regions, sampling, aggregation, merge/split, ages) and write the region history "
    "DAMON would have produced, as a regions table.\n\n"
    "This re-runs the MONITOR over recorded accesses. It is not damo's `replay`, which "
    "re-generates the recorded accesses on a live machine.\n\n"
    "Access check (--access): perf = the perf-event check of the DAMON RFC with the samples' "
    "virtual addresses (pid + page; paddr: at the frames the --pagemap snapshots map them "
    "to); perf-phys = their physical addresses (paddr directly, vaddr through pagemap "
    "snapshots); abit = the accessed-bit check emulated over the samples (one random "
    "address per region per sample interval).\n\n"
    "Time grid: sample interval k covers [t0 + k*S, t0 + (k+1)*S), t0 = --start or the first "
    "sample of the trace; only complete aggregations are written; the replay ends with the "
    "interval of the last sample. vaddr takes its initial regions from the mappings known at "
    "t0 by the kernel's three-regions rule, and refits them only at ops updates (--update-us): "
    "on a `perf record -- cmd` trace the process has too few mappings at its first sample, "
    "so vaddr then starts, by default, as --start auto does: the time from which the "
    "target's mappings give three regions covering the most of its samples until the first "
    "ops update (a warning says so; the choice and why are in the output's metadata, "
    "t0_source and t0_auto); --start first keeps the first sample, as a kdamond started at "
    "exec would (no regions until the first ops update).\n\n"
    "Output: -o FILE, else DIR/replay.parquet (DIR/regions.parquet, an ingested DAMON trace, "
    "is never overwritten), written snapshot by snapshot as the replay runs; an existing "
    "output is replaced only with --force, and only a region history tracedamon wrote. "
    "Same input + options + seed give a byte-identical file. Every "
    "region of every snapshot is written, like DAMON's own trace, unless --accessed-only; "
    "when that would exceed --max-rows rows (fixed granularity over a big space: a vaddr "
    "target's three regions can hold tens of millions of 4 KiB regions), only regions with "
    "accesses are written, with a warning and the reason in the metadata. A replay with "
    "nothing to do (no sample of --pid, no addresses, shorter than one aggregation, no "
    "region in any snapshot) is refused with the reason, and writes nothing.\n\n"
    "DAMOS (--scheme FILE, repeatable): operation schemes run inside the replayed loop, "
    "where the kernel runs them (after the merge of an aggregation, before the reset and "
    "split), so their quota, resume and address-filter splits and their age resets shape "
    "the history written after them, as in the kernel; the snapshots show what DAMOS did "
    "(applied regions at age 0), like a real trace's damon_aggregated lines. A preset "
    "(reclaim, lru_sort; overridable: reclaim:wmarks=none,min_age=30s,quota_sz=256M), damo "
    "JSON or a sysfs dump (grep -r . /sys/kernel/mm/damon/admin/kdamonds/N; its monitoring "
    "attributes -- ops, intervals, nr_regions -- become this replay's defaults). Besides "
    "OUTPUT.parquet it writes OUTPUT.damos/, as `tracedamon damos` does: damos_apply (the "
    "applications, in the schema of ingested damos_before_apply events), damos_stats and the "
    "modelled damos_outcome. Ops filters read the trace's pagemap snapshots (else "
    "--unknown-pages decides).\n\n"
    "Examples:\n\n"
    "  tracedamon replay run.td --ops fvaddr --range 0x200000000000-0x200000120000 "
    "--sample-us 10000\n\n"
    "  tracedamon replay run.td --ops vaddr --start auto --min-region 4096 --max-region 4096"
    "\n\n"
    "  tracedamon replay run.td --ops paddr --pagemap pagemap.td   (virtual samples, "
    "counted at their frames)"
)


FIXES = {"age-once": "fix_age_once", "rand32": "fix_rand32", "pa-cache": "fix_pa_cache"}

# the options only `replay` takes (those several commands share come from .options)
MIN_NR_REGIONS_OPTION = typer.Option(None, "--min-nr-regions", help="[10]")
MAX_NR_REGIONS_OPTION = typer.Option(None, "--max-nr-regions", help="[1000]")
MAX_REGION_OPTION = typer.Option(
    None,
    "--max-region",
    help="maximum region size (power of two); == --min-region: fixed granularity",
)
SEED_OPTION = typer.Option(0, "--seed", help="random seed (splits, abit sampling)")
MIN_NR_REGIONS_MODE_OPTION = typer.Option(
    None,
    "--min-nr-regions-mode",
    help="legacy (released kernels) or apply (2026 series: split to honour it); "
    "default: the --kernel profile's (released: legacy)",
)
FOLIOS_OPTION = typer.Option(
    "auto",
    "--folios",
    help="abit's unit: auto = THP / hugetlb folios where the "
    "pagemap snapshots show them, else 4 KiB pages; "
    "4k = 4 KiB pages always",
)
ACCESSED_ONLY_OPTION = typer.Option(
    False,
    "--accessed-only",
    help="write only regions with nr_accesses > 0 (for very large region counts)",
)
MAX_ROWS_OPTION = typer.Option(
    20_000_000,
    "--max-rows",
    help="when every region of every snapshot would exceed "
    "this many rows, write only regions with accesses "
    "(with a warning); 0 = no limit",
)
GOAL_ACCESS_BP_OPTION = typer.Option(
    0,
    "--goal-access-bp",
    help="intervals auto-tuning: target access ratio (bp); with --goal-aggrs",
)
GOAL_AGGRS_OPTION = typer.Option(
    0, "--goal-aggrs", help="intervals auto-tuning: aggregations per tuning (0 = off)"
)
GOAL_MIN_SAMPLE_US_OPTION = typer.Option(0, "--goal-min-sample-us")
GOAL_MAX_SAMPLE_US_OPTION = typer.Option(0, "--goal-max-sample-us")
FIX_OPTION = typer.Option(
    [],
    "--fix",
    help="fix a mirrored kernel quirk (repeatable): age-once (Q3), rand32 (Q1), pa-cache (Q5)",
)
RNG_STREAMS_OPTION = typer.Option(
    "single",
    "--rng-streams",
    help="single (the kernel's one stream) or split (separate sampling and split generators)",
)
DAMON_TRACE_OPTION = typer.Option(
    None,
    "--damon-trace",
    help="also write the history as "
    "damon:damon_aggregated perf script "
    "lines (what a real DAMON trace holds)",
)


def replay_cmd(
    trace_dir: Path = typer.Argument(..., help="trace directory (from `tracedamon ingest`)"),
    out: Optional[Path] = opt.output("output regions Parquet [DIR/replay.parquet]"),
    ops: Optional[str] = opt.ops(help="operations set: vaddr, fvaddr or paddr [vaddr]"),
    pid: List[int] = opt.pids(
        "target pid (repeatable; vaddr default: the process with the most samples)"
    ),
    range_: List[str] = opt.ranges("START-END, decimal or 0x-hex (repeatable; fvaddr, paddr)"),
    access: str = opt.access("perf"),
    event: List[str] = opt.events("count samples of this event (repeatable, OR'ed; default all)"),
    pagemap: Optional[Path] = opt.pagemap(
        "trace directory with pagemap snapshots "
        "(perf-phys with vaddr/fvaddr; paddr from virtual "
        "samples)"
    ),
    sample_us: Optional[int] = opt.sample_us(help="sampling interval, us [5000]"),
    aggr_us: Optional[int] = opt.aggr_us(help="aggregation interval, us [100000]"),
    update_us: Optional[int] = opt.update_us(help="ops update interval, us [60000000]"),
    min_nr_regions: Optional[int] = MIN_NR_REGIONS_OPTION,
    max_nr_regions: Optional[int] = MAX_NR_REGIONS_OPTION,
    min_region: str = opt.min_region(
        "4096",
        "minimum region size, a power of two >= 64 (below 4096: --access perf/perf-phys only)",
    ),
    max_region: Optional[str] = MAX_REGION_OPTION,
    seed: int = SEED_OPTION,
    min_nr_regions_mode: Optional[str] = MIN_NR_REGIONS_MODE_OPTION,
    kernel: str = opt.kernel(
        "kernel profile: released (v6.15-v6.18), released-nofix (the "
        "same monitoring; its DAMOS differs) or mainline-2026 (partial "
        "split above max/2, ages once per merge, apply-mode "
        "min_nr_regions, per-context lfsr113 PRNG, moving-sum "
        "nr_accesses, all System RAM for paddr)"
    ),
    start: Optional[str] = opt.start(
        "t0 in ns, 'auto' (vaddr: when the target's mappings "
        "give useful three regions) or 'first' (the first "
        "sample); default: the first sample, or for vaddr 'auto' "
        "when the first sample gives a target no regions"
    ),
    folios: str = FOLIOS_OPTION,
    accessed_only: bool = ACCESSED_ONLY_OPTION,
    max_rows: int = MAX_ROWS_OPTION,
    goal_access_bp: int = GOAL_ACCESS_BP_OPTION,
    goal_aggrs: int = GOAL_AGGRS_OPTION,
    goal_min_sample_us: int = GOAL_MIN_SAMPLE_US_OPTION,
    goal_max_sample_us: int = GOAL_MAX_SAMPLE_US_OPTION,
    fix: List[str] = FIX_OPTION,
    rng_streams: str = RNG_STREAMS_OPTION,
    trace_text: Optional[Path] = DAMON_TRACE_OPTION,
    scheme: List[str] = opt.schemes(
        "DAMOS scheme run inside the loop: preset, damo JSON or sysfs dump (repeatable)"
    ),
    unknown_pages: str = opt.unknown_pages(
        "with --scheme: ops-filter verdict of pages without page data: pass or reject"
    ),
    quiet: bool = opt.quiet(),
    force: bool = opt.force(),
) -> None:
    # heavy: loaded when the command runs (see tracedamon.cli)
    from ..pipeline.damos_replay import in_loop
    from ..pipeline.replay import DEFAULT_OUTPUT

    _refuse(fix, trace_dir, trace_text, accessed_only)
    ops, cfg = _config(
        scheme,
        dict(
            ops=ops,
            sample_us=sample_us,
            aggr_us=aggr_us,
            update_us=update_us,
            min_nr_regions=min_nr_regions,
            max_nr_regions=max_nr_regions,
        ),
        min_region=min_region,
        max_region=max_region,
        fix=fix,
        seed=seed,
        min_nr_regions_mode=min_nr_regions_mode,
        goal_access_bp=goal_access_bp,
        goal_aggrs=goal_aggrs,
        goal_min_sample_us=goal_min_sample_us,
        goal_max_sample_us=goal_max_sample_us,
        rng_streams=rng_streams,
        kernel=kernel,
    )
    dest = out if out is not None else trace_dir / DEFAULT_OUTPUT
    _check_outputs(dest, trace_dir, pagemap, scheme, trace_text, force)
    with progress_bar("replaying", quiet=quiet) as bar:
        h = tracedamon.replay(
            trace_dir,
            ops=ops,
            pids=pid,
            ranges=range_,
            access=access,
            events=event,
            pagemap=pagemap,
            folios=folios,
            start_ns=start,
            accessed_only=accessed_only,
            max_rows=max_rows or None,
            config=cfg,
            output=dest,
            force=force,  # written snapshot by snapshot
            damos=in_loop(list(scheme), unknown_pages=unknown_pages) if scheme else None,
            progress=None if bar is None else (lambda psi: bar(psi, None, "sample intervals")),
        )
    if trace_text is not None:
        h.to_damon_trace(trace_text, force=force)
    if not quiet:
        _print_summary(h, dest)


def _refuse(fix, trace_dir: Path, trace_text, accessed_only: bool) -> None:
    """Options that cannot work, refused before any work."""
    unknown = [f for f in fix if f not in FIXES]
    if unknown:
        raise ConfigError(f"--fix {unknown[0]}: choose from {', '.join(FIXES)}")
    if not trace_dir.is_dir():
        raise InputError(f"{trace_dir}: not a trace directory")
    if trace_text is not None and accessed_only:
        raise ConfigError(
            "--damon-trace lists every region of a snapshot (nr_regions), "
            "which --accessed-only leaves out: drop one of the two"
        )


def _config(scheme: List[str], given: dict, min_region, max_region, fix, **fields):
    """(ops, MonitorConfig): the monitoring attributes (``given``, else a scheme file's,
    else the kernel's defaults), the region sizes read from their text, the quirk fixes
    asked for and the other ``fields`` of the configuration."""
    mon = _monitoring(scheme, **given)
    ops = mon.pop("ops")
    cfg = tracedamon.MonitorConfig(
        **mon,
        min_region=opt.parse_int(min_region, "--min-region"),
        max_region=opt.parse_int(max_region, "--max-region"),
        **fields,
        **{FIXES[f]: True for f in fix},
    )
    return ops, cfg


def _monitoring(scheme: List[str], **given) -> dict:
    """The monitoring attributes: those given, else a scheme file's (a sysfs dump or damo
    kdamonds JSON), else the kernel's defaults."""
    mon = {}
    if scheme:
        from ..pipeline.damos_replay import monitoring_defaults, scheme_files  # heavy

        mon = monitoring_defaults(
            scheme_files(
                scheme, sample_us=given["sample_us"] or 5000, aggr_us=given["aggr_us"] or 100000
            )
        )
    return {k: v if v is not None else mon.get(k, DEFAULTS[k]) for k, v in given.items()}


DEFAULTS = {
    "ops": "vaddr",
    "sample_us": 5000,
    "aggr_us": 100000,
    "update_us": 60000000,
    "min_nr_regions": 10,
    "max_nr_regions": 1000,
}


def _check_outputs(dest: Path, trace_dir: Path, pagemap, scheme, trace_text, force: bool) -> None:
    """Every output the command will write, checked against the output rule before any
    work: the history, the schemes' directory beside it, the DAMON trace text."""
    # heavy: loaded when the command runs (see tracedamon.cli)
    from ..pipeline.damos_replay import damos_output
    from ..store.atomic import DAMON_TRACE_TEXT, REGION_HISTORY, TRACE_DIR, check_output

    check_output(dest, REGION_HISTORY, force=force, inputs=[trace_dir, pagemap])
    if scheme:
        check_output(
            damos_output(dest),
            TRACE_DIR,
            force=force,
            inputs=[
                trace_dir,
                pagemap,
                dest,
                *(x.split(":", 1)[0].split("#", 1)[0] for x in scheme),
            ],
        )
    if trace_text is not None:
        check_output(trace_text, DAMON_TRACE_TEXT, force=force, inputs=[trace_dir, pagemap, dest])


def _print_summary(h, dest: Path) -> None:
    """What the replay wrote: the history's summary, the schemes' (with their notes)."""
    # heavy: loaded when the command runs (see tracedamon.cli)
    from ..pipeline.damos_replay import damos_output

    typer.echo(h.summary())
    if h.damos is not None:
        typer.echo(h.damos.summary())
        for note in h.damos.metadata.get("notes", []):
            typer.echo(f"note: {note}")
        typer.echo(f"wrote {damos_output(dest)}")
    typer.echo(f"wrote {dest}")


def register(app: typer.Typer) -> None:
    app.command("replay", help=HELP)(replay_cmd)
