"""The trace-directory writer, input detection and the CLI's error handling."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest

from conftest import need_corpus
from tracedamon.errors import InputError, TraceFormatError
from tracedamon.ingest.detect import detect_format
from tracedamon.store.writer import TraceDirWriter, read_parquet_metadata
from tracedamon.schema import LOST, TABLES
from tracedamon.store.trace import open_trace


def _lost_batch(n):
    return pa.table(
        {
            "time_ns": pa.array(range(n), pa.int64()),
            "kind": pa.array(["LOST"] * n).dictionary_encode(),
            "event_id": pa.array([0] * n, pa.int32()),
            "sample_id": pa.array([None] * n, pa.uint64()),
            "pid": pa.array([1] * n, pa.int32()),
            "tid": pa.array([1] * n, pa.int32()),
            "cpu": pa.array([0] * n, pa.int32()),
            "lost": pa.array([5] * n, pa.uint64()),
        }
    )


def test_writer_commits_whole_directory(tmp_path):
    dest = tmp_path / "x.td"
    with TraceDirWriter(dest, provenance={"name": "unit"}) as w:
        w.write("lost", _lost_batch(3))
        w.write("lost", _lost_batch(2))
        w.meta["layout"] = "file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.td"]
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["tables"] == {"lost": 5}
    assert meta["layout"] == "file"
    t = open_trace(dest).table("lost")
    assert t.num_rows == 5
    assert t.schema.equals(LOST, check_metadata=False)
    md = read_parquet_metadata(dest / "lost.parquet")
    assert md["provenance"] == {"name": "unit"} and md["schema_version"] >= 1


def test_writer_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "x.td"
    with pytest.raises(RuntimeError):
        with TraceDirWriter(dest) as w:
            w.write("lost", _lost_batch(3))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_existing_without_force(tmp_path):
    dest = tmp_path / "x.td"
    with TraceDirWriter(dest) as w:
        w.write("lost", _lost_batch(2))
    with pytest.raises(InputError, match="exists"):
        TraceDirWriter(dest)
    with TraceDirWriter(dest, force=True) as w:
        w.write("lost", _lost_batch(1))
    assert open_trace(dest).num_rows("lost") == 1
    # a directory tracedamon did not write is not replaced, even empty, even with force
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match="meta.json"):
        TraceDirWriter(tmp_path / "mine", force=True)


def test_every_table_has_unique_columns():
    for name, schema in TABLES.items():
        assert len(set(schema.names)) == len(schema.names), name


def test_detect(tmp_path):
    assert detect_format(need_corpus("perf", "01_pf_c1_addr.data")) == "perf-data"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        detect_format(empty)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\nthis is not a trace\n")
    with pytest.raises(InputError, match="unrecognised"):
        detect_format(junk)


def test_format_error_names_file_and_offset():
    e = TraceFormatError("a.data", "record size 0", offset=4096)
    assert str(e) == "a.data at byte offset 4096 (0x1000): record size 0"
    e = TraceFormatError("t.txt", "bad field", line=7)
    assert str(e) == "t.txt at line 7: bad field"


def test_cli_reports_errors_without_traceback(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("not a trace\n")
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "ingest", str(junk)], capture_output=True, text=True
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "junk.txt" in r.stderr and "unrecognised" in r.stderr
    assert not (tmp_path / "junk.txt.td").exists()


def test_public_ingest_callable_after_submodule_import(tmp_path):
    import tracedamon
    import tracedamon.ingest.detect  # noqa: F401  loads a module of the readers package

    dest = tracedamon.ingest(need_corpus("perf", "01_pf_c1_addr.data"), tmp_path / "a.td")
    assert tracedamon.open_trace(dest).num_rows("samples") > 0


def test_cli_usage_error_is_not_a_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "compare"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "Missing argument" in r.stderr


def test_gzipped_perf_data_reads_like_the_plain_file(tmp_path):
    import csv
    import gzip
    import shutil

    src = need_corpus("perf", "01_pf_c1_addr.data")
    with open(need_corpus("perf", "01_pf_c1_addr.samples.csv"), newline="") as f:
        delivered = sum(1 for _ in csv.DictReader(f))  # perf's samples of the file
    gz = tmp_path / "01.data.gz"
    with open(src, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    from tracedamon.ingest import ingest

    a = open_trace(ingest(src, tmp_path / "a.td")).table("samples")
    b = open_trace(ingest(gz, tmp_path / "b.td")).table("samples")
    assert a.num_rows == delivered > 0 and a.equals(b)
    # a truncated gzipped file names the user's file, and leaves nothing behind
    bad = tmp_path / "bad.data.gz"
    with gzip.open(bad, "wb") as g:
        g.write(src.read_bytes()[:5000])
    with pytest.raises(TraceFormatError, match=r"bad\.data\.gz \(decompressed\) at byte offset"):
        ingest(bad, tmp_path / "bad.td")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "01.data.gz",
        "a.td",
        "b.td",
        "bad.data.gz",
    ]


def test_every_recorded_script_text_is_detected(perf_dir):
    texts = sorted(perf_dir.glob("*.script.txt"))
    assert texts
    for f in texts:
        want = "damon" if "damon" in f.name else "perf-script"
        assert detect_format(f) == want, f.name


def test_every_corpus_script_text_is_detected(corpus):
    for f in sorted((corpus / "ubench-perf-mem").glob("*.script.txt")):
        assert detect_format(f) == "perf-script", f.name


def test_ingest_from_standard_input(tmp_path):
    src = need_corpus("perf", "12_pipe.data")
    with open(src, "rb") as f:
        r = subprocess.run(
            [sys.executable, "-m", "tracedamon", "ingest", "-", "-o", str(tmp_path / "s.td")],
            stdin=f,
            capture_output=True,
            text=True,
        )
    assert r.returncode == 0, r.stderr
    from tracedamon.ingest import ingest

    want = open_trace(ingest(src, tmp_path / "f.td")).table("samples")
    got = open_trace(tmp_path / "s.td")
    assert got.table("samples").equals(want)
    assert got.meta["inputs"][0]["name"] == "-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.td", "s.td"]  # no leftovers


@pytest.mark.skipif(__import__("shutil").which("perf") is None, reason="perf is not installed")
def test_live_perf_pipe_into_ingest(tmp_path):
    """`perf record -o - | tracedamon ingest -`: every sample perf script sees is a row."""
    stream = tmp_path / "pipe.data"
    cmd = (
        f"perf record -q -N -o - -e page-faults -c 1 -d -- /bin/true | tee {stream} | "
        f"{sys.executable} -m tracedamon ingest - -o {tmp_path / 'p.td'}"
    )
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    script = subprocess.run(
        ["perf", "script", "-i", str(stream), "-F", "pid,addr"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    addrs = sorted(int(ln.split()[1], 16) for ln in script if ln.strip())
    t = open_trace(tmp_path / "p.td")
    assert t.meta["layout"] == "pipe"
    assert sorted(t.table("samples")["addr"].to_pylist()) == addrs and addrs
