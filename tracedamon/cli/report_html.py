"""`tracedamon report html`: one self-contained HTML file to explore region histories."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..units import format_bytes
from . import options as opt


def html_cmd(
    src: Path = typer.Argument(..., help="region history: trace directory or regions .parquet"),
    out: Path = opt.output("the HTML file to write", ...),
    diff: Optional[Path] = typer.Option(
        None,
        "--diff",
        help="other region history: show both, and OTHER - SRC on compare's "
        "common grid with compare's metrics",
    ),
    samples: bool = typer.Option(
        False,
        "--samples",
        help="draw the raw samples (of SRC's trace directory, or the one "
        "the replay's metadata names) over the heatmap",
    ),
    samples_from: Optional[Path] = typer.Option(
        None, "--samples-from", help="trace directory whose samples to draw (implies --samples)"
    ),
    damos: Optional[Path] = typer.Option(
        None,
        "--damos",
        help="damos_apply table (trace directory or .parquet): scheme "
        "applications drawn over the heatmap",
    ),
    truth: Optional[Path] = opt.truth(
        "ground-truth ranges CSV/JSON (start,end,label "
        "hot|warm|cold) marked beside the address axis"
    ),
    offset: int = opt.offset("--diff: ns added to OTHER's times"),
    max_samples: int = typer.Option(
        100_000, "--max-samples", help="at most this many samples (a uniform random subset)"
    ),
    title: Optional[str] = typer.Option(None, "--title", help="page title"),
    force: bool = opt.force(),
    quiet: bool = opt.quiet(),
) -> None:
    """One HTML file (no network needed) to explore a region history: a zoomable time x
    address heatmap with hover, working-set size, region counts and the access-frequency
    distribution, linked in time; optionally a second history and the difference
    (--diff), raw samples (--samples), DAMOS applications (--damos) and ground truth
    (--truth).

    Example:  tracedamon report html replay-perf.parquet --diff replay-abit.parquet -o report.html
    """
    from ..export.html import build_report  # heavy: see tracedamon.cli
    from ..store.atomic import HTML_REPORT, check_output  # heavy: see tracedamon.cli

    inputs = [src, diff, samples_from, damos, truth]
    check_output(out, HTML_REPORT, force=force, inputs=inputs)  # before any work
    rep = build_report(
        src,
        diff=diff,
        samples=samples,
        samples_from=samples_from,
        damos=damos,
        truth=truth,
        max_samples=max_samples,
        title=title,
        offset_ns=offset,
    )
    rep.write(out, force=force, inputs=[i for i in inputs if i is not None])
    if quiet:
        return
    s = rep.summary
    typer.echo(
        f"wrote {out}: {format_bytes(s['bytes'])}, {s['rows']:,} region rows in "
        f"{s['spaces']} address space(s)"
    )
    for n in s["notes"]:
        typer.echo(f"note: {n}")


def register(report_app: typer.Typer) -> None:
    report_app.command(
        "html",
        help=html_cmd.__doc__.replace("    ", "").strip(),
    )(html_cmd)
