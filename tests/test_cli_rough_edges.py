"""Rough edges a new user meets: a numba cache that cannot be written, error messages
that name tracedamon's hidden temporary files, `info` on a region history,
`dir(tracedamon)`, help text cut in a pipe."""
from __future__ import annotations

import gzip
import resource
import subprocess
import sys

import pytest

from tracedamon.ingest import ingest

from conftest import SAMPLES

PY = sys.executable


def td(*args, cwd=None, env=None, stdin=None, preexec_fn=None, user=None):
    cmd = [PY, "-m", "tracedamon", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                          input=stdin, preexec_fn=preexec_fn)


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


# ------------------------------------------------------ hidden temporary paths in errors
def _fsize(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_write_error_names_the_output_not_the_hidden_directory(tmp_path):
    r = td("ingest", SAMPLES / "hotcold.perf.data", "-o", tmp_path / "big.td",
           preexec_fn=_fsize(8000))
    msg = one_error_line(r)
    assert f"{tmp_path / 'big.td'}:" in msg and ".tmp" not in msg and "too large" in msg
    assert list(tmp_path.iterdir()) == []


def test_a_file_write_error_names_the_output(tmp_path):
    t = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "t.td")
    r = td("replay", t, "--start", "auto", "--sample-us", "10000", "-q",
           "-o", tmp_path / "r.parquet", preexec_fn=_fsize(3000))
    msg = one_error_line(r)
    assert f"{tmp_path / 'r.parquet'}:" in msg and ".tmp" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.td"]


def test_info_names_the_input_not_its_temporary_trace(tmp_path):
    """`info` on a raw input ingests it into a temporary directory first."""
    r = td("info", SAMPLES / "hotcold.perf.data", preexec_fn=_fsize(8000))
    msg = one_error_line(r)
    assert msg.startswith(f"tracedamon: error: {SAMPLES / 'hotcold.perf.data'} (ingested "
                          "into a temporary directory):"), msg
    assert "tracedamon-info" not in msg and ".tmp" not in msg


def test_standard_input_is_named_as_such(tmp_path):
    data = (SAMPLES / "hotcold.perf.data").read_bytes()[:3000]
    r = subprocess.run([PY, "-m", "tracedamon", "ingest", "-", "-o", str(tmp_path / "s.td")],
                       input=data, capture_output=True)
    msg = one_error_line(subprocess.CompletedProcess(r.args, r.returncode,
                                                     r.stdout.decode(), r.stderr.decode()))
    assert msg.startswith("tracedamon: error: - at byte offset") and "stdin" not in msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["auto", "damon"])
def test_a_gzipped_input_is_named_not_its_decompressed_copy(tmp_path, corpus, fmt):
    src = corpus / "perf" / "24_damon_tracepoint.data"
    gz = tmp_path / "dt.data.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()[:5000]))
    r = cli("ingest", "--format", fmt, gz, "-o", tmp_path / "dt.td")
    msg = one_error_line(r)
    assert msg.startswith(f"tracedamon: error: {gz} (decompressed) at byte offset"), msg
    assert "tracedamon-gz" not in msg and ".tmp" not in msg
