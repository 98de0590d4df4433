"""`tracedamon damos` on constructed histories with known answers: the outcome models
(re-accesses of paged-out pages, a two-tier placement), the undoing of recorded DAMOS
effects (a round trip through the walk), bad input and the command line."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracedamon.cli import main
from tracedamon.pipeline.damos_history import subtract_intervals, undo_recorded
from tracedamon.pipeline.damos import damos
from tracedamon.engine.damos import AccessPattern, Context, Quota, Scheme, apply_schemes, new_state
from tracedamon.errors import ConfigError, InputError, TraceFormatError
from tracedamon.store.writer import TraceDirWriter, write_table_atomic
from tracedamon.schema import REGIONS, SAMPLES, conform

MS = 1_000_000
T0 = 1_000_000_000
AGGR_MS = 100
PAGE = 4096


def write_source(d, snapshots, samples, *, ops="vaddr", pid=100):
    """A trace directory ``d`` with ``samples`` [(time_ns, addr)] of ``pid`` and a replay
    output ``d/replay.parquet`` whose snapshot j (at T0 + (j+1)*100 ms) holds the rows
    snapshots[j] = [(start, end, nr_accesses, age)]."""
    n = len(samples)
    t = pa.table(
        {
            "time_ns": pa.array([s[0] for s in samples], pa.int64()),
            "pid": pa.array([pid] * n, pa.int32()),
            "event_id": pa.array([0] * n, pa.int32()),
            "event": pa.array(["mem-loads"] * n).dictionary_encode(),
            "addr": pa.array([s[1] for s in samples], pa.uint64()),
            "period": pa.array([1] * n, pa.uint64()),
            "cpumode": pa.array([3] * n, pa.uint8()),
            "misc": pa.array([0] * n, pa.uint16()),
        }
    )
    with TraceDirWriter(d) as w:
        w.write("samples", conform(t, SAMPLES))
    rows = [
        (j, T0 + (j + 1) * AGGR_MS * MS, s, e, nr, age)
        for j, snap in enumerate(snapshots)
        for s, e, nr, age in snap
    ]
    cols = list(zip(*rows))
    m = len(rows)
    reg = pa.table(
        {
            "run": pa.array([0] * m, pa.int32()),
            "snapshot": pa.array(cols[0], pa.int64()),
            "time_ns": pa.array(cols[1], pa.int64()),
            "target": pa.array([0] * m, pa.int32()),
            "pid": pa.array([pid if ops != "paddr" else None] * m, pa.int32()),
            "start": pa.array(cols[2], pa.uint64()),
            "end": pa.array(cols[3], pa.uint64()),
            "nr_accesses": pa.array(cols[4], pa.uint32()),
            "age": pa.array(cols[5], pa.uint32()),
            "nr_accesses_bp": pa.array([x * 10000 for x in cols[4]], pa.uint32()),
        },
        schema=REGIONS,
    )
    meta = {
        "replay": {
            "ops": ops,
            "config": {"sample_us": 5000, "aggr_us": AGGR_MS * 1000, "min_region": PAGE},
        }
    }
    write_table_atomic(reg, d / "replay.parquet", metadata=meta)
    return d / "replay.parquet"


def scheme_file(tmp_path, name, **kv):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(kv))
    return p


HOT = 0x10000000
COLD = 0x20000000


# -------------------------------------------------------------------------------------
# pageout: a cold area paged out and touched again later
# -------------------------------------------------------------------------------------
@pytest.fixture
def pageout_run(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 20, j), (COLD, COLD + 256 * PAGE, 0, j)] for j in range(10)]
    T = lambda j: T0 + (j + 1) * AGGR_MS * MS  # noqa: E731  snapshot j's time
    samples = [(T0 + k * 5 * MS + 1, HOT + (k % 64) * PAGE) for k in range(200)]
    samples += [(T(3) + 10 * MS, COLD)]  # page 0
    samples += [(T(3) + 20 * MS, COLD + p * PAGE) for p in range(10)]  # 0 again, 1..9
    samples += [(T(6) + 50 * MS, COLD + 5 * PAGE)]  # after 2nd pageout
    samples.sort()
    src = write_source(tmp_path / "po.td", snaps, samples)
    sch = scheme_file(
        tmp_path,
        "cold",
        action="pageout",
        access_pattern={
            "sz_bytes": {"min": "0 B", "max": "max"},
            "nr_accesses": {"min": "0 samples", "max": "0 samples"},
            "age": {"min": "3 aggr_intervals", "max": "max"},
        },
    )
    return damos(src, [sch]), T


def test_pageout_applications_and_age_carry(pageout_run):
    res, T = pageout_run
    a = res.applications.to_pandas()
    # applied at snapshots 3, 6, 9: its own reset makes the area 3 aggregations old again
    assert a.time_ns.tolist() == [T(3), T(6), T(9)]
    assert (a.start == COLD).all() and (a.end == COLD + 256 * PAGE).all()
    assert a.age.tolist() == [3, 3, 3] and (a.nr_accesses == 0).all()
    st_ = res.stats.to_pandas()
    assert st_.nr_tried.iloc[-1] == 3 and st_.sz_applied.iloc[-1] == 3 * 256 * PAGE


def test_pageout_reaccesses_exact(pageout_run):
    res, T = pageout_run
    p = res.metadata["outcome"]["pageout"]
    # pages 0..9 after the first pageout (page 0 twice: one re-access), page 5 after the
    # second; nothing after the third
    assert p["reaccesses"] == 11 and p["reaccess_bytes"] == 11 * PAGE
    assert p["bytes_paged_out"] == 256 * PAGE
    byte_ns = 256 * PAGE * (T(9) - T(3)) - PAGE * (
        (T(6) - T(3) - 10 * MS) + 9 * (T(6) - T(3) - 20 * MS) + (T(9) - T(6) - 50 * MS)
    )
    assert p["saving_gib_s"] == pytest.approx(byte_ns / 1e9 / 2**30, rel=1e-12)
    out = res.outcome.to_pandas()
    po = out[out.model == "pageout"]
    assert int(po.reaccesses.sum()) == 11
    by_t = dict(zip(po.time_ns, po.reaccesses))
    assert by_t[T(4)] == 10 and by_t[T(7)] == 1
    assert dict(zip(po.time_ns, po.bytes_out))[T(4)] == 246 * PAGE
    assert dict(zip(po.time_ns, po.bytes_applied))[T(3)] == 256 * PAGE


# -------------------------------------------------------------------------------------
# two tiers
# -------------------------------------------------------------------------------------
def _tier_schemes(tmp_path):
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
    cold = scheme_file(
        tmp_path,
        "cold",
        action="migrate_cold",
        access_pattern={
            "sz_bytes": {"min": 0, "max": "max"},
            "nr_accesses": {"min": "0 samples", "max": "0 samples"},
            "age": {"min": "2 aggr_intervals", "max": "max"},
        },
    )
    return [cold, hot]


def test_tier_hot_set_larger_than_fast_tier(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 20, j)] for j in range(10)]
    samples = [(T0 + 60 * MS + i * 10 * MS, HOT + p * PAGE) for i in range(95) for p in range(64)]
    src = write_source(tmp_path / "t.td", snaps, samples)
    res = damos(src, _tier_schemes(tmp_path), fast_tier=32 * PAGE, weight="count")
    t = res.metadata["outcome"]["tier"]
    # 64 equally used hot pages, room for 32: half the accesses, whatever the schemes do
    assert t["fast_ratio"] == 0.5 and t["fast_ratio_first_touch"] == 0.5
    assert t["bytes_promoted"] == 0
    assert len(res.applications) == 10  # migrate_hot tried every time


def test_tier_demote_then_promote(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 0, j), (COLD, COLD + 64 * PAGE, 20, j)] for j in range(10)]
    # the cold area (low addresses) is touched first and fills the fast tier
    samples = [(T0 + 1 * MS + p * 10_000, HOT + p * PAGE) for p in range(64)]
    samples += [(T0 + 60 * MS + i * 10 * MS, COLD + p * PAGE) for i in range(95) for p in range(64)]
    src = write_source(tmp_path / "t.td", snaps, samples)
    res = damos(src, _tier_schemes(tmp_path), fast_tier=64 * PAGE, weight="count")
    t = res.metadata["outcome"]["tier"]
    # snapshot 2 (T0 + 300 ms): the cold area is demoted, then the hot one promoted;
    # hot bursts 0..24 (up to and at T0 + 300 ms) were slow, 25..94 fast
    assert t["bytes_demoted"] == 64 * PAGE and t["bytes_promoted"] == 64 * PAGE
    assert t["fast_ratio"] == pytest.approx((64 + 70 * 64) / (64 + 95 * 64))
    assert t["fast_ratio_first_touch"] == pytest.approx(64 / (64 + 95 * 64))


def test_tier_needs_a_size(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 20, j)] for j in range(3)]
    src = write_source(tmp_path / "t.td", snaps, [(T0 + 1, HOT)])
    notes = []
    res = damos(src, _tier_schemes(tmp_path), warn=notes.append)
    assert any("--fast-tier" in n for n in notes)
    assert "tier" not in res.metadata["outcome"]


# -------------------------------------------------------------------------------------
# undoing recorded effects: a round trip through the walk
# -------------------------------------------------------------------------------------
@st.composite
def pre_state(draw):
    n = draw(st.integers(2, 12))
    rows, addr, prev = [], 0, None
    for _ in range(n):
        size = draw(st.sampled_from([1, 2, 3, 5, 8])) * PAGE
        nr, age = draw(st.integers(0, 2)), draw(st.sampled_from([0, 5, 12, 13, 40]))
        if (nr, age) == prev:  # neighbours differ: the boundary is unambiguous
            age += 1
        rows.append((addr, addr + size, nr, age))
        prev = (nr, age)
        addr += size
    return rows


def _arrays(rows):
    a = np.array(rows, np.int64).reshape(len(rows), 4)
    return {
        "target": np.zeros(len(rows), np.int64),
        "start": a[:, 0],
        "end": a[:, 1],
        "nr": a[:, 2],
        "bp": a[:, 2] * 10000,
        "age": a[:, 3],
    }


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(first=pre_state(), second=pre_state(), quota=st.integers(1, 12))
def test_undo_recorded_round_trip(first, second, quota):
    ctx = Context("paddr", 100_000, 1_000_000)
    s = Scheme(
        "pageout",
        AccessPattern(0, 2**64 - 1, 0, 1, 12, 2**32 - 1),
        Quota(sz=quota * PAGE, reset_interval_ms=0, weight_age=1),
    )
    state = new_state([s], ctx)
    prev_end = {}
    for step, rows in enumerate((first, second)):
        pre = _arrays(rows)
        regs = {k: pre[k] for k in ("start", "end", "nr", "bp", "age")}
        regs["toff"] = np.array([0, len(rows)], np.int64)
        res = apply_schemes(state, regs, sis=(step + 1) * 10, now_ns=step * 10**9)
        a = res.applications
        ev = [
            (
                0,
                0,
                int(a["start"][i]),
                int(a["end"][i]),
                int(a["nr_regions"][i]),
                int(a["age"][i]),
                int(a["nr_accesses"][i]),
            )
            for i in range(res.n_applications)
        ]
        post = {
            "target": np.zeros(res.regions["start"].size, np.int64),
            "start": res.regions["start"],
            "end": res.regions["end"],
            "nr": res.regions["nr"],
            "bp": res.regions["bp"],
            "age": res.regions["age"],
        }
        back = undo_recorded(post, ev, prev_end, ctx.min_region, {})
        for k in ("start", "end", "nr", "age"):
            assert back[k].tolist() == pre[k].tolist(), (step, k)
        prev_end = {0: (0, ev[-1][3])} if ev else {}


def test_subtract_intervals():
    s, e = subtract_intervals(
        np.array([0, 100]), np.array([50, 200]), np.array([10, 120, 190]), np.array([20, 130, 300])
    )
    assert list(zip(s.tolist(), e.tolist())) == [(0, 10), (20, 50), (100, 120), (130, 190)]


# -------------------------------------------------------------------------------------
# bad input
# -------------------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 0, j)] for j in range(3)]
    return write_source(tmp_path / "s.td", snaps, [(T0 + 1, HOT)])


def test_unknown_scheme_format(small, tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("action pageout\n")
    with pytest.raises(TraceFormatError, match="unknown scheme file format") as ei:
        damos(small, [p])
    assert str(p) in str(ei.value) and "line 1" in str(ei.value)


def test_bad_json(small, tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"action": "pageout",\n "quotas": }')
    with pytest.raises(TraceFormatError, match="invalid JSON.*") as ei:
        damos(small, [p])
    assert "line 2" in str(ei.value)


def test_out_of_range_sysfs_value(small, tmp_path):
    src = tmp_path / "d.txt"
    from conftest import CORPUS, missing

    dump = CORPUS / "damon-paddr-run1" / "paddr_run1" / "kdamond_sysfs_before.txt"
    if not dump.exists():
        missing("corpus not present")
    src.write_text(dump.read_text().replace("nr_accesses/max:1", "nr_accesses/max:4294967296"))
    with pytest.raises(ConfigError, match="max_nr_accesses = 4294967296 does not fit"):
        damos(small, [src])
    src.write_text(dump.read_text().replace("action:pageout", "action:reclaim"))
    with pytest.raises(ConfigError, match="unknown action 'reclaim'"):
        damos(small, [src])
    src.write_text(dump.read_text().replace("ops_filters/nr_filters:2", "ops_filters/nr_filters:3"))
    with pytest.raises(TraceFormatError, match="nr_filters says 3, but entry 2"):
        damos(small, [src])


def test_ops_filter_without_page_data_is_a_stated_default(small, tmp_path):
    sch = scheme_file(
        tmp_path,
        "f",
        action="pageout",
        filters=[{"filter_type": "anon", "matching": True, "allow": False}],
    )
    notes = []
    damos(small, [sch], warn=notes.append)  # vaddr: madvise, no ops filters
    assert any("evaluates no ops filters" in n for n in notes)
    snaps = [[(HOT, HOT + 64 * PAGE, 0, j)] for j in range(3)]
    small = write_source(tmp_path / "p.td", snaps, [(T0 + 1, HOT)], ops="paddr")
    notes = []
    r = damos(small, [sch], warn=notes.append)
    assert any("no page data" in n and "--unknown-pages pass" in n for n in notes)
    assert r.metadata["ops_model"]["page_data"] is False
    assert r.metadata["ops_model"]["bytes_decided_by_default"] > 0
    # reject: the same applications (the walk does not depend on it), nothing applied
    r2 = damos(small, [sch], unknown_pages="reject")
    assert len(r2.applications) == len(r.applications) > 0
    assert int(r2.stats.column("sz_applied").to_numpy()[-1]) == 0


def test_watermarks_need_a_series(small):
    with pytest.raises(ConfigError, match="free_mem_rate"):
        damos(small, ["reclaim"])
    r = damos(small, ["reclaim:wmarks=none,min_age=100ms"])
    assert r.metadata["schemes"][0]["wmarks"]["metric"] == "none"


def test_check_and_resume_auto_need_recorded_applications(small):
    with pytest.raises(ConfigError, match="no damos_apply"):
        damos(small, ["reclaim:wmarks=none"], check=True)
    with pytest.raises(ConfigError) as ei:
        damos(small, ["reclaim:wmarks=none"], resume="auto")
    assert re.search("--quota-resume auto", ei.value.cli_message)


def test_source_without_regions(tmp_path):
    d = tmp_path / "empty.td"
    with TraceDirWriter(d) as w:
        w.meta["x"] = 1
    with pytest.raises(InputError, match="no regions table"):
        damos(d, ["reclaim:wmarks=none"])


# -------------------------------------------------------------------------------------
# the command line
# -------------------------------------------------------------------------------------
def test_cli_writes_tables_and_refuses_to_overwrite(small, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["damos", str(small), "--scheme", "reclaim:wmarks=none,min_age=100ms", "-o", str(out)]
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "wrote" in cap.out
    from tracedamon import open_trace

    tr = open_trace(out)
    assert tr.tables() == ["damos_apply", "damos_outcome", "damos_stats"]
    assert tr.num_rows("damos_apply") == 2  # snapshots 1 and 2 (age >= 1)
    assert tr.meta["damos"]["kernel"] == "released"
    assert main(args) == 2  # InputError: output exists
    assert "output exists" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0


def test_cli_bad_scheme_is_one_line(small, tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text('{"action": "teleport"}')
    assert main(["damos", str(small), "--scheme", str(p), "-o", str(tmp_path / "o")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown action 'teleport'" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.fixture
def three_regions(tmp_path):
    """Three 32-page regions, old enough for the scheme from the first snapshot on."""
    snaps = [
        [(HOT + k * 32 * PAGE, HOT + (k + 1) * 32 * PAGE, 0, j + 1) for k in range(3)]
        for j in range(3)
    ]
    return write_source(tmp_path / "r.td", snaps, [(T0 + 1, HOT)])


def _damos_cli(src, out, *extra):
    return main(
        ["damos", str(src), "--scheme", "reclaim:wmarks=none,min_age=100ms", "-o", str(out)]
        + list(extra)
    )


def test_cli_quota_resume_sets_the_resume_point(three_regions, tmp_path, capsys):
    """--quota-resume T:ADDR is where the run's first walk of the scheme starts (the
    kernel's damos_skip_charged_region: regions before ADDR are skipped, the one holding
    it is split there), as the API's resume= does."""
    from tracedamon import open_trace

    at = HOT + 48 * PAGE
    assert _damos_cli(three_regions, tmp_path / "n") == 0
    first = open_trace(tmp_path / "n").df("damos_apply").query(f"time_ns == {T0 + 100 * MS}")
    assert first.start.tolist() == [HOT, HOT + 32 * PAGE, HOT + 64 * PAGE]
    assert _damos_cli(three_regions, tmp_path / "q", "--quota-resume", f"0:{at:#x}") == 0
    assert "deprecated" not in capsys.readouterr().err
    tr = open_trace(tmp_path / "q")
    first = tr.df("damos_apply").query(f"time_ns == {T0 + 100 * MS}")
    assert first.start.tolist() == [at, HOT + 64 * PAGE]
    assert first.end.tolist() == [HOT + 64 * PAGE, HOT + 96 * PAGE]
    assert first.nr_regions.tolist() == [4, 4]  # the resume split
    assert tr.meta["damos"]["resume"] == [{"run": 0, "resume": [0, at], "from": "--quota-resume"}]
    api = damos(three_regions, ["reclaim:wmarks=none,min_age=100ms"], resume=f"0:{at:#x}")
    assert api.applications.equals(tr.table("damos_apply"))


def test_cli_resume_is_a_deprecated_spelling_of_quota_resume(three_regions, tmp_path, capsys):
    """damos --resume (which in `tracedamon sweep` continues a sweep) still works for one
    release, with a one-line deprecation warning, and means --quota-resume."""
    from tracedamon import open_trace

    at = HOT + 32 * PAGE
    assert _damos_cli(three_regions, tmp_path / "q", "--quota-resume", f"0:{at:#x}", "-q") == 0
    assert capsys.readouterr().err == ""
    assert _damos_cli(three_regions, tmp_path / "r", "--resume", f"0:{at:#x}", "-q") == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--resume is deprecated" in err[0] and "--quota-resume" in err[0]
    assert (
        open_trace(tmp_path / "r")
        .table("damos_apply")
        .equals(open_trace(tmp_path / "q").table("damos_apply"))
    )
    # both spellings with different values: refused in one line, nothing written
    assert (
        _damos_cli(three_regions, tmp_path / "b", "--quota-resume", "auto", "--resume", "0:0") == 4
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "give --quota-resume only" in err[1]
    assert not (tmp_path / "b").exists()


def test_cli_help_names_quota_resume_not_resume(capsys):
    assert main(["damos", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--quota-resume" in out
    assert not re.search(r"(?<![\w-])--resume\b", out)


@settings(max_examples=100)
@given(data=st.data())
def test_reset_carry_against_per_page_ages(data):
    # a region's carried age = floor(mean over its pages of min(age, j - k(page)))
    from tracedamon.pipeline.damos_history import ResetCarry

    carry = ResetCarry()
    page_k = {}
    for k in range(data.draw(st.integers(1, 4))):
        runs = sorted(
            {
                (a, a + data.draw(st.integers(1, 6)))
                for a in data.draw(st.lists(st.integers(0, 40), max_size=4))
            }
        )
        merged = []
        for a, b in runs:  # disjoint runs per step, as the walk's
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        carry.add(
            0, np.array([a for a, _ in merged]) * PAGE, np.array([b for _, b in merged]) * PAGE, k
        )
        for a, b in merged:
            for p in range(a, b):
                page_k[p] = k
    j = 6
    cuts = sorted(set(data.draw(st.lists(st.integers(1, 49), max_size=8))))
    bounds = [0, *cuts, 50]
    starts = np.array(bounds[:-1]) * PAGE
    ends = np.array(bounds[1:]) * PAGE
    ages = np.array([data.draw(st.integers(0, 9)) for _ in starts])
    got = carry.apply(np.zeros(starts.size, np.int64), starts, ends, ages, j)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        per_page = [
            min(int(ages[i]), j - page_k[p]) if p in page_k else int(ages[i]) for p in range(a, b)
        ]
        assert got[i] == sum(per_page) // len(per_page)


def test_free_memory_watermarks_from_a_series(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 0, j)] for j in range(8)]
    T = lambda j: T0 + (j + 1) * AGGR_MS * MS  # noqa: E731
    src = write_source(tmp_path / "w.td", snaps, [(T0 + 1, HOT)])
    csv = tmp_path / "free.csv"
    # plenty free (above high = 500 permil): off; from just before snapshot 4: 300, on
    csv.write_text(f"time_ns,free_permil\n{T0},900\n{T(4) - 1},300\n")
    r = damos(src, ["reclaim:min_age=100ms"], free_mem=csv)
    # min_age 100 ms = 1 aggregation: reset to 0, one aggregation later eligible again
    assert r.applications.column("time_ns").to_pylist() == [T(4), T(5), T(6), T(7)]
    st_ = r.stats.to_pandas()
    assert st_.applied.tolist() == [False] * 4 + [True] * 4
    # an inactive scheme keeps its next apply time: it is due (and listed) every step
    assert st_.snapshot.tolist() == list(range(8))


def test_quota_goal_from_a_series(tmp_path):
    snaps = [[(HOT, HOT + 64 * PAGE, 0, 20)] for _ in range(5)]
    src = write_source(tmp_path / "g.td", snaps, [(T0 + 1, HOT)])
    sch = scheme_file(
        tmp_path,
        "goal",
        action="pageout",
        quotas={
            "reset_interval_ms": "100 ms",
            "goals": [{"metric": "some_mem_psi_us", "target_value": "1 ms", "current_value": 0}],
        },
    )
    csv = tmp_path / "psi.csv"
    csv.write_text(f"{T0},0\n")
    r = damos(src, [sch], goal_series={"some_mem_psi_us": csv})
    # no pressure (score 0): the goal-driven quota starts at one byte and doubles each
    # window (damon_feed_loop_next_input); below a page nothing can be applied
    assert r.stats.column("esz").to_pylist() == [2, 4, 8, 16, 32]
    assert len(r.applications) == 0
    with pytest.raises(ConfigError, match="live memory state"):
        damos(src, [sch])


def test_python_api_name():
    import tracedamon

    assert tracedamon.damos is damos


def test_tier_ignores_samples_outside_the_monitored_regions(tmp_path):
    # the same as test_tier_demote_then_promote, plus 64 pages the process touches first
    # outside the monitored regions: they would fill the fast tier for good
    snaps = [[(HOT, HOT + 64 * PAGE, 0, j), (COLD, COLD + 64 * PAGE, 20, j)] for j in range(10)]
    samples = [(T0 + 1 + p, 0x40000000 + p * PAGE) for p in range(64)]
    samples += [(T0 + 1 * MS + p * 10_000, HOT + p * PAGE) for p in range(64)]
    samples += [(T0 + 60 * MS + i * 10 * MS, COLD + p * PAGE) for i in range(95) for p in range(64)]
    src = write_source(tmp_path / "t.td", snaps, samples)
    res = damos(src, _tier_schemes(tmp_path), fast_tier=64 * PAGE, weight="count")
    t = res.metadata["outcome"]["tier"]
    assert t["fast_ratio"] == pytest.approx((64 + 70 * 64) / (64 + 95 * 64))
    assert res.metadata["outcome"]["samples"]["outside_the_monitored_regions"] == 64
