"""Exceptions raised by tracedamon.

Every error a user can cause (bad input, bad options) derives from
:class:`TracedamonError`. The command line turns them into a one-line message on
stderr and a non-zero exit code; they never surface as a traceback.
"""
from __future__ import annotations

import os


class TracedamonError(Exception):
    """Base class of every error tracedamon reports to its users."""

    exit_code = 1


class InputError(TracedamonError):
    """An input that cannot be used at all: missing, unreadable, of an unknown kind."""

    exit_code = 2


class TraceFormatError(TracedamonError):
    """Malformed input: names the file and where in it (byte offset or line) the problem is."""

    exit_code = 3

    def __init__(self, path, problem: str, *, offset: int | None = None,
                 line: int | None = None):
        self.path = os.fspath(path) if path is not None else "<input>"
        self.problem = problem
        self.offset = offset
        self.line = line
        where = ""
        if offset is not None:
            where = f" at byte offset {offset} (0x{offset:x})"
        elif line is not None:
            where = f" at line {line}"
        super().__init__(f"{self.path}{where}: {problem}")


class ConfigError(TracedamonError):
    """Invalid monitoring parameters or command-line options."""

    exit_code = 4


class InputWarning(UserWarning):
    """An input was read, but not whole (e.g. a recording cut short): the message
    names the file and what was lost; ``meta.json`` keeps the details. The command
    line prints it as one line."""


class CaptureError(TracedamonError):
    """Live capture (pagemap snapshots) failed."""

    exit_code = 5
