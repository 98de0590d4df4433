"""`tracedamon sweep`: replay a grid of DAMON configurations over traces, on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

import tracedamon

from . import options as opt
from .progress import progress_bar
from .warn import with_history_warnings

HELP = (
    "Which DAMON settings would have served best? Replay every trace directory SRC with "
    "every configuration of the grid (the cross product of the --grid lists, x --seeds "
    "where the result depends on the seed), score each run against --reference (a region "
    "history: the real DAMON trace of the run, or a replay taken as reference; '{src}' "
    "stands for each source's path) or --truth (ground-truth ranges) and by what the "
    "monitoring costs (regions per snapshot, access checks per second), and write one "
    "tidy Parquet table: one row per (source, configuration, seed).\n\n"
    "--grid KEY=V1,V2,...: any replay option by its command-line name (sample-us, aggr-us, "
    "update-us, min-nr-regions, max-nr-regions, min-region, max-region, "
    "min-nr-regions-mode, access, ops, event, pid, range, start, seed, fix, rng-streams, "
    "kernel, goal-*); join several values of one option with '+' (event=a+b: both OR'ed). "
    "Options held fixed pass through as in `replay` (--ops, --pid, --range, --access, "
    "--event, --start, --pagemap), or as a one-value --grid.\n\n"
    "Tasks run on Dask distributed: a local cluster of --workers processes (default: the "
    "CPUs, in this process on a machine of 2 CPUs or fewer; --workers 1 runs in this process), or an existing cluster with --scheduler "
    "tcp://HOST:PORT whose workers see the same paths. Each worker reads a source's "
    "samples once for all the configurations it runs. Finished rows go to "
    "OUTPUT.partial.jsonl as they arrive; an interrupted sweep continues with --resume. "
    "A configuration the kernel would reject gets its message in the error column.\n\n"
    "--scheme (repeatable, as in `tracedamon damos`): DAMOS schemes run over every "
    "replayed history, with the source's samples for the outcome models: damos_* columns "
    "(applications, bytes tried and applied, quota exceeds, pageout re-accesses, "
    "fast-tier hit ratio).\n\n"
    "Example:\n\n"
    "  tracedamon sweep run.td --start auto --grid sample-us=5000,10000,20000 "
    "--grid min-nr-regions=10,50 --grid access=perf,abit --reference run.td/regions.parquet "
    "-o sweep.parquet --png pareto.png"
)


@with_history_warnings
def sweep_cmd(
    sources: List[str] = typer.Argument(
        ..., help="trace directories (globs expand), or fsspec URLs (file:///abs/run.td, s3://...)"
    ),
    grid: List[str] = typer.Option([], "--grid", help="KEY=V1,V2,... (repeatable)"),
    seeds: int = typer.Option(1, "--seeds", help="seeds per seed-dependent configuration"),
    reference: Optional[str] = typer.Option(
        None,
        "--reference",
        help="region history to compare each run with ('{src}' = the source's path)",
    ),
    truth: Optional[Path] = opt.truth(),
    scheme: List[str] = opt.schemes(
        "DAMOS schemes run over every replay (preset, damo JSON "
        "or sysfs dump, as in `tracedamon damos`; repeatable): "
        "damos_* columns"
    ),
    scheduler: Optional[str] = opt.scheduler(),
    workers: Optional[int] = opt.workers(),
    out: Path = opt.output("the sweep table (Parquet)", Path("sweep.parquet")),
    png: Optional[Path] = opt.png("draw the Pareto front of accuracy vs access checks per second"),
    accuracy: Optional[str] = typer.Option(
        None,
        "--accuracy",
        help="the accuracy column of the Pareto front "
        "(default: ref_hot_0_5_f1, else "
        "truth_hot_0_5_f1)",
    ),
    keep_histories: Optional[Path] = typer.Option(
        None, "--keep-histories", help="keep every run's region history in this directory"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="skip the tasks already finished (side file, output)"
    ),
    force: bool = opt.force(),
    ops: Optional[str] = opt.ops(help="fixed: vaddr, fvaddr or paddr"),
    pid: List[int] = opt.pids("fixed target pid (repeatable)"),
    range_: List[str] = opt.ranges("fixed START-END (repeatable)"),
    access: Optional[str] = opt.access(help="fixed access check: perf, perf-phys or abit"),
    event: List[str] = opt.events("fixed event (repeatable)"),
    start: Optional[str] = opt.start("fixed t0: ns or auto"),
    pagemap: Optional[Path] = opt.pagemap(),
    quiet: bool = opt.quiet(),
) -> None:
    fixed = {
        "ops": ops,
        "pid": pid,
        "range": range_,
        "access": access,
        "event": event,
        "start": start,
        "pagemap": pagemap,
    }
    kw = dict(
        seeds=seeds,
        fixed=fixed,
        reference=reference,
        truth=truth,
        scheme=scheme or None,
        scheduler=scheduler,
        workers=workers,
        output=out,
        resume=resume,
        force=force,
        keep_histories=keep_histories,
        png=png,
        accuracy=accuracy,
    )
    df = _run(sources, grid, kw, quiet=quiet)
    if not quiet:
        print_summary(df, accuracy)
        typer.echo(f"wrote {out}")
        if png is not None:
            typer.echo(f"wrote {png}")


def _run(sources, grid, kw: dict, *, quiet: bool):
    """``tracedamon.sweep`` with a progress bar; an interrupted sweep says where its
    finished rows are."""
    from ..pipeline.sweep.runner import (  # heavy: see tracedamon.cli
        IN_PROCESS_CPUS,
        default_workers,
        have_dask,
    )

    workers, scheduler = kw["workers"], kw["scheduler"]
    n = default_workers() if workers is None else workers
    cluster = n > 1 and (workers is not None or n > IN_PROCESS_CPUS)
    if cluster and scheduler is None and not have_dask():
        typer.echo(
            "tracedamon: Dask distributed is not installed: running in this "
            "process (pip install 'tracedamon[dask]')",
            err=True,
        )
    side = Path(str(kw["output"]) + ".partial.jsonl")
    try:
        with progress_bar("sweep", quiet=quiet) as bar:
            return tracedamon.sweep(
                sources,
                grid,
                progress=None if bar is None else (lambda done, total, row: bar(done, total, None)),
                **kw,
            )
    except KeyboardInterrupt:
        if side.exists():
            typer.echo(
                f"tracedamon: interrupted; finished rows are kept in {side}: "
                "run the same command with --resume to continue",
                err=True,
            )
        raise


def register(app: typer.Typer) -> None:
    app.command("sweep", help=HELP)(sweep_cmd)


def print_summary(df, accuracy: Optional[str] = None) -> None:
    """The best configuration per metric and the Pareto front, as rich tables."""
    from rich.console import Console
    from rich.table import Table

    # heavy: see tracedamon.cli
    from ..pipeline.sweep.summary import best, default_accuracy, describe, pareto, per_configuration

    meta = df.attrs["tracedamon_sweep"]
    gc = meta["grid_columns"]
    con = Console()
    n_err = int(df["error"].notna().sum())
    con.print(
        f"sweep: {len(meta['sources'])} source(s) x {df['config_id'].nunique()} "
        f"configurations = {len(df)} rows ({meta['ran']}"
        + (f"; {meta['reused_rows']} rows from an earlier run" if meta["reused_rows"] else "")
        + f"); {n_err} refused"
    )
    for msg, n in df["error"].dropna().value_counts().head(3).items():
        con.print(f"  refused x{n}: {msg}")
    per = per_configuration(df, gc)
    b = best(per, gc)
    if len(b):
        t = Table(title="best configuration per metric (mean over sources and seeds)")
        for c in ("metric", "better", "value", "configuration"):
            t.add_column(c, justify="right" if c == "value" else "left")
        shown = b[
            b.metric.str.contains(r"f1$|spearman$|relative_error$|checks_per_s$")
            | ~b.metric.str.startswith(("ref_", "truth_"))
        ]
        for r in (shown if len(shown) else b).itertuples():
            t.add_row(r.metric, r.better, f"{r.value:.4g}", r.configuration)
        con.print(t)
    acc = accuracy or default_accuracy(per.columns)
    if acc is not None and acc in per:
        front = pareto(per, acc)
        t = Table(title=f"Pareto front: {acc} (higher) vs access checks per second (lower)")
        t.add_column("checks/s", justify="right")
        t.add_column(acc, justify="right")
        t.add_column("regions", justify="right")
        t.add_column("configuration")
        for _, r in front.iterrows():
            t.add_row(
                f"{r['checks_per_s']:.4g}",
                f"{r[acc]:.4g}",
                f"{r['regions_mean']:.1f}",
                describe(r, gc),
            )
        con.print(t)
