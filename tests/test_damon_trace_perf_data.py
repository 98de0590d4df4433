"""DAMON trace ingest of perf.data: the reader's sample batches decoded with the file's
own tracepoint formats.

Oracles: perf's own ``perf script`` of the same file (the live sample traces, file and
pipe mode), damo's own conversion of it, and edits of the batches (duplicated, lost or
added samples) whose effect is known.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tracedamon.errors import TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.ingest.perf_data import open_perf_data
from tracedamon.ingest.tracing_data import parse_tracing_data
from tracedamon.store.trace import open_trace

from conftest import missing
from helpers.damon_trace import KEY, LIVE, _ingest, _Wrapped, _write_from


def test_live_sample_perf_data_equals_perfs_own_script(tmp_path):
    out = ingest([LIVE / "live_paddr.perf.data"], tmp_path / "a.td")  # auto: perf-data reader
    tr = open_trace(out)
    a = tr.df("regions")
    assert tr.num_rows("samples") == 5007 + 96  # the perf reader's own table, too
    b, meta_b = _ingest(LIVE / "live_paddr.script.txt.gz", tmp_path, "b.td")
    assert a.groupby("snapshot").size().tolist() == [2418, 2589]
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)
    assert (a["time_ns"] // 1000 * 1000 == b["time_ns"]).all()
    # damos_before_apply decoded from RAW equals perf's text of the same events
    da = tr.df("damos_apply")
    db = open_trace(tmp_path / "b.td").df("damos_apply")
    cols = [
        "context",
        "scheme",
        "target",
        "nr_regions",
        "start",
        "end",
        "nr_accesses",
        "age",
        "kdamond_pid",
        "cpu",
    ]
    assert len(da) == 96
    pd.testing.assert_frame_equal(da[cols], db[cols], check_dtype=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["damon_runs"][0]["kdamond_pid"] == 77
    assert meta["intervals"]["source"] == "inferred"


def test_perf_data_duplicate_samples_are_dropped(tmp_path):
    clean, _ = _write_from(_Wrapped(LIVE / "live_paddr.perf.data", lambda t: t), tmp_path, "c")
    idx = list(range(4000))
    idx[10:10] = [10, 10]  # one sample delivered three times
    idx[3000:3000] = [2999]
    dup = lambda t: pa.concat_tables([t.take(pa.array(idx)), t.slice(4000)])  # noqa: E731
    df, meta = _write_from(_Wrapped(LIVE / "live_paddr.perf.data", dup), tmp_path, "d")
    assert meta["duplicates_dropped"] == 3
    pd.testing.assert_frame_equal(clean, df)


def test_perf_data_lost_sample_is_an_error_at_a_byte_offset(tmp_path):
    holder = {}

    def drop(t):
        ev = t["event"].to_pylist()
        agg = [i for i, e in enumerate(ev) if e == "damon:damon_aggregated"]
        victim = agg[3000]  # inside the second snapshot
        holder["first2"] = t["file_offset"][agg[2418]].as_py()
        return pa.concat_tables([t.slice(0, victim), t.slice(victim + 1)])

    with pytest.raises(TraceFormatError) as ei:
        _write_from(_Wrapped(LIVE / "live_paddr.perf.data", drop), tmp_path, "l")
    assert ei.value.offset == holder["first2"]
    assert "2588 regions, fewer than its nr_regions=2589" in str(ei.value)
    df, meta = _write_from(
        _Wrapped(LIVE / "live_paddr.perf.data", drop), tmp_path, "l2", skip_bad=True
    )
    assert meta["skipped"] == {"snapshots": 1} and df["snapshot"].nunique() == 1


def test_perf_data_without_tracing_data_is_an_error(tmp_path):
    r = _Wrapped(LIVE / "live_paddr.perf.data", lambda t: t)
    r.tracing_data = None
    with pytest.raises(TraceFormatError, match="no tracing data"):
        _write_from(r, tmp_path, "n")


def test_live_pipe_mode_perf_data_equals_its_script(tmp_path):
    a, meta = _ingest(LIVE / "live_paddr_pipe.perf.data", tmp_path, "a.td")
    b, _ = _ingest(LIVE / "live_paddr_pipe.script.txt.gz", tmp_path, "b.td")
    assert len(a) == 1349 and a["snapshot"].nunique() == 1
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)
    assert meta["damon_source"] == "perf.data"
    assert "intervals" not in meta  # one snapshot: nothing to infer from


def _damo_convert(src: Path, out: Path) -> None:
    damo = Path(sys.executable).parent / "damo"
    if not damo.exists():
        missing("damo is not installed in the venv")
    r = subprocess.run(
        [
            str(damo),
            "convert_record_format",
            "--record_file",
            str(src),
            "--format",
            "json_compressed",
            "--output_file",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_damos_own_conversion_of_the_live_sample_reads_back_identically(tmp_path):
    """damo 3.4.3 parses the perf script text itself; its json_compressed, read by our
    damo reader, holds the regions our DAMON trace reader finds in the same text."""
    lines = gzip.decompress((LIVE / "live_paddr.script.txt.gz").read_bytes()).decode()
    lines = lines.splitlines(keepends=True)
    agg_only = tmp_path / "agg.txt"
    agg_only.write_text("".join(ln for ln in lines if "damon_aggregated" in ln))
    out = tmp_path / "agg.json_compressed"
    _damo_convert(agg_only, out)
    a, _ = _ingest(agg_only, tmp_path, "a.td")
    b, meta = _ingest(out, tmp_path, "b.td")
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)
    assert (a["time_ns"] == b["time_ns"]).all()
    assert meta["damon_source"] == "damo-record"
    # the full text also has damos_before_apply events: damo counts their regions into
    # the damon_aggregated snapshots (64 scheme regions land in the first snapshot);
    # our damo reader reports that record, our trace reader keeps the two apart
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("".join(lines))
    _damo_convert(mixed, tmp_path / "mixed.json_compressed")
    with pytest.raises(TraceFormatError, match="snapshot 0 .* out of address order"):
        _ingest(tmp_path / "mixed.json_compressed", tmp_path, "m.td")
    c, _ = _ingest(mixed, tmp_path, "c.td")
    pd.testing.assert_frame_equal(a, c)


def test_perf_data_intervals_tune_samples_are_decoded(tmp_path):
    """The live recording enabled damon_monitor_intervals_tune but no tuning happened:
    add two such samples (RAW laid out as the file's own format says) to its batches."""
    td = parse_tracing_data(open_perf_data(LIVE / "live_paddr.perf.data").tracing_data)
    fmt = td.event("damon:damon_monitor_intervals_tune")
    off = fmt.by_name["sample_us"].offset

    def payload(us):
        b = bytearray(20)  # 16-byte entry, padded so 4 + size is 8k
        struct.pack_into("<HBBi", b, 0, fmt.id, 0, 0, 77)
        struct.pack_into("<Q", b, off, us)
        return bytes(b)

    def add(t):
        first = t.slice(0, 1)
        rows = []
        for when, us in ((799_000_000_000, 250_000), (803_000_000_000, 125_000)):
            r = first
            for name, val in (
                ("event", "damon:damon_monitor_intervals_tune"),
                ("raw", payload(us)),
                ("time_ns", when),
            ):
                i = r.schema.get_field_index(name)
                typ = r.schema.field(i).type
                arr = (
                    pa.array([val]).cast(typ)
                    if pa.types.is_dictionary(typ)
                    else pa.array([val], typ)
                )
                r = r.set_column(i, r.schema.field(i), arr)
            rows.append(r)
        return pa.concat_tables([t] + rows)

    df, meta = _write_from(_Wrapped(LIVE / "live_paddr.perf.data", add), tmp_path, "tune")
    tune = open_trace(tmp_path / "tune").df("intervals_tune")
    assert tune["sample_us"].tolist() == [250_000, 125_000]
    assert tune["time_ns"].tolist() == [799_000_000_000, 803_000_000_000]
    assert meta["intervals"]["sample_us"] == 250_000 and meta["intervals"]["tuned"] is True
    assert df.groupby("snapshot").size().tolist() == [2418, 2589]
