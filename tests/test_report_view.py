"""What the default pictures show: the address axis chosen from where the accesses
are (DAMON's coarse first regions do not squash the workload; accesses seen once at
page granularity are not dropped), a colour scale on which "accessed once" is not
"never", differences on a symmetric scale with a floor, titles and units on every
axis; and how much of the working set comes from large regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracedamon.export.access_report import format_summary, summary
from tracedamon.export.heatmap import diff_heatmap, region_heatmap
from tracedamon.export.wss import wss_report

from conftest import SAMPLES as SAMPLE_DIR

DIFF_FLOOR = 0.1  # tracedamon.export.heatmap.DIFF_FLOOR: a tenth of the maximum rate

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
AGGR = 100_000_000  # ns
B = 0x300000000000


def regions(rows, *, sample_us=5000, aggr_us=100_000, meta=None):
    """A region history from (snapshot, start, end, nr_accesses) rows."""
    df = pd.DataFrame(rows, columns=["snapshot", "start", "end", "nr_accesses"])
    df["start"] = df["start"].astype(np.uint64)
    df["end"] = df["end"].astype(np.uint64)
    df["time_ns"] = (df["snapshot"] + 1) * AGGR
    df["run"] = 0
    df["target"] = 0
    df["age"] = 0
    df.attrs["tracedamon"] = meta or {"config": {"sample_us": sample_us, "aggr_us": aggr_us}}
    return df


def tile(s, parts):
    """Rows of snapshot s from consecutive (start, end, nr) parts."""
    return [(s, a, b, nr) for a, b, nr in parts]


HOT = (B, B + MiB)
WARM = (B + 64 * MiB, B + 80 * MiB)


def converging(n=40):
    """DAMON's start on a vaddr target: one 4 TiB region, split over three
    aggregations until the 1 MiB hot area is its own region; a 16 MiB warm area
    64 MiB away accessed every other aggregation from then on."""
    end = B + 4 * TiB
    rows = tile(0, [(B, end, 9)])
    rows += tile(1, [(B, B + 512 * GiB, 10), (B + 512 * GiB, end, 0)])
    rows += tile(2, [(B, B + 32 * GiB, 10), (B + 32 * GiB, end, 0)])
    rows += tile(3, [(B, B + GiB, 10), (B + GiB, end, 0)])
    for s in range(4, n):
        rows += tile(
            s,
            [(*HOT, 10), (HOT[1], WARM[0], 0), (*WARM, 2 if s % 2 == 0 else 0), (WARM[1], end, 0)],
        )
    return regions(rows)


def share(hm, lo, hi):
    return len(hm.columns_in(lo, hi)) / hm.shape[1]


# ---------------------------------------------------------------- the address axis
def test_coarse_first_regions_do_not_squash_the_workload():
    hm = region_heatmap(converging(), time_bins=40, addr_bins=400)
    # the hot 1 MiB and the warm 16 MiB each take a readable part of the axis
    assert share(hm, *HOT) >= 0.05
    assert share(hm, *WARM) >= 0.25
    hot, warm = hm.columns_in(*HOT), hm.columns_in(*WARM)
    np.testing.assert_allclose(hm.matrix[4:, hot], 10)
    np.testing.assert_allclose(hm.matrix[4::2, warm], 2)
    np.testing.assert_allclose(hm.matrix[5::2, warm], 0)
    # nothing of the terabytes beyond is drawn
    assert int(hm.bin_end[-1]) < WARM[1] + 4 * MiB


def test_one_coarse_region_accessed_once_is_left_out_and_said_so():
    """The demo's vaddr replay: two 23 GiB regions far from the workload each saw one
    sample in the first aggregation and never again."""
    far = 0x7F0000000000
    rows = []
    for s in range(20):
        nr_far = 1 if s == 0 else 0
        rows += tile(s, [(*HOT, 10), (HOT[1], B + 8 * MiB, 0)])
        rows += tile(s, [(far, far + 23 * GiB, nr_far), (far + 23 * GiB, far + 46 * GiB, nr_far)])
    hm = region_heatmap(regions(rows), time_bins=20, addr_bins=400)
    assert share(hm, *HOT) >= 0.5
    assert hm.column_of(far + GiB) is None
    assert any("46.000 GiB seen accessed only briefly" in n for n in hm.notes)
    # asked for, the gaps-only view still draws them
    assert region_heatmap(regions(rows), collapse="gaps").column_of(far + GiB) is not None


def fixed_4k(n=40):
    """A fixed 4 KiB replay: 64 hot pages (every sample of every aggregation), 512 cold pages
    accessed once in the first aggregation, 1 MiB idle, 1024 warm pages accessed once
    every eighth aggregation."""
    rows = []
    hot, cold, gap, warm = 64, 512, 256, 1024
    for s in range(n):
        p = 0
        for count, nr in (
            (hot, 20),
            (cold, 1 if s == 0 else 0),
            (gap, 0),
            (warm, 1 if s % 8 == 3 else 0),
        ):
            for k in range(count):
                a = B + (p + k) * 4096
                rows.append((s, a, a + 4096, nr))
            p += count
    cold_r = (B + hot * 4096, B + (hot + cold) * 4096)
    warm_r = (B + (hot + cold + gap) * 4096, B + (hot + cold + gap + warm) * 4096)
    return regions(rows), cold_r, warm_r


def test_page_granularity_keeps_what_was_accessed_once():
    df, cold, warm = fixed_4k()
    hm = region_heatmap(df, time_bins=40, addr_bins=400)
    assert share(hm, *cold) >= 0.2 and share(hm, *warm) >= 0.4
    c, w = hm.columns_in(*cold), hm.columns_in(*warm)
    np.testing.assert_allclose(hm.matrix[0, c], 1)
    np.testing.assert_allclose(hm.matrix[3::8][:, w], 1)
    # on the picture, "accessed once" is a colour, not the black of "never"
    never = hm.rgba(0.0)[:3]
    once = hm.rgba(hm.matrix[0, c])[:, :3]
    assert (np.linalg.norm(once - never, axis=1) > 0.3).all()


def test_terminal_rows_show_warm_memory_as_accessed():
    df, cold, warm = fixed_4k(n=16)
    hm = region_heatmap(df, time_bins=16, addr_bins=80)
    lines = [ln for ln in hm.ascii(rows=16, cols=80).splitlines() if not ln.startswith("#")]
    c, w = hm.columns_in(*cold), hm.columns_in(*warm)
    assert all(lines[0][j] in "123456789" for j in c)
    assert all(lines[3][j] in "123456789" for j in w)
    assert all(lines[4][j] == "0" for j in w)  # idle is 0, accessed never is


# ---------------------------------------------------------------- colours
@pytest.mark.parametrize("value", ["nr_accesses", "rate", "hz"])
def test_accessed_once_is_a_different_colour_from_never(value):
    p = converging()
    hm = region_heatmap(p, value=value, time_bins=40, addr_bins=100)
    once = {"nr_accesses": 1.0, "rate": 1 / 20, "hz": 10.0}[value]  # 1 of 20 samples
    never, low, nodata, top = hm.rgba(np.array([0.0, once, np.nan, hm.limit]))[:, :3]
    assert np.linalg.norm(low - never) > 0.3
    assert np.linalg.norm(nodata - never) > 0.3 and np.linalg.norm(nodata - low) > 0.3
    assert np.linalg.norm(top - low) > 0.3
    # the scale tops out at what the intervals allow (aggr / sample = 20), not at the data
    assert hm.limit == pytest.approx({"nr_accesses": 20, "rate": 1, "hz": 200}[value])


def test_diff_of_a_history_with_itself_is_zero_and_neutral():
    df, _, _ = fixed_4k(n=16)
    hm = diff_heatmap(df, df, time_bins=16, addr_bins=200)
    fin = np.isfinite(hm.matrix)
    assert fin.any() and (hm.matrix[fin] == 0).all()
    rgb = hm.rgba()[..., :3][fin]
    assert (rgb.min(axis=-1) > 0.9).all()  # near white
    from tracedamon.export import heatmap

    assert hm.limit == DIFF_FLOOR == heatmap.DIFF_FLOOR
    lines = [ln for ln in hm.ascii(rows=16, cols=80).splitlines() if not ln.startswith("#")]
    assert set("".join(lines)) <= {"0", " "}


def test_diff_of_clock_jitter_is_not_painted_saturated():
    """The same DAMON trace read from two captures: times differ by microseconds."""
    df, _, _ = fixed_4k(n=16)
    jitter = df.copy()
    jitter["time_ns"] = jitter["time_ns"] + 3_000
    hm = diff_heatmap(df, jitter, time_bins=400, addr_bins=200)
    fin = np.isfinite(hm.matrix)
    assert np.abs(hm.matrix[fin]).max() > 0  # the jitter is there ...
    assert np.abs(hm.matrix[fin]).max() < 0.05 * DIFF_FLOOR
    assert (hm.rgba()[..., :3][fin].min(axis=-1) > 0.85).all()  # ... and drawn pale


def test_diff_scale_is_symmetric_and_marks_a_real_difference():
    df, _, warm = fixed_4k(n=16)
    other = df.copy()
    inw = (other["start"] >= warm[0]) & (other["end"] <= warm[1])
    other.loc[inw, "nr_accesses"] = 20
    hm = diff_heatmap(df, other, time_bins=16, addr_bins=200)
    w = hm.columns_in(*warm)
    assert hm.limit == pytest.approx(1.0)
    r, g, b = hm.rgba(hm.matrix[0, w])[:, :3].T
    assert (r > 0.4).all() and (b < 0.3).all()  # b higher: red
    r, g, b = hm.rgba(-hm.matrix[0, w])[:, :3].T
    assert (b > 0.3).all() and (r < 0.1).all()  # a higher: blue


# ---------------------------------------------------------------- titles and units
def _draw(fig):
    fig.canvas.draw()
    return fig


def test_heatmap_axes_carry_units():
    import matplotlib.pyplot as plt

    from tracedamon.export.heatmap import heatmap_figure

    hm = region_heatmap(converging(), time_bins=40, addr_bins=100)
    fig = _draw(heatmap_figure(hm))
    ax, cax = fig.axes
    assert "(s" in ax.get_xlabel()
    assert "address" in ax.get_ylabel() and "per row" in ax.get_ylabel()
    assert ax.get_title()
    assert "nr_accesses" in cax.get_ylabel() and "never" in cax.get_ylabel()
    plt.close(fig)


def test_access_cdfs_have_titles_and_no_offset_on_the_axis():
    import matplotlib.pyplot as plt

    from tracedamon.export.access_report import access_figure

    df = converging()
    df["age"] = np.arange(len(df)) % 300  # ages up to 30 s: temperatures up to 3e9
    fig = _draw(access_figure(df))
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert ax.xaxis.get_offset_text().get_text() == ""
    assert "temperature" in fig.axes[0].get_xlabel() and "(s" in fig.axes[1].get_xlabel()
    plt.close(fig)


def test_wss_picture_shows_a_small_working_set_beside_a_huge_one():
    import matplotlib.pyplot as plt

    from tracedamon.export.wss import wss_figure

    rep = wss_report(regions(_once_huge_rows()))
    fig = _draw(wss_figure(rep))
    a1 = fig.axes[0]
    assert a1.get_yscale() == "log"  # 1 MiB next to 47 GiB stays visible
    assert "bytes" in a1.get_ylabel() and a1.get_title()
    assert any("MiB" in t.get_text() for t in a1.get_yticklabels())
    plt.close(fig)


# ---------------------------------------------------------------- large regions in the WSS
def _once_huge_rows(n=10):
    far = 0x7F0000000000
    rows = []
    for s in range(n):
        rows += tile(s, [(*HOT, 10), (HOT[1], B + 8 * MiB, 0)])
        rows += tile(s, [(far, far + 47 * GiB, 1 if s == 0 else 0)])
    return rows


def test_wss_says_how_much_comes_from_large_regions():
    rep = wss_report(regions(_once_huge_rows()))
    mean = (47 * GiB + 10 * MiB) / 10
    assert rep["mean_bytes"] == mean
    large = {e["min_region_bytes"]: e for e in rep["from_large_regions"]}
    assert large[2 * MiB]["mean_bytes"] == 47 * GiB / 10
    assert large[GiB]["mean_bytes"] == 47 * GiB / 10
    assert large[GiB]["share"] == pytest.approx(47 * GiB / (47 * GiB + 10 * MiB))
    assert "any of its pages" not in rep["region_rule"]  # no replay metadata: DAMON's own
    s = summary(regions(_once_huge_rows()))
    assert s["wss_bytes"]["from_large_regions"] == rep["from_large_regions"]
    text = format_summary(s)
    assert "from regions of 1 GiB or more" in text
    assert "without regions of 2 MiB or more the mean is 1.000 MiB" in text


def test_wss_rule_names_the_perf_check_for_a_perf_replay(tmp_path, capsys):
    from tracedamon.cli import main

    meta = {"replay": {"access": "perf", "config": {"sample_us": 5000, "aggr_us": 100000}}}
    df = regions(_once_huge_rows(), meta=meta)
    rep = wss_report(df)
    assert "one perf sample falls in any of its pages" in rep["region_rule"]
    import pyarrow as pa

    from tracedamon.store.writer import write_table_atomic
    from tracedamon.schema import REGIONS

    f = tmp_path / "h.parquet"
    cols = [c for c in REGIONS.names if c in df.columns]
    write_table_atomic(pa.Table.from_pandas(df[cols], preserve_index=False), f, metadata=meta)
    assert main(["report", "wss", str(f)]) == 0
    out = capsys.readouterr().out
    assert "from regions of 1 GiB or more" in out and "one perf sample" in out


# ---------------------------------------------------------------- the real sample trace
def test_the_demo_replay_picture_shows_the_workload(tmp_path):
    """make demo's perf replay of sample_traces/hotcold.perf.data: 32 hot pages and
    256 cold pages at 0x200000000000 inside a vaddr space of about 50 GiB, whose two
    far regions saw one sample each in the first aggregation."""
    import tracedamon
    from tracedamon.ingest import ingest

    td = tmp_path / "hc.td"
    ingest([SAMPLE_DIR / "hotcold.perf.data"], td)
    hist = tracedamon.replay(td, ops="vaddr", start_ns="auto", sample_us=10000)
    hm = region_heatmap(hist.table)
    area = (0x200000000000, 0x200000000000 + 288 * 4096)
    hot = (0x200000000000, 0x200000000000 + 32 * 4096)
    assert share(hm, *area) >= 0.9
    assert share(hm, *hot) >= 0.08
    later = hm.matrix[hm.shape[0] // 2 :]
    assert np.nanmean(later[:, hm.columns_in(*hot)]) > 8
    assert any("seen accessed only briefly" in n for n in hm.notes)
