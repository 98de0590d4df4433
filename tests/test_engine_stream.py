"""Streamed replay of a trace directory equals the in-memory replay of its samples.

A trace directory's samples are read batch by batch (``replay.BATCH_ROWS`` rows) and
fed to the monitor a segment at a time.  Here the samples files are rewritten with
many small row groups and the batch size is made tiny, so that aggregations,
ops-update segments and the ``--start auto`` window all span many batches; the result
(region table and metadata, but for the input provenance) must equal
``replay(samples_table, mmaps=...)``, which converts the whole table at once.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

import tracedamon.pipeline.replay as rp
import tracedamon.pipeline.replay_start as replay_start
import tracedamon.pipeline.samples as samples_mod
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.access import StreamedSamples
from tracedamon.engine.ops.vaddr import VmaTimeline, auto_start
from tracedamon.engine.config import MonitorConfig
from tracedamon.store.trace import open_trace

PAGE = 4096
HOT = 0x200000000000
AREA = f"{HOT:#x}-{HOT + 288 * PAGE:#x}"


@pytest.fixture(scope="module")
def hotcold_dir(tmp_path_factory):
    from tracedamon.ingest import ingest

    return ingest(SAMPLES / "hotcold.perf.data", tmp_path_factory.mktemp("hc") / "hc.td")


def small_groups(src_dir, dst_dir, row_group_size=37, shuffle=False):
    """A copy of the trace directory whose samples file has row groups of a few rows."""
    shutil.copytree(src_dir, dst_dir)
    f = open_trace(dst_dir).file("samples")
    t = pq.read_table(f)
    if shuffle:
        t = t.take(np.random.default_rng(1).permutation(t.num_rows))
    pq.write_table(t, f, row_group_size=row_group_size)
    assert pq.ParquetFile(f).metadata.num_row_groups >= t.num_rows // row_group_size
    return dst_dir


def in_memory(trace_dir, **kw):
    tr = open_trace(trace_dir)
    samples = pq.read_table(tr.file("samples"))
    return rp.replay(samples, mmaps=tr.df("mmaps"), tasks=tr.df("tasks"), **kw)


def assert_same(a, b):
    assert a.table.schema.equals(b.table.schema)
    assert a.table.equals(b.table)
    ma = {k: v for k, v in a.metadata.items() if k != "input"}
    mb = {k: v for k, v in b.metadata.items() if k != "input"}
    assert ma == mb


@pytest.fixture
def no_materialize(monkeypatch):
    """Fail if a streamed replay reads the whole samples table."""

    def refuse(self):
        raise AssertionError("the samples were read whole, not streamed")

    monkeypatch.setattr(samples_mod.SampleSource, "materialize", refuse)


CASES = [
    dict(ops="vaddr", start_ns="auto"),
    dict(ops="vaddr", update_us=500_000),  # no regions until the first update
    dict(ops="vaddr", start_ns="auto", sample_us=10_000, update_us=500_000),
    dict(ops="vaddr", start_ns="auto", access="abit", seed=3),
    dict(ops="fvaddr", ranges=[AREA]),
    dict(ops="fvaddr", ranges=[AREA], pids=[2291], events=["page-faults"]),
    dict(ops="fvaddr", ranges=[AREA], min_region=PAGE, max_region=PAGE),
    dict(ops="fvaddr", ranges=[AREA], min_region=PAGE, max_region=PAGE, access="abit"),
    dict(ops="vaddr", start_ns="auto", min_region=PAGE, max_region=PAGE, max_rows=1000),
]


@pytest.mark.parametrize("kw", CASES, ids=[str(i) for i in range(len(CASES))])
def test_streamed_equals_in_memory(hotcold_dir, tmp_path, monkeypatch, no_materialize, kw):
    d = small_groups(hotcold_dir, tmp_path / "small.td")
    monkeypatch.setattr(samples_mod, "BATCH_ROWS", 29)
    got = rp.replay(d, **kw)
    want = in_memory(d, **kw)
    assert_same(got, want)
    assert got.n_snapshots > 0 and len(got.table) > 0
    assert got.metadata["samples_used"] > 0


def test_unsorted_samples_file_is_read_whole_and_sorted(hotcold_dir, tmp_path, monkeypatch):
    d = small_groups(hotcold_dir, tmp_path / "shuffled.td", shuffle=True)
    monkeypatch.setattr(samples_mod, "BATCH_ROWS", 29)
    kw = dict(ops="vaddr", start_ns="auto")
    got = rp.replay(d, **kw)
    assert_same(got, in_memory(d, **kw))
    assert_same(got, rp.replay(hotcold_dir, **kw))


def test_trace_with_many_row_groups_gives_the_same_file(hotcold_dir, tmp_path, monkeypatch):
    d = small_groups(hotcold_dir, tmp_path / "small.td", row_group_size=11)
    monkeypatch.setattr(samples_mod, "BATCH_ROWS", 5)
    a = rp.replay(d, ops="vaddr", start_ns="auto").to_parquet(tmp_path / "a.parquet")
    monkeypatch.setattr(samples_mod, "BATCH_ROWS", 1 << 17)
    b = rp.replay(hotcold_dir, ops="vaddr", start_ns="auto").to_parquet(tmp_path / "b.parquet")
    # the metadata names the input files (different directories): compare the rows
    assert pq.read_table(a).equals(pq.read_table(b))


def synthetic_dir(base, tmp_path, late_share, n=3000):
    """Two pids and two events; pid 9's areas A, B, C exist from 2 ms, area D from
    300 ms (the --start auto test of test_engine_replay.py, as a trace directory)."""
    G = 1 << 30
    A, B, C, D = 0x10 * G, 0x400 * G, 0x7000 * G, 0x1 * G
    rng = np.random.default_rng(5)
    t = np.sort(rng.integers(500_000, 400_000_000, n))
    late = rng.random(n) < late_share
    addr = np.where(late, D, rng.choice([A, B, C], n)) + rng.integers(0, 256, n) * PAGE
    pid = np.where(rng.random(n) < 0.8, 9, 11).astype(np.int32)
    ev = np.where(rng.random(n) < 0.7, "mem-loads", "mem-stores")
    addr = addr.astype(np.uint64)
    d = tmp_path / "syn.td"
    shutil.copytree(base, d)
    tr = open_trace(d)
    tbl = pa.table(
        {
            "time_ns": pa.array(t, pa.int64()),
            "pid": pa.array(pid),
            "event": pa.array(ev).dictionary_encode(),
            "addr": pa.array(addr, mask=rng.random(n) < 0.05),
            "phys_addr": pa.nulls(n, pa.uint64()),
        }
    )
    pq.write_table(tbl, tr.file("samples"), row_group_size=53)
    mm = pq.read_table(tr.file("mmaps")).slice(0, 0).to_pandas()
    rows = pd.DataFrame(
        {
            "pid": 9,
            "time_ns": [1_000_000, 1_500_000, 2_000_000, 300_000_000],
            "start": np.array([A, B, C, D], np.uint64),
            "length": np.array([1 << 20] * 4, np.uint64),
        }
    )
    mm = pd.concat([mm, rows], ignore_index=True)[list(mm.columns)] if len(mm.columns) else rows
    pq.write_table(
        pa.Table.from_pandas(
            mm.astype({c: t_ for c, t_ in zip(rows.columns, rows.dtypes)}), preserve_index=False
        ),
        tr.file("mmaps"),
    )
    return d, tbl, t, addr, pid, ev


@pytest.mark.parametrize("late_share", [0.1, 0.9])
@pytest.mark.parametrize("events", [None, ["mem-stores"]])
def test_start_auto_thinned_scoring_equals_auto_start_on_all_samples(
    hotcold_dir, tmp_path, monkeypatch, no_materialize, late_share, events
):
    """The streamed --start auto keeps every stride-th sample for scoring; with a tiny
    max_samples (stride > 1) its choice and exact counts must equal auto_start run on
    all of the target's samples at once."""
    d, tbl, t, addr, pid, ev = synthetic_dir(hotcold_dir, tmp_path, late_share)
    real = auto_start
    calls = []

    def small(*a, max_samples=7, **k):
        calls.append(max_samples)
        return real(*a, max_samples=max_samples, **k)

    monkeypatch.setattr(replay_start, "auto_start", small)  # where the replay calls it
    monkeypatch.setattr(samples_mod, "BATCH_ROWS", 31)
    h = rp.replay(d, start_ns="auto", events=events)
    assert calls, "the replay did not call the patched auto_start"
    assert h.metadata["targets"][0]["pid"] == 9  # the pid with most samples
    sel = (pid == 9) & ~np.asarray(tbl.column("addr").is_null())
    if events:
        sel &= np.isin(ev, events)
    mm = open_trace(d).df("mmaps")
    tl = VmaTimeline(9, mm, None)
    want = real(
        [tl],
        [(t[sel], addr[sel].view(np.int64))],
        int(t.min()),
        int(t.max()),
        h.metadata["config"]["update_us"] * 1000,
        max_samples=7,
    )
    got = h.metadata["t0_auto"]
    for k in want:
        assert got[k] == want[k], k
    assert_same(h, in_memory(d, start_ns="auto", events=events))


def test_streamed_samples_windows_equal_access_samples():
    """StreamedSamples over uneven batches answers windows like AccessSamples."""
    rng = np.random.default_rng(7)
    n = 5000
    t = np.sort(rng.integers(0, 10_000_000, n))
    g = rng.integers(0, 3, n)
    a = rng.integers(0, 1 << 40, n)
    ref = AccessSamples(t, g, a)
    cuts = np.sort(rng.choice(np.arange(1, n), 60, replace=False))
    bounds = np.concatenate([[0], cuts, [n]])
    batches = [(t[i:j], g[i:j], a[i:j]) for i, j in zip(bounds[:-1], bounds[1:])]
    t0 = 1_234_567
    st = StreamedSamples(iter(batches), t0)
    assert not st.empty
    edges = np.concatenate([[t0], np.sort(rng.integers(t0, 9_000_000, 80)), [9_000_000]])
    for lo, hi in zip(edges[:-1], edges[1:]):
        for x, y in zip(st.window(lo, hi), ref.window(lo, hi)):
            assert np.array_equal(x, y)
    assert st.drain() == int((t >= t0).sum())
    assert StreamedSamples(iter([]), 0).empty


def test_monitor_over_streamed_samples_equals_in_memory():
    cfg = MonitorConfig(sample_us=1000, aggr_us=20_000, update_us=100_000, seed=4)
    rng = np.random.default_rng(3)
    n = 20_000
    t = np.sort(rng.integers(0, 1_000_000_000, n))
    a = 0x100000 + rng.integers(0, 1024, n) * PAGE
    g = np.zeros(n, np.int64)
    rg = np.array([[0x100000, 0x100000 + 1024 * PAGE]], np.int64)
    batches = [(t[i : i + 333], g[i : i + 333], a[i : i + 333]) for i in range(0, n, 333)]
    for access in ("perf", "abit"):
        want = Monitor(cfg, [Target(lambda _: rg)], access=access).run(
            AccessSamples(t, g, a), 0, int(t[-1])
        )
        got = Monitor(cfg, [Target(lambda _: rg)], access=access).run(
            StreamedSamples(iter(batches), 0), 0, int(t[-1])
        )
        for k in (
            "snapshot",
            "time_ns",
            "target",
            "start",
            "end",
            "nr_accesses",
            "age",
            "nr_accesses_bp",
        ):
            assert np.array_equal(getattr(got, k), getattr(want, k)), (access, k)
        assert want.n_snapshots > 10


def test_every_stride_keeps_the_same_samples_as_slicing_all():
    rng = np.random.default_rng(11)
    n = 4000
    t = np.sort(rng.integers(0, 10**9, n))
    g = rng.integers(0, 3, n)
    a = rng.integers(0, 1 << 40, n)
    cuts = np.concatenate([[0], np.sort(rng.choice(np.arange(1, n), 70, replace=False)), [n]])
    batches = [(t[i:j], g[i:j], a[i:j]) for i, j in zip(cuts[:-1], cuts[1:])]
    stride = np.array([1, 7, 113])
    got = rp.every_stride(iter(batches), stride)
    for i in range(3):
        assert np.array_equal(got[i][0], t[g == i][:: stride[i]])
        assert np.array_equal(got[i][1], a[g == i][:: stride[i]])
