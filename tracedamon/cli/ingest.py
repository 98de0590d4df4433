"""`tracedamon ingest`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        "ingest",
        help="Turn perf.data, perf script text, DAMON traces, damo records or pagemap "
             "snapshots into a trace directory of Parquet tables.\n\n"
             "Example:  tracedamon ingest perf.data -o run.td",
    )
    def ingest_cmd(
        inputs: List[Path] = typer.Argument(..., help="input files (several inputs of one run "
                                            "go into one directory: a perf.data, a DAMON "
                                            "trace, pagemap snapshots as raw files, "
                                            "directories or tracedamon snapshot output; "
                                            "see --parallel)"),
        out: Optional[Path] = typer.Option(None, "-o", "--output",
                                           help="trace directory (default: INPUT.td)"),
        format: str = typer.Option("auto", "--format",
                                   help="auto|perf-data|perf-script|damon|damo|pagemap"),
        via_perf: bool = typer.Option(False, "--via-perf",
                                      help="decode perf.data with the installed `perf script` "
                                           "(for AUX data such as Arm SPE)"),
        skip_bad: bool = typer.Option(False, "--skip-bad",
                                      help="text inputs: skip malformed lines and count them"),
        strict: bool = typer.Option(
            False, "--strict",
            help="refuse a recording that was cut short (perf record killed, a stream or "
                 "gzip file ending inside a record, lost header features) instead of "
                 "reading its complete records with a warning"),
        force: bool = typer.Option(False, "--force",
                                   help="replace an existing output (only a trace directory "
                                        "tracedamon wrote)"),
        all_columns: bool = typer.Option(
            False, "--all-columns",
            help="perf.data: keep every samples column in samples.parquet, also those no "
                 "event recorded (all null); by default they are left out and readers "
                 "restore them"),
        script_fields: Optional[str] = typer.Option(
            None, "--script-fields",
            help="perf script text: the -F field list it was made with, e.g. "
                 "comm,pid,tid,time,event,addr,data_src,weight,ip (default: inferred "
                 "from each line)"),
        parallel: bool = typer.Option(
            False, "--parallel",
            help="several recordings: one trace directory each (OUT/NAME.td, or INPUT.td "
                 "beside it), ingested in parallel on Dask like a sweep"),
        workers: Optional[int] = typer.Option(None, "--workers",
                                              help="--parallel: local worker processes"),
        scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                                help="--parallel: Dask scheduler address"),
    ) -> None:
        if parallel:
            from ..sweep.batch import ingest_cli
            return ingest_cli(inputs, out, workers=workers, scheduler=scheduler, force=force,
                              format=format, via_perf=via_perf, skip_bad=skip_bad,
                              fields=script_fields, all_columns=all_columns)
        # hash the inputs for the provenance on the other core while the heavy modules
        # load (tracedamon.hashing); ingest() collects the digests
        from ..store.hashing import prehash
        prehash(p for p in inputs if str(p) != "-")
        from ..ingest import ingest
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
        dest = ingest(inputs, out, format=format, force=force,
                      progress=sys.stdout.isatty(), **opts)
        from ..info import describe
        typer.echo(f"wrote {dest}")
        typer.echo(describe(dest))
