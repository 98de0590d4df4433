"""`tracedamon ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

import tracedamon

from . import options as opt
from .info import describe
from ..errors import ConfigError, InputError
from .progress import progress_bar

HELP = (
    "Turn perf.data, perf script text, DAMON traces, damo records or pagemap "
    "snapshots into a trace directory of Parquet tables.\n\n"
    "Example:  tracedamon ingest perf.data -o run.td"
)


def ingest_cmd(
    inputs: List[Path] = typer.Argument(
        ...,
        help="input files (several inputs of one run "
        "go into one directory: a perf.data, a DAMON "
        "trace, pagemap snapshots as raw files, "
        "directories or tracedamon snapshot output; "
        "see --parallel)",
    ),
    out: Optional[Path] = opt.output("trace directory (default: INPUT.td)"),
    format: str = typer.Option(
        "auto", "--format", help="auto|perf-data|perf-script|damon|damo|pagemap"
    ),
    via_perf: bool = typer.Option(
        False,
        "--via-perf",
        help="decode perf.data with the installed `perf script` (for AUX data such as Arm SPE)",
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="text inputs: skip malformed lines and count them"
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="refuse a recording that was cut short (perf record killed, a stream or "
        "gzip file ending inside a record, lost header features) instead of "
        "reading its complete records with a warning",
    ),
    force: bool = opt.force(),
    all_columns: bool = typer.Option(
        False,
        "--all-columns",
        help="perf.data: keep every samples column in samples.parquet, also those no "
        "event recorded (all null); by default they are left out and readers "
        "restore them",
    ),
    script_fields: Optional[str] = typer.Option(
        None,
        "--script-fields",
        help="perf script text: the -F field list it was made with, e.g. "
        "comm,pid,tid,time,event,addr,data_src,weight,ip (default: inferred "
        "from each line)",
    ),
    parallel: bool = typer.Option(
        False,
        "--parallel",
        help="several recordings: one trace directory each (OUT/NAME.td, or INPUT.td "
        "beside it), ingested in parallel on Dask like a sweep",
    ),
    workers: Optional[int] = opt.workers("--parallel: local worker processes"),
    scheduler: Optional[str] = opt.scheduler("--parallel: Dask scheduler address"),
    quiet: bool = opt.quiet(),
) -> None:
    if parallel:
        return _parallel(
            inputs,
            out,
            workers=workers,
            scheduler=scheduler,
            force=force,
            format=format,
            via_perf=via_perf,
            skip_bad=skip_bad,
            fields=script_fields,
            all_columns=all_columns,
            quiet=quiet,
        )
    # hash the inputs for the provenance on the other core while the heavy modules
    # load (tracedamon.store.hashing); ingest() collects the digests
    from ..store.hashing import prehash  # heavy: see tracedamon.cli

    prehash(p for p in inputs if str(p) != "-")

    opts = {}
    if via_perf:
        opts["via_perf"] = True
    if skip_bad:
        opts["skip_bad"] = True
    if script_fields:
        opts["fields"] = script_fields
    if all_columns:
        opts["all_columns"] = True
    if strict:
        opts["strict"] = True
    # the readers report bytes read; an input under 64 MiB reads too fast for a bar
    with progress_bar("ingest", quiet=quiet, unit="bytes", min_total=64 << 20) as bar:
        dest = tracedamon.ingest(inputs, out, format=format, force=force, progress=bar, **opts)
    if not quiet:
        typer.echo(f"wrote {dest}")
        typer.echo(describe(dest))


def _parallel(inputs, out, *, workers, scheduler, force, quiet, **options) -> None:
    """``--parallel``: one line per input; fail (naming the first input that failed)
    when any did."""
    from ..pipeline.sweep.batch import ingest_many  # heavy: see tracedamon.cli

    if any(str(p) == "-" for p in inputs):
        raise ConfigError("--parallel reads files, not standard input")
    opts = {k: v for k, v in options.items() if v or k == "format"}
    with progress_bar("ingesting", quiet=quiet) as bar:
        res = ingest_many(
            inputs,
            out,
            workers=workers,
            scheduler=scheduler,
            force=force,
            progress=None if bar is None else (lambda done, total, row: bar(done, total, "inputs")),
            **opts,
        )
    bad = [r for r in res if r["error"]]
    if not quiet:
        for r in res:
            typer.echo(
                f"{r['input']}: "
                + (f"error: {r['error']}" if r["error"] else f"wrote {r['output']}")
            )
    if bad:
        raise InputError(f"{len(bad)} of {len(res)} inputs failed; the first: {bad[0]['error']}")


def register(app: typer.Typer) -> None:
    app.command("ingest", help=HELP)(ingest_cmd)
