"""Errors below the command line speak the API's language: a message that names one of
tracedamon's command-line options (``--pid``) is the ``cli_message`` of an error whose
own message names the Python argument (``pids=``).

A source check over the package: every construction of one of tracedamon's error
classes outside ``tracedamon/cli`` whose text names a tracedamon option also passes
``cli_message=`` (``cli_problem=`` for ``TraceFormatError``). The options are those the
command line declares."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tracedamon
from tracedamon.errors import ConfigError, InputError, TraceFormatError, shown_as

PACKAGE = Path(tracedamon.__file__).parent
ERRORS = {
    "TracedamonError",
    "InputError",
    "TraceFormatError",
    "OutputError",
    "ConfigError",
    "CaptureError",
}
# Known exceptions, by module, with the package whose engineer rewords them (and then
# deletes the line): the sweep arrived with command-line wording in its messages.
NOT_YET: dict[str, str] = {}


def cli_options() -> set[str]:
    """Every ``--option`` the command line declares (typer.Option names)."""
    out = set()
    for f in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Option":
                for a in node.args:
                    if (
                        isinstance(a, ast.Constant)
                        and isinstance(a.value, str)
                        and a.value.startswith("--")
                    ):
                        out.add(a.value)
    return out


def _texts(node) -> list[str]:
    """The string constants of an expression (f-string parts included)."""
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def offending_calls():
    flags = cli_options()
    assert {"--pid", "--force", "--skip-bad", "--access", "--format"} <= flags
    pattern = re.compile(
        r"(?<![\w-])("
        + "|".join(map(re.escape, sorted(flags, key=len, reverse=True)))
        + r")(?![\w-])"
    )
    found = []
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE)
        if rel.parts[0] == "cli":
            continue
        tree = ast.parse(f.read_text())
        # local names bound to message text (msg = "... --x ...") count as that text
        local_text: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                local_text.setdefault(node.targets[0].id, []).extend(_texts(node.value))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ERRORS
            ):
                continue
            kw = {k.arg for k in node.keywords}
            if {"cli_message", "cli_problem"} & kw:
                continue
            texts = [t for a in [*node.args, *node.keywords] for t in _texts(a)]
            for name in set().union(*(_names(a) for a in node.args)):
                texts += local_text.get(name, [])
            hits = sorted({m for t in texts for m in pattern.findall(t)})
            if hits:
                found.append(f"{rel}:{node.lineno} {node.func.id} names {', '.join(hits)}")
    return found


def test_no_error_below_the_cli_names_an_option_without_a_cli_wording():
    found = offending_calls()
    assert [f for f in found if f.split(":")[0] not in NOT_YET] == []
    # each known exception is still one (a module reworded leaves the list)
    assert sorted(NOT_YET) == sorted({f.split(":")[0] for f in found})


def test_the_check_sees_an_option_in_an_error():
    # the check itself: it finds what it is looking for in a message built like these
    tree = "raise ConfigError(f'x {y} (--pid) z')"
    flags = re.compile(r"--pid")
    assert any(flags.findall(t) for t in _texts(ast.parse(tree)))


def test_trace_format_error_carries_where_and_both_wordings():
    e = TraceFormatError(
        "f.data", "cut (use skip_bad=True)", offset=16, cli_problem="cut (use --skip-bad)"
    )
    assert (e.path, e.offset, e.line, e.problem) == ("f.data", 16, None, "cut (use skip_bad=True)")
    assert str(e) == "f.data at byte offset 16 (0x10): cut (use skip_bad=True)"
    assert e.cli_message == "f.data at byte offset 16 (0x10): cut (use --skip-bad)"
    e = TraceFormatError("t.txt", "bad", line=3)
    assert str(e) == "t.txt at line 3: bad" and e.cli_message is None and e.where == " at line 3"
    # a hidden temporary name is replaced in both wordings
    e = shown_as(TraceFormatError("/x/.tmp1/f", "p", line=1, cli_problem="q"), {"/x/.tmp1/f": "f"})
    assert (str(e), e.cli_message, e.path) == ("f at line 1: p", "f at line 1: q", "f")


@pytest.mark.parametrize(
    "call,api,cli",
    [
        (dict(ops="nope"), "ops must be one of", "--ops must be one of"),
        (dict(access="nope"), "access must be one of", "--access must be one of"),
        (dict(max_rows=-1), "max_rows must be", "--max-rows must be"),
        (dict(ops="paddr", pids=[1]), "pids=[1] does not apply", "--pid does not apply"),
        (dict(ops="fvaddr"), "ranges=['START-END']", "--range START-END"),
        (dict(ranges=["0x1000-0x2000"]), "ranges applies to fvaddr", "--range applies to fvaddr"),
    ],
)
def test_replay_errors_in_both_wordings(call, api, cli):
    import pyarrow as pa

    from tracedamon.pipeline.replay import replay

    samples = pa.table(
        {
            "time_ns": pa.array([0, 10**9], pa.int64()),
            "pid": pa.array([1, 1], pa.int32()),
            "event": ["e", "e"],
            "addr": pa.array([4096, 8192], pa.uint64()),
            "phys_addr": pa.nulls(2, pa.uint64()),
        }
    )
    with pytest.raises((ConfigError, InputError)) as ei:
        replay(samples, **call)
    assert api in str(ei.value) and "--" not in str(ei.value).replace("START-END", "")
    assert cli in ei.value.cli_message
