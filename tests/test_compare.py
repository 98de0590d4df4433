"""compare: metrics on constructed region histories with known answers, the
rasteriser against a slow reference, truth scoring against the corpus's own
per-area sanity check, and the real shared runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

import tracedamon
import tracedamon.errors
from tracedamon.errors import InputError, TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.export.compare import (
    compare,
    load_truth,
    score_truth,
    truth_timeline,
    wpearson,
    wspearman,
)
from tracedamon.export.grid import load_history, raster, uniform_bins

from conftest import need_corpus

MiB = 1 << 20
AGGR = 100_000_000  # ns


def history(pattern, *, unit=64 * 1024, aggr=AGGR, t0=0, base=0x10000000, age=None):
    """A region history from a (snapshots × regions) matrix of nr_accesses: region i of
    every snapshot is [base + i*unit, base + (i+1)*unit)."""
    pattern = np.asarray(pattern)
    S, R = pattern.shape
    s = np.repeat(np.arange(S), R)
    i = np.tile(np.arange(R), S)
    df = pd.DataFrame(
        {
            "run": 0,
            "snapshot": s,
            "time_ns": t0 + (s + 1) * aggr,
            "target": 0,
            "pid": None,
            "start": (base + i * unit).astype(np.uint64),
            "end": (base + (i + 1) * unit).astype(np.uint64),
            "nr_accesses": pattern.ravel().astype(np.uint32),
            "age": (np.asarray(age).ravel() if age is not None else s % 5).astype(np.uint32),
            "nr_accesses_bp": None,
        }
    )
    df.attrs["tracedamon"] = {"config": {"sample_us": 5000, "aggr_us": aggr // 1000}}
    return df


def hot_pattern(S=40, R=64, hot=(10, 20), warm=(40, 44), seed=0):
    rng = np.random.default_rng(seed)
    p = np.zeros((S, R), int)
    p[:, hot[0] : hot[1]] = 20
    p[:, warm[0] : warm[1]] = 5
    p += rng.integers(0, 2, size=(S, R))  # some texture so that correlations are defined
    return p


# ---------------------------------------------------------------- rasteriser
def _naive_raster(h, te, bs, be, v):
    S = np.zeros((len(te) - 1, len(bs)))
    C = np.zeros_like(S)
    for r, val in zip(h.df.itertuples(), v):
        t0, t1 = h.snaps.t0[r.snap], h.snaps.t1[r.snap]
        for i in range(len(te) - 1):
            ot = max(0, min(t1, te[i + 1]) - max(t0, te[i]))
            if not ot:
                continue
            for j in range(len(bs)):
                ob = max(0, min(int(r.end), int(be[j])) - max(int(r.start), int(bs[j])))
                S[i, j] += val * ot * ob
                C[i, j] += ot * ob
    return S, C


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_raster_matches_slow_reference(data):
    nsnap = data.draw(st.integers(1, 6))
    rows = []
    t = 0
    for s in range(nsnap):
        t += data.draw(st.integers(1, 300))
        cuts = sorted(set(data.draw(st.lists(st.integers(1, 99), max_size=8))))
        b = [0] + cuts + [100]
        for k in range(len(b) - 1):
            rows.append(
                dict(
                    snapshot=s,
                    time_ns=t,
                    start=b[k] * 7,
                    end=b[k + 1] * 7,
                    nr_accesses=data.draw(st.integers(0, 20)),
                    age=1,
                )
            )
    h = load_history(pd.DataFrame(rows))
    te = np.array(
        sorted(set(data.draw(st.lists(st.integers(-50, 2000), min_size=2, max_size=6)))),
        dtype=np.int64,
    )
    if len(te) < 2:
        return
    segs = np.array([[0, 300], [350, 700]], dtype=np.uint64)
    bs, be = uniform_bins(segs, data.draw(st.integers(1, 120)))
    v = h.df["nr_accesses"].to_numpy()
    (s,), c = raster(h, te, bs, be, [v], chunk_rows=data.draw(st.integers(1, 50)))
    S, C = _naive_raster(h, te, bs, be, v)
    np.testing.assert_allclose(s, S)
    np.testing.assert_allclose(c, C)


def test_weighted_correlations_against_scipy_free_reference():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert wpearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    # integer weights = repeating the observations
    w = rng.integers(1, 4, size=50)
    xr, yr = np.repeat(x, w), np.repeat(y, w)
    assert wpearson(x, y, w) == pytest.approx(np.corrcoef(xr, yr)[0, 1])
    rx = pd.Series(xr).rank().to_numpy()
    ry = pd.Series(yr).rank().to_numpy()
    assert wspearman(x, y, w) == pytest.approx(np.corrcoef(rx, ry)[0, 1])


# ---------------------------------------------------------------- known answers
def test_identical_histories_score_perfectly():
    a = history(hot_pattern())
    r = tracedamon.compare(a, a.copy())
    m = r.metrics
    assert m["heat"]["spearman"] == pytest.approx(1.0)
    assert m["heat"]["pearson"] == pytest.approx(1.0)
    assert m["heat"]["mean_abs_rate_diff"] == 0
    for v in m["hot"].values():
        assert (v["precision"], v["recall"], v["f1"]) == (1.0, 1.0, 1.0)
    assert m["wss"]["mae_bytes"] == 0 and m["wss"]["pearson"] == pytest.approx(1.0)
    assert m["age"]["spearman"] == pytest.approx(1.0) and m["age"]["median_abs_diff_s"] == 0
    assert m["alignment"]["estimate"]["lag_ns"] == 0
    assert m["regions"]["a"]["mean"] == m["regions"]["b"]["mean"] == 64
    assert r.cells["valid"].all() and (r.cells["diff_rate"] == 0).all()


def test_halved_hot_set_gives_known_precision_recall():
    pa_ = np.zeros((20, 64), int)
    pa_[:, 10:20] = 20
    pb = np.zeros((20, 64), int)
    pb[:, 10:15] = 20
    m = compare(history(pa_), history(pb), focus="all").metrics
    h = m["hot"]["0.5"]
    assert h["precision"] == pytest.approx(1.0)
    assert h["recall"] == pytest.approx(0.5)
    assert h["f1"] == pytest.approx(2 / 3)
    # WSS: a has 10 regions of 64 KiB accessed, b 5: the error is 5 × 64 KiB in every bin
    assert m["wss"]["mean_a"] == pytest.approx(10 * 65536)
    assert m["wss"]["mean_b"] == pytest.approx(5 * 65536)
    assert m["wss"]["mae_bytes"] == pytest.approx(5 * 65536)
    assert m["wss"]["relative_error"] == pytest.approx(0.5)
    ser = m["wss_series"]
    assert len(ser["t0_ns"]) == m["wss"]["segments"] == 20  # one per snapshot window
    assert set(ser["a_bytes"]) == {10 * 65536} and set(ser["b_bytes"]) == {5 * 65536}
    # the candidate only misses heat: rate difference -1 on 5 of the 10 regions where
    # either side saw an access (the 54 regions idle on both sides do not count)
    assert m["heat"]["mean_abs_rate_diff"] == pytest.approx(5 / 10)
    assert m["heat"]["active_fraction"] == pytest.approx(10 / 64)


def test_focus_leaves_out_space_neither_side_accessed():
    # 4 accessed regions in a 1024-region space: the idle 0-0 cells are left out
    p = np.zeros((10, 1024), int)
    p[:, 500:504] = 10
    q = p.copy()
    q[:, 502:504] = 0
    a, b = history(p), history(q)
    full = compare(a, b, focus="all").metrics
    foc = compare(a, b).metrics
    assert full["grid"]["idle_bytes_left_out"] == 0
    assert foc["grid"]["idle_bytes_left_out"] > 0.9 * 1024 * 65536
    ranges = foc["grid"]["ranges"][0]["ranges"]
    assert (
        len(ranges) == 1
        and ranges[0][0] <= 0x10000000 + 500 * 65536 < 0x10000000 + 504 * 65536 <= ranges[0][1]
    )
    # the focus shapes only the cells grid: no metric depends on it
    for k in ("heat", "hot", "wss", "age", "per_time", "wss_series"):
        assert foc[k] == full[k]
    assert foc["hot"]["0.5"]["recall"] == pytest.approx(0.5)
    assert foc["wss"]["mae_bytes"] == 2 * 65536
    # rate differences count where either side saw an access: 2 of the 4 regions
    assert foc["heat"]["mean_abs_rate_diff"] == pytest.approx(0.5 * 10 / 20)


def test_address_shift_gives_overlap_fraction():
    pa_ = np.zeros((10, 64), int)
    pa_[:, 10:20] = 10
    pb = np.zeros((10, 64), int)
    pb[:, 13:23] = 10  # shifted by 3 regions: overlap 7 of 10
    h = compare(history(pa_), history(pb)).metrics["hot"]["0.25"]
    assert h["precision"] == pytest.approx(0.7) and h["recall"] == pytest.approx(0.7)


def test_scale_invariance_of_ranks_and_hot_sets():
    p = hot_pattern()
    a = history(p)
    b = history(p * 3)  # e.g. a finer sampling interval: three times the counts
    m = compare(a, b).metrics
    assert m["heat"]["spearman"] == pytest.approx(1.0)
    assert all(v["f1"] == pytest.approx(1.0) for v in m["hot"].values())


def test_degraded_candidate_scores_between():
    rng = np.random.default_rng(5)
    p = hot_pattern()
    q = p.copy()
    noise = rng.random(p.shape) < 0.2
    q[noise] = rng.integers(0, 21, size=noise.sum())
    m = compare(history(p), history(q)).metrics
    assert 0.3 < m["heat"]["spearman"] < 0.99
    assert 0.3 < m["hot"]["0.5"]["f1"] < 1.0


@pytest.mark.parametrize("lag_snapshots", [-4, 3, 7])
def test_known_lag_is_recovered_and_applied(lag_snapshots):
    rng = np.random.default_rng(11)
    S, R = 80, 32
    wave = rng.integers(0, 2, size=S + 20)
    full = np.zeros((S + 20, R), int)
    full[:, 4:12] = 10 * wave[:, None]
    full[:, 20:22] = 3
    a = history(full[10 : 10 + S])
    # b saw the same activity, but its clock reads `lag` later: b(t + lag) = a(t)
    lag_ns = lag_snapshots * AGGR
    b = history(full[10 : 10 + S], t0=lag_ns)
    r = compare(a, b, align="auto")
    est = r.metrics["alignment"]["estimate"]
    assert est["lag_ns"] == -lag_ns
    assert est["correlation"] == pytest.approx(1.0)
    assert r.metrics["alignment"]["applied_offset_ns"] == -lag_ns
    assert r.metrics["heat"]["pearson"] == pytest.approx(1.0)
    # with --offset given exactly, the estimate is 0 and nothing else is applied
    r2 = compare(a, b, offset_ns=-lag_ns)
    assert r2.metrics["alignment"]["estimate"]["lag_ns"] == 0
    # without alignment the shifted series disagree
    r3 = compare(a, b)
    assert r3.metrics["heat"]["pearson"] < 0.9


def test_restricted_to_common_address_range():
    pa_ = hot_pattern(R=64)
    a = history(pa_)
    b = history(pa_[:, 16:], base=0x10000000 + 16 * 65536)  # b covers only the upper 48 regions
    m = compare(a, b).metrics
    assert m["grid"]["common_bytes"] == 48 * 65536
    assert m["grid"]["ranges"][0]["ranges"] == [[0x10000000 + 16 * 65536, 0x10000000 + 64 * 65536]]
    assert m["heat"]["pearson"] == pytest.approx(1.0)


def test_no_overlap_is_a_clear_error():
    a = history(hot_pattern())
    with pytest.raises(InputError, match="no common address range"):
        compare(a, history(hot_pattern(), base=0x90000000))
    with pytest.raises(InputError, match="share no time"):
        compare(a, history(hot_pattern(), t0=10**12), max_lag_ns=0)


def test_missing_columns_and_overlapping_regions_are_format_errors(tmp_path):
    df = history(hot_pattern()).drop(columns=["nr_accesses"])
    with pytest.raises(TraceFormatError, match="missing column"):
        compare(df, df)
    bad = history(hot_pattern(S=2))
    bad.loc[1, "start"] = bad.loc[0, "start"]
    with pytest.raises(TraceFormatError, match="overlap"):
        load_history(bad)


# ---------------------------------------------------------------- truth
def _truth_csv(tmp_path, rows):
    p = tmp_path / "truth.csv"
    p.write_text("start,end,label\n" + "".join(f"{s:#x},{e:#x},{lab}\n" for s, e, lab in rows))
    return p


def test_truth_scoring_on_constructed_history(tmp_path):
    base, u = 0x10000000, 65536
    p = np.zeros((20, 64), int)
    p[:, 10:20] = 20  # hot
    p[:, 40:44] = 5  # warm
    truth = _truth_csv(
        tmp_path,
        [
            (base + 10 * u, base + 20 * u, "hot"),
            (base + 40 * u, base + 44 * u, "warm"),
            (base, base + 10 * u, "cold0"),
            (base + 50 * u, base + 64 * u, "cold2"),
        ],
    )
    s = score_truth(history(p), truth)
    assert s["labels"]["hot"]["mean_nr_accesses"] == pytest.approx(20)
    assert s["labels"]["warm"]["mean_nr_accesses"] == pytest.approx(5)
    assert s["labels"]["cold"]["mean_nr_accesses"] == 0
    assert s["labels"]["hot"]["mean_rate"] == pytest.approx(1.0)  # max = 100 ms / 5 ms = 20
    assert s["areas"]["cold2"]["bytes"] == 14 * u
    assert s["correlation"]["spearman"] == pytest.approx(1.0)
    assert s["hot"]["0.5"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "ref_fraction": pytest.approx(10 / 38),
        "pred_fraction": pytest.approx(10 / 38),
    }
    tl = truth_timeline(history(p), truth)
    assert len(tl) == 20 and (tl["hot_mean_nr_accesses"] == 20).all()


def test_truth_file_errors_name_the_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("start,end,label\n0x1000,0x2000,hot\n0x3000,0x2000,cold\n")
    with pytest.raises(TraceFormatError, match=r"line 3"):
        load_truth(p)
    p.write_text("start,end,label\n0x1000,0x3000,hot\n0x2000,0x4000,cold\n")
    with pytest.raises(TraceFormatError, match=r"line 3: truth ranges overlap"):
        load_truth(p)
    p.write_text("start,end,label\n0x1000,0x3000,lukewarm\n")
    with pytest.raises(TraceFormatError, match="not hot, warm or cold"):
        load_truth(p)
    j = tmp_path / "t.json"
    j.write_text(json.dumps([{"start": 4096, "end": 8192, "label": "hot"}]))
    assert load_truth(j)["label"].tolist() == ["hot"]
    j.write_text("[{")
    with pytest.raises(TraceFormatError):
        load_truth(j)


# ---------------------------------------------------------------- outputs and CLI
def test_cli_compare_writes_json_and_cells(tmp_path):
    from tracedamon.cli import main
    from tracedamon.store.writer import write_table_atomic
    import pyarrow as pa
    from tracedamon.schema import REGIONS

    p = hot_pattern()
    fa, fb = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for f, pat in ((fa, p), (fb, np.where(p > 10, p, 0))):
        write_table_atomic(
            pa.Table.from_pandas(history(pat), schema=REGIONS, preserve_index=False),
            f,
            metadata={"config": {"sample_us": 5000, "aggr_us": 100000}},
        )
    out = tmp_path / "m.json"
    assert main(["compare", str(fa), str(fb), "-o", str(out), "-q"]) == 0
    m = json.loads(out.read_text())
    cells = pq.read_table(tmp_path / "m.cells.parquet").to_pandas()
    assert m["grid"]["cells"] == len(cells)
    assert m["hot"]["0.5"]["f1"] == pytest.approx(1.0)  # b kept exactly the hot region
    assert m["wss"]["mean_b"] < m["wss"]["mean_a"]
    assert main(["compare", str(fa), str(fb), "-o", str(out), "-q"]) == 2  # exists, no --force
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "compare", str(fa), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nope" in r.stderr


# ---------------------------------------------------------------- real runs
RUN1 = ("damon-paddr-run1", "paddr_run1")


def _run1_truth(tmp_path):
    d = need_corpus(*RUN1)
    rows = []
    for line in (d / "ground_truth_pfn_runs.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        area, _v, pfn, n = line.split("\t")
        s = int(pfn, 16) * 4096
        rows.append((s, s + int(n) * 4096, area))
    return _truth_csv(tmp_path, sorted(rows))


def _run1_regions(tmp_path):
    d = need_corpus(*RUN1)
    out = tmp_path / "run1.td"
    ingest([d / "damo_from_perf_data.json_compressed"], out)
    return out


def test_damon_paddr_run1_against_ground_truth(tmp_path):
    truth = _run1_truth(tmp_path)
    td = _run1_regions(tmp_path)
    s = score_truth(td, truth)
    lab = s["labels"]
    assert lab["hot"]["mean_nr_accesses"] > 6 > lab["warm"]["mean_nr_accesses"] > 1
    assert lab["cold"]["mean_nr_accesses"] < 0.5
    assert lab["hot"]["accessed_fraction"] > 0.8 > 0.2 > lab["cold"]["accessed_fraction"]
    assert s["correlation"]["spearman"] > 0.5
    assert s["hot"]["0.5"]["recall"] > 0.9 and s["hot"]["0.5"]["precision"] > 0.9
    # the corpus's own per-snapshot, per-area check (sanity_check.txt, computed by the
    # recording's scripts from the same record) agrees to its printed precision
    tl = truth_timeline(td, truth)
    sc = pd.read_csv(need_corpus(*RUN1, "sanity_check.txt"), sep=r"\s+", comment="#")
    assert len(tl) == len(sc) == 17
    for area in ("hot", "warm", "cold0", "cold1", "cold2"):
        np.testing.assert_allclose(
            tl[f"{area}_mean_nr_accesses"], sc[f"{area}_mean_nr_acc"], atol=0.0051
        )
        np.testing.assert_allclose(
            tl[f"{area}_accessed_fraction"], sc[f"{area}_frac_acc"], atol=0.0051
        )


def test_cli_truth_only(tmp_path):
    from tracedamon.cli import main

    truth = _run1_truth(tmp_path)
    td = _run1_regions(tmp_path)
    out = tmp_path / "s.json"
    assert main(["compare", str(td), "--truth", str(truth), "-o", str(out), "-q"]) == 0
    s = json.loads(out.read_text())["truth"]["a"]
    assert s["labels"]["hot"]["mean_rate"] > 0.6


def test_damon_run1_two_recordings_agree(tmp_path):
    """The same kdamond recorded by two independent sessions (damo's JSON vs the ftrace
    instance) — same regions, different clocks (perf vs monotonic, ~1.19 ms)."""
    d = need_corpus(*RUN1)
    a = _run1_regions(tmp_path)
    b = tmp_path / "ftrace.td"
    ingest([d / "ftrace_trace_pipe.txt.gz"], b)
    r = compare(a, b, align="auto")
    m = r.metrics
    assert abs(m["alignment"]["estimate"]["lag_ns"]) <= m["alignment"]["estimate"]["resolution_ns"]
    assert m["heat"]["spearman"] > 0.95
    assert m["hot"]["0.5"]["f1"] > 0.95


def test_several_targets_are_matched_by_pid():
    p = hot_pattern(S=10, R=16)
    a1, a2 = history(p), history(p[:, ::-1].copy())
    a1["pid"], a2["pid"], a2["target"] = 11, 22, 1
    a = pd.concat([a1, a2], ignore_index=True)
    b = pd.concat([a2.assign(target=0), a1.assign(target=1)], ignore_index=True)  # other order
    r = compare(a, b)
    assert r.metrics["a"]["targets"] == [11, 22]
    assert r.metrics["heat"]["pearson"] == pytest.approx(1.0)
    assert set(r.cells["target_a"]) == {11, 22}
    assert set(r.metrics["regions"]["a"]) == {"11", "22"}
    with pytest.raises(InputError, match="share no monitoring target"):
        compare(a, b.assign(pid=b["pid"] + 1))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_compare_invariants(seed):
    """Self-comparison is perfect; swapping the sides swaps precision and recall."""
    rng = np.random.default_rng(seed)
    S, R = int(rng.integers(3, 12)), int(rng.integers(4, 40))
    p = rng.integers(0, 21, size=(S, R))
    q = np.where(rng.random((S, R)) < 0.3, rng.integers(0, 21, size=(S, R)), p)
    a, b = history(p), history(q)
    m = compare(a, a).metrics
    assert all(v["f1"] in (1.0, None) for v in m["hot"].values())
    assert m["wss"]["mae_bytes"] == 0
    ab, ba = compare(a, b).metrics, compare(b, a).metrics
    for th in ab["hot"]:
        assert ab["hot"][th]["precision"] == ba["hot"][th]["recall"]
        assert ab["hot"][th]["recall"] == ba["hot"][th]["precision"]
    assert ab["wss"]["mae_bytes"] == pytest.approx(ba["wss"]["mae_bytes"])
    if ab["heat"]["spearman"] is not None:
        assert ab["heat"]["spearman"] == pytest.approx(ba["heat"]["spearman"])


def test_corrupt_parquet_is_a_format_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(TraceFormatError, match="bad.parquet"):
        load_history(bad)
    good = tmp_path / "g.parquet"
    history(hot_pattern()).to_parquet(good)
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "compare", str(good), str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 3 and "Traceback" not in r.stderr and "bad.parquet" in r.stderr


def test_alignment_across_unrelated_clocks():
    """b's clock is 1000 s (plus 3 snapshots) ahead, as a wall clock against a monotonic
    one: nothing overlaps until the estimate is applied."""
    rng = np.random.default_rng(2)
    wave = rng.integers(0, 2, size=60)
    p = np.zeros((60, 16), int)
    p[:, 2:6] = 10 * wave[:, None]
    p[:, 9] = 1
    a = history(p)
    b = history(p, t0=10**12 + 3 * AGGR)
    with pytest.raises(InputError, match="share no time"):
        compare(a, b)
    r = compare(a, b, align="auto")
    assert r.metrics["alignment"]["applied_offset_ns"] == -(10**12 + 3 * AGGR)
    assert r.metrics["heat"]["pearson"] == pytest.approx(1.0)
    # a bounded search does not look that far
    with pytest.raises(InputError, match="share no time"):
        compare(a, b, align="auto", max_lag_ns=10 * AGGR)


def test_compare_with_truth_scores_both_sides(tmp_path):
    base, u = 0x10000000, 65536
    p = np.zeros((20, 64), int)
    p[:, 10:20] = 20
    q = np.zeros((20, 64), int)
    q[:, 10:15] = 20  # the candidate misses half of the hot area
    q[:, 30:35] = 20  # and calls a cold area hot
    truth = _truth_csv(
        tmp_path, [(base + 10 * u, base + 20 * u, "hot"), (base + 20 * u, base + 64 * u, "cold")]
    )
    r = compare(history(p), history(q), truth=truth, focus="all")
    ta, tb = r.metrics["truth"]["a"], r.metrics["truth"]["b"]
    assert ta["hot"]["0.5"]["f1"] == 1.0
    assert tb["hot"]["0.5"]["recall"] == pytest.approx(0.5)
    assert tb["hot"]["0.5"]["precision"] == pytest.approx(0.5)
    assert tb["labels"]["cold"]["mean_nr_accesses"] == pytest.approx(20 * 5 / 44)
    text = r.to_json(tmp_path / "m.json")
    assert "NaN" not in text and json.loads(text)["truth"]["b"]["labels"]["hot"]["mean_rate"] == 0.5


def test_metrics_json_has_no_nan(tmp_path):
    p = np.zeros((5, 8), int)  # nothing ever accessed: correlations are undefined
    r = compare(history(p), history(p))
    assert r.metrics["heat"]["spearman"] is None
    json.loads(r.to_json())  # strict JSON


def test_grid_overrides():
    p = hot_pattern(S=20, R=16)
    g = compare(
        history(p), history(p), addr_bin=4 * 4096, time_bin_ns=2 * AGGR, focus="all"
    ).metrics["grid"]
    assert g["address_bin_bytes"] == 16384 and g["address_bins"] == 16 * 65536 // 16384
    assert g["time_bin_ns"] == 2 * AGGR and g["time_bins"] == 10
    with pytest.raises(tracedamon.errors.ConfigError):
        compare(history(p), history(p), addr_bin=0)
    with pytest.raises(tracedamon.errors.ConfigError):
        compare(history(p), history(p), align="sideways")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(1, 60)), min_size=1, max_size=30),
    st.integers(0, 20),
)
def test_merge_intervals_against_a_set_of_points(iv, gap):
    from tracedamon.export.grid import intersect_intervals, merge_intervals

    s = [a for a, _ in iv]
    e = [a + n for a, n in iv]
    m = merge_intervals(s, e, gap=gap)
    pts = set()
    for a, b in zip(s, e):
        pts.update(range(a, b))
    covered = set()
    for a, b in m.tolist():
        covered.update(range(a, b))
    assert pts <= covered
    assert all(
        m[i + 1, 0] > m[i, 1] + gap for i in range(len(m) - 1)
    )  # gaps wider than `gap` remain
    if gap == 0:
        assert covered == pts
        half = merge_intervals([0], [250])
        inter = intersect_intervals(m, half)
        assert {x for a, b in inter.tolist() for x in range(a, b)} == {x for x in pts if x < 250}


def test_truth_csv_variants(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text(
        "# made by hand\n# start\tend\tlabel\n4096\t8192\thot\n# a comment\n8192\t0x3000\tcold1\n"
    )
    t = load_truth(p)
    assert t[["start", "end"]].values.tolist() == [[4096, 8192], [8192, 12288]]
    assert t["label"].tolist() == ["hot", "cold"] and t["area"].tolist() == ["hot", "cold1"]
    p.write_text("4096,8192,hot\n")
    with pytest.raises(TraceFormatError, match="line 1.*no CSV header"):
        load_truth(p)


def test_per_time_agreement_shows_when_b_catches_up():
    p = np.zeros((20, 32), int)
    p[:, 4:8] = 20
    p += (np.arange(32) % 3 == 0)[None, :]  # texture for the correlations
    q = p.copy()
    q[:10, 4:8] = 0  # b finds the hot area only at snapshot 10
    r = compare(history(p), history(q))
    pt = r.per_time
    assert len(pt) == 20
    assert (pt["hot_recall"][:10] == 0).all() and (pt["hot_f1"][10:] == 1.0).all()
    assert (pt["mean_abs_rate_diff"][10:] == 0).all() and (pt["mean_abs_rate_diff"][:10] > 0).all()
    assert json.loads(r.to_json())["per_time"]["hot_f1"] == [None] * 10 + [1.0] * 10
