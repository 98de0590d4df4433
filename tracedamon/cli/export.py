"""`tracedamon export`: region histories in other tools' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options as opt
from .warn import with_history_warnings

HELP = "Write region histories in other tools' formats."

DAMO_HELP = (
    "Write a region history as a damo record (json_compressed by default) that `damo report` "
    "reads. The intervals come from the source's metadata, or --sample-us/--aggr-us.\n\n"
    "Example:  tracedamon export damo replay.parquet -o damon.data && damo report access -i "
    "damon.data"
)


@with_history_warnings
def damo_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    out: Path = opt.output("damo record file", ...),
    fmt: str = typer.Option("json_compressed", "--format", help="json_compressed|json"),
    sample_us: Optional[int] = opt.sample_us(),
    aggr_us: Optional[int] = opt.aggr_us(),
    update_us: Optional[int] = opt.update_us(),
    force: bool = opt.force(),
    quiet: bool = opt.quiet(),
) -> None:
    from ..export.damo_export import export_damo  # heavy: see tracedamon.cli

    s = export_damo(
        src,
        out,
        fmt=fmt,
        sample_us=sample_us,
        aggr_us=aggr_us,
        ops_update_us=update_us,
        force=force,
    )
    if quiet:
        return
    iv = s["intervals"]
    typer.echo(
        f"wrote {out}: {s['records']} record(s), {s['snapshots']} snapshots, "
        f"{s['regions']} regions; intervals sample {iv['sample_us']} us, aggr "
        f"{iv['aggr_us']} us, update {iv['ops_update_us']} us"
        + (
            " (ESTIMATED: the source records no intervals; give --sample-us/--aggr-us)"
            if s["estimated"]
            else ""
        )
    )
    if s.get("idle_ages"):
        typer.echo(f"note: {s['idle_ages']}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=HELP, no_args_is_help=True)
    group.command("damo", help=DAMO_HELP)(damo_cmd)
    app.add_typer(group, name="export")
