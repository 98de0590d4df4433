"""The options several commands share, declared once.

Every command takes its shared options from here, so a flag has one spelling, one type
and (where its meaning is the same) one help text in every command: ``-o/--output``,
``--force``, ``-q/--quiet``, the DAMON intervals ``--sample-us``/``--aggr-us``/
``--update-us`` (whole microseconds, as the kernel takes them), ``--pid``, ``--range``,
``--event``, ``--pagemap``, ``--offset``, ``--png``... A command passes only what differs
for it: the default, or a help text naming what its output is.

The parsers of option values the command line gives as text (an integer in decimal or
0x-hex) are here too.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from ..errors import ConfigError

FORCE_HELP = "replace an existing output (only one tracedamon wrote)"
QUIET_HELP = "no summary on the terminal (errors and warnings still go to stderr)"


def output(help: str, default: Any = None) -> Any:
    """``-o/--output``: where the command writes (``...`` for a required output)."""
    return typer.Option(default, "-o", "--output", help=help)


def force() -> Any:
    """``--force``: the output rule's override (tracedamon.store.atomic)."""
    return typer.Option(False, "--force", help=FORCE_HELP)


def quiet() -> Any:
    """``-q/--quiet``, on every command that prints a summary of what it wrote."""
    return typer.Option(False, "-q", "--quiet", help=QUIET_HELP)


def sample_us(default: Optional[int] = None, help: str = "sampling interval, us") -> Any:
    return typer.Option(default, "--sample-us", help=help)


def aggr_us(default: Optional[int] = None, help: str = "aggregation interval, us") -> Any:
    return typer.Option(default, "--aggr-us", help=help)


def update_us(default: Optional[int] = None, help: str = "ops update interval, us") -> Any:
    return typer.Option(default, "--update-us", help=help)


def pids(help: str) -> Any:
    """``--pid`` given several times: a list of ints."""
    return typer.Option([], "--pid", help=help)


def pid(help: str) -> Any:
    """``--pid`` given once: an int."""
    return typer.Option(None, "--pid", help=help)


def ranges(help: str = "START-END address range, decimal or 0x-hex (repeatable)") -> Any:
    return typer.Option([], "--range", help=help)


def events(help: str) -> Any:
    return typer.Option([], "--event", help=help)


def ops(default: Optional[str] = None, help: str = "operations set: vaddr, fvaddr or paddr") -> Any:
    return typer.Option(default, "--ops", help=help)


def access(
    default: Optional[str] = None, help: str = "access check: perf, perf-phys or abit"
) -> Any:
    return typer.Option(default, "--access", help=help)


def start(help: str) -> Any:
    return typer.Option(None, "--start", help=help)


def kernel(help: str) -> Any:
    return typer.Option("released", "--kernel", help=help)


def min_region(default: Optional[str] = None, help: str = "minimum region size, bytes") -> Any:
    """``--min-region``: text, read with :func:`parse_int` (decimal or 0x-hex)."""
    return typer.Option(default, "--min-region", help=help)


def pagemap(help: str = "trace directory with pagemap snapshots", default: Any = None) -> Any:
    return typer.Option(default, "--pagemap", help=help)


def truth(help: str = "ground truth: CSV or JSON of start,end,label (hot/warm/cold)") -> Any:
    return typer.Option(None, "--truth", help=help)


def offset(help: str) -> Any:
    """``--offset``: nanoseconds added to one side's times."""
    return typer.Option(0, "--offset", help=help)


def png(help: str = "write a PNG") -> Any:
    return typer.Option(None, "--png", help=help)


def width(default: int) -> Any:
    return typer.Option(default, "--width", help="PNG width, pixels")


def height(default: int) -> Any:
    return typer.Option(default, "--height", help="PNG height, pixels")


def as_json() -> Any:
    return typer.Option(False, "--json", help="print JSON")


def schemes(help: str, required: bool = False) -> Any:
    """``--scheme`` (repeatable): DAMOS schemes as `tracedamon damos` reads them."""
    return typer.Option(... if required else [], "--scheme", "-s", help=help)


def unknown_pages(help: str) -> Any:
    """``--unknown-pages``: the DAMOS ops filters' verdict on pages without page data."""
    return typer.Option("pass", "--unknown-pages", help=help)


def workers(help: str = "local worker processes (default: the CPUs; 1 = in this process)") -> Any:
    return typer.Option(None, "--workers", help=help)


def scheduler(help: str = "Dask scheduler address, tcp://HOST:PORT") -> Any:
    return typer.Option(None, "--scheduler", help=help)


def parse_int(text: Optional[str], name: str) -> Optional[int]:
    """An option's integer given as text: decimal or 0x-hex, '_' allowed between digits."""
    if text is None:
        return None
    try:
        return int(str(text).replace("_", ""), 0)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not an integer (decimal or 0x-hex)") from None


def deprecated(old: str, new: str, default: Any = None) -> Any:
    """A flag's old spelling, kept for one release after a rename: hidden from
    ``--help``; given, it prints one line on stderr naming the new spelling, and the
    command reads its value as the new flag's (``new or old``)."""

    def warn(value):
        if value not in (None, False):
            typer.echo(
                f"tracedamon: warning: {old} is deprecated and goes away in the next "
                f"release: use {new}",
                err=True,
            )
        return value

    return typer.Option(default, old, hidden=True, callback=warn)
