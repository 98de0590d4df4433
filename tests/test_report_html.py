"""`tracedamon report html`, the parts checked without a browser: the tile pyramid against
``grid.raster`` (an independent rasteriser), the row chunks against a slow decoder, the page
assembly, and bad input. The page itself is checked in a real Chromium in
test_report_html_browser.py."""

from __future__ import annotations

import base64
import json
import re
import zlib

import numpy as np
import pandas as pd
import pytest

from tracedamon.cli import main
from tracedamon.errors import InputError
from tracedamon.export.grid import load_history, raster
from tracedamon.export.html import build_report
from tracedamon.export.html import tiles as T

from conftest import need_corpus


def random_history(S=30, span=64 << 20, seed=0, base=0x7F0000000000, hole=True):
    """S snapshots of random contiguous regions over [base, base + span) (with a hole in
    the middle when ``hole``), 100 ms apart, nr_accesses 0..20, ages 0..40."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(S):
        n = int(rng.integers(3, 40))
        cuts = np.unique(rng.integers(1, span // 4096, n)) * 4096
        b = np.concatenate([[0], cuts, [span]])
        for a, e in zip(b[:-1], b[1:]):
            rows.append(
                (
                    s,
                    (s + 1) * 100_000_000,
                    base + int(a),
                    base + int(e),
                    int(rng.integers(0, 21)) * int(rng.random() < 0.6),
                    int(rng.integers(0, 40)),
                )
            )
    df = pd.DataFrame(rows, columns=["snapshot", "time_ns", "start", "end", "nr_accesses", "age"])
    if hole:  # an unmapped hole: regions ending inside it are cut, those inside dropped
        lo, hi = base + span // 2, base + span // 2 + (16 << 20)
        df = df[(df["end"] <= lo) | (df["start"] >= hi)].copy()
    df["target"] = 0
    df["pid"] = 42
    df["run"] = 0
    for c in ("start", "end"):
        df[c] = df[c].astype(np.uint64)
    return df.reset_index(drop=True)


def write_history(df, path, *, sample_us=5000, aggr_us=100000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(df, preserve_index=False)
    meta = {"replay": {"config": {"sample_us": sample_us, "aggr_us": aggr_us}}}
    t = t.replace_schema_metadata({b"tracedamon": json.dumps(meta).encode()})
    pq.write_table(t, path)
    return path


# ----------------------------------------------------------------------------------
# varints
# ----------------------------------------------------------------------------------
def test_varint_roundtrip_covers_every_length():
    vals = np.array(
        [0, 1, 127, 128, 255, 16383, 16384, 2**32 - 1, 2**32, 2**52 + 12345, 2**63 - 1], np.uint64
    )
    data = T.varint(vals)
    back, end = T.unvarint(data, len(vals))
    assert end == len(data)
    assert back.tolist() == vals.tolist()
    # lengths: 7 bits a byte
    assert len(T.varint(np.array([127]))) == 1 and len(T.varint(np.array([128]))) == 2


# ----------------------------------------------------------------------------------
# tiles
# ----------------------------------------------------------------------------------
def _space_arrays(df):
    h = load_history(df)
    hk = h.for_key(h.keys[0])
    from tracedamon.export.grid import coverage

    axis = T.Axis.of(coverage(hk))
    st = hk.df["start"].to_numpy(np.uint64)
    en = hk.df["end"].to_numpy(np.uint64)
    x0, x1 = axis.rows_to_x(st, en)
    return h, hk, axis, x0, x1


def _reference_level(hk, axis, grid, i, j):
    """The level's sums and cover by grid.raster over address bins in real addresses: a
    display bin that spans a collapsed gap is the sum of its pieces in each segment."""
    tw, aw = grid.tw_at(i), grid.aw_at(j)
    nt, na = T.TILE << i, T.TILE << j
    edges = grid.T0 + np.arange(nt + 1, dtype=np.int64) * tw
    # pieces: every display bin cut at segment borders, mapped to addresses
    pieces = []
    for k in range(len(axis.start)):
        xs, xe = int(axis.x0[k]), int(axis.x0[k]) + int(axis.end[k] - axis.start[k])
        for jj in range(xs // aw, min(na - 1, (xe - 1) // aw) + 1):
            a, b = max(xs, jj * aw), min(xe, (jj + 1) * aw)
            if b > a:
                pieces.append((int(axis.start[k]) + a - xs, int(axis.start[k]) + b - xs, jj))
    ps = np.array([p[0] for p in pieces], np.uint64)
    pe = np.array([p[1] for p in pieces], np.uint64)
    pj = np.array([p[2] for p in pieces])
    (s,), c = raster(hk, edges, ps, pe, [hk.df["nr_accesses"].to_numpy()])
    S = np.zeros((nt, na))
    C = np.zeros((nt, na))
    np.add.at(S, (slice(None), pj), s)
    np.add.at(C, (slice(None), pj), c)
    return S, C


def test_pyramid_levels_equal_an_independent_raster():
    """GIVEN a random history with a collapsed hole, WHEN the pyramid is built, THEN every
    level's sums and cover equal grid.raster's over the same bins (the diagonal levels are
    rasterised, the coarser ones summed from them: both must be exact)."""
    df = random_history(S=25)
    h, hk, axis, x0, x1 = _space_arrays(df)
    t0s, t1s = hk.snaps["t0"].to_numpy(), hk.snaps["t1"].to_numpy()
    grid = T.Grid(int(t0s.min()), tw=3_000_011, aw=4096, K=2, imax=2, jmax=2)
    pb = T.PyramidBuilder(grid, t0s, t1s)
    snap = hk.df["snap"].to_numpy()
    nr = hk.df["nr_accesses"].to_numpy(float)
    half = len(snap) // 2  # two batches: accumulation over batches
    pb.add(snap[:half], x0[:half], x1[:half], nr[:half])
    pb.add(snap[half:], x0[half:], x1[half:], nr[half:])
    seen = set()
    for i, j, s, c in pb.levels():
        seen.add((i, j))
        S, C = _reference_level(hk, axis, grid, i, j)
        np.testing.assert_allclose(c, C, rtol=1e-9, atol=1e-3)
        np.testing.assert_allclose(s, S, rtol=1e-9, atol=1e-3)
    assert seen == {(i, j) for i in range(3) for j in range(3) if i + j <= 2}


def test_quantize_keeps_never_apart_from_a_little():
    sums = np.array([0.0, 0.0, 1e-9, 5.0, 20.0, 25.0])
    cover = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    q = T.quantize(sums, cover, 20.0)
    assert q.tolist()[:3] == [0, 1, 2]  # uncovered, never accessed, accessed a little
    assert q[4] == 255 and q[5] == 255  # the maximum, and above it
    v = T.dequantize(q, 20.0)
    assert np.isnan(v[0]) and v[1] == 0 and 0 < v[2] <= 20 / 254
    assert abs(v[3] - 5.0) <= 20 / 254


def test_tiles_are_left_out_when_uncovered_and_folded_when_uniform():
    blobs = T.BlobStore()
    q = np.zeros((512, 256), np.uint8)
    q[256:, :] = 1  # tile (1, 0): uniform "never accessed"
    out = T.encode_tiles(q, 1, 0, blobs)
    assert out == {"1,0": -2}
    q[300, 7] = 77
    out = T.encode_tiles(q, 1, 0, blobs)
    assert list(out) == ["1,0"] and out["1,0"] >= 0
    t = np.frombuffer(zlib.decompress(blobs.parts[out["1,0"]]), np.uint8).reshape(256, 256)
    assert t[300 - 256, 7] == 77 and (t == 1).sum() == 256 * 256 - 1


def decode_chunk(data: bytes, chunk, unit):
    """A slow, obvious decoder of a (decompressed) row chunk: the page's format, from
    encode_chunks' docstring."""
    s0, s1, _x0, _x1, n, base, _b = chunk
    counts, p = T.unvarint(data, s1 - s0)
    cols = []
    for _ in range(4):
        c, p = T.unvarint(data, n, p)
        cols.append(c)
    assert p == len(data)
    gap, size, nr, age1 = cols
    rows, r = [], 0
    for k, cnt in enumerate(counts):
        prev = base
        for _ in range(int(cnt)):
            st = prev + int(gap[r]) * unit
            en = st + int(size[r]) * unit
            rows.append((s0 + k, st, en, int(nr[r]), None if age1[r] == 0 else int(age1[r]) - 1))
            prev = en
            r += 1
    return rows


@pytest.mark.parametrize("unit", [4096, 1])
def test_row_chunks_hold_every_row_once(unit):
    df = random_history(S=40, seed=3)
    if unit == 1:
        df.loc[df.index[::7], "end"] = df.loc[df.index[::7], "end"] - np.uint64(3)
        df["age"] = df["age"].astype(float)
        df.loc[df.index[::5], "age"] = np.nan
    h, hk, axis, x0, x1 = _space_arrays(df)
    d = hk.df
    blobs = T.BlobStore()
    chunks = T.encode_chunks(
        d["snap"].to_numpy(),
        d["start"].to_numpy(),
        d["end"].to_numpy(),
        d["nr_accesses"].to_numpy(np.uint64),
        d["age"].to_numpy(float),
        x0,
        len(hk.snaps),
        unit,
        blobs,
        block_rows=97,
        strip_rows=13,
    )
    assert len(chunks) > 10
    got = []
    for c in chunks:
        rows = decode_chunk(zlib.decompress(blobs.parts[c.blob]), c.to_json(), unit)
        assert len(rows) == c.n
        for s, st, en, _nr, _a in rows:  # the index's extents hold the chunk's rows
            assert c.s0 <= s < c.s1
            xs = int(axis.to_x(np.array([st], np.uint64))[0])
            assert c.x0 <= xs and xs + (en - st) <= c.x1
        got += rows
    want = [
        (int(s), int(a), int(b), int(n), None if not np.isfinite(g) else int(g))
        for s, a, b, n, g in zip(d["snap"], d["start"], d["end"], d["nr_accesses"], d["age"])
    ]
    assert sorted(got, key=lambda r: (r[0], r[1])) == want


def test_choose_grid_stops_at_the_data_resolution():
    # 10 snapshots: level 0's 256 time bins are already finer than a snapshot
    g = T.choose_grid(0, 10**9, 1 << 30, 10_000_000, snap_ns=1e8, unit=4096)
    assert g.K == T.MAX_K and g.imax == 0 and g.jmax == g.K
    # 1000 snapshots: time levels down to about half a snapshot
    g = T.choose_grid(0, 10**11, 1 << 30, 10_000_000, snap_ns=1e8, unit=4096)
    assert g.imax == 2 and g.tw_at(2) >= 1e8 / 2 > g.tw_at(3)
    small = T.choose_grid(0, 10**9, 8 * 4096, 100, snap_ns=1e6, unit=4096)
    assert small.jmax == 0  # 8 pages: level 0 already has cells below a page


# ----------------------------------------------------------------------------------
# the page
# ----------------------------------------------------------------------------------
def page_meta(html: str) -> tuple[dict, str]:
    m = re.search(r'<script type="application/json" id="td-meta">(.*?)</script>', html, re.S)
    b = re.search(
        r'<script type="application/octet-stream" id="td-blob">(.*?)</script>', html, re.S
    )
    return json.loads(m.group(1)), b.group(1)


def page_blob(meta, b64, k) -> bytes:
    o, n = meta["blobs"][k]
    return zlib.decompress(base64.b64decode(b64[o : o + n]))


def test_page_is_self_contained_and_its_rows_equal_the_parquet(tmp_path):
    """GIVEN a history file, THEN the page references nothing outside itself, and its
    embedded rows (read back with the slow decoder) equal the Parquet rows."""
    df = random_history(S=12, seed=5)
    src = write_history(df, tmp_path / "h.parquet")
    html = build_report(src).html
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', html)
    assert "http://" not in html.split('id="td-meta"')[0].replace("http-equiv", "")
    meta, b64 = page_meta(html)
    sp = meta["layers"]["a"]["spaces"][0]
    rows = []
    for c in sp["chunks"]:
        rows += decode_chunk(page_blob(meta, b64, c[6]), c, sp["unit"])
    snaps = np.frombuffer(page_blob(meta, b64, sp["snaps_blob"]), np.float64)
    S = sp["snaps"]
    got = sorted((int(snaps[2 * S + s]), st, en, nr, a) for s, st, en, nr, a in rows)
    want = sorted(
        zip(
            df["snapshot"].astype(int),
            df["start"].astype(int),
            df["end"].astype(int),
            df["nr_accesses"].astype(int),
            df["age"].astype(int),
        )
    )
    assert got == want
    # times of each snapshot: t1 is the row's time_ns
    t1 = snaps[S : 2 * S]
    assert sorted(set(t1.astype(int))) == sorted(set(df["time_ns"].astype(int)))


def test_page_markers_are_not_scanned_again(tmp_path):
    """Names and titles holding the template's marker text, or a closing script tag, stay
    text."""
    df = random_history(S=3, seed=1)
    src = write_history(df, tmp_path / "@@BLOB@@ <b>.parquet")
    html = build_report(src, title="@@JS@@ </script><b>").html
    meta, _ = page_meta(html)
    assert meta["layers"]["a"]["info"]["name"] == "@@BLOB@@ <b>.parquet"
    assert meta["title"] == "@@JS@@ </script><b>"
    assert html.count("<script") == 3 and html.count("</script>") == 3


def test_corpus_history_page_is_small(tmp_path):
    """The real 27 k-row paddr run (ftrace capture) gives a page well under 3 MB."""
    src = need_corpus("damon-paddr-run1", "paddr_run1", "ftrace_trace_pipe.txt.gz")
    td = tmp_path / "run1.td"
    assert main(["ingest", str(src), "-o", str(td)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", "html", str(td), "--damos", str(td), "-o", str(out)]) == 0
    assert out.stat().st_size < 3_000_000
    meta, _ = page_meta(out.read_text())
    assert meta["layers"]["a"]["info"]["rows"] == 27198
    assert meta["damos"]["total"] == 792 and meta["damos"]["n"] == 792


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------
def test_empty_history_is_a_one_line_error(tmp_path, capsys):
    df = random_history(S=2).iloc[:0]
    src = write_history(df, tmp_path / "empty.parquet")
    out = tmp_path / "r.html"
    assert main(["report", "html", str(src), "-o", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0] and "empty.parquet" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".r.html*"))


def test_trace_directory_without_regions_is_a_one_line_error(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    td = tmp_path / "s.td"
    td.mkdir()
    (td / "meta.json").write_text("{}")
    pq.write_table(pa.table({"time_ns": pa.array([1, 2], pa.int64())}), td / "samples.parquet")
    out = tmp_path / "r.html"
    assert main(["report", "html", str(td), "-o", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no regions" in err[0]
    assert not out.exists()


def test_samples_without_a_samples_table_is_a_clear_error(tmp_path):
    src = write_history(random_history(S=2), tmp_path / "h.parquet")
    with pytest.raises(InputError, match="no samples table"):
        build_report(src, samples=True)


# ----------------------------------------------------------------------------------
# sparse histories
# ----------------------------------------------------------------------------------
def _tile_codes(meta, b64, sp):
    out = {}
    for lvl, tiles in sp["levels"].items():
        for pos, t in tiles.items():
            out[lvl, pos] = (
                t if t < 0 else np.frombuffer(page_blob(meta, b64, t), np.uint8).tobytes()
            )
    return out


def test_sparse_history_draws_as_its_dense_original(tmp_path):
    """GIVEN a dense history and its accessed-only form (absent rows = nr_accesses 0 inside
    coverage), THEN the page's tiles and working-set series are the same for both."""
    from sparse_history import sparse_of, write_regions

    dense = random_history(S=15, seed=21, hole=True)
    dense.attrs["tracedamon"] = {
        "replay": {"config": {"sample_us": 5000, "aggr_us": 100000}, "accessed_only": False}
    }
    write_regions(dense, tmp_path / "dense.parquet")
    sp = sparse_of(dense, {"config": {"sample_us": 5000, "aggr_us": 100000}})
    assert len(sp) < len(dense)
    write_regions(sp, tmp_path / "sparse.parquet")
    pages = {}
    for name in ("dense", "sparse"):
        rep = build_report(tmp_path / f"{name}.parquet")
        meta, b64 = page_meta(rep.html)
        s = meta["layers"]["a"]["spaces"][0]
        series = np.frombuffer(page_blob(meta, b64, s["series_blob"]), np.float64)
        pages[name] = (meta, s, _tile_codes(meta, b64, s), series, rep.summary["notes"])
    (_md, d, td, serd, nd), (_ms, s_, ts, sers, ns) = pages["dense"], pages["sparse"]
    assert d["segments"] == s_["segments"] and d["grid"] == s_["grid"]
    assert td == ts
    S = d["snaps"]
    np.testing.assert_array_equal(serd[:S], sers[:S])  # working set
    np.testing.assert_array_equal(serd[2 * S :], sers[2 * S :])  # covered bytes
    assert not nd and any("accessed regions only" in n for n in ns)
