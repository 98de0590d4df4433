"""`tracedamon damos`: DAMOS schemes over an existing region history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

import tracedamon

from ..errors import ConfigError
from . import options as opt

HELP = (
    "Apply DAMOS operation schemes to a recorded region history, exactly as the kernel "
    "applies them, and write the applications the kernel would have made (damos_apply, in "
    "the schema of ingested damos_before_apply events), the schemes' stats per step "
    "(damos_stats) and the modelled outcome of the actions on the recorded workload "
    "(damos_outcome).\n\n"
    "SRC: a trace directory holding an ingested DAMON trace (its regions table) or a "
    "replay output (.parquet).  A real trace's snapshots already show what DAMOS did: the "
    "applications the trace recorded are taken back out before each walk.\n\n"
    "--scheme (repeatable): a preset (reclaim, lru_sort; overridable as "
    "reclaim:min_age=30s,quota_sz=256M), damo JSON (kdamonds layout or a scheme) or a "
    "sysfs dump (grep -r . /sys/kernel/mm/damon/admin/kdamonds/N); FILE#K/C picks kdamond "
    "K context C.  A sysfs dump or damo kdamonds JSON also gives the context (ops, "
    "intervals).\n\n"
    "--quota-resume auto: the quota's resume point (where the walk of a scheme whose quota "
    "ran out carries on) at the first recorded application of each scheme in each run "
    "(the quota state before the recording started is unknown); ADDR or TARGET:ADDR sets "
    "it for every run.  "
    "--check: compare with the recorded applications and print how many match region for "
    "region.\n\n"
    "Modelled (and labelled so): what the ops filters let through without page data "
    "(--unknown-pages), what the actions achieve, the outcome (pageout: re-accesses of "
    "paged-out pages in the samples; migrate/lru: a two-tier model, --fast-tier).\n\n"
    "Output: -o DIR, else SRC/damos (a directory; SRC.damos beside a .parquet).\n\n"
    "Examples:\n\n"
    "  tracedamon damos run.td --scheme kdamond_sysfs_before.txt --quota-resume auto "
    "--check\n\n"
    "  tracedamon damos run.td/replay.parquet --scheme reclaim:wmarks=none,min_age=10s"
)


def _size(text: Optional[str], name: str) -> Optional[int]:
    if text is None:
        return None
    from ..pipeline.schemes import size_bytes  # heavy: see tracedamon.cli

    try:
        return size_bytes(text.replace("_", ""), name)
    except ConfigError:
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a size or an integer") from None


def _quota_resume(quota_resume: Optional[str], resume: Optional[str]) -> Optional[str]:
    """``--quota-resume``, or its deprecated spelling ``--resume`` (kept for one release,
    with a warning: in ``tracedamon sweep`` ``--resume`` continues a sweep)."""
    if resume is None:
        return quota_resume
    print(
        "tracedamon: warning: damos --resume is deprecated and will be removed in the "
        "next release: use --quota-resume",
        file=sys.stderr,
    )
    if quota_resume is not None and quota_resume != resume:
        raise ConfigError(
            f"--quota-resume {quota_resume!r} and --resume {resume!r}: give --quota-resume only"
        )
    return quota_resume if quota_resume is not None else resume


def default_output(src: Path) -> Path:
    if src.is_dir():
        return src / "damos"
    return src.with_suffix(".damos")


def damos_cmd(
    src: Path = typer.Argument(..., help="trace directory (DAMON trace) or replay .parquet"),
    scheme: List[str] = opt.schemes("preset, damo JSON or sysfs dump (repeatable)", required=True),
    out: Optional[Path] = opt.output("output directory [SRC/damos]"),
    force: bool = opt.force(),
    quota_resume: Optional[str] = typer.Option(
        None, "--quota-resume", help="the quota's resume point: auto, ADDR or TARGET:ADDR"
    ),
    resume: Optional[str] = typer.Option(
        None, "--resume", hidden=True, help="deprecated spelling of --quota-resume"
    ),
    check: bool = typer.Option(False, "--check", help="compare with the recorded applications"),
    kernel: str = opt.kernel(
        "released (v6.15-v6.18 with the stable resume fix), released-nofix, mainline-2026"
    ),
    ops: Optional[str] = opt.ops(),
    sample_us: Optional[int] = opt.sample_us(),
    aggr_us: Optional[int] = opt.aggr_us(),
    min_region: Optional[str] = opt.min_region(),
    hz: int = typer.Option(250, "--hz", help="jiffies per second (0: exact ms)"),
    unknown_pages: str = opt.unknown_pages(
        "ops-filter verdict of pages without page data: pass or reject"
    ),
    pagemap: Optional[Path] = opt.pagemap(),
    samples: Optional[Path] = typer.Option(
        None, "--samples-from", help="trace directory with the workload's samples (outcome model)"
    ),
    samples_old: Optional[Path] = opt.deprecated("--samples", "--samples-from"),
    offset: int = opt.offset("ns added to the sample times"),
    fast_tier: Optional[str] = typer.Option(
        None, "--fast-tier", help="fast-tier size for migrate/lru actions (e.g. 256M)"
    ),
    free_mem: Optional[Path] = typer.Option(
        None, "--free-mem", help="CSV time_ns,permil of free memory (free_mem_rate watermarks)"
    ),
    goal: List[str] = typer.Option(
        [], "--goal-series", help="METRIC=CSV (time_ns,value) for quota goals"
    ),
    bin_: Optional[str] = typer.Option(
        None, "--bin", help="outcome time bin (default: aggregation)"
    ),
    weight: str = typer.Option(
        "period", "--weight", help="tier model sample weight: period, latency, count"
    ),
    ns_per_region: int = typer.Option(
        0,
        "--ns-per-region",
        help="modelled ops time per applied region (time quotas; 0: the kernel's 4 MiB/ms)",
    ),
    ns_per_byte: float = typer.Option(
        0.0, "--ns-per-byte", help="modelled ops time per applied byte"
    ),
    quiet: bool = opt.quiet(),
) -> None:
    from ..pipeline.damos_replay import recorded_input  # heavy: see tracedamon.cli
    from ..pipeline.schemes import time_ns  # heavy: see tracedamon.cli
    from ..store.atomic import TRACE_DIR, check_output  # heavy: see tracedamon.cli

    samples = samples or samples_old
    quota_resume = _quota_resume(quota_resume, resume)
    goals = {}
    for g in goal:
        if "=" not in g:
            raise ConfigError(f"--goal-series {g!r}: METRIC=FILE")
        k, v = g.split("=", 1)
        goals[k] = v
    dest = out if out is not None else default_output(src)
    check_output(
        dest,
        TRACE_DIR,
        force=force,
        inputs=[
            src,
            recorded_input(src),
            pagemap,
            samples,
            free_mem,
            *goals.values(),
            *(s.split(":", 1)[0].split("#", 1)[0] for s in scheme),
        ],
    )
    res = tracedamon.damos(
        src,
        scheme,
        resume=quota_resume,
        check=check,
        kernel=kernel,
        ops=ops,
        sample_us=sample_us,
        aggr_us=aggr_us,
        min_region=opt.parse_int(min_region, "--min-region"),
        hz=hz,
        unknown_pages=unknown_pages,
        pagemap=pagemap,
        samples=samples,
        offset_ns=offset,
        fast_tier=_size(fast_tier, "--fast-tier"),
        free_mem=free_mem,
        goal_series=goals or None,
        bin_ns=time_ns(bin_, "ns", "--bin") if bin_ else None,
        weight=weight,
        ns_per_region_call=ns_per_region,
        ns_per_byte=ns_per_byte,
        warn=lambda m: print(f"tracedamon: warning: {m}", file=sys.stderr),
    )
    res.to_dir(dest, force=force)
    if not quiet:
        typer.echo(res.summary())
        typer.echo(f"wrote {dest}")


def register(app: typer.Typer) -> None:
    app.command("damos", help=HELP)(damos_cmd)
