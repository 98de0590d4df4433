"""`tracedamon info`."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        "info",
        help="Print what a perf.data, a DAMON trace or a trace directory holds: events, "
             "sample counts, time span, pids, lost samples, layout, regions.\n\n"
             "Example:  tracedamon info perf.data",
    )
    def info_cmd(src: Path = typer.Argument(..., help="input file or trace directory")) -> None:
        from ..info import describe
        typer.echo(describe(src))
