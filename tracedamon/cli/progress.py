"""Progress bars: drawn here, from the callbacks the library calls.

The readers, the replay, the sweep and the snapshot capture draw nothing; they take a
progress callback. A command opens :func:`progress_bar` around its long call and hands
the callback on. The bar goes to stderr (stdout carries the command's result) and only
when stderr is a terminal: piped or redirected, a command prints no bar at all; ``-q``
silences it too.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional

# progress(done, total, what): done and total in the unit the caller counts (bytes,
# records, sample intervals, tasks), total None when unknown; what names the unit or
# the stage ("sample intervals", an input's name...)
Progress = Callable[[int, Optional[int], Optional[str]], None]


def wanted(quiet: bool = False) -> bool:
    """Whether a bar is drawn: stderr is a terminal and -q was not given."""
    try:
        return not quiet and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextlib.contextmanager
def progress_bar(
    description: str, *, quiet: bool = False, unit: str = "count", min_total: int = 0
) -> Iterator[Optional[Progress]]:
    """A transient bar on stderr while the block runs, and its callback; ``None`` (no
    bar, nothing to call) when :func:`wanted` says no.

    The bar appears at the first call, and only once a call's ``total`` is unknown or
    at least ``min_total`` (a quick job shows none). ``unit``: "count" shows done/total,
    "bytes" sizes and speed; the remaining time shows once a total is known.
    """
    if not wanted(quiet):
        yield None
        return
    state: dict = {}

    def update(done: int, total: Optional[int] = None, what: Optional[str] = None) -> None:
        if "bar" not in state:
            if total is not None and total < min_total:
                return
            state["bar"] = bar = _start(unit)
            state["task"] = bar.add_task(description, total=total)
        text = description if not what or what == description else f"{description}: {what}"
        state["bar"].update(state["task"], completed=done, total=total, description=text)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def _start(unit: str):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    done = (
        (DownloadColumn(), TransferSpeedColumn())
        if unit == "bytes"
        else (MofNCompleteColumn(), TimeElapsedColumn())
    )
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *done,
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bar.start()
    return bar
