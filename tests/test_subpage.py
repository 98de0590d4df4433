"""Sub-page monitoring: ``--min-region`` down to a cache line (64 bytes) for the perf checks.

Oracles: the kernel's algorithms with DAMON_MIN_REGION replaced by 64 (the spec's worked
examples of split and apply-mode splitting, scaled from 4 KiB to 64 B and computed by
hand below), a direct count of the samples per cache line and sample interval (fixed
granularity), the written truth of a constructed perf.data read back by the real
``perf script``, and exact figures of compare / heatmap / damo export worked out by hand.
The engine-vs-reference property tests (test_engine_reference.py) draw sub-page sizes too.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import ROOT, requires_perf
from test_engine import split_rows

import subpage_trace as ST
from tracedamon import replay
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.fixed import FixedMonitor
from tracedamon.errors import ConfigError

LINE = 64
PAGE = 4096
MS = 1_000_000


def _table(times, addrs, pid=7):
    n = len(times)
    return pa.table(
        {
            "time_ns": pa.array(times, pa.int64()),
            "pid": pa.array([pid] * n, pa.int32()),
            "event": pa.array(["mem-loads"] * n),
            "addr": pa.array(addrs, pa.uint64()),
            "phys_addr": pa.array([None] * n, pa.uint64()),
        }
    )


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
def test_min_region_goes_down_to_a_cache_line():
    assert MonitorConfig(min_region=64).subpage
    assert MonitorConfig(min_region=64, max_region=64).fixed_granularity
    assert not MonitorConfig().subpage
    with pytest.raises(ConfigError, match="at least 64"):
        MonitorConfig(min_region=32)
    with pytest.raises(ConfigError, match="power of two"):
        MonitorConfig(min_region=96)


def test_abit_below_a_page_is_refused():
    cfg = MonitorConfig(min_region=64)
    with pytest.raises(ConfigError, match="accessed bit is per page"):
        Monitor(cfg, [Target(lambda t: np.array([(0, PAGE)]))], access="abit")
    with pytest.raises(ConfigError, match="accessed bit is per page"):
        replay(
            _table([0, 200 * MS], [0x10000, 0x10040]),
            ops="fvaddr",
            ranges=["0x10000-0x11000"],
            access="abit",
            min_region=64,
        )
    # a page (or more) is fine for abit
    replay(
        _table([0, 200 * MS], [0x10000, 0x10040]),
        ops="fvaddr",
        ranges=["0x10000-0x11000"],
        access="abit",
        min_region=4096,
    )


def test_abit_below_a_page_one_line_error_from_the_cli(tmp_path):
    td = tmp_path / "t.td"
    ST.write_trace(tmp_path / "t.data", seconds=0.3)
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "ingest", str(tmp_path / "t.data"), "-o", str(td)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracedamon",
            "replay",
            str(td),
            "--ops",
            "fvaddr",
            "--range",
            f"{ST.BASE:#x}-{ST.BASE + 2 * PAGE:#x}",
            "--access",
            "abit",
            "--min-region",
            "64",
            "-o",
            str(tmp_path / "x.parquet"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "accessed bit is per page" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.parquet").exists()


# ---------------------------------------------------------------------------------------
# the kernel's algorithms at 64 bytes (worked examples)
# ---------------------------------------------------------------------------------------
def test_split_at_64_bytes_is_the_spec_example_scaled():
    # spec §7: 64 KiB, min 4 KiB, draws 8, 0 -> [0,4K) [4K,56K) [56K,64K).  Scaled by 1/64:
    # 1 KiB, min 64: k=9: 9*1024//10 = 921 -> ALIGN_DOWN 64 = 896; k=1: 896//10 = 89 -> 64
    assert split_rows([(0, 0x400)], 3, 64, inject=[8, 0]) == [
        (0, 0x40),
        (0x40, 0x380),
        (0x380, 0x400),
    ]
    # quirk Q6 at 64 B: a 128-byte region never splits
    for seed in range(5):
        assert split_rows([(0, 128)], 3, 64, seed) == [(0, 128)]


def _one_kib_target():
    rg = np.array([(0x10000, 0x10400)])
    return [Target(lambda t: rg, pid=1)]


# samples in the last 64 bytes of the 1 KiB region, one in each of the three intervals
ONE_KIB_SAMPLES = AccessSamples([0, 1 * MS, 2 * MS], [0, 0, 0], [0x103C8, 0x103C8, 0x103F0])


def test_adaptive_first_aggregation_and_split_at_64_bytes():
    # legacy: sz_limit = max(1024 // 3, 64) = 341; one region sees the samples in all
    # three intervals; the split after the trace draws 8 (k = 9): 921 -> 896
    cfg = MonitorConfig(
        sample_us=1000, aggr_us=3000, min_nr_regions=3, max_nr_regions=10, min_region=64
    )
    mon = Monitor(cfg, _one_kib_target(), rand_inject=[8])
    h = mon.run(ONE_KIB_SAMPLES, 0, 2 * MS)
    assert list(zip(h.start.tolist(), h.end.tolist(), h.nr_accesses.tolist())) == [
        (0x10000, 0x10400, 3)
    ]
    assert mon.regions()[:, :2].tolist() == [[0x10000, 0x10380], [0x10380, 0x10400]]


def test_apply_mode_splits_to_the_limit_aligned_to_64_bytes():
    # apply: lim = ALIGN(341, 64) = 384 -> pieces of 384, 384 and 256 bytes; only the last
    # holds the samples
    cfg = MonitorConfig(
        sample_us=1000,
        aggr_us=3000,
        min_nr_regions=3,
        max_nr_regions=10,
        min_region=64,
        min_nr_regions_mode="apply",
    )
    h = Monitor(cfg, _one_kib_target()).run(ONE_KIB_SAMPLES, 0, 2 * MS)
    assert list(zip(h.start.tolist(), h.end.tolist(), h.nr_accesses.tolist())) == [
        (0x10000, 0x10180, 0),
        (0x10180, 0x10300, 0),
        (0x10300, 0x10400, 3),
    ]


def test_fixed_64_bytes_counts_each_cache_line():
    # one page at 64 B: 64 regions.  Intervals of 1 ms, aggregation of 4.
    # line 0 (0x..000): samples in intervals 0 and 1 (two in interval 1) -> 2
    # line 1 (0x..048): interval 1 -> 1;  line 63 (0x..FC0, 0x..FFF): intervals 2, 3 -> 2
    times = [0, 1 * MS, 1 * MS + 5, 1 * MS + 9, 2 * MS, 3 * MS]
    addrs = [0x10000, 0x10008, 0x10038, 0x10048, 0x10FC0, 0x10FFF]
    h = replay(
        _table(times, addrs),
        ops="fvaddr",
        ranges=["0x10000-0x11000"],
        sample_us=1000,
        aggr_us=4000,
        min_region=64,
        max_region=64,
    )
    df = h.df
    assert len(df) == 64 and (df.end - df.start == 64).all()
    got = {int(s): int(n) for s, n in zip(df.start, df.nr_accesses) if n}
    assert got == {0x10000: 2, 0x10040: 1, 0x10FC0: 2}
    # the same samples at 4 KiB: one region, accessed in all four intervals
    h4 = replay(
        _table(times, addrs),
        ops="fvaddr",
        ranges=["0x10000-0x11000"],
        sample_us=1000,
        aggr_us=4000,
        min_region=4096,
        max_region=4096,
    )
    assert h4.df.nr_accesses.tolist() == [4]


def test_paddr_perf_phys_at_64_bytes():
    times = [0, 1 * MS, 2 * MS, 3 * MS]
    tb = _table(times, [0] * 4)
    tb = tb.set_column(
        4, "phys_addr", pa.array([0x200000, 0x200000 + 64, 0x200000 + 64, 0x200FFF], pa.uint64())
    )
    h = replay(
        tb,
        ops="paddr",
        access="perf-phys",
        ranges=["0x200000-0x201000"],
        sample_us=1000,
        aggr_us=4000,
        min_region=64,
        max_region=64,
    )
    got = {int(s): int(n) for s, n in zip(h.df.start, h.df.nr_accesses) if n}
    assert got == {0x200000: 1, 0x200040: 2, 0x200FC0: 1}


# ---------------------------------------------------------------------------------------
# cost proportional to the sampled cache lines: fixed 64 B over 1 GiB
# ---------------------------------------------------------------------------------------
def test_fixed_64_bytes_over_a_gib_costs_the_sampled_lines():
    base, span = 0x7F00_0000_0000, 1 << 30  # 16,777,216 regions of 64 bytes
    rng = np.random.default_rng(5)
    n = 20_000
    times = np.sort(rng.integers(0, 2_000 * MS, n))
    lines = rng.integers(0, 3_000, n) * 4099 % (span // LINE)  # 3,000 lines spread out
    addrs = base + lines * LINE + rng.integers(0, LINE, n)
    cfg = MonitorConfig(min_region=64, max_region=64)
    tg = [Target(lambda t: np.array([(base, base + span)]), pid=7)]
    mon = FixedMonitor(cfg, tg)
    h = mon.run(
        AccessSamples(times, np.zeros(n, np.int64), addrs), 0, int(times[-1]), max_rows=20_000_000
    )
    # 16.7 M regions x 20 snapshots is over max_rows: only regions with accesses are written
    assert mon.auto_accessed_only is not None and mon.n_regions() == span // LINE
    # explicit state only for lines that were ever sampled
    assert mon.peak_slots == len(np.unique(lines))
    # rows: a direct count per (snapshot, line) of the sample intervals with a sample
    df = pd.DataFrame({"t": times, "line": base + lines * LINE})
    df["iv"] = df.t // (5 * MS)
    df["snap"] = df.iv // 20
    want = df[df.snap < h.n_snapshots].groupby(["snap", "line"]).iv.nunique()
    got = pd.Series(h.nr_accesses, index=pd.MultiIndex.from_arrays([h.snapshot, h.start]))
    assert h.n_snapshots == 20 and (h.end - h.start == LINE).all()
    assert got.sort_index().to_dict() == want.sort_index().to_dict()


# ---------------------------------------------------------------------------------------
# the constructed trace: false sharing and a hot field, through perf, ingest and replay
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fs_trace(tmp_path_factory):
    d = tmp_path_factory.mktemp("subpage")
    data = ST.write_trace(d / "fs.data", seconds=1.0)
    from tracedamon.ingest import ingest

    td = ingest(data, d / "fs.td")
    return d, data, td


RANGE = [f"{ST.BASE:#x}-{ST.BASE + 2 * PAGE:#x}"]


@requires_perf
def test_constructed_trace_reads_back_through_perf(fs_trace):
    _, data, td = fs_trace
    out = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "tid,event,addr"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = [ln.split() for ln in out.stdout.splitlines() if ln.strip()]
    perf = pd.DataFrame({"tid": [int(r[0]) for r in rows], "addr": [int(r[-1], 16) for r in rows]})
    recs = [r for r in ST.records(1.0, *ST.events()) if isinstance(r, ST.Sample)]
    assert perf.addr.tolist() == [r["addr"] for r in recs]
    assert perf.tid.tolist() == [r["tid"] for r in recs]
    # the two counters, each written by its own thread, sit in adjacent lines of one page
    for tid, a in zip(ST.COUNTER_TIDS, ST.TRUTH["false_sharing"]):
        assert set(perf.addr[perf.tid == tid]) == {a}
    from tracedamon.trace import open_trace

    s = open_trace(td).df("samples")
    assert s.addr.astype("uint64").tolist() == perf.addr.tolist()


def test_cache_lines_show_what_pages_cannot(fs_trace):
    _, _, td = fs_trace
    h64 = replay(td, ops="fvaddr", ranges=RANGE, min_region=64, max_region=64).df
    h4k = replay(td, ops="fvaddr", ranges=RANGE, min_region=4096, max_region=4096).df
    n_aggr = 20
    # page level: both pages are accessed in every sample interval, all of their bytes
    assert (h4k.nr_accesses == n_aggr).all() and set(h4k.end - h4k.start) == {PAGE}
    # cache lines, after the first aggregation (initialisation touched every line once):
    later = h64[h64.snapshot > 0]
    hot = later[later.nr_accesses > 0]
    fs, fields = ST.TRUTH["false_sharing"], ST.TRUTH["hot_fields"]
    assert set(hot.start) == set(fs) | set(fields)
    # each counter is written every 250 us: accessed in every 5 ms interval
    assert (later[later.start.isin(fs)].nr_accesses == n_aggr).all()
    # each hot field is read every 16 * 250 us = 4 ms: in 4 or 5 of every 5 intervals
    f = later[later.start.isin(fields)].nr_accesses
    assert f.between(n_aggr * 4 // 5 - 1, n_aggr).all()
    # and the rest of both pages -- 110 of their 128 lines -- is cold
    cold = later[~later.start.isin(fs + fields)]
    assert (cold.nr_accesses == 0).all() and cold.start.nunique() == 128 - 18


def test_heatmap_compare_and_damo_export_at_64_bytes(fs_trace, tmp_path):
    d, _, td = fs_trace
    p64 = tmp_path / "r64.parquet"
    p4k = tmp_path / "r4k.parquet"
    replay(td, ops="fvaddr", ranges=RANGE, min_region=64, max_region=64, output=p64)
    replay(td, ops="fvaddr", ranges=RANGE, min_region=4096, max_region=4096, output=p4k)
    # heatmap: one address row per cache line; the counters' rows are at the top rate
    from tracedamon.export.heatmap import region_heatmap

    hm = region_heatmap(p64, addr_bins=128, collapse="none")
    assert hm.matrix.shape[1] == 128 and set(hm.bin_end - hm.bin_start) == {LINE}
    row = {int(s): k for k, s in enumerate(hm.bin_start)}
    late = hm.matrix[hm.t_edges[1:] > ST.T0 + 150 * MS]  # past the first snapshot
    assert np.allclose(late[:, row[ST.BASE]], 20) and np.allclose(late[:, row[ST.BASE + LINE]], 20)
    assert np.allclose(late[:, row[ST.BASE + 2 * LINE]], 0)
    # compare: the working set of the 64 B history is 18 lines after the first snapshot,
    # all 128 lines in it: (8192 + 9 * 18 * 64) / 10 = 1856 bytes; 4 KiB: 8192
    from tracedamon.export.compare import compare

    res = compare(p4k, p64)
    assert res.metrics["wss"]["mean_a"] == 8192 and res.metrics["wss"]["mean_b"] == 1856
    # damo export: 64-byte regions, read back as a damo record
    from tracedamon.export.damo_export import export_damo
    from tracedamon.ingest import ingest

    export_damo(p64, tmp_path / "r64.damo")
    back = ingest(tmp_path / "r64.damo", tmp_path / "back.td")
    from tracedamon.trace import open_trace

    regs = open_trace(back).df("regions")
    assert set(regs.end - regs.start) == {LINE} and len(regs) == 10 * 128
    src = pd.read_parquet(p64)
    assert sorted(zip(regs.start, regs.nr_accesses)) == sorted(zip(src.start, src.nr_accesses))


def test_readme_picture_is_small_and_named():
    png = ROOT / "docs" / "subpage-heatmap.png"
    assert png.stat().st_size < 150_000
    assert "docs/subpage-heatmap.png" in (ROOT / "README.md").read_text()
