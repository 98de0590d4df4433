"""The narrow samples file: columns no event records are left out, columns every event
records are non-nullable, and every reader gets the full SAMPLES schema back."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLES as SAMPLE_TRACES, corpus_files, need_corpus, perf_cases, requires
from tracedamon.ingest import perf_data
from tracedamon.ingest.perf_data import ingest_into
from tracedamon.store.writer import TraceDirWriter, read_parquet_metadata
from tracedamon.schema import LOST, SAMPLES, conform
from tracedamon.store.trace import open_trace

PERF_FILES = perf_cases() + corpus_files("ubench-perf-mem", "perf-mem-*.data")
HOTCOLD = SAMPLE_TRACES / "hotcold.perf.data"
INPUTS = PERF_FILES + [p for p in [HOTCOLD] if p.exists()]


def _ingest(src: Path, out: Path, **opts) -> Path:
    with TraceDirWriter(out) as w:
        ingest_into(src, w, **opts)
    return out


@pytest.mark.parametrize("src", INPUTS, ids=lambda p: p.stem)
def test_narrow_file_reads_back_equal_to_the_full_one(src, tmp_path):
    narrow = _ingest(src, tmp_path / "n.td")
    full = _ingest(src, tmp_path / "f.td", all_columns=True)
    tn, tf = open_trace(narrow).table("samples"), open_trace(full).table("samples")
    assert tn.schema.equals(SAMPLES) and tf.schema.equals(SAMPLES)
    assert tn.equals(tf)
    # the full file holds exactly the fixed schema
    assert pq.read_schema(full / "samples.parquet").names == SAMPLES.names
    # the narrow one: left-out columns are null in every row, non-nullable ones never
    file_schema = pq.read_schema(narrow / "samples.parquet")
    absent = [c for c in SAMPLES.names if c not in file_schema.names]
    for c in absent:
        assert tf.column(c).null_count == tf.num_rows, c
    for f in file_schema:
        if not f.nullable:
            assert tf.column(f.name).null_count == 0, f.name
    meta = json.loads((narrow / "meta.json").read_text())
    assert meta.get("absent_columns", {}).get("samples", []) == absent
    assert read_parquet_metadata(narrow / "samples.parquet").get("absent_columns", []) == absent
    if tf.num_rows:
        # the guess from the attrs left out something on every file here
        assert absent, "no column left out"


@requires(HOTCOLD.exists(), "sample trace missing")
def test_page_fault_samples_leave_out_what_perf_did_not_record(tmp_path):
    """perf record -e page-faults -d records IP, TID, TIME, ADDR, PERIOD and DATA_SRC:
    exactly those columns (plus the ones every record has) are written, non-nullable."""
    out = _ingest(HOTCOLD, tmp_path / "hc.td")
    fs = pq.read_schema(out / "samples.parquet")
    assert "phys_addr" not in fs.names and "callchain" not in fs.names and "cpu" not in fs.names
    for c in ("time_ns", "pid", "tid", "ip", "addr", "period", "data_src", "mem_op"):
        assert not fs.field(c).nullable, c


@pytest.mark.parametrize(
    "name", ["05_two_events_id", "08_callchain_fp", "12_pipe", "18_tracepoint_mmap"]
)
def test_a_wrong_guess_is_widened_without_losing_rows(name, tmp_path, monkeypatch):
    """Should the attrs mislead the guess, the rows written so far are rewritten in a
    wider schema: same table as the full file, whatever the guess."""
    src = need_corpus("perf", f"{name}.data")
    full = open_trace(_ingest(src, tmp_path / "f.td", all_columns=True)).table("samples")
    # everything declared non-nullable, only the always-present columns kept
    wrong = pa.schema(
        [
            SAMPLES.field(c).with_nullable(False)
            for c in ("time_ns", "event_id", "event", "cpumode", "misc")
        ]
    )
    monkeypatch.setattr(perf_data, "samples_file_schema", lambda rd: wrong)
    monkeypatch.setattr(perf_data, "WRITE_ROWS", 7)  # many batches before and after
    out = _ingest(src, tmp_path / "w.td")
    got = open_trace(out).table("samples")
    assert got.equals(full)
    fs = pq.read_schema(out / "samples.parquet")
    assert len(fs.names) > len(wrong.names)
    assert pq.ParquetFile(out / "samples.parquet").metadata.num_rows == full.num_rows


def _lost(n, pid=1, cpu=None):
    return pa.table(
        {
            "time_ns": pa.array(range(n), pa.int64()),
            "kind": pa.array(["LOST"] * n).dictionary_encode(),
            "event_id": pa.array([0] * n, pa.int32()),
            "sample_id": pa.array([None] * n, pa.uint64()),
            "pid": pa.array([pid] * n, pa.int32()),
            "tid": pa.array([pid] * n, pa.int32()),
            "cpu": pa.array([cpu] * n, pa.int32()),
            "lost": pa.array([5] * n, pa.uint64()),
        }
    )


def test_writer_widens_for_nulls_and_for_left_out_values(tmp_path):
    narrow = pa.schema(
        [
            LOST.field(c).with_nullable(c != "kind" and c != "pid")
            if c != "kind"
            else LOST.field(c)
            for c in ("time_ns", "kind", "event_id", "pid", "tid", "lost")
        ]
    )
    narrow = narrow.set(narrow.get_field_index("pid"), narrow.field("pid").with_nullable(False))
    parts = [_lost(3), _lost(2, pid=None), _lost(4, cpu=7)]
    with TraceDirWriter(tmp_path / "t.td") as w:
        w.set_file_schema("lost", narrow)
        for p in parts:
            w.write("lost", p)
        assert w.widened["lost"] == 2
    fs = pq.read_schema(tmp_path / "t.td" / "lost.parquet")
    assert fs.field("pid").nullable and "cpu" in fs.names and "sample_id" not in fs.names
    got = open_trace(tmp_path / "t.td").table("lost")
    want = conform(pa.concat_tables([conform(p, LOST) for p in parts]), LOST)
    assert got.to_pylist() == want.to_pylist()
    meta = json.loads((tmp_path / "t.td" / "meta.json").read_text())
    assert meta["absent_columns"] == {"lost": ["sample_id"]}


def test_writer_refuses_schemas_that_are_not_narrower(tmp_path):
    with TraceDirWriter(tmp_path / "t.td") as w:
        with pytest.raises(ValueError):  # a type change
            w.set_file_schema("lost", pa.schema([pa.field("time_ns", pa.int32())]))
        with pytest.raises(ValueError):  # out of order
            w.set_file_schema("lost", pa.schema([LOST.field("lost"), LOST.field("time_ns")]))
        with pytest.raises(ValueError):  # nullable where the schema is not
            w.set_file_schema("lost", pa.schema([LOST.field("kind").with_nullable(True)]))
        w.write("lost", _lost(2))
        with pytest.raises(RuntimeError):
            w.set_file_schema("lost", pa.schema([LOST.field("time_ns")]))


def test_trace_reads_left_out_columns_as_nulls(tmp_path):
    narrow = pa.schema(
        [LOST.field(c) for c in ("time_ns", "kind", "event_id", "pid", "tid", "lost")]
    )
    with TraceDirWriter(tmp_path / "t.td") as w:
        w.set_file_schema("lost", narrow)
        w.write("lost", _lost(5))
        assert not w.widened
    tr = open_trace(tmp_path / "t.td")
    assert tr.columns("lost") == narrow.names
    t = tr.table("lost", columns=["cpu", "lost"])
    assert t.column("cpu").null_count == 5 and t.column("lost").to_pylist() == [5] * 5
    assert tr.table("lost", filters=[("cpu", "=", 7)]).num_rows == 0
    assert tr.table("lost", filters=[("pid", "=", 1)]).num_rows == 5
    parts = list(tr.iter_tables("lost", ["time_ns", "tid"], batch_rows=2))
    assert [p.num_rows for p in parts] == [2, 2, 1]
    assert all(
        p.schema.equals(pa.schema([LOST.field("time_ns"), LOST.field("tid")])) for p in parts
    )


def test_info_counts_from_statistics_equal_a_scan(tmp_path):
    """info's counts per pid and per event use row-group statistics where a row group
    holds one value; with mixed and single-valued row groups they equal a plain count."""
    from tracedamon.pipeline.info import sample_stats as _sample_stats
    import numpy as np

    rng = np.random.default_rng(1)
    n = 5000
    pid = np.repeat(rng.integers(1, 5, 50), 100).astype(np.int32)  # runs of 100 rows
    pid[:300] = rng.integers(1, 5, 300)  # mixed at the start
    t = pa.table(
        {
            "time_ns": pa.array(np.arange(n) * 10, pa.int64()),
            "pid": pa.array(pid),
            "event_id": pa.array(np.zeros(n, np.int32)),
            "event": pa.array(["ev"] * n).dictionary_encode(),
            "cpumode": pa.array(np.zeros(n, np.uint8)),
            "misc": pa.array(np.zeros(n, np.uint16)),
        }
    )
    out = tmp_path / "s.td"
    out.mkdir()
    pq.write_table(conform(t, SAMPLES), out / "samples.parquet", row_group_size=100)
    (out / "meta.json").write_text("{}")
    st = _sample_stats(open_trace(out))
    assert st["pids"] == {int(k): int(v) for k, v in zip(*np.unique(pid, return_counts=True))}
    assert st["time_span_ns"] == [0, (n - 1) * 10]
    # without a pid column (recorded without TID): every sample counted under None
    pq.write_table(t.drop_columns(["pid"]), out / "samples.parquet", row_group_size=100)
    assert _sample_stats(open_trace(out))["pids"] == {None: n}


def test_prehash_gives_the_digest_of_the_file_as_it_is(tmp_path):
    from tracedamon.store.hashing import prehash, sha256_file

    p = tmp_path / "x.bin"
    p.write_bytes(b"a" * 100_000)
    prehash([p, tmp_path / "missing", tmp_path])
    assert sha256_file(p) == (100_000, hashlib.sha256(b"a" * 100_000).hexdigest())
    prehash([p])
    p.write_bytes(b"b" * 10)  # changed after the hash started: hashed again
    assert sha256_file(p) == (10, hashlib.sha256(b"b" * 10).hexdigest())


@requires(HOTCOLD.exists(), "sample trace missing")
def test_console_script_flushes_its_output_and_exit_code(tmp_path):
    """The console script ends with os._exit: its output must still be complete."""
    from tracedamon.cli.info import describe

    td = tmp_path / "hc.td"
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "ingest", str(HOTCOLD), "-o", str(td)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"wrote {td}\n{describe(td)}\n"
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "info", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no such file" in r.stderr


@requires(HOTCOLD.exists(), "sample trace missing")
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_refused_write_is_one_line_not_a_traceback(tmp_path):
    td = tmp_path / "hc.td"
    with TraceDirWriter(td) as w:
        ingest_into(HOTCOLD, w)
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "tracedamon", "info", str(td)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "No space left on device" in r.stderr
