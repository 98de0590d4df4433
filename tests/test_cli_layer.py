"""The command line as one layer: shared options declared once, one registration style,
-q on every command that prints a summary, progress bars on stderr only on a terminal,
the lazy public API, and a start-up that loads none of the heavy libraries."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import select
import subprocess
import sys

import pytest
import typer

import tracedamon
from tracedamon.cli import app, main

from conftest import SAMPLES

PY = sys.executable


def _commands() -> dict:
    """Every leaf command of the app, by its path ("report heatmap")."""
    out = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            out[path] = cmd

    walk(typer.main.get_command(app), "")
    return out


def _options(cmd) -> dict:
    """A command's options by name, without the hidden spellings kept for one release
    after a rename (tests/test_cli_renamed_flags.py)."""
    return {
        o.opts[-1] if o.opts[-1].startswith("--") else o.opts[0]: o
        for o in cmd.params
        if getattr(o, "param_type_name", "") == "option" and not o.hidden
    }


# ------------------------------------------------------------------ shared options
def test_every_command_is_registered():
    cmds = _commands()
    for name in (
        "ingest",
        "info",
        "replay",
        "snapshot",
        "compare",
        "damos",
        "sweep",
        "report heatmap",
        "report wss",
        "report access",
        "report summary",
        "report truth",
        "report attribute",
        "report html",
        "report damos",
        "export damo",
    ):
        assert name in cmds, sorted(cmds)


def test_an_option_has_one_element_type_in_every_command():
    """--sample-us is whole microseconds everywhere (it was a float in export damo),
    --offset ns as an int, --pid an int, --range and --event text..."""
    types: dict[str, dict[str, str]] = {}
    for path, cmd in _commands().items():
        for name, o in _options(cmd).items():
            types.setdefault(name, {})[path] = o.type.name
    shared = {n: t for n, t in types.items() if len(t) > 1}
    assert {
        "--force",
        "--output",
        "--sample-us",
        "--aggr-us",
        "--pid",
        "--range",
        "--offset",
        "--quiet",
    } <= set(shared)
    for name, per_cmd in shared.items():
        # one flag name, one element type in every command (--damos, --samples and
        # --resume had two meanings once; their second spellings are hidden aliases now)
        assert len(set(per_cmd.values())) == 1, (name, per_cmd)
    assert set(shared["--sample-us"].values()) == {"int"}


def test_force_and_quiet_have_one_spelling_and_one_help():
    forces, quiets = set(), set()
    for path, cmd in _commands().items():
        opts = _options(cmd)
        if "--force" in opts:
            forces.add((tuple(opts["--force"].opts), opts["--force"].help))
        if "--quiet" in opts:
            quiets.add((tuple(opts["--quiet"].opts), opts["--quiet"].help))
    assert len(forces) == 1 and len(quiets) == 1, (forces, quiets)
    assert next(iter(quiets))[0] == ("-q", "--quiet")


# commands that print a summary of what they wrote (reports print their result instead)
SUMMARY_COMMANDS = (
    "ingest",
    "replay",
    "snapshot",
    "compare",
    "damos",
    "sweep",
    "export damo",
    "report html",
)


@pytest.mark.parametrize("path", SUMMARY_COMMANDS)
def test_a_command_that_prints_a_summary_takes_quiet(path):
    assert "--quiet" in _options(_commands()[path]), path


def test_each_command_module_registers_module_level_functions():
    """One registration style: command functions at module level (importable, testable
    on their own), added by the module's register(app)."""
    import importlib

    from tracedamon.cli import _COMMANDS

    for name in _COMMANDS:
        mod = importlib.import_module(f"tracedamon.cli.{name}")
        assert callable(getattr(mod, "register", None)), name
    for path, cmd in _commands().items():
        fn = cmd.callback
        fn = getattr(fn, "__wrapped__", fn)
        assert "<locals>" not in fn.__qualname__, (path, fn.__qualname__)
        assert fn.__module__.startswith("tracedamon.cli."), (path, fn.__module__)


def _cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_ingest_quiet_prints_nothing_and_writes(tmp_path):
    code, out, err = _cli("ingest", SAMPLES / "hotcold.perf.data", "-o", tmp_path / "q.td", "-q")
    assert code == 0, err
    assert out == "" and err == ""
    assert (tmp_path / "q.td" / "samples.parquet").is_file()
    code, out, err = _cli("ingest", SAMPLES / "hotcold.perf.data", "-o", tmp_path / "v.td")
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'v.td'}\n")
    assert "samples:" in out  # and what it holds, as `info` says it


def test_export_damo_takes_whole_microseconds(tmp_path):
    """The same --sample-us as replay's: a fraction is a usage error (exit 2), not
    rounded silently."""
    d = tmp_path / "d.td"
    assert _cli("ingest", SAMPLES / "damon" / "live_paddr.perf.data", "-o", d, "-q")[0] == 0
    code, out, err = _cli(
        "export", "damo", d, "-o", tmp_path / "x.data", "--sample-us", "2.5", "--aggr-us", "100000"
    )
    assert code == 2 and "--sample-us" in err and not (tmp_path / "x.data").exists()
    code, out, err = _cli(
        "export",
        "damo",
        d,
        "-o",
        tmp_path / "x.data",
        "--sample-us",
        "5000",
        "--aggr-us",
        "100000",
        "-q",
    )
    assert code == 0 and out == "", err
    assert (tmp_path / "x.data").is_file()


# ------------------------------------------------------------------ progress bars
def _run_with_tty_stderr(args, timeout=600):
    """Run tracedamon with stdout a pipe and stderr a terminal (a pty); returns
    (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    p = subprocess.Popen(
        [PY, "-m", "tracedamon", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    shown = b""
    while True:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            p.kill()
            raise AssertionError("no output within the time limit")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        shown += chunk
    out = p.stdout.read()
    code = p.wait()
    os.close(master)
    return code, out.decode(), shown.decode(errors="replace")


@pytest.fixture(scope="module")
def hot_td(tmp_path_factory):
    d = tmp_path_factory.mktemp("hot") / "h.td"
    assert _cli("ingest", SAMPLES / "hotcold.perf.data", "-o", d, "-q")[0] == 0
    return d


def test_replay_draws_its_bar_on_a_terminals_stderr_only(hot_td, tmp_path):
    code, out, shown = _run_with_tty_stderr(
        ["replay", hot_td, "--start", "auto", "-o", tmp_path / "r.parquet"]
    )
    assert code == 0, shown
    assert "replaying" in shown and "sample intervals" in shown, shown
    assert "replaying" not in out  # the result only on stdout
    assert out.rstrip().endswith(f"wrote {tmp_path / 'r.parquet'}")


def test_quiet_draws_no_bar_even_on_a_terminal(hot_td, tmp_path):
    code, out, shown = _run_with_tty_stderr(
        ["replay", hot_td, "--start", "auto", "-q", "-o", tmp_path / "r.parquet"]
    )
    assert code == 0, shown
    assert out == "" and "replaying" not in shown, shown


def test_a_piped_command_draws_no_bar(hot_td, tmp_path):
    r = subprocess.run(
        [
            PY,
            "-m",
            "tracedamon",
            "replay",
            str(hot_td),
            "--start",
            "auto",
            "-o",
            str(tmp_path / "r.parquet"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "replaying" not in r.stderr + r.stdout
    assert r.stderr == ""


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal(monkeypatch):
    from tracedamon.cli.progress import progress_bar

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bar("x") as bar:
        assert bar is None


# ------------------------------------------------------------------ the public API
PUBLIC = (
    "ingest",
    "open_trace",
    "replay",
    "compare",
    "damos",
    "sweep",
    "MonitorConfig",
    "Trace",
    "RegionHistory",
    "TracedamonError",
    "InputError",
    "TraceFormatError",
    "OutputError",
    "ConfigError",
    "CaptureError",
    "InputWarning",
)


def test_the_public_api_is_listed_and_resolves():
    names = dir(tracedamon)
    for name in PUBLIC:
        assert name in names and name in tracedamon.__all__, name
        assert getattr(tracedamon, name) is not None
    for name in ("InputError", "TraceFormatError", "OutputError", "ConfigError", "CaptureError"):
        assert issubclass(getattr(tracedamon, name), tracedamon.TracedamonError), name
    assert issubclass(tracedamon.InputWarning, Warning)


def test_the_public_types_are_what_the_functions_return(tmp_path):
    t = tracedamon.ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    tr = tracedamon.open_trace(t)
    assert isinstance(tr, tracedamon.Trace)
    h = tracedamon.replay(t, start_ns="auto", config=tracedamon.MonitorConfig(sample_us=10000))
    assert isinstance(h, tracedamon.RegionHistory)
    with pytest.raises(tracedamon.InputError):
        tracedamon.open_trace(tmp_path / "nothing-here")


HEAVY = ("numba", "pandas", "pyarrow", "numpy", "rich")


def _loaded_after(code: str) -> set[str]:
    r = subprocess.run(
        [PY, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules)))"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


def test_import_tracedamon_loads_no_heavy_library():
    mods = _loaded_after("import tracedamon")
    assert not [m for m in HEAVY if m in mods], sorted(m for m in HEAVY if m in mods)
    assert not [
        m
        for m in mods
        if m.startswith("tracedamon.")
        and m not in ("tracedamon.errors", "tracedamon.numba_cache", "tracedamon.ingest")
    ], sorted(mods)


def test_the_command_list_loads_no_heavy_library():
    """`tracedamon --help` and building the app: the commands' work loads when a command
    runs."""
    mods = _loaded_after(
        "import contextlib, io\nfrom tracedamon.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert not [m for m in ("numba", "pandas", "pyarrow", "numpy") if m in mods], sorted(
        m for m in HEAVY if m in mods
    )


# ------------------------------------------------------------------ info
def test_info_reads_in_pipeline_and_renders_in_the_cli(tmp_path):
    from tracedamon.cli.info import describe, render
    from tracedamon.pipeline.info import inspect

    t = tracedamon.ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    d = inspect(t)
    assert d["kind"] == "trace"
    s = d["summary"]
    tr = tracedamon.open_trace(t)
    assert s["tables"]["samples"] == tr.num_rows("samples")
    assert sum(s["events"].values()) == tr.num_rows("samples")
    assert describe(t) == render(s)
    h = tracedamon.replay(t, start_ns="auto", config=tracedamon.MonitorConfig(sample_us=10000))
    p = h.to_parquet(tmp_path / "h.parquet")
    d = inspect(p)
    assert d["kind"] == "history" and d["stats"]["rows"] == len(h.df)
    assert d["stats"]["snapshots"] == h.df["snapshot"].nunique()


def test_the_old_info_path_still_works():
    import tracedamon.info as old
    from tracedamon.cli.info import describe
    from tracedamon.pipeline.info import sample_stats

    assert old.describe is describe and old._sample_stats is sample_stats
