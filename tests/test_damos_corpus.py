"""`tracedamon damos` against the 792 real damos_before_apply events of the paddr run-1
corpus (kernel 6.18.44, the scheme of its sysfs dump): every application is reproduced
region for region, and the kdamond restart starts a fresh scheme state."""

from __future__ import annotations

import pytest

from conftest import need_corpus
from tracedamon import ingest, open_trace
from tracedamon.pipeline.damos import damos
from tracedamon.pipeline.schemes import load_schemes

MIB = 1 << 20


@pytest.fixture(scope="module")
def run1():
    return need_corpus("damon-paddr-run1", "paddr_run1")


@pytest.fixture(scope="module")
def td(run1, tmp_path_factory):
    out = tmp_path_factory.mktemp("damos") / "run1.td"
    ingest(run1 / "ftrace_trace_pipe.txt.gz", out)
    return out


@pytest.fixture(scope="module")
def result(td, run1):
    return damos(td, [run1 / "kdamond_sysfs_before.txt"], resume="auto", check=True)


def test_every_application_reproduced(result):
    c = result.check
    assert c["recorded"] == 17 and c["rows_recorded"] == 792
    assert c["matched_after_first"] == c["recorded_after_first"] == 16
    assert c["matched"] == 17 and c["rows_matched"] == 792
    assert c["predicted"] == 17 and c["predicted_only"] == 0


def test_rows_equal_recorded_events_including_nr_regions(result, td):
    rec = open_trace(td).df("damos_apply")
    got = result.applications.to_pandas()
    for col in ("start", "end", "nr_accesses", "age", "nr_regions", "scheme", "target"):
        assert (got[col].to_numpy() == rec[col].to_numpy()).all(), col


def test_quota_exhausting_applications(result):
    # spec §9.3: two applications charge exactly 128 MiB, the last line one region more
    a = result.applications.to_pandas()
    full = []
    for t, g in a.groupby("time_ns"):
        if int((g.end - g.start).sum()) == 128 * MIB:
            full.append(t)
            assert int(g.nr_regions.iloc[-1]) == int(g.nr_regions.iloc[0]) + 1
            assert (g.nr_accesses == 0).all()
    assert len(full) == 2
    st = result.stats.to_pandas()
    run0 = st[st.run == 0].reset_index(drop=True)
    # an exhausted window is counted when the next one opens (every application here)
    k1, k2 = (int(run0.index[run0.time_ns == t][0]) for t in full)
    expect = [0] * (k1 + 1) + [1] * (k2 - k1) + [2] * (len(run0) - k2 - 1)
    assert run0.qt_exceeds.tolist() == expect
    assert (run0.esz == 128 * MIB).all()
    assert int(run0.sz_tried.iloc[-1]) == int((a.end - a.start).sum())


def test_restart_is_a_new_run_with_fresh_state(result):
    st = result.stats.to_pandas()
    assert sorted(st.run.unique()) == [0, 1]
    r1 = st[st.run == 1]
    assert len(r1) == 8  # due at each of its 8 snapshots
    assert (r1.nr_tried == 0).all() and (r1.qt_exceeds == 0).all()
    assert int(st[st.run == 0].qt_exceeds.max()) > 0  # run 0's count did not carry
    assert (result.applications.to_pandas().time_ns < 500e9).all()


def test_damo_kdamonds_json_gives_the_same_scheme_and_result(td, run1):
    a = load_schemes(run1 / "kdamond_sysfs_before.txt")
    b = load_schemes(run1 / "damo_record.data.kdamonds")
    assert a.schemes[0].replace(name="") == b.schemes[0].replace(name="")
    assert a.monitoring == b.monitoring
    r = damos(td, [run1 / "damo_record.data.kdamonds"], resume="auto", check=True)
    assert r.check["matched"] == 17


@pytest.mark.parametrize("kernel", ["released-nofix", "mainline-2026"])
def test_other_profiles(td, run1, kernel):
    # run 1 cannot tell the resume fix apart: after both quota-exhausting applications
    # the region at the resume address straddles it and both variants split it at the
    # same page (and the region is too young to be paged out)
    r = damos(td, [run1 / "kdamond_sysfs_before.txt"], resume="auto", check=True, kernel=kernel)
    assert r.check["matched"] == 17
    assert r.metadata["kernel"] == kernel


def test_without_reconstruction_the_check_fails(td, run1, monkeypatch):
    # the snapshot after an application shows its effects: without undoing them the
    # applied regions are age 0 and nothing would be predicted there
    import tracedamon.pipeline.damos as dr

    monkeypatch.setattr(dr, "undo_recorded", lambda rows, *a, **k: rows)
    r = dr.damos(td, [run1 / "kdamond_sysfs_before.txt"], resume="auto", check=True)
    assert r.check["matched"] == 0 and r.check["rows_matched"] == 0


def test_compare_recorded_with_predicted_applications(result, td, tmp_path):
    # tracedamon compare of the kernel's damos_apply with the prediction written by
    # tracedamon damos: every one of the 17 walks pairs with its prediction, row for
    # row, at 100 % byte overlap; the prediction carries the time of the snapshot the
    # kernel emitted right after its events
    from tracedamon import compare

    out = result.to_dir(tmp_path / "run1.damos")
    m = compare(td, out).metrics
    ap = m["applications"]
    assert (ap["a"], ap["b"], ap["paired"], ap["identical"], ap["full_overlap"]) == (
        17,
        17,
        17,
        17,
        17,
    )
    assert m["bytes"]["jaccard"] == 1.0 and m["bytes"]["only_a"] == m["bytes"]["only_b"] == 0
    rec = open_trace(td).df("damos_apply")
    assert m["bytes"]["a"] == int((rec.end - rec.start).sum())  # 760.1 MiB in 792 rows
    assert all(0 < p["dt_ns"] < 1_000_000 for p in m["per_application"])
    assert sum(p["bytes_a"] == 128 * MIB for p in m["per_application"]) == 2
