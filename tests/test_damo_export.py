"""damo record export, checked by the installed damo 3.4.3 reading what we wrote:
`damo report access`, `damo report heatmap --output raw` and `damo report wss`
numbers against our own table and our own rasteriser."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tracedamon.errors import ConfigError
from tracedamon.export.damo_export import damo_records, export_damo
from tracedamon.export.grid import load_history, raster
from tracedamon.export.wss import wss_report

from conftest import ROOT, need_corpus, requires

DAMO = ROOT / ".venv" / "bin" / "damo"
if not DAMO.exists():
    DAMO = Path(shutil.which("damo") or "/nonexistent")
requires_damo = requires(
    DAMO.exists() and shutil.which("file") is not None,
    "damo (and `file`, which damo uses) not installed",
)

SAMPLE_US, AGGR_US = 5000, 100000


def random_history(seed=0, S=25, base=1 << 32, span=64 << 20, zero_first_age=True):
    """Random region boundaries (page aligned) and random nr_accesses/ages per snapshot."""
    rng = np.random.default_rng(seed)
    rows = []
    t = 10**12
    for s in range(S):
        t += AGGR_US * 1000 + int(rng.integers(-3000, 3000)) * 1000  # jitter like real kdamonds
        n = int(rng.integers(5, 40))
        cuts = np.sort(rng.choice(np.arange(1, span // 4096), size=n - 1, replace=False)) * 4096
        b = np.concatenate([[0], cuts, [span]]) + base
        for i in range(n):
            rows.append(
                (
                    0,
                    s,
                    t,
                    0,
                    b[i],
                    b[i + 1],
                    int(rng.integers(0, 21)),
                    0 if (s == 0 and zero_first_age) else int(rng.integers(0, 30)),
                )
            )
    df = pd.DataFrame(
        rows, columns=["run", "snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age"]
    )
    df.attrs["tracedamon"] = {"intervals": {"sample_us": SAMPLE_US, "aggr_us": AGGR_US}}
    return df


def damo(*args) -> str:
    r = subprocess.run([str(DAMO), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_record_layout_is_zlib_json_with_raw_numbers(tmp_path):
    df = random_history(S=3)
    s = export_damo(df, tmp_path / "r.data")
    assert s["intervals"] == {"sample_us": SAMPLE_US, "aggr_us": AGGR_US, "ops_update_us": 60000000}
    recs = json.loads(zlib.decompress((tmp_path / "r.data").read_bytes()))
    assert len(recs) == 1 and recs[0]["target_id"] == 0
    snaps = recs[0]["snapshots"]
    assert len(snaps) == 3
    # snapshot windows chain: each starts where the previous ended
    assert [int(x["start_time"]) for x in snaps[1:]] == [int(x["end_time"]) for x in snaps[:-1]]
    # the first window is the mean snapshot spacing (damo's own estimate)
    ends = [int(x["end_time"]) for x in snaps]
    assert int(snaps[0]["start_time"]) == math.floor(
        ends[0] - (ends[-1] - ends[0]) / (len(ends) - 1)
    )
    r0 = df[df.snapshot == 0]
    assert [int(r["start"]) for r in snaps[0]["regions"]] == r0["start"].tolist()
    assert [r["nr_accesses"]["samples"] for r in snaps[0]["regions"]] == r0["nr_accesses"].tolist()
    assert int(snaps[0]["total_bytes"]) == int((r0["end"] - r0["start"]).sum())


def test_estimated_intervals_are_reported(tmp_path):
    df = random_history(S=4)
    df.attrs = {}
    s = export_damo(df, tmp_path / "r.data")
    assert s["estimated"] is True
    assert s["intervals"]["aggr_us"] == pytest.approx(AGGR_US, rel=0.05)
    assert s["intervals"]["sample_us"] == pytest.approx(AGGR_US / 20, rel=0.1)
    s = export_damo(df, tmp_path / "r2.data", sample_us=1000, aggr_us=50000)
    assert s["estimated"] is False and s["intervals"]["aggr_us"] == 50000
    with pytest.raises(ConfigError):
        export_damo(df, tmp_path / "r3.data", fmt="pickle")


_ACCESS_RE = re.compile(
    r"^\s*(\d+)\s+addr\s+(\d+)\s+size\s+(\d+)\s+access\s+([\d.]+)\s+age\s+(\d+)"
)


@requires_damo
def test_damo_report_access_reads_our_regions(tmp_path):
    df = random_history()
    out = tmp_path / "r.data"
    export_damo(df, out)
    text = damo("report", "access", "--input", str(out), "--raw_number")
    got = [
        tuple(float(x) for x in m.groups()[1:])
        for m in map(_ACCESS_RE.match, text.splitlines())
        if m
    ]
    assert len(got) == len(df)
    exp = df.sort_values(["snapshot", "start"])
    hz = exp["nr_accesses"].to_numpy() / (AGGR_US / 1e6)  # damo prints access in Hz
    np.testing.assert_array_equal([g[0] for g in got], exp["start"].to_numpy())
    np.testing.assert_array_equal([g[1] for g in got], (exp["end"] - exp["start"]).to_numpy())
    np.testing.assert_allclose([g[2] for g in got], hz, atol=1e-6)
    np.testing.assert_array_equal([g[3] for g in got], exp["age"].to_numpy() * AGGR_US)  # age in us
    assert f"record DAMON intervals: sample {SAMPLE_US}, aggr {AGGR_US}" in text


@requires_damo
def test_damo_heatmap_raw_equals_our_rasteriser(tmp_path):
    """damo's pixel heat = Σ Hz × overlap time × overlap bytes / pixel area; ours is the
    same integral (first-snapshot ages are 0, so damo's age backfill adds nothing)."""
    df = random_history(seed=3)
    out = tmp_path / "r.data"
    export_damo(df, out)
    tres, ares = 20, 32
    text = damo(
        "report", "heatmap", "--input", str(out), "--output", "raw", "--resol", str(tres), str(ares)
    )
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    tt = np.array([int(r[0]) for r in rows])
    aa = np.array([int(r[1]) for r in rows])
    heat = np.array([float(r[2]) for r in rows])
    h = load_history(df)
    t_start, t_end = h.t_start, h.t_end
    a_start, a_end = int(df.start.min()), int(df.end.max())
    tu, au = (t_end - t_start) // tres, (a_end - a_start) // ares
    assert sorted(set(tt)) == [i * tu for i in range(tres)]
    assert sorted(set(aa)) == [j * au for j in range(ares)]
    edges = t_start + np.arange(tres + 1, dtype=np.int64) * tu
    bs = (a_start + np.arange(ares) * au).astype(np.uint64)
    be = bs + np.uint64(au)
    (s,), _ = raster(h, edges, bs, be, [h.df["nr_accesses"].to_numpy()])
    ours = s / (tu * au) / (AGGR_US / 1e6)
    M = np.full((tres, ares), np.nan)
    M[tt // tu, aa // au] = heat
    np.testing.assert_allclose(M, ours, rtol=1e-9, atol=1e-9)


@requires_damo
def test_damo_wss_equals_our_wss(tmp_path):
    df = random_history(seed=4, S=40)
    out = tmp_path / "r.data"
    export_damo(df, out)
    text = damo(
        "report",
        "wss",
        "--input",
        str(out),
        "--exclude_samples",
        "0",
        "--raw_number",
        "-r",
        "0",
        "101",
        "10",
    )
    avr = float(re.search(r"# avr:\s+(\S+)", text).group(1))
    pcts = {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(r"^\s*(\d+)\s+(\d+)\s+\|", text, re.M)
    }
    rep = wss_report(df, ps=range(0, 101, 10))
    assert rep["mean_bytes"] == pytest.approx(avr)
    assert {int(k): v for k, v in rep["percentiles"].items()} == pcts


@requires_damo
def test_corpus_record_round_trip_through_damo(tmp_path):
    """A real DAMON paddr record: ingest, export, and damo prints the same regions as it
    does for the original file."""
    from tracedamon.ingest import ingest

    src = need_corpus("damon-paddr-run1", "paddr_run1", "damo_from_perf_data.json_compressed")
    td = tmp_path / "run1.td"
    ingest([src], td)
    out = tmp_path / "re.data"
    s = export_damo(td, out)
    assert s["estimated"] is False and s["intervals"]["aggr_us"] == 5000000
    ours = damo(
        "report", "access", "--input", str(out), "--raw_number", "--snapshot_idx", "10", "10"
    )
    orig = damo(
        "report", "access", "--input", str(src), "--raw_number", "--snapshot_idx", "10", "10"
    )

    def rows(t):
        return [m.groups() for m in map(_ACCESS_RE.match, t.splitlines()) if m]

    assert len(rows(orig)) > 1000
    assert rows(ours) == rows(orig)


def test_cli_export(tmp_path):
    from tracedamon.cli import main
    import pyarrow as pa
    from tracedamon.store.writer import write_table_atomic
    from tracedamon.schema import REGIONS

    df = random_history(S=3)
    f = tmp_path / "h.parquet"
    write_table_atomic(
        pa.Table.from_pandas(
            df.assign(pid=None, nr_accesses_bp=None), schema=REGIONS, preserve_index=False
        ),
        f,
        metadata={"config": {"sample_us": SAMPLE_US, "aggr_us": AGGR_US}},
    )
    out = tmp_path / "o.data"
    assert main(["export", "damo", str(f), "-o", str(out)]) == 0
    recs, _ = damo_records(f)
    assert _unmarked(json.loads(zlib.decompress(out.read_bytes()))) == recs
    assert main(["export", "damo", str(f), "-o", str(out)]) == 2  # refuses to overwrite
    assert main(["export", "damo", str(f), "-o", str(out), "--force", "--format", "json"]) == 0
    assert _unmarked(json.loads(out.read_text())) == recs


def _unmarked(records):
    """The records without the member by which tracedamon recognises its own export."""
    assert all(r["tracedamon"]["output"] == "damo record" for r in records)
    return [{k: v for k, v in r.items() if k != "tracedamon"} for r in records]


@requires_damo
@pytest.mark.parametrize(
    "style,key", [("temperature-percentiles", "temperature"), ("recency-percentiles", "idle_us")]
)
def test_access_percentiles_equal_damo(tmp_path, style, key):
    """`report access` distributions use damo's definitions: per snapshot, the byte
    percentiles of temperature and idle time equal damo's on the exported record."""
    from tracedamon.export.access_report import access_report

    df = random_history(seed=6, S=6)
    out = tmp_path / "r.data"
    export_damo(df, out)
    ps = [0, 1, 25, 50, 75, 99, 100]
    for k in range(6):
        text = damo(
            "report",
            "access",
            "--input",
            str(out),
            "--style",
            style,
            "--raw_number",
            "--snapshot_idx",
            str(k),
            str(k),
        )
        theirs = {
            int(m.group(1)): float(m.group(2))
            for m in re.finditer(r"^\s*(\d+)\s+(-?\d+)\s+\|", text, re.M)
        }
        ours = access_report(df, ps=ps, snapshots=[k])[key]
        assert {p: ours[p] for p in ps} == theirs


def _parse_raw(text):
    rows = [ln.split() for ln in text.splitlines()]
    rows = [r for r in rows if len(r) == 3 and r[0].isdigit()]
    return (
        np.array([int(r[0]) for r in rows]),
        np.array([int(r[1]) for r in rows]),
        np.array([float(r[2]) for r in rows]),
    )


def _as_matrix(hm, tt, aa, hv):
    tu = int(hm.t_edges[1] - hm.t_edges[0])
    au = int(hm.bin_end[0] - hm.bin_start[0])
    assert sorted(set(tt)) == [i * tu for i in range(hm.shape[0])]
    assert sorted(set(aa)) == [j * au for j in range(hm.shape[1])]
    M = np.full(hm.shape, np.nan)
    M[tt // tu, aa // au] = hv
    return M


def test_damo_compatible_heatmap_equals_damos_report_on_the_real_record(tmp_path):
    """The corpus keeps damo's own `report heatmap --output raw --resol 40 80` of the run-1
    record (first snapshot backfilled over ages up to 50 aggregations). Our damo-compatible
    heatmap of the ingested record gives the same 3,200 pixels."""
    from tracedamon.export.heatmap import damo_heatmap
    from tracedamon.ingest import ingest

    d = need_corpus("damon-paddr-run1", "paddr_run1")
    td = tmp_path / "run1.td"
    ingest([d / "damo_from_perf_data.json_compressed"], td)
    hm = damo_heatmap(td, time_bins=40, addr_bins=80)
    tt, aa, hv = _parse_raw((d / "reports" / "report_heatmap_raw.txt").read_text())
    assert len(hv) == 3200
    M = _as_matrix(hm, tt, aa, hv)
    assert np.isnan(M).sum() > 0  # the backfill leaves untouched pixels
    np.testing.assert_array_equal(np.isnan(M), np.isnan(hm.matrix))
    np.testing.assert_allclose(np.nan_to_num(M), np.nan_to_num(hm.matrix), rtol=1e-9, atol=1e-12)


@requires_damo
def test_damo_compatible_heatmap_equals_damo_on_our_export(tmp_path):
    from tracedamon.export.heatmap import damo_heatmap

    df = random_history(seed=9, zero_first_age=False)  # with backfill
    out = tmp_path / "r.data"
    export_damo(df, out)
    text = damo("report", "heatmap", "--input", str(out), "--output", "raw", "--resol", "30", "50")
    hm = damo_heatmap(df, time_bins=30, addr_bins=50)
    M = _as_matrix(hm, *_parse_raw(text))
    # damo marks a pixel it visits with zero overlap (a region ending on its edge) as 0,
    # where we say NaN; everywhere else the values agree
    both = ~np.isnan(M) & ~np.isnan(hm.matrix)
    assert both.sum() > 0.5 * M.size
    assert (np.nan_to_num(M)[np.isnan(hm.matrix)] == 0).all()
    np.testing.assert_allclose(M[both], hm.matrix[both], rtol=1e-9, atol=1e-12)
