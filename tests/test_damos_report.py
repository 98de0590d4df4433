"""`tracedamon report damos`: the per-scheme summary against runs whose applications
are known by construction and against the paddr run-1 corpus, the picture's overlay
(pixels where the schemes applied), where SRC's parts are found, the command line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import need_corpus
from test_damos_run import AGGR_MS, COLD, HOT, MS, PAGE, T0, scheme_file, write_source
from tracedamon.cli import main
from tracedamon.pipeline.damos import damos
from tracedamon.errors import InputError
from tracedamon.export.damos_report import _rows_of, _walk_times, damos_report, find_sources

MIB = 1 << 20


def T(j):
    return T0 + (j + 1) * AGGR_MS * MS


@pytest.fixture
def run(tmp_path):
    """A cold 1 MiB area paged out at snapshots 3, 6 and 9 (its own age reset makes it
    3 aggregations old again each time) and a hot 256 KiB area a migrate_hot scheme
    takes at every snapshot; 11 sampled touches of paged-out pages (as in
    test_damos_run.test_pageout_reaccesses_exact)."""
    snaps = [[(HOT, HOT + 64 * PAGE, 20, j), (COLD, COLD + 256 * PAGE, 0, j)] for j in range(10)]
    samples = [(T0 + k * 5 * MS + 1, HOT + (k % 64) * PAGE) for k in range(200)]
    samples += [(T(3) + 10 * MS, COLD)]
    samples += [(T(3) + 20 * MS, COLD + p * PAGE) for p in range(10)]
    samples += [(T(6) + 50 * MS, COLD + 5 * PAGE)]
    src = write_source(tmp_path / "po.td", snaps, sorted(samples))
    cold = scheme_file(
        tmp_path,
        "cold",
        action="pageout",
        access_pattern={
            "sz_bytes": {"min": "0 B", "max": "max"},
            "nr_accesses": {"min": "0 samples", "max": "0 samples"},
            "age": {"min": "3 aggr_intervals", "max": "max"},
        },
    )
    hot = scheme_file(
        tmp_path,
        "hot",
        action="migrate_hot",
        access_pattern={
            "sz_bytes": {"min": 0, "max": "max"},
            "nr_accesses": {"min": "10 samples", "max": "max"},
            "age": {"min": 0, "max": "max"},
        },
    )
    res = damos(src, [cold, hot], fast_tier=128 * PAGE)
    out = res.to_dir(src.with_suffix(".damos"))
    return src, out


def test_summary_per_scheme(run):
    src, out = run
    rep = damos_report(out)
    assert rep.history is not None and rep.history.resolve() == src.resolve()
    ps = rep.per_scheme().set_index("scheme")
    assert ps.loc[0, "walks_applied"] == 3 and ps.loc[0, "bytes_tried"] == 3 * MIB
    assert ps.loc[1, "walks_applied"] == 10 and ps.loc[1, "bytes_tried"] == 10 * 64 * PAGE
    assert ps.loc[0, "steps_due"] == 10 and ps.loc[0, "qt_exceeds"] == 0
    assert ps.loc[0, "action"] == "pageout" and ps.loc[1, "action"] == "migrate_hot"
    text = rep.text()
    assert "scheme 0 (pageout): 3 applications in 10 steps due" in text
    assert "11 re-accesses of paged-out pages (44.000 KiB)" in text
    assert "fast tier 512.000 KiB" in text


def test_history_with_its_damos_output_beside_it(run):
    src, out = run
    d, h, how = find_sources(src)
    assert d == out and h == src and "beside" in how
    assert damos_report(src).per_scheme().walks_applied.tolist() == [3, 10]


def test_no_applications_anywhere_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DAMOS applications"):
        find_sources(tmp_path / "empty")


def test_address_positions_on_a_collapsed_axis():
    # bins [0, 4K), [4K, 8K), then a gap the axis leaves out, then [16K, 20K)
    hm = SimpleNamespace(
        bin_start=np.array([0, 4096, 16384], np.uint64),
        bin_end=np.array([4096, 8192, 20480], np.uint64),
    )
    got = _rows_of(hm, np.array([0, 1024, 6144, 8192, 12288, 16384, 18432, 20480]))
    assert got.tolist() == [0, 0.25, 1.5, 2, 2, 2, 2.5, 3]


def test_picture_marks_the_applied_ranges(run):
    # the pixel inside the cold area during the window of snapshot 3 (the first
    # pageout) is the scheme's colour over black; the same address in the window of
    # snapshot 1 (nothing applied) stays black
    src, out = run
    rep = damos_report(out)
    fig = rep.figure(width=800, height=900)
    hm, _ = rep._heatmap(400, 400)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    ax = fig.axes[0]
    t0 = int(hm.t_edges[0])
    y = float(_rows_of(hm, np.array([COLD + 128 * PAGE]))[0])

    def pixel(t_ns):
        x, yy = ax.transData.transform(((t_ns - t0) / 1e9, y))
        return img[img.shape[0] - int(round(yy)), int(round(x))]

    applied = pixel(T(3) - 50 * MS)
    idle = pixel(T(1) - 50 * MS)
    assert idle.tolist() == [0, 0, 0]
    assert applied[2] > 60 and applied[1] > 60 and applied[0] < 30  # cyan over black
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_writes_a_marked_png_and_refuses_to_overwrite(run, tmp_path, capsys):
    src, out = run
    png = tmp_path / "d.png"
    assert main(["report", "damos", str(out), "--png", str(png)]) == 0
    cap = capsys.readouterr().out
    assert "scheme 1 (migrate_hot): 10 applications" in cap and f"wrote {png}" in cap
    from PIL import Image

    assert "tracedamon" in Image.open(png).info
    assert main(["report", "damos", str(out), "--png", str(png)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", "damos", str(out), "--png", str(png), "--force"]) == 0


def test_corpus_recorded_and_predicted(tmp_path):
    run1 = need_corpus("damon-paddr-run1", "paddr_run1")
    from tracedamon import ingest, open_trace

    td = tmp_path / "run1.td"
    ingest(run1 / "ftrace_trace_pipe.txt.gz", td)
    # the kernel's own applications (damos-spec §0: 792 events in 17 applications)
    rec = damos_report(td)
    ps = rep_row(rec)
    ev = open_trace(td).df("damos_apply")
    assert (ps.walks_applied, ps.regions) == (17, 792)
    assert ps.bytes_tried == int((ev.end - ev.start).sum())
    assert "not recorded" in rec.text()
    # the kernel traces each region of a walk at its own time: the bytes panel draws one
    # bar per walk (17), whose heights sum to the recorded bytes; two are the full quota
    import matplotlib.pyplot as plt

    fig = rec.figure(width=600, height=700)
    bars = [p.get_height() for p in fig.axes[1].patches]
    plt.close(fig)
    assert len(bars) == 17
    assert sum(bars) == pytest.approx(int((ev.end - ev.start).sum()) / MIB)
    assert sum(b == pytest.approx(128.0) for b in bars) == 2
    # tracedamon damos's prediction: the same walks, and its stats (§9.3: two walks
    # exhaust the quota)
    res = damos(td, [run1 / "kdamond_sysfs_before.txt"], resume="auto")
    res.to_dir(td / "damos")
    pred = damos_report(td)
    ps = rep_row(pred)
    assert (ps.walks_applied, ps.regions, ps.qt_exceeds) == (17, 792, 2)
    assert ps.bytes_tried == int((ev.end - ev.start).sum())
    # the picture shows run 0 only: run 1 (the restarted kdamond) applied nothing
    import matplotlib.pyplot as plt

    plt.close(pred.figure(width=600, height=700))
    assert any("run(s) 1 without applications" in n for n in pred.notes)


def rep_row(rep):
    ps = rep.per_scheme()
    assert len(ps) == 1
    return ps.iloc[0]


def test_walks_of_rows_traced_one_by_one():
    import pandas as pd

    g = pd.DataFrame({"time_ns": [2_001, 1_000, 1_002, 2_000, 1_003]})
    assert _walk_times(g, 1000).tolist() == [2_001, 1_003, 1_003, 2_001, 1_003]
