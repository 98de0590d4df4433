"""`tracedamon export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .report import with_history_warnings

export_app = typer.Typer(
    help="Write region histories in other tools' formats.", no_args_is_help=True
)


@export_app.command(
    "damo",
    help="Write a region history as a damo record (json_compressed by default) that `damo report` "
    "reads. The intervals come from the source's metadata, or --sample-us/--aggr-us.\n\n"
    "Example:  tracedamon export damo replay.parquet -o damon.data && damo report access -i damon.data",
)
@with_history_warnings
def damo_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    out: Path = typer.Option(..., "-o", "--output", help="damo record file"),
    fmt: str = typer.Option("json_compressed", "--format", help="json_compressed|json"),
    sample_us: Optional[float] = typer.Option(None, "--sample-us", help="sampling interval, us"),
    aggr_us: Optional[float] = typer.Option(None, "--aggr-us", help="aggregation interval, us"),
    update_us: Optional[float] = typer.Option(None, "--update-us", help="ops update interval, us"),
    force: bool = typer.Option(
        False, "--force", help="replace an existing output (only a damo record tracedamon wrote)"
    ),
) -> None:
    from ..export.damo_export import export_damo

    s = export_damo(
        src, out, fmt=fmt, sample_us=sample_us, aggr_us=aggr_us, ops_update_us=update_us,
        force=force,
    )
    iv = s["intervals"]
    typer.echo(
        f"wrote {out}: {s['records']} record(s), {s['snapshots']} snapshots, {s['regions']} regions; "
        f"intervals sample {iv['sample_us']} us, aggr {iv['aggr_us']} us, update {iv['ops_update_us']} us"
        + (
            " (ESTIMATED: the source records no intervals; give --sample-us/--aggr-us)"
            if s["estimated"]
            else ""
        )
    )
    if s.get("idle_ages"):
        typer.echo(f"note: {s['idle_ages']}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
