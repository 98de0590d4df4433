"""Every report and the damo export read a sparse history (accessed regions only, the
rest "monitored and idle") exactly as the dense history it was cut from: a real fixed
4 KiB replay of sample_traces/hotcold.perf.data, written dense and sparse, and random
hand-made histories with idle snapshots and coverage changes."""

from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tracedamon.export.access_report import access_report, summary
from tracedamon.export.heatmap import diff_heatmap, region_heatmap
from tracedamon.export.wss import wss_series
from tracedamon.schema import METADATA_KEY

from conftest import SAMPLES as SAMPLE_DIR
from sparse_history import dense_history, sparse_of, write_regions
from test_damo_export import damo, requires_damo

AREA = (0x200000000000, 0x200000200000)  # hotcold's 288 pages and idle room after them


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(dense.parquet, sparse.parquet) of one fixed 4 KiB fvaddr replay."""
    import tracedamon
    from tracedamon.ingest import ingest

    d = tmp_path_factory.mktemp("sparse")
    td = d / "hc.td"
    ingest([SAMPLE_DIR / "hotcold.perf.data"], td)
    hist = tracedamon.replay(
        td,
        ops="fvaddr",
        ranges=[f"{AREA[0]:#x}-{AREA[1]:#x}"],
        sample_us=10000,
        min_region=4096,
        max_region=4096,
    )
    dense = hist.table.to_pandas()
    rmeta = dict(hist.metadata)
    rmeta = {k: v for k, v in rmeta.items() if k not in ("accessed_only", "sparse", "coverage")}
    dense.attrs["tracedamon"] = {"replay": dict(rmeta, accessed_only=False, sparse=False)}
    sparse = sparse_of(dense, rmeta)
    assert 0 < len(sparse) < len(dense) / 5  # most of the 512 regions are idle
    fd, fs = d / "dense.parquet", d / "sparse.parquet"
    write_regions(dense, fd)
    write_regions(sparse, fs)
    return fd, fs


def test_wss_of_sparse_equals_dense(pair):
    d, s = (wss_series(f) for f in pair)
    cols = [c for c in d.columns if c != "nr_regions"]
    pd.testing.assert_frame_equal(d[cols], s[cols])
    assert (d["wss_bytes"] > 0).all() and (d["total_bytes"] == AREA[1] - AREA[0]).all()
    # region counts: the sparse file records only the accessed regions
    assert (s["nr_regions"] < d["nr_regions"]).all()


def test_access_report_of_sparse_equals_dense(pair):
    d, s = (access_report(f, ps=range(0, 101, 5)) for f in pair)
    assert s.pop("idle_ages") and d.pop("idle_ages") is None
    assert d == s
    assert d["mean_bytes_idle_at_least"]["1s"] > 0  # the cold pages idle for seconds
    # each snapshot alone, too
    for k in (0, 7, 19):
        assert access_report(pair[0], snapshots=[k]) | {"idle_ages": None} == access_report(
            pair[1], snapshots=[k]
        ) | {"idle_ages": None}


def test_summary_of_sparse_equals_dense_except_region_counts(pair):
    d, s = (summary(f) for f in pair)
    for k in (
        "snapshots",
        "targets",
        "time_ns",
        "address_ranges",
        "covered_bytes",
        "nr_accesses",
        "wss_bytes",
        "sample_us",
        "aggr_us",
    ):
        assert d[k] == s[k], k
    assert s["sparse"] and not d["sparse"]
    assert s["regions_per_snapshot"]["mean"] < d["regions_per_snapshot"]["mean"]


def test_heatmap_of_sparse_equals_dense(pair):
    d, s = (region_heatmap(f, time_bins=20, addr_bins=512) for f in pair)
    np.testing.assert_array_equal(d.bin_start, s.bin_start)
    np.testing.assert_array_equal(d.bin_end, s.bin_end)
    np.testing.assert_array_equal(d.matrix, s.matrix)
    assert np.isfinite(s.matrix).all()  # idle bytes are 0, not "no data"
    assert (s.matrix == 0).any()
    z = diff_heatmap(pair[0], pair[1], time_bins=20, addr_bins=512)
    assert (z.matrix[np.isfinite(z.matrix)] == 0).all() and np.isfinite(z.matrix).all()


def test_damo_compatible_heatmap_of_sparse_equals_dense(pair):
    from tracedamon.export.heatmap import damo_heatmap

    d, s = (damo_heatmap(f, time_bins=25, addr_bins=128) for f in pair)
    np.testing.assert_array_equal(d.t_edges, s.t_edges)
    np.testing.assert_array_equal(d.matrix, s.matrix)


def _per_page(recs):
    out = {}
    for rec in recs:
        for k, snap in enumerate(rec["snapshots"]):
            for r in snap["regions"]:
                for p in range(int(r["start"]), int(r["end"]), 4096):
                    out[(k, p)] = (r["nr_accesses"]["samples"], r["age"]["aggr_intervals"])
    return out


def test_damo_export_of_sparse_lists_every_byte_with_the_dense_ages(pair, tmp_path):
    from tracedamon.export.damo_export import export_damo

    out = {}
    for name, f in zip(("dense", "sparse"), pair):
        s = export_damo(f, tmp_path / f"{name}.data")
        out[name] = json.loads(zlib.decompress((tmp_path / f"{name}.data").read_bytes()))
        assert s["snapshots"] == 20
    assert "idle_ages" in s
    d, sp = out["dense"], out["sparse"]
    assert [x["total_bytes"] for x in d[0]["snapshots"]] == [
        x["total_bytes"] for x in sp[0]["snapshots"]
    ]
    assert [(x["start_time"], x["end_time"]) for x in d[0]["snapshots"]] == [
        (x["start_time"], x["end_time"]) for x in sp[0]["snapshots"]
    ]
    pd_, ps_ = _per_page(d), _per_page(sp)
    assert len(pd_) == 20 * 512 and pd_ == ps_  # nr_accesses and age of every page


@requires_damo
def test_damo_reads_the_sparse_export_as_the_dense_one(pair, tmp_path):
    from tracedamon.export.damo_export import export_damo

    files = []
    for name, f in zip(("dense", "sparse"), pair):
        export_damo(f, tmp_path / f"{name}.data")
        files.append(str(tmp_path / f"{name}.data"))
    wss = [
        damo("report", "wss", "--input", f, "--exclude_samples", "0", "--raw_number") for f in files
    ]
    assert wss[0] == wss[1] and "avr" in wss[0]
    for style in ("temperature-percentiles", "recency-percentiles"):
        got = [
            damo(
                "report",
                "access",
                "--input",
                f,
                "--style",
                style,
                "--raw_number",
                "--snapshot_idx",
                "12",
                "12",
            )
            for f in files
        ]
        rows = [re.findall(r"^\s*\d+\s+-?\d+\s+\|.*$", g, re.M) for g in got]
        assert rows[0] and rows[0] == rows[1]


@pytest.mark.parametrize("seed", range(6))
def test_hand_made_sparse_histories_read_as_dense(seed, tmp_path):
    """Idle snapshots (no row at all in the sparse file) and a coverage change."""
    rng = np.random.default_rng(seed)
    dense, meta = dense_history(rng, n_snap=9, targets=(0, 1), idle_snapshots=(3,), change_at=5)
    sparse = sparse_of(dense, meta)
    fd, fs = tmp_path / "d.parquet", tmp_path / "s.parquet"
    write_regions(dense, fd)
    write_regions(sparse, fs)
    d, s = wss_series(fd), wss_series(fs)
    cols = ["t0_ns", "time_ns", "wss_bytes", "total_bytes"]
    pd.testing.assert_frame_equal(d[cols], s[cols])
    a, b = summary(fd), summary(fs)
    for k in ("snapshots", "address_ranges", "covered_bytes", "nr_accesses", "wss_bytes"):
        assert a[k] == b[k], k
    for t in (0, 1):
        hd = region_heatmap(fd, target=t, time_bins=9, addr_bins=64, collapse="gaps")
        hs = region_heatmap(fs, target=t, time_bins=9, addr_bins=64, collapse="gaps")
        np.testing.assert_array_equal(hd.matrix, hs.matrix)
    # ages of idle bytes are derived, so only the byte counts compare here
    ra, rb = access_report(fd), access_report(fs)
    assert ra["mean_accessed_bytes"] == rb["mean_accessed_bytes"]
    assert ra["mean_total_bytes"] == rb["mean_total_bytes"]


def test_the_size_weight_is_refused_on_a_sparse_history(pair):
    from tracedamon.errors import ConfigError

    with pytest.raises(ConfigError, match="size weight"):
        access_report(pair[1], weights=(1, 100, 100))
    access_report(pair[0], weights=(1, 100, 100))


def test_cli_on_an_old_accessed_only_file_warns_in_one_line(pair, tmp_path, capsys):
    """Written by an older tracedamon: accessed_only, no coverage."""
    from tracedamon.cli import main

    t = pq.read_table(pair[1])
    meta = json.loads(t.schema.metadata[METADATA_KEY])
    meta["replay"].pop("coverage")
    meta["replay"].pop("sparse")
    old = tmp_path / "old.parquet"
    pq.write_table(t.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), old)
    for cmd in (
        ["report", "summary", str(old)],
        ["report", "wss", str(old)],
        ["report", "access", str(old)],
        ["report", "heatmap", str(old)],
        ["export", "damo", str(old), "-o", str(tmp_path / "o.data")],
    ):
        assert main(cmd) == 0, cmd
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln]
        assert len(lines) == 1 and lines[0].startswith("tracedamon: warning: "), (cmd, err)
        assert "idle bytes outside every region ever accessed are unknown" in lines[0]
