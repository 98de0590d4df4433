"""`tracedamon.replay` and `tracedamon replay` end to end.

The real recording sample_traces/hotcold.perf.data (see sample_traces/README.md:
32 hot pages at 0x200000000000 touched every 10 ms for 2 s, 256 cold pages after
them touched once at the start; page-fault samples, one per hot page per pass)
is ingested with the perf.data reader and replayed at DAMON's default parameters.
Expectations follow from the workload, not from a previous run: with 5 ms sample
intervals a hot page is sampled in every other interval (about half the maximum
nr_accesses), with 10 ms intervals in every interval; the cold pages are never
touched after the first aggregations.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

import tracedamon
from tracedamon.cli import main
from tracedamon.pipeline.replay import replay
from tracedamon.errors import ConfigError, InputError
from tracedamon.store.writer import read_parquet_metadata
from tracedamon.schema import REGIONS

PAGE = 4096
HOT = 0x200000000000
HOT_END = HOT + 32 * PAGE
COLD_END = HOT + 288 * PAGE
AREA = f"{HOT:#x}-{COLD_END:#x}"


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    out = tmp_path_factory.mktemp("hc") / "hotcold.td"
    from tracedamon.ingest import ingest

    return ingest(SAMPLES / "hotcold.perf.data", out)


def area_means(df: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    """Per snapshot: pages covered by regions lying inside [lo, hi), and their
    size-weighted mean nr_accesses."""
    d = df[(df.start >= lo) & (df.end <= hi)].copy()
    d["pages"] = (d.end - d.start).astype(np.int64) // PAGE
    d["w"] = d.pages * d.nr_accesses.astype(np.int64)
    g = d.groupby("snapshot").agg(pages=("pages", "sum"), w=("w", "sum"))
    g["mean"] = g.w / g.pages
    return g.reindex(sorted(df.snapshot.unique()), fill_value=0)


def check_hot_cold(h, hot_lo_frac, hot_hi_frac, first_snapshot=1, snapshots=20):
    mx = h.metadata["config"]["aggr_us"] // h.metadata["config"]["sample_us"]
    df = h.df
    assert h.n_snapshots == snapshots  # about 2 s of recording / 100 ms
    hot = area_means(df, HOT, HOT_END).loc[first_snapshot:]
    cold = area_means(df, HOT_END, COLD_END)
    assert (hot.pages >= 24).all()  # most hot pages sit in hot-only regions
    assert (hot["mean"] >= hot_lo_frac * mx).all() and (hot["mean"] <= hot_hi_frac * mx).all()
    late = cold.loc[8:]
    assert (late.pages >= 200).all()  # the cold area is mostly cold-only regions
    assert (late.w == 0).all()  # ... and they see no access


def test_fvaddr_default_parameters_hot_and_cold(hotcold):
    h = replay(hotcold, ops="fvaddr", ranges=[AREA])
    # 5 ms intervals, one sample per hot page per 10 ms pass: about half of 20
    check_hot_cold(h, 0.4, 0.6)
    assert len(h.df) == h.df.groupby("snapshot").size().sum()
    assert h.df.pid.isna().all()  # fvaddr without --pid: any process


def test_fvaddr_10ms_intervals_see_every_pass(hotcold):
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], pids=[2291], sample_us=10_000)
    check_hot_cold(h, 0.85, 1.0)
    assert (h.df.pid == 2291).all()


def test_vaddr_for_the_workload_pid(hotcold):
    mm = tracedamon.open_trace(hotcold).df("mmaps")
    t_map = int(mm[mm.start == HOT].time_ns.min())
    h = replay(hotcold, ops="vaddr", start_ns=t_map)
    t = h.metadata["targets"][0]
    assert t["pid"] == 2291 and t["vma_source"] == "mmaps"
    first = t["initial_ranges"][0]
    assert first[0] == HOT and first[1] == HOT + 1179648  # the workload's mapping
    assert h.n_snapshots == 19  # starts 0.7 ms later: one aggregation less
    # the vaddr space is huge (the third region spans libraries and stack), so the hot
    # area is isolated by random splits over several aggregations; a region holding any
    # hot page counts as accessed, so its boundary settles near the hot/cold edge
    df = h.df[h.df.snapshot >= 8]
    head = df[df.start == HOT]
    assert len(head) == 11
    assert ((head.end - HOT) // PAGE <= 64).all() and (head.end >= HOT_END).all()
    assert head.nr_accesses.between(8, 12).all()  # about half of 20
    cold = area_means(df, HOT_END, COLD_END)
    assert (cold.loc[8:].pages >= 200).all() and (cold.loc[8:].w == 0).all()


def areas_known(mm, pid, t):
    """Separate mapped areas (overlapping or touching mappings united) of pid at time t."""
    m = mm[(mm.pid == pid) & (mm.time_ns <= t)].sort_values("start")
    n, end = 0, -1
    for s, ln in zip(m.start.astype(np.int64), m.length.astype(np.int64)):
        if s > end:
            n += 1
        end = max(end, s + ln)
    return n


def test_vaddr_without_mappings_at_start_has_no_regions(hotcold):
    # with --start first: at the first sample the process has mapped only two areas: no three regions, so
    # (like the kernel) the target has no regions until an ops update (60 s) finds them,
    # which this 2 s trace never reaches: an empty history is refused, and the error says
    # when the mappings give three regions, and which --start to pass: the time the
    # workload maps its area (perf's MMAP record of 0x200000000000)
    import re

    with pytest.raises(InputError, match="no target had a region in any snapshot") as e:
        replay(hotcold, ops="vaddr", start_ns="first")
    msg = str(e.value)
    assert "pid 2291: no three regions at replay start (mappings known then: 2)" in msg
    mm = tracedamon.open_trace(hotcold).df("mmaps")
    t_map = int(mm[mm.start == HOT].time_ns.min())
    assert f"try --start {t_map} " in msg
    first3 = int(re.search(r"three regions from (\d+) ns", msg).group(1))
    assert areas_known(mm, 2291, first3) == 3 and areas_known(mm, 2291, first3 - 1) == 2
    assert first3 < t_map


def page_nr(df: pd.DataFrame, pages: np.ndarray) -> pd.DataFrame:
    """nr_accesses of the region holding each page, per snapshot (rows: snapshots)."""
    out = {}
    for snap, g in df.groupby("snapshot"):
        g = g.sort_values("start")
        st, en = g.start.to_numpy(np.int64), g.end.to_numpy(np.int64)
        i = np.searchsorted(st, pages, side="right") - 1
        ok = (i >= 0) & (pages < en[np.maximum(i, 0)])
        assert ok.all()  # every page is monitored
        out[snap] = g.nr_accesses.to_numpy()[i]
    return pd.DataFrame(out).T


def test_vaddr_start_auto_monitors_the_workload(hotcold):
    mm = tracedamon.open_trace(hotcold).df("mmaps")
    t_map = int(mm[mm.start == HOT].time_ns.min())
    h = replay(hotcold, ops="vaddr", start_ns="auto", sample_us=10_000)
    m = h.metadata
    assert m["t0_source"] == "auto" and m["t0_ns"] == t_map == m["t0_auto"]["time_ns"]
    assert "three regions" in m["t0_auto"]["reason"]
    assert m["targets"][0]["initial_ranges"][0] == [HOT, HOT + 1179648]
    assert not any("no three regions" in w for w in m["warnings"])
    assert h.n_snapshots == 20 and len(h.df) > 0
    hot = page_nr(h.df, HOT + PAGE * np.arange(32))
    cold = page_nr(h.df, HOT_END + PAGE * np.arange(32, 256))  # beyond the edge's slack
    assert hot.mean(axis=1).min() >= 9 and hot.max().max() <= 10  # near 10 of 10
    assert (cold.loc[8:] == 0).all().all()  # cold: 0 once split off
    # the CLI takes --start auto too
    assert (
        main(
            [
                "replay",
                str(hotcold),
                "-o",
                str(hotcold / "auto.parquet"),
                "--start",
                "auto",
                "--sample-us",
                "10000",
                "-q",
            ]
        )
        == 0
    )
    t = pq.read_table(hotcold / "auto.parquet")
    assert t.equals(h.table)
    meta = json.loads(t.schema.metadata[b"tracedamon"])["replay"]
    assert meta["t0_ns"] == t_map and meta["t0_source"] == "auto"


def test_start_auto_for_fixed_ranges_is_the_first_sample(hotcold):
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], start_ns="auto")
    t0 = int(tracedamon.open_trace(hotcold).table("samples").column("time_ns").to_numpy().min())
    assert h.metadata["t0_ns"] == t0 and "first sample" in h.metadata["t0_auto"]["reason"]
    with pytest.raises(ConfigError, match="auto"):
        replay(hotcold, ops="fvaddr", ranges=[AREA], start_ns="soon")


def test_start_auto_without_enough_mappings_is_a_clear_error(hotcold):
    mm = tracedamon.open_trace(hotcold).df("mmaps")
    few = mm[(mm.pid == 2291) & mm.filename.str.contains("hotcold")]
    with pytest.raises(InputError, match="never give three regions"):
        replay(hotcold, ops="vaddr", start_ns="auto", mmaps=few)


def test_vaddr_fixed_4k_over_the_whole_three_regions(hotcold):
    """The process's three regions span about 208 GiB (tens of millions of 4 KiB
    regions): the replay stays sparse and writes the regions with accesses."""
    h = replay(
        hotcold, ops="vaddr", start_ns="auto", sample_us=10_000, min_region=PAGE, max_region=PAGE
    )
    m = h.metadata
    rg = np.array(m["targets"][0]["initial_ranges"])
    nreg = int(((rg[:, 1] - rg[:, 0]) // PAGE).sum())
    assert nreg > 50_000_000
    assert m["accessed_only"] and f"{nreg:,} regions" in m["accessed_only_reason"]
    df = h.df
    late = df[df.snapshot >= 1]
    hot = late[(late.start >= HOT) & (late.end <= HOT_END)]
    assert (hot.groupby("snapshot").size() == 32).all()
    assert hot.nr_accesses.between(9, 10).all()
    assert late[(late.start >= HOT_END) & (late.end <= COLD_END)].empty
    # the engine that lists every region (abit) refuses such grids, at start and at an
    # ops update, instead of running out of memory
    for kw in (dict(start_ns="auto"), dict(update_us=100_000)):
        with pytest.raises(ConfigError) as ei:
            replay(hotcold, ops="vaddr", access="abit", min_region=PAGE, max_region=PAGE, **kw)
        assert re.search("abit.*--access perf", ei.value.cli_message)


def test_abit_emulation_on_hotcold(hotcold):
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], access="abit", seed=3)
    mx = 20
    hot = area_means(h.df, HOT, HOT_END).loc[6:]
    cold = area_means(h.df, HOT_END, COLD_END).loc[8:]
    assert (hot.pages >= 24).all() and (hot["mean"] >= 0.4 * mx).all()
    assert (cold.w == 0).all()


def test_fixed_granularity_replay_is_deterministic_and_sparse_equals_dense(hotcold):
    kw = dict(ops="fvaddr", ranges=[AREA], min_region=4096, max_region=4096)
    a = replay(hotcold, seed=1, **kw)
    b = replay(hotcold, seed=99, **kw)
    c = replay(hotcold, seed=1, fixed_engine=False, **kw)
    assert a.metadata["engine_path"].startswith("fixed")
    assert c.metadata["engine_path"] == "adaptive"
    assert a.table.equals(b.table) and a.table.equals(c.table)
    df = a.df
    assert (df.groupby("snapshot").size() == 288).all()
    late = df[df.snapshot >= 8]
    hot = late[late.end <= HOT_END]
    assert (hot.nr_accesses >= 8).all() and (hot.nr_accesses <= 12).all()
    assert (late[late.start >= HOT_END].nr_accesses == 0).all()
    # accessed-only output: exactly the rows with accesses
    d = replay(hotcold, seed=1, accessed_only=True, **kw)
    assert d.df.reset_index(drop=True).equals(df[df.nr_accesses > 0].reset_index(drop=True))
    assert d.metadata["accessed_only"] is True


def test_output_is_byte_identical_and_carries_metadata(hotcold, tmp_path):
    h1 = replay(hotcold, ops="fvaddr", ranges=[AREA], seed=5)
    h2 = replay(hotcold, ops="fvaddr", ranges=[AREA], seed=5)
    p1, p2 = h1.to_parquet(tmp_path / "a.parquet"), h2.to_parquet(tmp_path / "b.parquet")
    assert p1.read_bytes() == p2.read_bytes()
    t = pq.read_table(p1)
    assert t.schema.remove_metadata().equals(REGIONS)
    meta = read_parquet_metadata(p1)["replay"]
    assert meta["config"]["seed"] == 5 and meta["seed"] == 5
    assert meta["config"]["sample_us"] == 5000 and meta["generator"].startswith("pcg32")
    sha = hashlib.sha256((hotcold / "samples.parquet").read_bytes()).hexdigest()
    assert meta["input"]["samples"]["sha256"] == sha
    assert meta["ops"] == "fvaddr" and meta["access"] == "perf"
    assert meta["events"] == ["page-faults"]
    assert meta["t0_source"] == "first sample"


def test_seed_changes_adaptive_splits(hotcold):
    """Each seed's replay is exactly the independent reference run with that seed (its
    own PCG32 stream drives the splits), and the two seeds give different regions."""
    from engine_reference import Reference
    from helpers.arrays import assert_rows_equal
    from tracedamon.engine.config import MonitorConfig
    from tracedamon.engine.core import Target

    s = tracedamon.open_trace(hotcold).table("samples", columns=["time_ns", "addr"])
    t = s.column("time_ns").to_numpy()
    addr = s.column("addr").to_numpy().astype(np.int64)
    cols = ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age", "nr_accesses_bp"]
    got = {}
    for seed in (1, 2):
        h = replay(hotcold, ops="fvaddr", ranges=[AREA], seed=seed)
        m = h.metadata
        assert m["t0_ns"] == t.min() and m["t_last_ns"] == t.max()
        ref = Reference(
            MonitorConfig.from_dict(m["config"]), [Target(lambda _t: np.array([(HOT, COLD_END)]))]
        )
        want = ref.run(t, np.zeros(t.size, np.int64), addr, int(t.min()), int(t.max()))
        got[seed] = list(h.df[cols].astype(np.int64).itertuples(index=False, name=None))
        assert_rows_equal(got[seed], want)
        assert h.n_snapshots == 20 and len(want) > 20 * 3
    assert got[1] != got[2]


def test_time_grid(hotcold):
    samples = tracedamon.open_trace(hotcold).table("samples", columns=["time_ns"])
    times = samples.column("time_ns").to_numpy()
    t0, tl = int(times.min()), int(times.max())
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], aggr_us=50_000)
    S, N = 5_000_000, 10
    n_complete = ((tl - t0) // S + 1) // N
    assert h.n_snapshots == n_complete
    ts = h.df.groupby("snapshot").time_ns.first()
    assert (ts.to_numpy() == t0 + (np.arange(n_complete) + 1) * N * S).all()
    # --start moves the grid
    h2 = replay(hotcold, ops="fvaddr", ranges=[AREA], aggr_us=50_000, start_ns=t0 + 1_000_000)
    assert h2.df.time_ns.min() == t0 + 1_000_000 + N * S


def test_events_filter(hotcold):
    with pytest.raises(ConfigError, match="not in the trace"):
        replay(hotcold, ops="fvaddr", ranges=[AREA], events=["mem-loads"])
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], events=["page-faults"])
    assert h.metadata["samples_used"] > 6000


# -- synthetic inputs: paddr and perf-phys -------------------------------------------------
def synthetic(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2_000_000_000, n))
    hot = rng.random(n) < 0.7
    vpage = np.where(hot, rng.integers(0, 16, n), rng.integers(16, 256, n))
    vaddr = 0x7F0000000000 + vpage * PAGE + rng.integers(0, PAGE, n)
    pfn = 0x10000 + (vpage * 7919) % 4096  # a scrambled but fixed mapping
    paddr = pfn * PAGE + (vaddr % PAGE)
    tbl = pa.table(
        {
            "time_ns": pa.array(t, pa.int64()),
            "pid": pa.array(np.full(n, 42), pa.int32()),
            "event": pa.array(["cpu/mem-loads/"] * n),
            "addr": pa.array(vaddr.astype(np.uint64)),
            "phys_addr": pa.array(paddr.astype(np.uint64)),
        }
    )
    pm = pd.DataFrame(
        {
            "snapshot": 0,
            "time_ns": 0,
            "pid": 42,
            "vaddr_start": 0x7F0000000000 + np.arange(256) * PAGE,
            "vaddr_end": 0x7F0000000000 + (np.arange(256) + 1) * PAGE,
            "pfn_start": 0x10000 + (np.arange(256) * 7919) % 4096,
            "flags": 1,
        }
    )
    return tbl, pm


def test_perf_phys_through_pagemap_equals_virtual_perf():
    tbl, pm = synthetic()
    rng = ["0x7f0000000000-0x7f0000100000"]
    v = replay(tbl, ops="fvaddr", ranges=rng, pids=[42], access="perf")
    p = replay(tbl, ops="fvaddr", ranges=rng, pids=[42], access="perf-phys", pagemap=pm)
    assert v.table.equals(p.table)
    assert len(v.df) > 0


def test_paddr_default_range_and_system_ram():
    tbl, _ = synthetic()
    h = replay(tbl, ops="paddr", access="perf-phys")
    t = h.metadata["targets"][0]
    assert t["ranges_source"] == "span of the sampled physical addresses"
    phys = tbl.column("phys_addr").to_numpy()
    lo, hi = t["ranges"][0]
    assert lo == int(phys.min()) // PAGE * PAGE and hi == (int(phys.max()) // PAGE + 1) * PAGE
    assert h.df.start.min() == lo and h.df.end.max() == hi
    assert h.df.pid.isna().all()
    h2 = replay(tbl, ops="paddr", access="abit", ranges=["0x10000000-0x11000000"])
    assert h2.metadata["targets"][0]["ranges_source"] == "--range"
    assert h2.df.nr_accesses.max() > 0
    with pytest.raises(ConfigError, match="physical"):
        replay(tbl, ops="paddr", access="perf")
    with pytest.raises(ConfigError) as ei:
        replay(tbl, ops="paddr", access="perf-phys", pids=[1])
    assert re.search("--pid", ei.value.cli_message)


def test_paddr_biggest_system_ram_from_trace_meta(tmp_path):
    from tracedamon.engine.ops.paddr import default_range

    rg, src = default_range(
        {"system_ram": [[0x1000, 0x9F000], [0x100000, 0x7FFFFFFF]]}, np.array([5], np.int64)
    )
    assert rg.tolist() == [[0x100000, 0x7FFFFFFF]] and "System RAM" in src


def test_bad_inputs_raise_clear_errors(tmp_path):
    tbl, _ = synthetic(10)
    with pytest.raises(ConfigError, match="fvaddr needs"):
        replay(tbl, ops="fvaddr")
    with pytest.raises(ConfigError) as ei:
        replay(tbl, ops="kaddr")
    assert re.search("--ops", ei.value.cli_message)
    with pytest.raises(InputError, match="pagemap"):
        replay(tbl, ops="fvaddr", ranges=["0-8192"], access="perf-phys")
    with pytest.raises(InputError):
        replay(tmp_path / "missing.td")
    empty = tbl.slice(0, 0)
    with pytest.raises(InputError, match="no timed samples"):
        replay(empty, ops="fvaddr", ranges=["0-8192"])


# -- the command line ---------------------------------------------------------------------
def test_cli_replay_writes_default_output(hotcold, capsys):
    rc = main(["replay", str(hotcold), "--ops", "fvaddr", "--range", AREA, "--sample-us", "10000"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "snapshots: 20" in out and "hottest regions" in out
    dest = hotcold / "replay.parquet"
    t = pq.read_table(dest)
    assert t.num_rows > 0
    meta = json.loads(t.schema.metadata[b"tracedamon"])["replay"]
    assert meta["config"]["sample_us"] == 10000


def test_cli_refuses_to_overwrite_damon_regions(hotcold, capsys):
    rc = main(
        [
            "replay",
            str(hotcold),
            "-o",
            str(hotcold / "regions.parquet"),
            "--ops",
            "fvaddr",
            "--range",
            AREA,
        ]
    )
    assert rc != 0
    assert "regions.parquet" in capsys.readouterr().err
    assert not (hotcold / "regions.parquet").exists()


def test_cli_errors_are_one_line(hotcold, capsys):
    rc = main(["replay", str(hotcold), "--max-region", "12288", "--ops", "fvaddr", "--range", AREA])
    err = capsys.readouterr().err
    assert rc == ConfigError.exit_code
    assert err.count("\n") == 1 and "power of two" in err


def test_cli_help_mentions_damo_replay(capsys):
    from typer.testing import CliRunner
    from tracedamon.cli import app

    r = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "damo" in r.output and "Example" in r.output and "--min-nr-regions-mode" in r.output
    assert "--start auto" in r.output and "--max-rows" in r.output


def test_cli_max_rows(hotcold, capsys):
    base = [
        "replay",
        str(hotcold),
        "--ops",
        "fvaddr",
        "--range",
        AREA,
        "--min-region",
        "4096",
        "--max-region",
        "4096",
        "--sample-us",
        "10000",
    ]
    assert main(base + ["-o", str(hotcold / "capped.parquet"), "--max-rows", "1000"]) == 0
    out = capsys.readouterr().out
    assert "(only regions with accesses)" in out and "warning: every region of every" in out
    assert main(base + ["-o", str(hotcold / "all.parquet"), "--max-rows", "0"]) == 0
    assert "(only regions with accesses)" not in capsys.readouterr().out
    capped, full = (
        pq.read_table(hotcold / f).to_pandas() for f in ("capped.parquet", "all.parquet")
    )
    assert len(full) == 288 * 20
    assert capped.equals(full[full.nr_accesses > 0].reset_index(drop=True))


def test_vaddr_ops_update_finds_the_mappings_later(hotcold):
    # with --start first and a 100 ms update interval the first ops update (end of aggregation 0) sees the
    # workload's mapping: snapshot 0 has no regions, later ones cover the workload area
    h = replay(hotcold, ops="vaddr", update_us=100_000, start_ns="first")
    df = h.df
    assert h.n_snapshots == 20 and 0 not in set(df.snapshot)
    for snap, g in df.groupby("snapshot"):
        inside = g[(g.start >= HOT) & (g.end <= HOT + 1179648)]
        head = g[g.start == HOT]
        assert len(head) == 1 and head.nr_accesses.iloc[0] >= 8
        assert int((inside.end - inside.start).sum()) == 1179648  # the mapping, tiled
    late = df[df.snapshot >= 10]
    assert (
        late[(late.start >= HOT_END + 64 * PAGE) & (late.end <= COLD_END)].nr_accesses == 0
    ).all()


def test_damon_trace_text_round_trips_through_the_damon_ingest(hotcold, tmp_path):
    """The replay written as damon:damon_aggregated perf-script lines is read back by
    tracedamon's DAMON-trace reader (an independent parser that cuts snapshots by
    address restarts, nr_regions and time) into the same regions."""
    from tracedamon.ingest import ingest

    h = replay(hotcold, ops="fvaddr", ranges=[AREA], seed=4, aggr_us=50_000)
    txt = h.to_damon_trace(tmp_path / "replay.damon.txt")
    first = txt.read_text().splitlines()[0]
    assert first.startswith("kdamond.0 0 [000] ") and "damon:damon_aggregated: target_id=0" in first
    back = tracedamon.open_trace(ingest(txt, tmp_path / "back.td", format="damon")).df("regions")
    cols = ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age"]
    assert back[cols].reset_index(drop=True).equals(h.df[cols].reset_index(drop=True))
    with pytest.raises(ConfigError, match="accessed_only"):
        replay(hotcold, ops="fvaddr", ranges=[AREA], accessed_only=True).to_damon_trace(
            tmp_path / "x.txt"
        )


def test_hottest_regions_equal_a_pandas_groupby(hotcold):
    h = replay(hotcold, ops="fvaddr", ranges=[AREA], seed=2)
    df = h.df
    g = (
        df.groupby(["target", "start", "end"])
        .agg(
            snapshots=("snapshot", "size"),
            total_accesses=("nr_accesses", "sum"),
            mean_accesses=("nr_accesses", "mean"),
            max_age=("age", "max"),
        )
        .reset_index()
    )
    g = g.sort_values(
        ["total_accesses", "target", "start", "end"], ascending=[False, True, True, True]
    )
    want = g.head(7).reset_index(drop=True)
    got = h.hottest(7)
    assert (
        got[["target", "start", "end"]]
        .astype(np.int64)
        .equals(want[["target", "start", "end"]].astype(np.int64))
    )
    for c in ("snapshots", "total_accesses", "max_age"):
        assert (got[c].to_numpy(np.int64) == want[c].to_numpy(np.int64)).all()
    assert np.allclose(got.mean_accesses, want.mean_accesses)


@pytest.mark.parametrize("late_share", [0.1, 0.9])
def test_start_auto_scores_what_the_initial_regions_would_see(late_share):
    """Synthetic mappings: areas A, B, C exist from 2 ms (three regions), area D (below
    A) is mapped at 300 ms of a 400 ms trace; from then the three regions span all four
    areas.  Samples fall on A..C, or on D with probability late_share.  Starting at 2 ms
    sees the A..C samples from 2 ms on; starting at 300 ms sees every sample from 300 ms
    on: the first wins when few samples hit D, the second when most do."""
    G = 1 << 30
    A, B, C, D = 0x10 * G, 0x400 * G, 0x7000 * G, 0x1 * G
    mm = pd.DataFrame(
        {
            "pid": 9,
            "time_ns": [1_000_000, 1_500_000, 2_000_000, 300_000_000],
            "start": np.array([A, B, C, D], np.uint64),
            "length": np.array([1 << 20] * 4, np.uint64),
        }
    )
    rng = np.random.default_rng(0)
    n = 4000
    t = np.sort(rng.integers(500_000, 400_000_000, n))
    late = rng.random(n) < late_share
    base = np.where(late, D, rng.choice([A, B, C], n))
    addr = base + rng.integers(0, 256, n) * PAGE
    tbl = {"time_ns": t, "pid": np.full(n, 9, np.int32), "addr": addr.astype(np.uint64)}
    h = replay(tbl, ops="vaddr", mmaps=mm, start_ns="auto")
    a = h.metadata["t0_auto"]
    assert a["first_three_regions_ns"] == 2_000_000
    if late_share < 0.5:
        assert h.metadata["t0_ns"] == 2_000_000
        assert a["covered"] == int(((t >= 2_000_000) & ~late).sum())
    else:
        assert h.metadata["t0_ns"] == 300_000_000
        assert a["covered"] == int((t >= 300_000_000).sum())
    assert a["samples_in_window"] == int((t >= h.metadata["t0_ns"]).sum())
    assert len(h.df) > 0


def test_vaddr_default_start_is_auto_when_the_first_sample_gives_no_regions(hotcold):
    # the default (no start given) on a `perf record -- cmd` trace: the first sample gives
    # the process no three regions, so the replay starts where --start auto does, says so
    # in a warning, and records the choice; the history is the --start auto one
    h = replay(hotcold, ops="vaddr", sample_us=10_000)
    a = replay(hotcold, ops="vaddr", sample_us=10_000, start_ns="auto")
    m = h.metadata
    assert m["t0_source"] == "auto (default: no regions at the first sample)"
    assert m["t0_ns"] == a.metadata["t0_ns"] == m["t0_auto"]["time_ns"]
    assert m["t0_ns"] > m["t0_auto"]["first_three_regions_ns"] >= 0
    assert any("starting at" in w and "--start first" in w for w in m["warnings"])
    assert h.table.equals(a.table)
    # a start given in ns stays that start
    late = replay(hotcold, ops="vaddr", sample_us=10_000, start_ns=m["t0_ns"])
    assert late.metadata["t0_source"] == "--start"
