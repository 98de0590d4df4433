"""Exceptions raised by tracedamon.

Every error a user can cause (bad input, bad options) derives from
:class:`TracedamonError`. The command line turns them into a one-line message on
stderr and a non-zero exit code; they never surface as a traceback.
"""

from __future__ import annotations

import os


class TracedamonError(Exception):
    """Base class of every error tracedamon reports to its users.

    ``cli_message`` is the same message worded for the command line, when it differs
    (options named as flags, ``--force``, instead of Python arguments, ``force=True``);
    the command line prints it in place of ``str(error)``.
    """

    exit_code = 1
    cli_message: str | None = None

    def __init__(self, *args, cli_message: str | None = None):
        super().__init__(*args)
        if cli_message is not None:
            self.cli_message = cli_message


class InputError(TracedamonError):
    """An input that cannot be used at all: missing, unreadable, of an unknown kind."""

    exit_code = 2


class TraceFormatError(TracedamonError):
    """Malformed input: names the file and where in it (byte offset or line) the problem is.

    ``path``, ``offset`` and ``line`` say where, ``problem`` what; ``cli_problem`` is the
    problem worded for the command line where it names an option."""

    exit_code = 3

    def __init__(
        self,
        path,
        problem: str,
        *,
        offset: int | None = None,
        line: int | None = None,
        cli_problem: str | None = None,
    ):
        self.path = os.fspath(path) if path is not None else "<input>"
        self.problem = problem
        self.offset = offset
        self.line = line
        super().__init__(
            f"{self.path}{self.where}: {problem}",
            cli_message=None if cli_problem is None else f"{self.path}{self.where}: {cli_problem}",
        )

    @property
    def where(self) -> str:
        """`` at byte offset N (0xN)``, `` at line N`` or nothing."""
        if self.offset is not None:
            return f" at byte offset {self.offset} (0x{self.offset:x})"
        if self.line is not None:
            return f" at line {self.line}"
        return ""


class OutputError(InputError):
    """An output that is not written: it exists and is not to be replaced (without
    ``force``, or because tracedamon did not write it), or it is a place no output
    may go (an input, the current directory)."""


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


def shown_as(exc: BaseException, paths: dict) -> BaseException:
    """``exc`` with every hidden temporary path in ``paths`` (temporary -> the path the
    user knows) replaced in its message and file names, in place; returns ``exc``.

    A table is written into a hidden directory beside its destination, a compressed
    input is decompressed into a hidden file: an error met there must name the user's
    output or input, not tracedamon's temporary name.
    """
    pairs = sorted(
        ((os.fspath(k), os.fspath(v)) for k, v in paths.items()), key=lambda kv: -len(kv[0])
    )
    pairs = [(k, v) for k, v in pairs if k]

    def fix(text):
        if not isinstance(text, str):
            return text
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    if isinstance(exc, OSError):
        for attr in ("filename", "filename2"):
            v = getattr(exc, attr, None)
            if isinstance(v, (str, os.PathLike)):
                try:
                    setattr(exc, attr, fix(os.fspath(v)))
                except (AttributeError, TypeError):
                    pass
    if isinstance(exc, TraceFormatError):
        exc.path = fix(exc.path)
    if isinstance(exc, TracedamonError) and exc.cli_message:
        exc.cli_message = fix(exc.cli_message)
    exc.args = tuple(fix(a) for a in exc.args)
    return exc
