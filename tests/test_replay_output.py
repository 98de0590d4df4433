"""A replay's history streamed to its Parquet file snapshot by snapshot.

`replay(..., output=PATH)` (what `tracedamon replay` does) hands each snapshot to the
file as the engine takes it.  Oracles: the in-memory replay of the same input (same
rows), `pq.write_table` of that whole table with the same metadata (the file the
replay wrote before it streamed: byte for byte when the rows fit one row group), and
the row-group layout itself (whole snapshots only).
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

import tracedamon.pipeline.region_history as region_history
import tracedamon.pipeline.replay as rp
from tracedamon.cli import main
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.fixed import FixedMonitor
from tracedamon.errors import InputError
from tracedamon.ingest import ingest
from tracedamon.store.writer import read_parquet_metadata, write_table_atomic

PAGE = 4096
HOT = 0x200000000000
AREA = f"{HOT:#x}-{HOT + 288 * PAGE:#x}"
WIDE = f"{HOT:#x}-{HOT + 4096 * PAGE:#x}"  # 4096 regions at 4 KiB


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    return ingest(SAMPLES / "hotcold.perf.data", tmp_path_factory.mktemp("hc") / "hc.td")


CASES = [
    dict(ops="fvaddr", ranges=[AREA], seed=3),
    dict(ops="vaddr", start_ns="auto", access="abit", seed=1),
    dict(ops="fvaddr", ranges=[WIDE], min_region=PAGE, max_region=PAGE),
    dict(ops="fvaddr", ranges=[WIDE], min_region=PAGE, max_region=PAGE, accessed_only=True),
]


@pytest.mark.parametrize("kw", CASES, ids=["adaptive", "abit", "fixed", "fixed-sparse"])
def test_streamed_file_equals_the_whole_table_written_at_once(hotcold, tmp_path, kw):
    mem = rp.replay(hotcold, **kw)
    out = tmp_path / "streamed.parquet"
    h = rp.replay(hotcold, output=out, **kw)
    assert h.path == out and h._table is None  # rows stay in the file
    assert pq.ParquetFile(out).metadata.num_row_groups == 1
    assert h.metadata == mem.metadata
    # what replay wrote before it streamed: the whole table, pq.write_table
    ref = write_table_atomic(mem.table, tmp_path / "ref.parquet", metadata={"replay": mem.metadata})
    assert out.read_bytes() == ref.read_bytes()
    assert (
        pq.read_table(out).schema.metadata[b"tracedamon"]
        == pq.read_metadata(out).metadata[b"tracedamon"]
    )
    # the in-memory history written with to_parquet is the same file
    assert mem.to_parquet(tmp_path / "mem.parquet").read_bytes() == out.read_bytes()
    # and the file-backed history reads back, summarises and prints like the other
    assert h.table.equals(mem.table) and len(h) == len(mem)
    assert h.summary() == mem.summary()
    assert h.hottest(7).equals(mem.hottest(7))
    if not kw.get("accessed_only"):
        assert list(h.damon_trace_lines()) == list(mem.damon_trace_lines())


def row_groups(path):
    pf = pq.ParquetFile(path)
    return [
        pf.read_row_group(g, columns=["snapshot"]).column(0).to_numpy()
        for g in range(pf.metadata.num_row_groups)
    ]


@pytest.mark.parametrize("cap", [1000, 4096, 5000, 9000])
def test_row_groups_hold_whole_snapshots(hotcold, tmp_path, monkeypatch, cap):
    """Fixed 4 KiB over 4096 regions: 4096 rows a snapshot.  Row groups hold whole
    snapshots up to ``cap`` rows; a snapshot larger than ``cap`` alone is cut in pieces
    of ``cap`` rows (then no other snapshot shares its row groups)."""
    monkeypatch.setattr(region_history, "ROW_GROUP_ROWS", cap)
    kw = dict(ops="fvaddr", ranges=[WIDE], min_region=PAGE, max_region=PAGE)
    mem = rp.replay(hotcold, **kw)
    out = tmp_path / "r.parquet"
    rp.replay(hotcold, output=out, **kw)
    assert pq.read_table(out).equals(mem.table)
    assert read_parquet_metadata(out)["replay"] == mem.metadata
    groups = row_groups(out)
    assert all(g.size <= cap for g in groups)
    per_snap = 4096
    if cap >= per_snap:
        assert all(g[0] != h[-1] for g, h in zip(groups[1:], groups))  # never split
        assert all(g.size == (cap // per_snap) * per_snap for g in groups[:-1])
    else:
        assert all(np.unique(g).size == 1 for g in groups)  # one snapshot each
        sizes = [g.size for g in groups]
        assert sizes[:6] == [cap] * (per_snap // cap) + [per_snap % cap] + [cap]
    # and the file-backed history aggregates across row groups like the table does
    h = rp.replay(hotcold, output=tmp_path / "again.parquet", **kw)
    assert h.hottest(10).equals(mem.hottest(10))


def test_cli_streams_and_a_failed_replay_leaves_nothing(hotcold, tmp_path, monkeypatch):
    out = tmp_path / "cli.parquet"
    assert (
        main(
            [
                "replay",
                str(hotcold),
                "--ops",
                "fvaddr",
                "--range",
                AREA,
                "--seed",
                "3",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    mem = rp.replay(hotcold, ops="fvaddr", ranges=[AREA], seed=3)
    assert pq.read_table(out).equals(mem.table)

    # an error after some snapshots were written: no file, no temporary file
    def boom(psi):
        if psi > 100:
            raise InputError("stop")

    bad = tmp_path / "bad.parquet"
    with pytest.raises(InputError, match="stop"):
        rp.replay(hotcold, ops="fvaddr", ranges=[AREA], output=bad, progress=boom)
    assert list(tmp_path.glob("*bad*")) == []
    # a refusal found after the run (the target never had regions) leaves nothing either
    with pytest.raises(InputError, match="no target had a region"):
        rp.replay(hotcold, ops="vaddr", start_ns="first", output=bad)
    assert list(tmp_path.glob("*bad*")) == []


@pytest.mark.parametrize("fixed", [False, True])
def test_engine_sink_gets_every_snapshot_as_it_is_taken(fixed):
    rng = np.random.default_rng(0)
    n = 20_000
    t = np.sort(rng.integers(0, 2_000_000_000, n))
    a = 0x10000000 + rng.integers(0, 1024, n) * PAGE
    acc = AccessSamples(t, np.zeros(n, np.int64), a)
    rg = np.array([(0x10000000, 0x10000000 + 1024 * PAGE)])
    cfg = MonitorConfig(min_region=PAGE, max_region=PAGE) if fixed else MonitorConfig(seed=2)
    make = (
        (lambda: FixedMonitor(cfg, [Target(lambda _: rg)]))
        if fixed
        else (lambda: Monitor(cfg, [Target(lambda _: rg)]))
    )
    whole = make().run(acc, 0, int(t[-1]))
    got = []
    h = make().run(acc, 0, int(t[-1]), sink=got.append)
    assert h.start.size == 0 and h.n_snapshots == whole.n_snapshots == len(got)
    assert [int(c[0][0]) for c in got] == list(range(len(got)))  # in snapshot order
    for k, name in enumerate(
        ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age", "nr_accesses_bp"]
    ):
        assert (np.concatenate([c[k] for c in got]) == getattr(whole, name)).all(), name
