"""Flags renamed so that one name has one meaning: `compare --damos` (a switch) is now
`--damos-apply` (`--damos` stays report html's damos_apply table to draw), and `damos
--samples DIR` is now `--samples-from DIR` (`--samples` stays the switch that draws the
samples, `--samples-from` the trace directory they come from, as in report html). The
old spellings work for one release, hidden from --help, with a one-line warning."""

from __future__ import annotations

import json

import typer

from tracedamon.cli import app, main

from test_damos_compare import A_ROWS, B_ROWS, _damos_dir
from test_damos_run import HOT, PAGE, T0, write_source

RECLAIM = "reclaim:wmarks=none,min_age=100ms"


def _hidden_options() -> dict:
    """Every hidden option of every command: {(command path, flag): option}."""
    out = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
            return
        for o in cmd.params:
            if getattr(o, "param_type_name", "") == "option" and o.hidden:
                for flag in o.opts:
                    out[(path, flag)] = o

    walk(typer.main.get_command(app), "")
    return out


def test_the_hidden_options_are_the_old_spellings():
    assert set(_hidden_options()) >= {("compare", "--damos"), ("damos", "--samples")}


def _deprecation_lines(err: str, flag: str) -> list[str]:
    return [ln for ln in err.splitlines() if f"{flag} is deprecated" in ln]


def test_compare_damos_apply_and_its_old_spelling(tmp_path, capsys):
    a = _damos_dir(tmp_path / "a.damos", A_ROWS, 1_000_000)
    b = _damos_dir(tmp_path / "b.damos", B_ROWS, 1_000_000)
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert main(["compare", str(a), str(b), "--damos-apply", "-q", "-o", str(new)]) == 0
    assert _deprecation_lines(capsys.readouterr().err, "--damos") == []
    assert main(["compare", str(a), str(b), "--damos", "-q", "-o", str(old)]) == 0
    lines = _deprecation_lines(capsys.readouterr().err, "--damos")
    assert len(lines) == 1 and "use --damos-apply" in lines[0]
    assert lines[0].startswith("tracedamon: warning: ")
    assert json.loads(old.read_text())["bytes"] == json.loads(new.read_text())["bytes"]


def test_compare_damos_apply_switch_reaches_the_comparison(tmp_path, capsys):
    """Two region histories with --damos-apply (or the old --damos) are compared as
    damos_apply tables: they hold none, so the error names that table."""
    h = write_source(tmp_path / "s.td", [[(HOT, HOT + 64 * PAGE, 0, 0)]], [(T0 + 1, HOT)])
    assert main(["compare", str(h), str(h), "-q"]) == 0
    capsys.readouterr()
    for flag in ("--damos-apply", "--damos"):
        assert main(["compare", str(h), str(h), flag, "-q"]) != 0
        err = capsys.readouterr().err
        assert "damos_apply" in err, (flag, err)


def test_damos_samples_from_and_its_old_spelling(tmp_path, capsys):
    hist = write_source(
        tmp_path / "s.td", [[(HOT, HOT + 64 * PAGE, 0, j)] for j in range(3)], [(T0 + 1, HOT)]
    )
    src = hist.parent  # its samples
    hist = str(hist)
    # the value reaches the outcome model: a directory without samples is refused
    for flag in ("--samples-from", "--samples"):
        rc = main(["damos", hist, "-s", RECLAIM, "-o", str(tmp_path / "x"), flag, "no.td"])
        err = capsys.readouterr().err
        assert rc != 0 and "no.td: no samples table" in err
        assert len(_deprecation_lines(err, "--samples")) == (flag == "--samples")
    outs = {}
    for flag in ("--samples-from", "--samples"):
        out = tmp_path / flag.strip("-")
        assert main(["damos", hist, "-s", RECLAIM, "-o", str(out), flag, str(src), "-q"]) == 0
        err = capsys.readouterr().err
        lines = _deprecation_lines(err, "--samples")
        assert len(lines) == (flag == "--samples")
        if lines:
            assert "use --samples-from" in lines[0]
        outs[flag] = json.loads((out / "meta.json").read_text())["damos"]
    assert outs["--samples"]["outcome"]["pageout"]["samples"] is True
    assert outs["--samples"]["outcome"] == outs["--samples-from"]["outcome"]


def test_help_shows_only_the_new_spellings(capsys):
    for cmd, new, old in (
        ("compare", "--damos-apply", "--damos "),
        ("damos", "--samples-from", "--samples "),
    ):
        try:
            main([cmd, "--help"])
        except SystemExit:
            pass
        text = capsys.readouterr().out
        assert new in text and old not in text, cmd
