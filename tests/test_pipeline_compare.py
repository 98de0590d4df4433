"""pipeline.compare, the I/O side of compare: outputs checked before anything is read,
sources opened by path, metrics and cells written through the output rule, the same
numbers as the analysis (export.compare) on its own; and the export package's own
layout (one byte formatter, the in-memory history's name)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracedamon.errors import ConfigError, OutputError
from tracedamon.export.compare import compare as analyse
from tracedamon.export.metrics_json import metrics_json
from tracedamon.export.truth_score import score_truth
from tracedamon.pipeline.compare import cells_path_for, compare

from test_compare import _truth_csv, history, hot_pattern


@pytest.fixture
def two_files(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    history(hot_pattern(seed=1)).to_parquet(a)
    history(hot_pattern(seed=2)).to_parquet(b)
    return a, b


def test_writes_what_the_analysis_computes(two_files, tmp_path):
    a, b = two_files
    out, cells = tmp_path / "m.json", tmp_path / "m.cells.parquet"
    res = compare(a, b, out=out, cells=cells, acc_thres=2)
    want = analyse(a, b, acc_thres=2, cells=True)
    got = json.loads(out.read_text())
    assert got.pop("tracedamon")  # the output rule's marker
    assert got == json.loads(want.to_json())
    assert res.metrics["heat"] == want.metrics["heat"]
    t = pq.read_table(cells).to_pandas()
    assert len(t) == len(want.cells) > 0
    np.testing.assert_array_equal(t["heat_a"].to_numpy(), want.cells["heat_a"].to_numpy())
    np.testing.assert_array_equal(t["diff_rate"].to_numpy(), want.cells["diff_rate"].to_numpy())


def test_outputs_are_checked_before_any_source_is_read(tmp_path):
    foreign = tmp_path / "m.json"
    foreign.write_text("{}\n")  # not tracedamon's: never replaced
    missing = tmp_path / "nowhere.parquet"
    with pytest.raises(OutputError):
        compare(missing, missing, out=foreign, force=True)
    assert foreign.read_text() == "{}\n"
    # an output that is one of the inputs is refused, the input untouched
    other = tmp_path / "b.parquet"
    history(hot_pattern()).to_parquet(other)
    before = other.read_bytes()
    with pytest.raises(OutputError):
        compare(missing, missing, out=tmp_path / "ok.json", cells=other, force=True)
    assert other.read_bytes() == before
    assert not (tmp_path / "ok.json").exists()


def test_a_second_run_needs_force(two_files, tmp_path):
    a, b = two_files
    out = tmp_path / "m.json"
    compare(a, b, out=out)
    first = out.read_text()
    with pytest.raises(OutputError):
        compare(a, b, out=out, offset_ns=AGGR_HALF)
    assert out.read_text() == first
    compare(a, b, out=out, offset_ns=AGGR_HALF, force=True)
    assert json.loads(out.read_text())["alignment"]["offset_ns"] == AGGR_HALF


AGGR_HALF = 50_000_000


def test_one_source_and_a_truth_is_scored(two_files, tmp_path):
    a, _ = two_files
    base, u = 0x10000000, 65536
    truth = _truth_csv(
        tmp_path, [(base + 10 * u, base + 20 * u, "hot"), (base + 20 * u, base + 40 * u, "cold")]
    )
    out = tmp_path / "t.json"
    res = compare(a, None, truth=truth, out=out)
    want = score_truth(a, truth)
    assert res.metrics == {"truth": {"a": want}}
    written = json.loads(out.read_text())
    assert written.pop("tracedamon")
    assert written == json.loads(metrics_json({"truth": {"a": want}}))


def test_one_source_without_a_truth_is_a_usage_error(two_files):
    a, _ = two_files
    with pytest.raises(ConfigError) as e:
        compare(a, None)
    assert "truth" in str(e.value) and "--truth" not in str(e.value)
    assert "--truth" in e.value.cli_message


def test_cells_go_beside_the_metrics(tmp_path):
    assert cells_path_for(tmp_path / "m.json") == tmp_path / "m.cells.parquet"
    assert cells_path_for("out/run.v2.json").name == "run.v2.cells.parquet"


def test_damos_table_sizes_use_the_one_byte_formatter(capsys):
    """The per-application table's narrow byte columns: one decimal, up to GiB."""
    from tracedamon.cli.damos_table import render_damos_metrics
    from tracedamon.units import format_bytes

    sizes = (512, 1536 * 1024, 3 * 2**30 + 2**29)
    row = {
        "context": 0,
        "scheme": 0,
        "time_a_ns": 0,
        "time_b_ns": 0,
        "dt_ns": 0,
        "bytes_a": sizes[0],
        "bytes_b": sizes[1],
        "bytes_both": sizes[2],
        "jaccard": 0.5,
        "identical": False,
        "paired": True,
    }
    bytes_ = {"a": 1, "b": 1, "both": 1, "either": 1, "only_a": 0, "only_b": 0, "jaccard": 1.0}
    m = {
        "a": {"source": "A"},
        "b": {"source": "B"},
        "applications": {
            "a": 1,
            "b": 1,
            "paired": 1,
            "only_a": 0,
            "only_b": 0,
            "identical": 0,
            "full_overlap": 0,
        },
        "bytes": bytes_,
        "addresses": bytes_,
        "per_application": [row],
    }
    render_damos_metrics(m)
    text = capsys.readouterr().out
    for n, shown in zip(sizes, ("512 B", "1.5 MiB", "3.5 GiB")):
        assert format_bytes(n, 1, largest="GiB") == shown
        assert shown in text


def test_the_in_memory_history_has_its_own_name():
    """export's in-memory history is HistoryFrame (not "History", a name the engine
    uses too); History stays as its deprecated alias for one release."""
    from tracedamon.export import grid, history_frame

    assert history_frame.HistoryFrame is grid.HistoryFrame is grid.History
    assert history_frame.HistoryFrame.__name__ == "HistoryFrame"


def test_cells_true_goes_beside_the_metrics_after_they_are_checked(two_files, tmp_path):
    a, b = two_files
    out = tmp_path / "run.json"
    compare(a, b, out=out, cells=True)
    assert out.is_file() and (tmp_path / "run.cells.parquet").is_file()
    # an output that names a directory is refused as an output (not a crash deriving
    # the cells' name from it), and nothing is written
    with pytest.raises(OutputError):
        compare(a, b, out=tmp_path, cells=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.parquet", "b.parquet", "run.json", "run.cells.parquet"]
    )
