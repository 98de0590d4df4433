"""Replays that have nothing to do refuse with one line, a non-zero exit and no output.

Each case is run through the Python API (the error names the argument and its flag)
and through `tracedamon replay` (one line on stderr, non-zero exit code, no file).
The inputs are real: sample_traces/hotcold.perf.data, the corpus's DAMON-only perf.data
(`perf record -e damon:damon_aggregated`, pid 77 is the kdamond) and its attach-mode
page-fault recording, as a perf.data and as `perf script` text.
"""

from __future__ import annotations

import gzip
import re
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, need_corpus, requires_perf

import tracedamon
from tracedamon.cli import main
from tracedamon.pipeline.replay import replay
from tracedamon.errors import ConfigError, InputError
from tracedamon.ingest import ingest

PAGE = 4096
HOT = 0x200000000000
AREA = f"{HOT:#x}-{HOT + 288 * PAGE:#x}"
RUN1 = ("damon-paddr-run1", "paddr_run1")


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    return ingest(SAMPLES / "hotcold.perf.data", tmp_path_factory.mktemp("hc") / "hc.td")


def refused(args, capsys, tmp_path, match):
    """`tracedamon replay ARGS -o OUT`: non-zero, one line naming the problem, no OUT."""
    out = tmp_path / "out.parquet"
    rc = main(["replay", *map(str, args), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("tracedamon: error: "), err
    assert match in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.parquet*"))
    return err


def test_paddr_without_physical_addresses(hotcold, capsys, tmp_path):
    with pytest.raises(InputError, match="carries a physical address"):
        replay(hotcold, ops="paddr", access="perf-phys")
    refused(
        [hotcold, "--ops", "paddr", "--access", "perf-phys"], capsys, tmp_path, "physical address"
    )
    # --access perf with paddr counts virtual addresses at their frames: it needs pagemaps
    with pytest.raises(ConfigError, match="pagemap"):
        replay(hotcold, ops="paddr", access="perf")


def test_a_pid_without_samples(hotcold, capsys, tmp_path):
    with pytest.raises(
        InputError,
        match=r"no sample of pid 999999 \(pids=\[999999\]\)"
        r".*2291",
    ) as ei:
        replay(hotcold, pids=[999999])
    assert re.search(r"no sample of pid 999999 \(--pid 999999\).*2291", ei.value.cli_message)
    refused([hotcold, "--pid", "999999"], capsys, tmp_path, "no sample of pid 999999")
    with pytest.raises(InputError, match="no sample of pid 999999"):
        replay(hotcold, ops="fvaddr", ranges=[AREA], pids=[999999])
    # one of several pids without samples: a warning, the others are replayed
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], pids=[2291, 999999])
    assert any("pid 999999: no sample" in w for w in h.metadata["warnings"])


def test_a_damon_only_perf_data(tmp_path_factory, capsys, tmp_path):
    f = need_corpus("damon-paddr-run1", "paddr_run1", "damo_record_perf_data.data")
    td = ingest(f, tmp_path_factory.mktemp("dm") / "dm.td")
    with pytest.raises(InputError, match="damon:damon_aggregated.*data \\(virtual\\) address"):
        replay(td)
    err = refused([td], capsys, tmp_path, "carries a data (virtual) address")
    assert "regions table is a DAMON trace" in err
    refused([td, "--pid", "77"], capsys, tmp_path, "carries a data (virtual) address")


def short_trace(hotcold, tmp_path, ms: int):
    """A copy of the hotcold trace directory holding its first ``ms`` ms of samples."""
    import shutil

    d = tmp_path / f"short{ms}.td"
    shutil.copytree(hotcold, d)
    f = d / "samples.parquet"
    t = pq.read_table(f)
    tn = t.column("time_ns").to_numpy()
    keep = tn <= tn.min() + ms * 1_000_000
    pq.write_table(t.filter(pa.array(keep)), f)
    return d, (int(tn[keep].max()) - int(tn.min())) / 1e6


def test_a_trace_shorter_than_one_aggregation(hotcold, capsys, tmp_path):
    d, span = short_trace(hotcold, tmp_path, 79)
    assert 70 < span <= 79
    with pytest.raises(
        InputError,
        match=rf"spans {span:.6g} ms .*shorter than one aggregation "
        r"interval \(100 ms, aggr_us=100000\)",
    ) as ei:
        replay(d, ops="fvaddr", ranges=[AREA])
    assert re.search(
        rf"spans {span:.6g} ms .*shorter than one aggregation interval "
        r"\(100 ms, --aggr-us 100000\)",
        ei.value.cli_message,
    )
    refused([d, "--ops", "fvaddr", "--range", AREA], capsys, tmp_path, "no snapshot")
    # the same samples with 50 ms aggregations give one snapshot
    assert replay(d, ops="fvaddr", ranges=[AREA], aggr_us=50_000).n_snapshots == 1
    refused(
        [hotcold, "--ops", "fvaddr", "--range", AREA, "--start", str(1 << 62)],
        capsys,
        tmp_path,
        "starts after the trace's last sample",
    )


def test_vaddr_without_any_mapping_of_the_process(hotcold, capsys, tmp_path):
    import shutil

    d = tmp_path / "nomm.td"
    shutil.copytree(hotcold, d)
    (d / "mmaps.parquet").unlink()
    with pytest.raises(InputError, match="mappings.*pid 2291.*fvaddr"):
        replay(d)
    refused([d], capsys, tmp_path, "--ops fvaddr --range")


# -- perf script text: samples that show a thread id only ------------------------------------
def perf_data_replay(pf_td, **kw):
    return replay(pf_td, **kw)


@pytest.fixture(scope="module")
def pf_td(tmp_path_factory):
    f = need_corpus(*RUN1, "perf_pagefaults.data")
    return ingest(f, tmp_path_factory.mktemp("pf") / "pf.td")


def test_corpus_perf_script_text_replays(tmp_path, pf_td):
    """The corpus's `perf script` text of the page-fault recording (default header:
    comm, tid, time; no pid field; times in us) replays like the perf.data it came from
    over fixed ranges (before: every sample lacked a pid and the replay was empty)."""
    f = need_corpus(*RUN1, "perf_pagefaults_script.txt.gz")
    td = ingest(f, tmp_path / "text.td")
    assert tracedamon.open_trace(td).df("samples").pid.isna().all()
    rng = ["0x7f89fa000000-0x7f8a1a000000"]
    h = replay(td, ops="fvaddr", ranges=rng, pids=[7727], sample_us=10_000)
    ref = replay(pf_td, ops="fvaddr", ranges=rng, pids=[7727], sample_us=10_000)
    assert h.metadata["samples_used"] == ref.metadata["samples_used"] == 16383
    assert any("thread id" in w for w in h.metadata["warnings"])
    # the text has microsecond times: the same snapshots, regions and counts up to the
    # few samples that move across a 10 ms interval boundary
    assert h.n_snapshots == ref.n_snapshots
    a, b = h.df, ref.df
    assert a.nr_accesses.sum() == pytest.approx(b.nr_accesses.sum(), rel=0.02)


@requires_perf
def test_perf_script_text_with_tids_equals_the_perf_data(tmp_path, pf_td):
    """`perf script --ns` of the same file, tid only (perf's default header), with the
    side-band lines: vaddr (default pid and explicit) equals the perf.data replay."""
    f = need_corpus(*RUN1, "perf_pagefaults.data")
    txt = tmp_path / "pf.txt"
    with open(txt, "w") as out:
        subprocess.run(
            [
                "perf",
                "script",
                "--ns",
                "-F",
                "comm,tid,time,event,addr,ip",
                "--show-mmap-events",
                "--show-task-events",
                "-i",
                str(f),
            ],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    td = ingest(txt, tmp_path / "text.td")
    assert tracedamon.open_trace(td).df("samples").pid.isna().all()
    for kw in ({}, {"pids": [7727]}, {"access": "abit", "seed": 3}):
        a, b = replay(td, **kw), replay(pf_td, **kw)
        assert a.table.equals(b.table), kw
        assert a.metadata["targets"][0]["pid"] == 7727


def test_threads_take_their_process_pid_from_the_comm_records(tmp_path):
    """Two threads (tids 101, 102) of process 100 and one single-threaded process 200,
    in perf script text with the tid alone: the COMM records map tid 102 to pid 100."""
    lines = [
        "prog 0 0.000000000: PERF_RECORD_COMM: prog:100/100",
        "prog 0 0.000000000: PERF_RECORD_COMM: prog:100/102",
        "other 0 0.000000000: PERF_RECORD_COMM: other:200/200",
    ]
    rng = np.random.default_rng(0)
    for i in range(3000):
        tid = [100, 102, 200][i % 3]
        t = 1.0 + i * 0.0005
        addr = 0x7F0000000000 + int(rng.integers(0, 64)) * PAGE
        lines.append(f"prog {tid} {t:.9f}: page-faults: {addr:x} 401000")
    f = tmp_path / "threads.txt"
    f.write_text("\n".join(lines) + "\n")
    td = ingest(f, tmp_path / "threads.td")
    rg = ["0x7f0000000000-0x7f0000040000"]
    h = replay(td, ops="fvaddr", ranges=rg, pids=[100])
    assert h.metadata["samples_used"] == 2000  # tids 100 and 102
    h2 = replay(td, ops="fvaddr", ranges=rg, pids=[200])
    assert h2.metadata["samples_used"] == 1000
    with pytest.raises(InputError, match="no sample of pid 102"):
        replay(td, ops="fvaddr", ranges=rg, pids=[102])


def test_perf_script_text_gzip_corpus_shape():
    """Guard for the test above: the corpus text really prints the tid alone."""
    f = need_corpus(*RUN1, "perf_pagefaults_script.txt.gz")
    first = gzip.open(f, "rt").readline().split()
    assert first[1] == "7727" and "/" not in first[1]


def test_damon_trace_text_with_accessed_only_is_refused_before_running(hotcold, capsys, tmp_path):
    txt = tmp_path / "d.txt"
    refused(
        [hotcold, "--ops", "fvaddr", "--range", AREA, "--accessed-only", "--damon-trace", txt],
        capsys,
        tmp_path,
        "--damon-trace",
    )
    assert not txt.exists()
