"""`tracedamon compare` of two damos_apply tables: applications paired by scheme and
time, byte overlaps per application and over the run, on constructed tables whose
figures are worked out by hand, and on the real applications of the paddr run-1
corpus against tracedamon's prediction of them."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from tracedamon import compare
from tracedamon.cli import main
from tracedamon.errors import ConfigError, InputError
from tracedamon.export.damos_compare import compare_damos, is_damos_source, pair_applications
from tracedamon.ingest.writer import TraceDirWriter
from tracedamon.schema import DAMOS_APPLY

S = 1_000_000_000
MS = 1_000_000


def apply_table(rows):
    """damos_apply rows (time_ns, scheme, target, start, end[, nr_accesses, age]);
    nr_accesses defaults to 0, age to 5."""
    rows = [tuple(r) + (0, 5)[len(r) - 5 :] for r in rows]
    cols = list(zip(*rows)) if rows else [[]] * 7
    n = len(rows)
    return pa.table(
        {
            "time_ns": pa.array(cols[0], pa.int64()),
            "kdamond_pid": pa.nulls(n, pa.int32()),
            "cpu": pa.nulls(n, pa.int32()),
            "context": pa.array([0] * n, pa.int32()),
            "scheme": pa.array(cols[1], pa.int32()),
            "target": pa.array(cols[2], pa.int64()),
            "nr_regions": pa.nulls(n, pa.uint32()),
            "start": pa.array(cols[3], pa.uint64()),
            "end": pa.array(cols[4], pa.uint64()),
            "nr_accesses": pa.array(cols[5], pa.uint32()),
            "age": pa.array(cols[6], pa.uint32()),
        },
        schema=DAMOS_APPLY,
    )


# a: two walks of scheme 0; b: the first one shifted and moved, the second one equal but
# 0.4 s later, and a third walk a has no counterpart for
A_ROWS = [
    (1 * S, 0, 0, 0, 100),
    (1 * S + 2 * MS, 0, 0, 200, 300),  # one walk, 2 ms
    (2 * S, 0, 0, 0, 50),
]
B_ROWS = [
    (1 * S + 1 * MS, 0, 0, 50, 250),
    (2 * S + 400 * MS, 0, 0, 0, 50),
    (3 * S + 600 * MS, 0, 0, 1000, 1100),
]


def test_overlaps_by_hand():
    m = compare_damos(apply_table(A_ROWS), apply_table(B_ROWS), window_ns=S).metrics
    per = m["per_application"]
    assert [(p["bytes_a"], p["bytes_b"], p["bytes_both"], p["bytes_either"]) for p in per] == [
        (200, 200, 100, 300),
        (50, 50, 50, 50),
        (0, 100, 0, 100),
    ]
    assert per[0]["jaccard"] == pytest.approx(1 / 3) and per[1]["jaccard"] == 1.0
    assert [p["paired"] for p in per] == [True, True, False]
    assert [p["identical"] for p in per] == [False, True, False]
    # the first walk's time is its last row's: 1 s + 2 ms against b's 1 s + 1 ms
    assert per[0]["dt_ns"] == -1 * MS and per[1]["dt_ns"] == 400 * MS
    assert m["bytes"] == {
        "a": 250,
        "b": 350,
        "both": 150,
        "either": 450,
        "only_a": 100,
        "only_b": 200,
        "jaccard": pytest.approx(1 / 3),
        "b_in_a": pytest.approx(150 / 350),
        "a_in_b": pytest.approx(150 / 250),
    }
    # the address sets, time left out: a [0,100)+[200,300); b [0,250)+[1000,1100)
    ad = m["addresses"]
    assert (ad["a"], ad["b"], ad["both"], ad["either"]) == (200, 350, 150, 400)
    ap = m["applications"]
    assert (
        ap["a"],
        ap["b"],
        ap["paired"],
        ap["only_a"],
        ap["only_b"],
        ap["identical"],
        ap["full_overlap"],
    ) == (2, 3, 2, 0, 1, 1, 1)


def test_a_and_b_swapped_mirror_each_other():
    m1 = compare_damos(apply_table(A_ROWS), apply_table(B_ROWS), window_ns=S).metrics
    m2 = compare_damos(apply_table(B_ROWS), apply_table(A_ROWS), window_ns=S).metrics
    assert m1["bytes"]["only_a"] == m2["bytes"]["only_b"]
    assert m1["bytes"]["both"] == m2["bytes"]["both"]
    assert m1["addresses"]["jaccard"] == m2["addresses"]["jaccard"]


def test_beyond_half_the_window_nothing_pairs():
    # b's second walk 0.4 s late: with a 0.5 s window (tolerance 0.25 s) it is unpaired
    m = compare_damos(apply_table(A_ROWS), apply_table(B_ROWS), window_ns=S // 2).metrics
    assert m["applications"]["paired"] == 1
    assert m["bytes"]["both"] == 100 and m["bytes"]["only_a"] == 150


def test_offset_moves_b():
    m = compare_damos(
        apply_table(A_ROWS), apply_table(B_ROWS), window_ns=S, offset_ns=-400 * MS
    ).metrics
    per = {p["time_a_ns"]: p for p in m["per_application"]}
    assert per[2 * S]["dt_ns"] == 0
    # b's first walk moved 0.4 s earlier is still within 0.5 s of a's
    assert per[1 * S + 2 * MS]["dt_ns"] == -401 * MS


def test_nearest_first_pairing():
    # b at 10.4 s lies within 0.5 s of a at 10.0 s and of a at 10.6 s: nearest wins, and
    # a at 10.0 s stays unpaired rather than taking it
    assert pair_applications([10 * S, 10 * S + 600 * MS], [10 * S + 400 * MS], S // 2) == [(1, 0)]
    assert pair_applications([1, 5, 9], [2, 6, 8], 3) == [(0, 0), (1, 1), (2, 2)]


def test_schemes_and_targets_never_mix():
    a = apply_table([(S, 0, 0, 0, 4096), (S, 1, 0, 0, 4096)])
    b = apply_table([(S, 1, 0, 0, 4096), (S, 0, 1, 0, 4096)])  # scheme 0 on target 1
    m = compare_damos(a, b, window_ns=S).metrics
    s0, s1 = m["per_scheme"]["0/0"], m["per_scheme"]["0/1"]
    assert s1["bytes"]["both"] == 4096 and s1["applications"]["identical"] == 1
    assert s0["bytes"]["both"] == 0 and s0["bytes"]["either"] == 8192
    assert s0["applications"]["paired"] == 1 and s0["applications"]["identical"] == 0
    # over the run: addresses of target 0 and target 1 are different bytes
    assert m["addresses"]["a"] == 4096 and m["addresses"]["b"] == 8192
    assert m["addresses"]["both"] == 4096


def test_recorded_walk_spread_over_milliseconds_is_one_application():
    # the kernel's events of one walk come microseconds to milliseconds apart
    rec = apply_table([(S + k * 300_000, 0, 0, k * 4096, (k + 1) * 4096) for k in range(12)])
    pred = apply_table([(S + 5 * MS, 0, 0, k * 4096, (k + 1) * 4096) for k in range(12)])
    m = compare_damos(rec, pred, window_ns=100 * MS).metrics
    assert m["a"]["applications"] == 1 and m["applications"]["identical"] == 1
    assert m["bytes"]["jaccard"] == 1.0


def test_age_and_nr_accesses_decide_identical():
    a = apply_table([(S, 0, 0, 0, 4096, 0, 12)])
    b = apply_table([(S, 0, 0, 0, 4096, 0, 13)])
    m = compare_damos(a, b, window_ns=S).metrics
    assert m["applications"]["identical"] == 0 and m["applications"]["full_overlap"] == 1


def test_window_unknown_is_one_clear_error():
    with pytest.raises(ConfigError, match="window"):
        compare_damos(apply_table(A_ROWS), apply_table(B_ROWS))


def test_bad_rows_are_named(tmp_path):
    bad = apply_table([(S, 0, 0, 8192, 4096)])
    with pytest.raises(InputError, match="row 0: end 0x1000 is not above start 0x2000"):
        compare_damos(bad, apply_table(A_ROWS), window_ns=S)
    p = tmp_path / "x.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"time_ns": [1]}), p)
    with pytest.raises(InputError, match="missing column"):
        compare_damos(p, apply_table(A_ROWS), window_ns=S)


def _damos_dir(path, rows, aggr_us):
    with TraceDirWriter(path, tables=("damos_apply",)) as w:
        w.write("damos_apply", apply_table(rows))
        w.meta["damos"] = {"context": {"aggr_us": aggr_us}, "schemes": [{}]}
    return path


def test_cli_on_damos_directories_and_api_dispatch(tmp_path, capsys):
    a = _damos_dir(tmp_path / "a.damos", A_ROWS, 1_000_000)
    b = _damos_dir(tmp_path / "b.damos", B_ROWS, 1_000_000)
    assert is_damos_source(a) and not is_damos_source(tmp_path)
    res = compare(a, b)  # the window from the metadata
    assert res.metrics["bytes"]["both"] == 150
    out = tmp_path / "m.json"
    assert main(["compare", str(a), str(b), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Jaccard" in text and "33.3 %" in text
    m = json.loads(out.read_text())
    assert m["tracedamon"]["output"] == "compare metrics"
    assert m["bytes"]["either"] == 450 and m["pairing"]["windows_ns"] == {"0/0": S}
    # refused again without --force, and options of history comparisons are refused
    assert main(["compare", str(a), str(b), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--truth", str(out)]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--truth" in err[0]
