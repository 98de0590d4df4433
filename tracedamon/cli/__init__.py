"""The `tracedamon` command: a thin layer over the library.

Each sub-command lives in its own module with a ``register(app)`` function.
Errors a user can cause are printed as one line on stderr with a non-zero exit
code; tracebacks are reserved for tracedamon's own bugs.
"""
from __future__ import annotations

import importlib
import sys

import typer

from ..errors import TracedamonError

app = typer.Typer(
    name="tracedamon",
    help="What would DAMON have seen? Ingest perf memory samples and DAMON traces, "
         "replay DAMON offline, compare region histories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_COMMANDS = ("ingest", "info", "replay", "snapshot", "compare", "report", "export", "sweep")


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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Usage errors are reported by typer itself (exit code 2); tracedamon's own
    errors become one line on stderr with their exit code.
    """
    try:
        app(args=argv, prog_name="tracedamon")
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1
    except TracedamonError as e:
        print(f"tracedamon: error: {e}", file=sys.stderr)
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
