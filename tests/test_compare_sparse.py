"""Sparse histories (rows with nr_accesses 0 left out, as `replay --accessed-only` writes
them) give compare, truth scoring and attribution the same results as the dense history
of the same replay. Real replays of sample_traces/hotcold.perf.data (32 hot pages touched
every 10 ms, 256 cold pages touched once), made sparse as the replay writer does."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tracedamon.export.compare import compare, score_truth, truth_timeline
from tracedamon.export.history import HistoryWarning
from tracedamon.export.truth import attribute_regions, score_areas

from conftest import SAMPLES
from sparse_history import sparse_of, write_regions

BASE = 0x200000000000
PAGE = 4096
RANGE = f"{BASE:#x}-{BASE + (2 << 20):#x}"


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    from tracedamon.pipeline import replay as replay_mod
    from tracedamon.ingest import ingest

    d = tmp_path_factory.mktemp("sparse")
    td = ingest([SAMPLES / "hotcold.perf.data"], d / "hc.td")
    base = dict(ops="fvaddr", ranges=[RANGE], sample_us=5000, aggr_us=100000)
    runs = {
        "fixed": replay_mod.replay(
            td, min_region=4096, max_region=4096, min_nr_regions=512, max_nr_regions=512, **base
        ),
        "adaptive": replay_mod.replay(td, seed=3, **base),
        "abit": replay_mod.replay(td, seed=3, access="abit", **base),
    }
    out = {}
    for name, rh in runs.items():
        dense = rh.df
        assert (dense["nr_accesses"] == 0).any()  # there is something to leave out
        dense.attrs["tracedamon"] = {"replay": dict(rh.metadata)}
        sparse = sparse_of(dense, rh.metadata)
        paths = {}
        for kind, df in (("dense", dense), ("sparse", sparse)):
            p = d / f"{name}.{kind}.parquet"
            write_regions(df, p, row_group_size=997)
            paths[kind] = p
        out[name] = paths
    truth = d / "truth.csv"
    truth.write_text(
        "start,end,label\n"
        f"{BASE:#x},{BASE + 32 * PAGE:#x},hot\n"
        f"{BASE + 32 * PAGE:#x},{BASE + 288 * PAGE:#x},cold\n"
    )
    out["truth"] = truth
    return out


def _same(x, y, path=""):
    """Equal up to the rounding of sums taken in another order."""
    if isinstance(x, dict):
        assert set(x) == set(y), path
        for k in x:
            if k != "source":  # the file's name
                _same(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list):
        assert len(x) == len(y), path
        for i, (u, v) in enumerate(zip(x, y)):
            _same(u, v, f"{path}[{i}]")
    elif isinstance(x, float) and y is not None:
        assert x == pytest.approx(y, rel=1e-12, abs=1e-12), path
    else:
        assert x == y, path


EXACT = (
    "heat",
    "hot",
    "hot_max_nr_accesses",
    "wss",
    "wss_series",
    "per_time",
    "compared",
    "alignment",
)


@pytest.mark.parametrize("pair", [("fixed", "adaptive"), ("adaptive", "abit"), ("fixed", "abit")])
def test_compare_sparse_equals_dense(replays, pair):
    a, b = pair
    dense = compare(replays[a]["dense"], replays[b]["dense"], truth=replays["truth"])
    sparse = compare(replays[a]["sparse"], replays[b]["sparse"], truth=replays["truth"])
    mixed = compare(replays[a]["sparse"], replays[b]["dense"])
    for k in EXACT:
        _same(sparse.metrics[k], dense.metrics[k], k)
        _same(mixed.metrics[k], dense.metrics[k], k)
    _same(sparse.metrics["truth"], dense.metrics["truth"], "truth")
    assert sparse.metrics["a"]["sparse"] and not dense.metrics["a"]["sparse"]
    # the cells: heat, accessed fraction and coverage equal; age only where recorded
    cd, cs = dense.cells, sparse.cells
    for c in ("heat_a", "heat_b", "accessed_a", "accessed_b", "cover_a", "cover_b", "valid"):
        np.testing.assert_allclose(cs[c].astype(float), cd[c].astype(float), rtol=1e-12)
    # the ages of idle bytes are not in a sparse file: age figures cover less of it
    assert sparse.metrics["age"]["known_fraction"] < dense.metrics["age"]["known_fraction"] == 1
    # region counts: a sparse history counts only the regions with accesses, and says so
    assert sparse.metrics["regions"]["a"]["counted"].startswith("regions with accesses")


def test_truth_scoring_sparse_equals_dense(replays):
    for name in ("fixed", "adaptive", "abit"):
        d = score_truth(replays[name]["dense"], replays["truth"])
        s = score_truth(replays[name]["sparse"], replays["truth"])
        _same(s, d)
        # the cold pages, touched once: hardly accessed over the run (an accessed-only
        # file without its idle bytes would say 100 %)
        assert d["labels"]["cold"]["accessed_fraction"] < 0.2
        assert d["labels"]["hot"]["accessed_fraction"] > 0.5
        td, ts = (truth_timeline(replays[name][k], replays["truth"]) for k in ("dense", "sparse"))
        pd.testing.assert_frame_equal(ts, td, rtol=1e-12)


def test_cli_truth_only_on_a_sparse_replay(replays, tmp_path):
    from tracedamon.cli import main

    got = {}
    for kind in ("dense", "sparse"):
        out = tmp_path / f"{kind}.json"
        assert (
            main(
                [
                    "compare",
                    str(replays["fixed"][kind]),
                    "--truth",
                    str(replays["truth"]),
                    "-o",
                    str(out),
                    "-q",
                ]
            )
            == 0
        )
        got[kind] = json.loads(out.read_text())["truth"]["a"]
    _same(got["sparse"], got["dense"])
    cold = got["dense"]["labels"]["cold"]
    assert cold["accessed_fraction"] < 0.2 and cold["mean_nr_accesses"] < 0.2


def test_score_areas_and_attribution_sparse_equal_dense(replays):
    truth = pd.DataFrame(
        {
            "label": ["hot", "cold"],
            "start": [BASE, BASE + 32 * PAGE],
            "end": [BASE + 32 * PAGE, BASE + 288 * PAGE],
        }
    )
    d = score_areas(replays["fixed"]["dense"], truth)
    s = score_areas(replays["fixed"]["sparse"], truth)
    pd.testing.assert_frame_equal(s, d, check_dtype=False)
    assert (d["covered_fraction"] == 1).all()
    # attribution: a pagemap that maps the whole area to pid 5 (frames = addresses)
    pm = pd.DataFrame(
        {
            "snapshot": [0],
            "time_ns": [0],
            "pid": [5],
            "vaddr_start": [BASE],
            "vaddr_end": [BASE + (2 << 20)],
            "pfn_start": [BASE // PAGE],
            "flags": [1],
        }
    )
    per = {}
    for kind in ("dense", "sparse"):
        att = attribute_regions(replays["fixed"][kind], pm)
        per[kind] = (
            att.groupby("pid")["bytes"].sum().to_dict(),
            att[att["nr_accesses"] > 0].groupby("pid")["bytes"].sum().to_dict(),
        )
    assert per["sparse"] == per["dense"]


def test_older_sparse_file_warns(replays, tmp_path):
    sp = pd.read_parquet(replays["fixed"]["sparse"])
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_metadata(replays["fixed"]["sparse"]).metadata[b"tracedamon"])
    del meta["replay"]["coverage"], meta["replay"]["sparse"]
    sp.attrs["tracedamon"] = meta
    p = tmp_path / "old.parquet"
    write_regions(sp, p)
    with pytest.warns(HistoryWarning, match="idle bytes outside every region ever accessed"):
        s = score_truth(p, replays["truth"])
    # every cold page was touched once, so the union of the rows covers the area: the
    # older file scores as the dense one
    d = score_truth(replays["fixed"]["dense"], replays["truth"])
    assert s["labels"]["cold"]["accessed_fraction"] == pytest.approx(
        d["labels"]["cold"]["accessed_fraction"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_truth(replays["fixed"]["sparse"], replays["truth"])


def test_cells_and_lag_from_the_sweep_equal_their_own_passes(replays):
    """The cells grid and the lag series gathered while the sweep reads the data equal
    what separate passes over the sources give."""
    from tracedamon.export.compare import estimate_lag
    from tracedamon.export.history import open_history

    a, b = replays["adaptive"]["dense"], replays["abit"]["sparse"]
    eager = compare(a, b, cells=True)
    lazy = compare(a, b)
    assert lazy._cells is None
    pd.testing.assert_frame_equal(eager.cells, lazy.cells)
    g = eager.metrics["grid"]
    ranges = [np.array(r["ranges"], np.uint64).reshape(-1, 2) for r in g["ranges"]]
    pairs = [(r["target_a"], r["target_b"]) for r in g["ranges"]]
    own = estimate_lag(open_history(a), open_history(b), pairs, ranges)
    assert own == eager.metrics["alignment"]["estimate"]
    # --align auto estimates first, then compares with the lag applied
    auto = compare(a, b, align="auto")
    assert auto.metrics["alignment"]["estimate"] == own
    assert auto.metrics["alignment"]["applied_offset_ns"] == own["lag_ns"]
