"""The `tracedamon` command: a thin layer over the library.

One registration style: each command module (listed in ``_COMMANDS``) defines its
command functions at module level, undecorated, with a ``HELP`` text, and one
``register(app)`` that adds them to the app (a command group, such as ``report``, makes
its own sub-app there). A command is options -> one call into the library -> printing:
the options several commands share come from :mod:`.options` (one spelling, type and help
each), progress bars from :mod:`.progress` (the library only calls back), one-line
warnings from :mod:`.warn`, and ``info``'s text from :mod:`.info`.

Start-up: every command module is imported to build the app, so a module imports at its
top only what is light (typer, the floor: errors, units, and these helpers). The library
is reached through the lazy public API (``tracedamon.replay``, ``tracedamon.ingest`` ...)
or, for what the public API does not name, by an import inside the command function
(marked "heavy: see tracedamon.cli"): numba, pandas and pyarrow load when a command
runs, not for ``tracedamon --help``.

Errors a user can cause are printed as one line on stderr with a non-zero exit
code; tracebacks are reserved for tracedamon's own bugs.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from ..errors import InputWarning, TracedamonError

app = typer.Typer(
    name="tracedamon",
    help="What would DAMON have seen? Ingest perf memory samples and DAMON traces, "
    "replay DAMON offline, compare region histories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_COMMANDS = (
    "ingest",
    "info",
    "replay",
    "snapshot",
    "compare",
    "report",
    "export",
    "damos",
    "sweep",
)


def _register_all() -> None:
    for name in _COMMANDS:
        try:
            mod = importlib.import_module(f"tracedamon.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"tracedamon.cli.{name}":
                continue
            raise
        mod.register(app)


_register_all()

_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """An :class:`~tracedamon.errors.InputWarning` (an input read, but not whole) as
    one line on stderr; other warnings as Python shows them."""
    if issubclass(category, InputWarning):
        print(f"tracedamon: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """A command's line in its group's list is the first paragraph of its help; rich
    keeps that paragraph's line breaks, so a help text written as wrapped lines would
    list ragged: give such commands the paragraph as one line."""
    import inspect

    for info in typer_app.registered_commands:
        help_text = info.help if isinstance(info.help, str) else None
        if info.short_help is None and help_text:
            first = inspect.cleandoc(help_text).split("\n\n")[0]
            if "\n" in first and not first.startswith("\b"):
                info.short_help = " ".join(first.split())
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _one_line_summaries(group.typer_instance)


_one_line_summaries(app)


def _help_folds() -> None:
    """Help text wraps at the width of the terminal (80 columns in a pipe, or
    $COLUMNS); rich cuts a word longer than its table cell with '…' (an option's list
    of choices, a field list). Make every help text fold such words onto the next line
    instead, so nothing is lost in a pipe, in CI or on a narrow terminal."""
    from rich.text import Text
    from typer import rich_utils

    if getattr(rich_utils, "_tracedamon_folds", False):
        return

    def fold(r) -> None:
        if isinstance(r, Text):
            r.overflow = "fold"
        for x in getattr(r, "renderables", None) or ():
            fold(x)

    def folding(make):
        def made(*args, **kwargs):
            r = make(*args, **kwargs)
            fold(r)
            return r

        return made

    for name in ("_make_rich_text", "_get_parameter_help", "_make_command_help"):
        make = getattr(rich_utils, name, None)
        if make is not None:
            setattr(rich_utils, name, folding(make))
    for name in ("highlighter", "negative_highlighter"):  # option and argument names
        hl = getattr(rich_utils, name, None)
        if hl is not None:

            class Folding(type(hl)):
                def __call__(self, text):
                    t = super().__call__(text)
                    t.overflow = "fold"
                    return t

            setattr(rich_utils, name, Folding())
    rich_utils._tracedamon_folds = True


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Usage errors are reported by typer itself (exit code 2); tracedamon's own
    errors become one line on stderr with their exit code, and so do its warnings
    about inputs read only in part.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) <= 1 or "--help" in args or "-h" in args:
        _help_folds()  # only where help may be printed: rich loads in 40 ms
    warnings.showwarning = _show_warning
    try:
        app(args=argv, prog_name="tracedamon")
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1
    except TracedamonError as e:
        # the command line's wording where it differs from the API's (--force, not
        # force=True)
        print(f"tracedamon: error: {e.cli_message or e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tracedamon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:
        # the system refused a read or write (disk full, permission, I/O error): one
        # line, no traceback; the trace-directory writer has removed its partial output
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"tracedamon: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """The console script: :func:`main`, then a quick exit.

    Once a command has returned, every file it wrote is closed and renamed into place;
    what is left is the interpreter tearing down numba, LLVM and Arrow's memory pools
    (about 0.2 s after ingesting 10 M samples). The exit handlers still run and the
    output is flushed, then the process ends without that teardown.
    """
    code = main()
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            if code == 0:
                code = 141 if stream is sys.stdout else 1
    os._exit(code)
