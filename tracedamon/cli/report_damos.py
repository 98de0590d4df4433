"""`tracedamon report damos`: DAMOS applications over the heatmap, their bytes and
outcome over time, and a per-scheme summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options as opt
from .warn import one_line_warnings


def damos_cmd(
    src: Path = typer.Argument(
        ...,
        help="a tracedamon damos output, a history with its "
        "damos output beside it, or a DAMON trace with "
        "damos_before_apply events",
    ),
    png: Optional[Path] = opt.png("write the picture"),
    history: Optional[Path] = typer.Option(
        None,
        "--history",
        help="the region history the schemes ran on (default: the one the damos output names)",
    ),
    width: int = opt.width(1100),
    height: int = opt.height(1000),
    force: bool = opt.force(),
) -> None:
    """What DAMOS schemes did: per scheme, the applications (walks that handed regions to
    the action), bytes tried and applied, quota exceeds, and the modelled outcome
    (pageout: bytes out, re-accesses; tiers: fast-tier hit ratio); with --png, the
    applications laid over the history's heatmap, bytes per application and bytes paged
    out, re-accesses and the fast-tier hit ratio over time.

    SRC: a directory written by `tracedamon damos` (its history is the one its metadata
    names, or --history); a region history whose damos output lies at the default place
    (DIR/damos, X.damos beside X.parquet); or a DAMON trace with damos_before_apply events
    (the kernel's own applications; no stats or outcome).

    Example:  tracedamon report damos run.td/replay.damos --png damos.png
    """
    from ..export.damos_report import damos_report  # heavy: see tracedamon.cli
    from ..store.atomic import PNG_PLOT, check_output  # heavy: see tracedamon.cli

    if png is not None:
        check_output(png, PNG_PLOT, force=force, inputs=[src, history])  # before any work
    with one_line_warnings():
        rep = damos_report(src, history=history)
        if png is not None:
            rep.to_png(png, width=width, height=height, force=force)
    typer.echo(rep.text())
    if png is not None:
        typer.echo(f"wrote {png}")


def register(report_app: typer.Typer) -> None:
    report_app.command(
        "damos",
        help="\n\n".join(" ".join(par.split()) for par in damos_cmd.__doc__.split("\n\n")),
    )(damos_cmd)
