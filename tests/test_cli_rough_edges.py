"""Rough edges a new user meets: a numba cache that cannot be written, error messages
that name tracedamon's hidden temporary files, `info` on a region history,
`dir(tracedamon)`, help text cut in a pipe."""

from __future__ import annotations

import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import tracedamon
from tracedamon.ingest import ingest

from conftest import ROOT, SAMPLES, need_corpus

PY = sys.executable


def td(*args, cwd=None, env=None, stdin=None, preexec_fn=None, user=None):
    cmd = [PY, "-m", "tracedamon", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env=env, input=stdin, preexec_fn=preexec_fn
    )


def cli(*args):
    """The command line in this process (faster than a new interpreter), as a
    CompletedProcess."""
    import contextlib
    import io

    from tracedamon.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert lines[0].startswith("tracedamon: error: ") and "Traceback" not in r.stderr
    return lines[0]


# -------------------------------------------------------------------- numba's cache
@pytest.fixture
def readonly_install():
    """A copy of the package nobody may write to, and a user whose home cannot be
    written either: numba has no place for its cache. As root (which writes anywhere)
    the commands run as user nobody; otherwise the copy's modes are enough."""
    base = Path(tempfile.mkdtemp(prefix="td-ro-"))
    try:
        os.chmod(base, 0o755)
        shutil.copytree(
            ROOT / "tracedamon", base / "tracedamon", ignore=shutil.ignore_patterns("__pycache__")
        )
        out = base / "out"
        out.mkdir()
        os.chmod(out, 0o777)
        data = base / "hotcold.perf.data"
        shutil.copy(SAMPLES / "hotcold.perf.data", data)
        os.chmod(data, 0o644)
        for dirpath, dirnames, filenames in os.walk(base / "tracedamon"):
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o444)
            os.chmod(dirpath, 0o555)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent",
            "PYTHONPATH": str(base),
        }
        user = None
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv to drop privileges")
            user = 65534
        elif os.access(base / "tracedamon", os.W_OK):
            pytest.skip("the read-only copy is writable (a file system without modes?)")
        # the interpreter's own site-packages must be readable by that user
        yield {"env": env, "user": user, "out": out, "data": data, "pkg": base / "tracedamon"}
    finally:
        for dirpath, dirnames, filenames in os.walk(base):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def _jit_modules(pkg: Path) -> list[str]:
    """Every module of the package that defines numba kernels with cache=True."""
    return sorted(
        "tracedamon." + ".".join(f.relative_to(pkg).with_suffix("").parts)
        for f in pkg.rglob("*.py")
        if "cache=True" in f.read_text()
    )


def test_an_unwritable_numba_cache_is_one_warning_and_the_command_works(readonly_install):
    ro = readonly_install
    r = td(
        "ingest",
        ro["data"],
        "-o",
        ro["out"] / "x.td",
        env=ro["env"],
        user=ro["user"],
        cwd=ro["out"],
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warn = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("tracedamon: warning: numba cannot cache"), (
        r.stderr
    )
    assert "NUMBA_CACHE_DIR" in warn[0]
    assert (ro["out"] / "x.td" / "samples.parquet").exists()
    # the package imported was the read-only copy, and nothing was written into it
    assert not any(p.name == "__pycache__" for p in ro["pkg"].rglob("*"))
    # every module with kernels loads (numba refuses at definition, not at first call)
    mods = _jit_modules(ro["pkg"])
    assert "tracedamon.engine.merge" in mods and "tracedamon.ingest.perf.sample_kernels" in mods
    cmd = [
        PY,
        "-c",
        "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]",
        *mods,
    ]
    if ro["user"] is not None:
        cmd = ["setpriv", f"--reuid={ro['user']}", f"--regid={ro['user']}", "--clear-groups", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ro["env"], cwd=ro["out"])
    assert r.returncode == 0, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr


def test_a_writable_numba_cache_dir_needs_no_warning(readonly_install):
    ro = readonly_install
    cache = ro["out"] / "cache"
    cache.mkdir()
    os.chmod(cache, 0o777)
    cmd = [PY, "-c", "import tracedamon"]
    if ro["user"] is not None:
        cmd = ["setpriv", f"--reuid={ro['user']}", f"--regid={ro['user']}", "--clear-groups", *cmd]
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ro["out"],
        env={**ro["env"], "NUMBA_CACHE_DIR": str(cache)},
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ------------------------------------------------------ hidden temporary paths in errors
def _fsize(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_write_error_names_the_output_not_the_hidden_directory(tmp_path):
    r = td(
        "ingest", SAMPLES / "hotcold.perf.data", "-o", tmp_path / "big.td", preexec_fn=_fsize(8000)
    )
    msg = one_error_line(r)
    assert f"{tmp_path / 'big.td'}:" in msg and ".tmp" not in msg and "too large" in msg
    assert list(tmp_path.iterdir()) == []


def test_a_file_write_error_names_the_output(tmp_path):
    t = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    r = td(
        "replay",
        t,
        "--start",
        "auto",
        "--sample-us",
        "10000",
        "-q",
        "-o",
        tmp_path / "r.parquet",
        preexec_fn=_fsize(3000),
    )
    msg = one_error_line(r)
    assert f"{tmp_path / 'r.parquet'}:" in msg and ".tmp" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.td"]


def test_info_names_the_input_not_its_temporary_trace(tmp_path):
    """`info` on a raw input ingests it into a temporary directory first."""
    r = td("info", SAMPLES / "hotcold.perf.data", preexec_fn=_fsize(8000))
    msg = one_error_line(r)
    assert msg.startswith(
        f"tracedamon: error: {SAMPLES / 'hotcold.perf.data'} (ingested into a temporary directory):"
    ), msg
    assert "tracedamon-info" not in msg and ".tmp" not in msg


def test_standard_input_is_named_as_such(tmp_path):
    data = (SAMPLES / "hotcold.perf.data").read_bytes()[:3000]
    r = subprocess.run(
        [PY, "-m", "tracedamon", "ingest", "-", "-o", str(tmp_path / "s.td")],
        input=data,
        capture_output=True,
    )
    msg = one_error_line(
        subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    )
    assert msg.startswith("tracedamon: error: - at byte offset") and "stdin" not in msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["auto", "damon"])
def test_a_gzipped_input_is_named_not_its_decompressed_copy(tmp_path, fmt):
    src = need_corpus("perf", "24_damon_tracepoint.data")
    gz = tmp_path / "dt.data.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()[:5000]))
    r = cli("ingest", "--format", fmt, gz, "-o", tmp_path / "dt.td")
    msg = one_error_line(r)
    assert msg.startswith(f"tracedamon: error: {gz} (decompressed) at byte offset"), msg
    assert "tracedamon-gz" not in msg and ".tmp" not in msg


# --------------------------------------------------------------------------- info
def test_info_describes_a_region_history_as_one(tmp_path):
    t = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    h = tracedamon.replay(t, start_ns="auto", sample_us=10000)
    p = h.to_parquet(tmp_path / "perf.parquet")
    r = td("info", p)  # as a user runs it
    assert r.returncode == 0, r.stderr
    out = r.stdout
    df = h.df
    assert out.startswith(f"{p}: region history written by tracedamon replay ({len(df)} rows)")
    assert f"perf ({len(df)} rows)" not in out and "tables:" not in out
    assert f"snapshots: {df['snapshot'].nunique()} " in out
    assert f"targets: 0 (pid {int(df['pid'].iloc[0])})" in out
    per = df.groupby("snapshot").size()
    assert f"regions per snapshot {per.min()}-{per.max()}" in out
    assert "every region of every snapshot is listed" in out
    assert "ops vaddr, access perf" in out and "sample 10 ms" in out


def test_info_says_when_a_history_lists_only_accessed_regions(tmp_path):
    t = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    r = cli(
        "replay",
        t,
        "--start",
        "auto",
        "--sample-us",
        "10000",
        "--min-region",
        "4096",
        "--max-region",
        "4096",
        "--accessed-only",
        "-q",
        "-o",
        tmp_path / "4k.parquet",
    )
    assert r.returncode == 0, r.stderr
    r = cli("info", tmp_path / "4k.parquet")
    assert "sparse: only regions with accesses are listed" in r.stdout, r.stdout
    assert "region size 4096-4096" in r.stdout


def test_info_on_a_trace_directorys_regions_table(tmp_path):
    d = ingest(SAMPLES / "damon" / "live_paddr.perf.data", tmp_path / "d.td")
    r = cli("info", d / "regions.parquet")
    assert r.returncode == 0, r.stderr
    assert "region history, the regions table of a trace directory" in r.stdout


# ---------------------------------------------------------------- the package
def test_dir_lists_the_public_api():
    names = dir(tracedamon)
    for name in ("ingest", "open_trace", "replay", "compare", "__version__"):
        assert name in names
    assert set(tracedamon.__all__) <= set(names)
    for name in tracedamon.__all__:
        assert getattr(tracedamon, name) is not None


# ------------------------------------------------------------------------- help
COMMANDS = [
    [],
    ["ingest"],
    ["info"],
    ["replay"],
    ["snapshot"],
    ["compare"],
    ["report"],
    ["report", "heatmap"],
    ["report", "wss"],
    ["report", "access"],
    ["report", "summary"],
    ["report", "truth"],
    ["report", "attribute"],
    ["export"],
    ["export", "damo"],
]


@pytest.mark.parametrize("columns", [None, "80", "50"])
def test_help_wraps_in_a_pipe_instead_of_cutting(columns, monkeypatch, capsys):
    """In a pipe rich lays help out at $COLUMNS (80 when unset); a word too long for
    its cell must wrap onto the next line, not be cut with an ellipsis."""
    from tracedamon.cli import main

    monkeypatch.delenv("LINES", raising=False)
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
    for cmd in COMMANDS:
        capsys.readouterr()
        assert main([*cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert "…" not in out, (cmd, out)
        assert max(len(ln) for ln in out.splitlines()) <= int(columns or 80), cmd
    # the longest unbreakable help word is all there, over two lines
    main(["ingest", "--help"])
    text = "".join(ln.strip(" │") for ln in capsys.readouterr().out.splitlines())
    assert "auto|perf-data|perf-script|damon|damo|pagemap" in text.replace(" ", "")


@pytest.mark.parametrize("columns", [None, "80"])
def test_replay_help_piped_is_whole(columns):
    """`tracedamon replay --help | cat`, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns:
        env["COLUMNS"] = columns
    r = td("replay", "--help", env=env)
    assert r.returncode == 0 and "…" not in r.stdout
    assert "--min-nr-regions-mode" in r.stdout and "--damon-trace" in r.stdout


def test_the_command_list_has_no_ragged_lines():
    """A command's summary in the list is wrapped by rich (each line filled as far as
    the next word allows), not broken where its source text breaks."""
    r = td("--help", env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    lines = r.stdout.splitlines()
    first = next(n for n, ln in enumerate(lines) if ln.startswith("│ snapshot "))
    col = lines[first].index("Snapshot")
    right = lines[first].rindex("│") - 1  # the cell's last usable column
    desc = [lines[first][col:right].rstrip()]
    for ln in lines[first + 1 :]:
        if ln[2:col].strip() or not ln[col:right].strip():  # the next command, or the end
            break
        desc.append(ln[col:right].rstrip())
    assert len(desc) >= 3
    width = right - col
    for a, b in zip(desc, desc[1:]):
        assert len(a) + 1 + len(b.split()[0]) > width, (a, b)
