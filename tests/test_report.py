"""Reports: heatmap matrices (regions, samples, difference), PNG output, WSS and access
distributions, summaries, the CLI; and the shared real runs (DAMON paddr run 1 heatmap,
replays of sample_traces/hotcold.perf.data under two seeds)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from tracedamon.errors import ConfigError, InputError
from tracedamon.export.access_report import access_report, byte_percentiles, region_metrics, summary
from tracedamon.export.heatmap import diff_heatmap, region_heatmap, sample_heatmap
from tracedamon.export.wss import wss_report, wss_series
from tracedamon.store.writer import TraceDirWriter
from tracedamon.schema import SAMPLES

from conftest import SAMPLES as SAMPLE_DIR
from test_compare import _run1_regions, _run1_truth, history

GiB = 1 << 30


def png_size(path):
    data = open(path, "rb").read(32)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------- heatmaps of regions
def test_region_heatmap_puts_the_hot_area_where_it_is(tmp_path):
    p = np.zeros((30, 64), int)
    p[:, 10:20] = 20
    p[15:, 40:44] = 5  # warm, only in the second half
    hm = region_heatmap(history(p), time_bins=30, addr_bins=64, collapse="gaps")
    assert hm.shape == (30, 64)
    base, u = 0x10000000, 65536
    hot = hm.columns_in(base + 10 * u, base + 20 * u)
    assert len(hot) == 10
    np.testing.assert_allclose(hm.matrix[:, hot], 20)
    warm = hm.columns_in(base + 40 * u, base + 44 * u)
    np.testing.assert_allclose(hm.matrix[15:, warm], 5)
    np.testing.assert_allclose(hm.matrix[:15, warm], 0)
    cold = np.setdiff1d(np.arange(64), np.concatenate([hot, warm]))
    np.testing.assert_allclose(hm.matrix[:, cold], 0)
    out = hm.to_png(tmp_path / "h.png", width=640, height=480)
    assert png_size(out) == (640, 480)
    assert out.stat().st_size > 2000
    rate = region_heatmap(history(p), time_bins=30, addr_bins=64, collapse="gaps", value="rate")
    np.testing.assert_allclose(rate.matrix[:, hot], 1.0)  # 20 of aggr/sample = 20
    hz = region_heatmap(history(p), time_bins=30, addr_bins=64, collapse="gaps", value="hz")
    np.testing.assert_allclose(hz.matrix[:, hot], 200.0)  # 20 per 100 ms


def test_sparse_paddr_heatmap_collapses_idle_space():
    """A paddr-like history over 16 GiB where only two 8 MiB areas 8 GiB apart are ever
    accessed: the picture shows those areas, not 16 GiB of idle memory."""
    base = 1 << 32
    rows = []
    for s in range(10):
        b = [0, 2 * GiB, 2 * GiB + (8 << 20), 10 * GiB, 10 * GiB + (8 << 20), 16 * GiB]
        nr = [0, 10, 0, 4, 0]
        for i in range(5):
            rows.append((s, (s + 1) * 10**8, base + b[i], base + b[i + 1], nr[i], 1))
    df = pd.DataFrame(rows, columns=["snapshot", "time_ns", "start", "end", "nr_accesses", "age"])
    hm = region_heatmap(df, time_bins=10, addr_bins=200)
    assert len(hm.segments) == 2
    shown = int((hm.segments[:, 1] - hm.segments[:, 0]).sum())
    assert shown < 64 << 20  # far less than 16 GiB
    hot = hm.columns_in(base + 2 * GiB, base + 2 * GiB + (8 << 20))
    warm = hm.columns_in(base + 10 * GiB, base + 10 * GiB + (8 << 20))
    assert len(hot) > 20 and len(warm) > 20  # each area is a visible band
    np.testing.assert_allclose(hm.matrix[:, hot], 10)
    np.testing.assert_allclose(hm.matrix[:, warm], 4)
    # with collapsing off, the same data is one continuous axis
    whole = region_heatmap(df, time_bins=10, addr_bins=200, collapse="none")
    assert len(whole.segments) == 1 and int(whole.segments[0, 1] - whole.segments[0, 0]) == 16 * GiB


def test_uncovered_gaps_are_collapsed():
    """vaddr-like: two mappings 1 TiB apart."""
    p = np.zeros((5, 8), int)
    p[:, 2] = 3
    a = history(p, base=0x10000000)
    b = history(p, base=0x10000000 + (1 << 40))
    df = pd.concat([a, b], ignore_index=True)
    hm = region_heatmap(df, time_bins=5, addr_bins=16, collapse="gaps")
    assert len(hm.segments) == 2 and hm.shape == (5, 16)
    assert hm.column_of(0x10000000 + (1 << 39)) is None  # the gap is not drawn
    assert hm.matrix[0, hm.column_of(0x10000000 + 2 * 65536)] == 3
    assert hm.matrix[0, hm.column_of(0x10000000 + (1 << 40) + 2 * 65536)] == 3


def test_diff_heatmap_marks_the_disagreement():
    p = np.zeros((10, 32), int)
    p[:, 4:8] = 20
    q = p.copy()
    q[:, 20:22] = 20  # b sees an extra hot area
    hm = diff_heatmap(history(p), history(q), collapse="gaps")
    base, u = 0x10000000, 65536
    extra = hm.columns_in(base + 20 * u, base + 22 * u)
    np.testing.assert_allclose(hm.matrix[:, extra], 1.0)
    others = np.setdiff1d(np.arange(hm.shape[1]), extra)
    np.testing.assert_allclose(hm.matrix[:, others], 0.0)


def _samples_dir(tmp_path, addrs, times):
    n = len(addrs)
    cols = {f.name: pa.nulls(n, f.type) for f in SAMPLES}
    cols["time_ns"] = pa.array(times, pa.int64())
    cols["pid"] = pa.array([100] * n, pa.int32())
    cols["event_id"] = pa.array([0] * n, pa.int32())
    cols["event"] = (
        pa.array(["mem-loads"] * n).dictionary_encode().cast(SAMPLES.field("event").type)
    )
    cols["addr"] = pa.array(addrs, pa.uint64())
    cols["cpumode"] = pa.array([3] * n, pa.uint8())
    cols["misc"] = pa.array([0] * n, pa.uint16())
    t = pa.table([cols[f.name] for f in SAMPLES], schema=SAMPLES)
    d = tmp_path / "s.td"
    with TraceDirWriter(d) as w:
        w.write("samples", t)
    return d


def test_sample_heatmap_counts_samples_per_page_and_time(tmp_path):
    rng = np.random.default_rng(0)
    hot = 0x7F0000000000 + rng.integers(0, 16, size=900) * 4096  # 16 hot pages
    cold = 0x560000000000 + rng.integers(0, 256, size=100) * 4096  # far away, rarely
    addrs = np.concatenate([hot, cold]).astype(np.uint64)
    times = rng.integers(0, 10**9, size=len(addrs))
    d = _samples_dir(tmp_path, addrs, times)
    hm = sample_heatmap(d, time_bins=10, addr_bins=64)
    assert hm.matrix.sum() == 1000
    assert len(hm.segments) == 2  # the 46-bit gap is collapsed
    hot_cols = hm.columns_in(0x7F0000000000, 0x7F0000010000)
    assert hm.matrix[:, hot_cols].sum() == 900
    # per page: the hot pages' columns hold more samples per column than the cold ones
    cold_cols = hm.columns_in(0x560000000000, 0x560000100000)
    assert hm.matrix[:, hot_cols].sum(0).mean() > 5 * hm.matrix[:, cold_cols].sum(0).mean()
    hm.to_png(tmp_path / "s.png", width=300, height=200)
    assert png_size(tmp_path / "s.png") == (300, 200)
    with pytest.raises(InputError, match="no samples"):
        sample_heatmap(d, pid=4242)


# ---------------------------------------------------------------- wss, access, summary
def test_wss_report_known_values():
    p = np.zeros((4, 8), int)
    p[0, :1] = 1
    p[1, :2] = 3
    p[2, :4] = 1
    p[3, :8] = 2
    s = wss_series(history(p))
    assert s["wss_bytes"].tolist() == [65536, 2 * 65536, 4 * 65536, 8 * 65536]
    rep = wss_report(history(p), ps=(0, 50, 100))
    assert rep["mean_bytes"] == 15 * 65536 / 4
    assert rep["percentiles"] == {0: 65536, 50: 4 * 65536, 100: 8 * 65536}
    assert wss_report(history(p), acc_thres=2)["series"]["wss_bytes"].tolist() == [
        0,
        2 * 65536,
        0,
        8 * 65536,
    ]
    assert wss_report(history(p), exclude=3)["snapshots"] == 1


def test_access_report_temperature_and_idle_time():
    # one snapshot: region 0 accessed 10/20 with age 3; region 1 idle with age 4
    df = history(np.array([[10, 0]]), age=np.array([[3, 4]]))
    r = region_metrics(df)
    # percent = 10 * 100 / 20 = 50; age_us = 3 * 100000
    assert r["percent"].tolist() == [50.0, 0.0]
    assert r["temperature"].tolist() == [50 * 100 + 300000 * 100, -(400000 * 100)]
    assert r["idle_us"].tolist() == [0.0, 500000.0]  # (age + 1) aggregations
    rep = access_report(df, ps=(0, 50, 100))
    assert rep["idle_us"] == {0: 0.0, 50: 0.0, 100: 500000.0}
    assert rep["temperature"][0] == -40000000.0 and rep["temperature"][100] == 30005000.0
    assert byte_percentiles(np.array([3.0, 1.0, 2.0]), np.array([1, 1, 2]), [0, 25, 50, 100]) == {
        0: 1.0,
        25: 1.0,
        50: 2.0,
        100: 3.0,
    }
    df.attrs = {}
    with pytest.raises(ConfigError, match="intervals"):
        region_metrics(df)


def test_summary():
    s = summary(history(np.ones((3, 4), int)))
    assert s["snapshots"] == 3 and s["regions_per_snapshot"]["mean"] == 4
    assert s["covered_bytes"] == [4 * 65536] and s["aggr_us"] == 100000


# ---------------------------------------------------------------- CLI
def _regions_file(tmp_path, p):
    from tracedamon.store.writer import write_table_atomic
    from tracedamon.schema import REGIONS

    f = tmp_path / "h.parquet"
    write_table_atomic(
        pa.Table.from_pandas(history(p), schema=REGIONS, preserve_index=False),
        f,
        metadata={"config": {"sample_us": 5000, "aggr_us": 100000}},
        force=True,
    )
    return f


def test_cli_reports(tmp_path, capsys):
    from tracedamon.cli import main

    p = np.zeros((20, 32), int)
    p[:, 4:8] = 20
    f = _regions_file(tmp_path, p)
    assert (
        main(
            [
                "report",
                "heatmap",
                str(f),
                "--png",
                str(tmp_path / "h.png"),
                "--width",
                "500",
                "--height",
                "300",
            ]
        )
        == 0
    )
    assert png_size(tmp_path / "h.png") == (500, 300)
    capsys.readouterr()
    assert main(["report", "heatmap", str(f), "--collapse", "gaps", "--addr-bins", "32"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.startswith("#")]
    assert all(r[4:8] == "9999" and set(r[:4] + r[8:]) == {"0"} for r in rows)
    cells = tmp_path / "h.cells.parquet"
    assert (
        main(
            [
                "report",
                "heatmap",
                str(f),
                "--collapse",
                "gaps",
                "--addr-bins",
                "32",
                "--time-bins",
                "20",
                "--cells",
                str(cells),
            ]
        )
        == 0
    )
    import pyarrow.parquet as pq

    c = pq.read_table(cells).to_pandas()
    assert len(c) == 20 * 32
    hot = (c["start"] >= 0x10000000 + 4 * 65536) & (c["end"] <= 0x10000000 + 8 * 65536)
    assert (c.loc[hot, "value"] == 20).all() and (c.loc[~hot, "value"] == 0).all()
    capsys.readouterr()
    assert main(["report", "wss", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_bytes"] == 4 * 65536
    assert main(["report", "access", str(f), "--json", "--png", str(tmp_path / "a.png")]) == 0
    assert json.loads(capsys.readouterr().out)["mean_accessed_bytes"] == 4 * 65536
    assert png_size(tmp_path / "a.png")[0] == 1000
    assert main(["report", "summary", str(f)]) == 0
    assert "20 (640 region rows" in capsys.readouterr().out
    assert main(["report", "heatmap", str(f), "--range", "nonsense"]) == 4
    assert main(["report", "heatmap", str(tmp_path / "missing.parquet")]) == 2


# ---------------------------------------------------------------- real runs
def test_damon_paddr_run1_heatmap_shows_the_hot_area(tmp_path):
    """The hot area's 32 MiB lie in 88 physical runs; columns made mostly of hot frames
    are much hotter than columns holding no workload frame but cold ones."""
    td = _run1_regions(tmp_path)
    from tracedamon.export.compare import load_truth

    truth = load_truth(_run1_truth(tmp_path))
    hm = region_heatmap(td, time_bins=17, addr_bins=4608, collapse="none")  # 256 KiB columns
    ncol = hm.shape[1]
    frac = {lab: np.zeros(ncol) for lab in ("hot", "warm", "cold")}
    width = (hm.bin_end - hm.bin_start).astype(float)
    for lab, g in truth.groupby("label"):
        for s, e in zip(g["start"].to_numpy(), g["end"].to_numpy()):
            lo = np.maximum(hm.bin_start, s)
            hi = np.minimum(hm.bin_end, e)
            frac[lab] += np.maximum(hi.astype(float) - lo.astype(float), 0) / width
    later = hm.matrix[5:]  # after population (snapshot 2) and DAMON settling
    hot_cols = frac["hot"] > 0.5
    cold_cols = (frac["cold"] > 0.5) & (frac["hot"] == 0) & (frac["warm"] == 0)
    assert hot_cols.sum() >= 5 and cold_cols.sum() >= 20
    assert np.nanmean(later[:, hot_cols]) > 5 * np.nanmean(later[:, cold_cols])
    assert np.nanmean(later[:, hot_cols]) > 6  # near 10/10 (2 Hz)
    hm.to_png(tmp_path / "run1.png")
    assert png_size(tmp_path / "run1.png") == (1000, 700)


def _replay_pair(tmp_path, seeds, **kw):
    from tracedamon.pipeline import replay as replay_mod
    from tracedamon.ingest import ingest

    td = tmp_path / "hc.td"
    if not td.exists():
        ingest([SAMPLE_DIR / "hotcold.perf.data"], td)
    base = dict(
        ops="fvaddr", ranges=["0x200000000000-0x200000200000"], sample_us=5000, aggr_us=100000
    )
    return [replay_mod.replay(td, seed=s, **{**base, **kw}) for s in seeds]


def test_replay_seeds_agree_highly_in_adaptive_mode(tmp_path):
    from tracedamon.export.compare import compare

    a, b = _replay_pair(tmp_path, (0, 1), min_nr_regions=10, max_nr_regions=1000)
    m = compare(a, b).metrics
    assert m["a"]["sample_us"] == 5000 and m["a"]["aggr_us"] == 100000  # from the replay metadata
    assert 0.5 < m["heat"]["spearman"] < 1.0
    assert 0.5 < m["hot"]["0.5"]["f1"] < 1.0 or 0.5 < m["hot"]["0.25"]["f1"] < 1.0
    # once the adaptive regions have settled (second half of the 2 s), agreement is high
    late = compare(a, b).per_time.iloc[10:]
    assert (late["hot_f1"] > 0.85).all() and (late["spearman"] > 0.85).all()
    assert (late["hot_f1"] < 1.0).any()
    # (no claim on the lag here: over 2 s, one seed finding the hot pages later than the
    # other looks like a time lag to the cross-correlation)


def test_replay_seeds_agree_perfectly_at_fixed_granularity(tmp_path):
    from tracedamon.export.compare import compare

    a, b = _replay_pair(
        tmp_path, (0, 7), min_region=4096, max_region=4096, min_nr_regions=512, max_nr_regions=512
    )
    m = compare(a, b).metrics
    assert m["heat"]["spearman"] == pytest.approx(1.0) and m["heat"]["pearson"] == pytest.approx(
        1.0
    )
    assert m["heat"]["mean_abs_rate_diff"] == 0
    assert all(v["f1"] == 1.0 for v in m["hot"].values())
    assert m["wss"]["mae_bytes"] == 0
    assert m["grid"]["address_bin_bytes"] == 4096  # per-page cells
    assert m["alignment"]["estimate"]["lag_ns"] == 0


def test_sample_heatmap_of_the_real_hotcold_trace(tmp_path, capsys):
    """sample_traces/README.md: 197 passes × 32 hot pages + 256 cold pages = 6,560
    samples in the workload area at 0x200000000000."""
    from tracedamon.cli import main
    from tracedamon.ingest import ingest

    td = tmp_path / "hc.td"
    ingest([SAMPLE_DIR / "hotcold.perf.data"], td)
    hm = sample_heatmap(td, time_bins=20, addr_bins=4096)  # page columns
    assert int(hm.bin_end[0] - hm.bin_start[0]) == 4096
    area = hm.columns_in(0x200000000000, 0x200000000000 + 288 * 4096)
    per_page = hm.matrix[:, area].sum(axis=0)
    assert per_page.sum() == 6560
    assert sorted(per_page)[-32:] == [197] * 32 and sorted(per_page)[:256] == [1] * 256
    # the hot pages are hot all along: every time bin holds samples of them
    hot = area[per_page == 197]
    assert (hm.matrix[:, hot].sum(axis=1) > 0).all()
    # the command picks the samples table by itself for a directory without regions
    assert main(["report", "heatmap", str(td), "--png", str(tmp_path / "s.png")]) == 0
    assert png_size(tmp_path / "s.png") == (1000, 700)
    capsys.readouterr()
    assert main(["report", "summary", str(td)]) == 0
    out = capsys.readouterr().out
    assert "6618" in out and "page-faults" in out


def test_cli_diff_heatmap(tmp_path, capsys):
    from tracedamon.cli import main

    p = np.zeros((10, 32), int)
    p[:, 4:8] = 20
    fa = _regions_file(tmp_path, p)
    fb = fa.with_name("b.parquet")
    q = p.copy()
    q[:, 20:22] = 20
    import shutil

    shutil.copy(_regions_file(tmp_path, q), fb)
    _regions_file(tmp_path, p)
    assert (
        main(["report", "heatmap", str(fa), "--diff", str(fb), "--png", str(tmp_path / "d.png")])
        == 0
    )
    assert png_size(tmp_path / "d.png") == (1000, 700)
    assert "diff heatmap" in capsys.readouterr().out


def test_cli_damo_heatmap(tmp_path, capsys):
    from tracedamon.cli import main

    p = np.zeros((10, 32), int)
    p[:, 4:8] = 20
    f = _regions_file(tmp_path, p)
    assert (
        main(["report", "heatmap", str(f), "--damo", "--addr-bins", "32", "--time-bins", "5"]) == 0
    )
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln and not ln.startswith("#")]
    assert len(rows) == 5 and all(r[4:8] == "9999" for r in rows)
    assert "Hz" in out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 64)), min_size=1, max_size=12),
    st.lists(st.integers(0, 11), max_size=4),
)
def test_guide_ranges_keep_every_active_byte_inside_what_is_held(iv, pick):
    from tracedamon.export.grid import guide_ranges, intersect_intervals, merge_intervals

    page = 4096
    held = merge_intervals([a * page for a, _ in iv], [(a + n) * page for a, n in iv])
    act_src = [held[i % len(held)] for i in pick]
    active = (
        merge_intervals([a for a, _ in act_src], [a + page for a, _ in act_src])
        if act_src
        else None
    )
    g = guide_ranges(held, active)
    # shown ranges lie inside what is held, sorted and disjoint
    assert (intersect_intervals(g, held) == g).all()
    assert all(g[i, 1] <= g[i + 1, 0] for i in range(len(g) - 1))
    # every active byte is shown
    if active is not None:
        assert (intersect_intervals(active, g) == active).all()
