"""`tracedamon snapshot`: capture /proc/PID/maps and /proc/PID/pagemap over time."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import InputError
from . import options as opt
from .progress import progress_bar

_HELP = """Snapshot processes' page tables (/proc/PID/maps + /proc/PID/pagemap) into a
trace directory (tables maps and pagemap), every --interval until --count
snapshots, --duration, the processes' exit or Ctrl-C. What was captured is
kept when a process exits midway. Several --pid may be given (for attributing
physical memory to processes). A process that execs another program (a
command started through env, nice or taskset, a #! script) is followed into it.

The output is an input of ingest too: `tracedamon ingest perf.data app.td
-o run.td` puts samples and page tables in one directory (or give it to
replay --pagemap, report truth, report attribute --pagemap).

Physical frames are only recorded as root (CAP_SYS_ADMIN); otherwise the
kernel reports them as 0 and only presence and flags are kept. Times are
CLOCK_MONOTONIC (or --clock): record perf with `-k CLOCK_MONOTONIC` so its
samples share the clock (perf's default clock differs by about a millisecond).

\b
Examples:
  tracedamon snapshot --pid 1234 --interval 1s --count 60 -o app.pagemap.td
  tracedamon snapshot --pid 1234 --pid 5678 --duration 2m -o both.td
  tracedamon snapshot --interval 500ms -o run.td -- ./workload 512 32
"""


def snapshot_cmd(
    command: Optional[List[str]] = typer.Argument(
        None, help="command to start and snapshot until it exits (after --)"
    ),
    out: Path = opt.output("trace directory to write", ...),
    pid: Optional[List[int]] = typer.Option(
        None, "--pid", "-p", help="process to snapshot (repeat for several)"
    ),
    interval: str = typer.Option(
        "1s", "--interval", "-i", help="time between snapshots (e.g. 1s, 250ms)"
    ),
    count: Optional[int] = typer.Option(
        None, "--count", "-n", help="stop after this many snapshots"
    ),
    duration: Optional[str] = typer.Option(
        None, "--duration", "-d", help="stop after this long (e.g. 60s, 2m)"
    ),
    clock: str = typer.Option(
        "monotonic",
        "--clock",
        "-k",
        help="clock of the time stamps, as perf record -k: monotonic, "
        "monotonic_raw, boottime, realtime, tai",
    ),
    no_kpageflags: bool = typer.Option(
        False, "--no-kpageflags", help="do not read /proc/kpageflags (THP flags)"
    ),
    force: bool = opt.force(),
    quiet: bool = opt.quiet(),
) -> None:
    from ..ingest.pagemap_capture import CaptureWarning, capture  # heavy: tracedamon.cli

    if bool(pid) == bool(command):
        raise InputError("give --pid PID or a command after -- (not both)")
    if count is not None and duration is not None:
        raise InputError("give --count or --duration, not both")

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, CaptureWarning):
            print(f"tracedamon: warning: {message}", file=sys.stderr)
        else:
            print(
                warnings.formatwarning(message, category, filename, lineno, line),
                file=sys.stderr,
                end="",
            )

    old = warnings.showwarning
    warnings.showwarning = show
    try:
        with progress_bar("snapshot", quiet=quiet) as bar:
            res = capture(
                out,
                pid=pid or None,
                cmd=command or None,
                interval=interval,
                count=count,
                duration=duration,
                force=force,
                kpageflags=not no_kpageflags,
                clock=clock,
                progress=bar,
            )
    finally:
        warnings.showwarning = old
    if not quiet:
        typer.echo(
            f"wrote {res.path}: {res.snapshots} snapshot(s), stopped by "
            f"{res.stopped_by}"
            + (f", command exit status {res.exit_code}" if res.exit_code is not None else "")
        )


def register(app: typer.Typer) -> None:
    app.command("snapshot", help=_HELP, context_settings={"allow_interspersed_args": False})(
        snapshot_cmd
    )
