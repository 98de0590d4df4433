"""Progress bars: drawn here, from the callbacks the library calls.

The readers, the replay and the sweep draw nothing; they take a progress callback. A
command opens :func:`progress_bar` around its long call and hands the callback on. The
bar goes to stderr (stdout carries the command's result) and only when stderr is a
terminal: piped or redirected, a command prints no bar at all; ``-q`` silences it too.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional

# progress(done, total, what): done and total in the unit the caller counts (bytes,
# records, sample intervals, tasks), total None when unknown; what names the unit or
# the stage ("bytes", "sample intervals", ...)
Progress = Callable[[int, Optional[int], Optional[str]], None]


def wanted(quiet: bool = False) -> bool:
    """Whether a bar is drawn: stderr is a terminal and -q was not given."""
    try:
        return not quiet and sys.stderr.isatty()
    except (AttributeError, ValueError):        # replaced or closed stderr
        return False


@contextlib.contextmanager
def progress_bar(description: str, *, quiet: bool = False,
                 unit: str = "count") -> Iterator[Optional[Progress]]:
    """A transient bar on stderr while the block runs, and its callback; ``None`` (no
    bar, nothing to call) when :func:`wanted` says no.

    ``unit``: "count" shows done/total, "bytes" shows sizes; the remaining time shows
    once a total is known.
    """
    if not wanted(quiet):
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)

    done_col = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    cols = (TextColumn("{task.description}"), BarColumn(), done_col, TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*cols, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: Optional[int] = None, what: Optional[str] = None) -> None:
            text = f"{description}: {what}" if what else description
            bar.update(task, completed=done, total=total, description=text)

        yield update
