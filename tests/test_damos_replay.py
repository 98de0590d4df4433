"""`tracedamon replay ... --scheme`: DAMOS inside the replayed kdamond loop.

Oracles: the replay of the same trace without schemes (a scheme that splits nothing
and resets no age leaves every region as it was; age resets never move a boundary),
the snapshot the loop writes right after an application (what DAMOS saw is what the
kernel's damon_aggregated line shows, but the ages it reset), the DAMOS walk over the
written history (`tracedamon damos`, which takes the recorded applications back out
of the post-apply snapshots), and the apply-interval arithmetic of damos-spec §1.2."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import tracedamon
from conftest import CORPUS, SAMPLES, missing
from tracedamon.cli import main
from tracedamon.damos_replay import in_loop
from tracedamon.damos_run import damos
from tracedamon.engine.damos import AccessPattern, Quota, Scheme
from tracedamon.pipeline.replay import replay
from tracedamon.errors import ConfigError

RANGE = ["0x200000000000-0x200000120000"]  # the workload's buffer
KW = dict(ops="fvaddr", ranges=RANGE)
AGGR_NS = 100_000_000
UMAX = 2**32 - 1
LMAX = 2**64 - 1
RECLAIM = "reclaim:wmarks=none,min_age=300ms"
RECLAIM_Q = "reclaim:wmarks=none,min_age=300ms,quota_sz=64K,quota_ms=0"


def every(action: str, apply_interval_us: int = 0, quota: Quota = Quota()) -> Scheme:
    """A scheme whose access pattern every region matches."""
    return Scheme(
        action, AccessPattern(0, LMAX, 0, UMAX, 0, UMAX), quota, apply_interval_us=apply_interval_us
    )


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    td = tmp_path_factory.mktemp("damos-replay") / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", td)
    return td


@pytest.fixture(scope="module")
def base(hotcold):
    return replay(hotcold, **KW).df


def with_snapshot(a, df):
    """The applications with the number of the snapshot written right after them (at
    their own time: they run at aggregation boundaries)."""
    a = a.copy()
    a["snapshot"] = a.time_ns.map(dict(zip(df.time_ns, df.snapshot)))
    assert a.snapshot.notna().all()
    return a


def snapshots(df):
    return {k: g.reset_index(drop=True) for k, g in df.groupby("snapshot")}


def test_a_stat_scheme_changes_nothing_but_the_stats(hotcold, base):
    h = replay(hotcold, damos=in_loop([every("stat")]), **KW)
    df = h.df
    assert df.equals(base)
    # it sees every region of every snapshot, as the snapshot shows it (after the merge,
    # before the reset): start, end, nr_accesses, age, and the region count
    a = h.damos.applications.to_pandas()
    assert len(a) == len(df)
    got = a[["start", "end", "nr_accesses", "age"]].astype("int64").to_numpy()
    want = df[["start", "end", "nr_accesses", "age"]].astype("int64").to_numpy()
    assert (got == want).all()
    per = df.groupby("snapshot").size()
    assert (a.nr_regions.astype(int).to_numpy() == per.loc[df.snapshot].to_numpy()).all()
    assert (a.time_ns.to_numpy() == df.time_ns.to_numpy()).all()
    st = h.damos.stats.to_pandas()
    assert st.nr_tried.astype(int).tolist() == per.cumsum().tolist()
    sz = (df.end - df.start).astype(int).groupby(df.snapshot).sum().cumsum()
    assert st.sz_tried.astype(int).tolist() == sz.tolist()


def test_age_resets_move_no_boundary_and_show_in_the_next_snapshot(hotcold, base):
    h = replay(hotcold, damos=in_loop([RECLAIM]), **KW)
    df = h.df
    a = with_snapshot(h.damos.applications.to_pandas(), df)
    assert len(a) > 10
    # no quota, no filter: no DAMOS split, so every snapshot has the regions and counts
    # of the replay without the scheme; only ages differ
    cols = ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "nr_accesses_bp"]
    assert df[cols].equals(base[cols])
    assert (df.age <= base.age).all() and (df.age < base.age).any()
    # the snapshot written right after an application: the applied regions at age 0
    # and the pre-reset age in the application row, which is what the replay without
    # the scheme has until the first reset
    snaps = snapshots(df)
    first = int(a.snapshot.min())
    for r in a.itertuples():
        s = snaps[r.snapshot]
        row = s[(s.start == r.start) & (s.end == r.end)]
        assert len(row) == 1 and int(row.age.iloc[0]) == 0
    b = snapshots(base)[first]
    for r in a[a.snapshot == first].itertuples():
        assert int(b[(b.start == r.start)].age.iloc[0]) == r.age
    # an age lower than without the scheme only where an application reset it before
    applied = [(int(r.snapshot), int(r.start), int(r.end)) for r in a.itertuples()]
    lower = df[df.age < base.age]
    for r in lower.itertuples():
        assert any(k <= r.snapshot and s < r.end and r.start < e for k, s, e in applied)


def test_quota_splits_shape_the_later_history(hotcold, base):
    h = replay(hotcold, damos=in_loop([RECLAIM_Q]), **KW)
    df = h.df
    a = with_snapshot(h.damos.applications.to_pandas(), df)
    first = int(a.snapshot.min())
    # identical up to the first application; that snapshot holds its quota split (one
    # region more than without the scheme, the kernel's nr_regions + 1)
    assert df[df.snapshot < first].equals(base[base.snapshot < first])
    n0 = (base.snapshot == first).sum()
    assert (df.snapshot == first).sum() == n0 + 1
    fa = a[a.snapshot == first]
    assert int(fa.nr_regions.iloc[-1]) == n0 + 1
    assert int((fa.end - fa.start).astype(int).sum()) == 64 * 1024  # exactly the quota
    # each quota window charges at most 64 KiB, and the history differs later on
    assert ((a.end - a.start).astype(int).groupby(a.snapshot).sum() <= 64 * 1024).all()
    assert not df[["start", "end"]].equals(base[["start", "end"]])


def test_tracedamon_damos_over_the_history_reproduces_the_applications(hotcold, tmp_path):
    for sch in (RECLAIM, RECLAIM_Q):
        out = tmp_path / "r.parquet"
        h = replay(hotcold, damos=in_loop([sch]), output=out, force=True, **KW)
        assert (tmp_path / "r.damos" / "damos_apply.parquet").exists()
        r = damos(out, [sch], check=True)
        c = r.check
        assert c["recorded"] == c["matched"] == c["predicted"] > 0
        assert c["rows_matched"] == c["rows_recorded"] == h.damos.applications.num_rows
        assert r.stats.equals(h.damos.stats)
        assert r.applications.equals(h.damos.applications)


def test_deterministic_for_a_seed(hotcold, tmp_path):
    out = tmp_path / "r.parquet"
    got = []
    for _ in range(2):
        replay(hotcold, damos=in_loop([RECLAIM_Q]), output=out, seed=7, force=True, **KW)
        got.append(
            [out.read_bytes()]
            + [
                (tmp_path / "r.damos" / f"{t}.parquet").read_bytes()
                for t in ("damos_apply", "damos_stats", "damos_outcome")
            ]
        )
    assert got[0] == got[1]


def test_apply_interval_between_aggregations(hotcold, base):
    # apply every 150 ms with 100 ms aggregations: due at 150, 300, 450, ... ms
    # (next_apply_sis = sis + 30 samples), half of them between two aggregations
    h = replay(hotcold, damos=in_loop([every("stat", 150_000)]), **KW)
    assert h.df.equals(base)  # ending a segment there changes no count
    st = h.damos.stats.to_pandas()
    t0 = h.metadata["t0_ns"]
    steps = (st.time_ns - t0).to_numpy()
    assert steps.tolist() == [150_000_000 * (k + 1) for k in range(len(steps))]
    last = base.time_ns.max() - t0
    assert len(steps) == int(last // 150_000_000)
    # between aggregations the walk sees the regions of the last split, and snapshot is
    # the one written next
    a = h.damos.applications.to_pandas()
    mid = a[(a.time_ns - t0) % AGGR_NS != 0]
    assert len(mid) and (mid.time_ns - t0).isin(150_000_000 * np.arange(1, 20)).all()
    assert ((mid.time_ns - t0) % (2 * AGGR_NS) != 0).all()


def test_refusals(hotcold, tmp_path):
    with pytest.raises(ConfigError, match="watermarks"):
        replay(hotcold, damos=in_loop(["reclaim"]), **KW)
    with pytest.raises(ConfigError, match="auto-tuning"):
        replay(
            hotcold,
            damos=in_loop([RECLAIM]),
            goal_access_bp=400,
            goal_aggrs=4,
            goal_min_sample_us=1000,
            goal_max_sample_us=10000,
            **KW,
        )
    assert not list(tmp_path.iterdir())


def dump(tmp_path):
    """The corpus machine's sysfs dump with other monitoring attributes (fvaddr)."""
    src = CORPUS / "damon-paddr-run1" / "paddr_run1" / "kdamond_sysfs_before.txt"
    if not src.exists():
        missing(f"{src}: the corpus is not there")
    text = src.read_text()
    for a, b in (
        ("intervals/sample_us:500000", "intervals/sample_us:10000"),
        ("intervals/aggr_us:5000000", "intervals/aggr_us:200000"),
        ("nr_regions/min:1024", "nr_regions/min:5"),
        ("nr_regions/max:8192", "nr_regions/max:500"),
        ("contexts/0/operations:paddr", "contexts/0/operations:fvaddr"),
        ("access_pattern/age/min:12", "access_pattern/age/min:2"),
    ):
        assert a in text
        text = text.replace(a, b)
    p = tmp_path / "sysfs.txt"
    p.write_text(text)
    return p


def test_cli_sysfs_dump_gives_the_defaults(hotcold, tmp_path, capsys):
    d = dump(tmp_path)
    out = tmp_path / "h.parquet"
    assert (
        main(["replay", str(hotcold), "--range", RANGE[0], "--scheme", str(d), "-o", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "run 0 scheme 0" in text and f"wrote {tmp_path / 'h.damos'}" in text
    meta = json.loads(pq.read_schema(out).metadata[b"tracedamon"])["replay"]
    c = meta["config"]
    assert meta["ops"] == "fvaddr"
    assert (c["sample_us"], c["aggr_us"], c["min_nr_regions"], c["max_nr_regions"]) == (
        10000,
        200000,
        5,
        500,
    )
    dm = json.loads((tmp_path / "h.damos" / "meta.json").read_text())["damos"]
    assert dm["context"]["aggr_us"] == 200000 and dm["schemes"][0]["action"] == "pageout"
    # an option given wins over the dump
    out2 = tmp_path / "h2.parquet"
    assert (
        main(
            [
                "replay",
                str(hotcold),
                "--range",
                RANGE[0],
                "--scheme",
                str(d),
                "--aggr-us",
                "100000",
                "-o",
                str(out2),
                "-q",
            ]
        )
        == 0
    )
    c2 = json.loads(pq.read_schema(out2).metadata[b"tracedamon"])["replay"]["config"]
    assert (c2["sample_us"], c2["aggr_us"]) == (10000, 100000)


def test_cli_refuses_in_one_line_and_writes_nothing(hotcold, tmp_path, capsys):
    out = tmp_path / "h.parquet"
    rc = main(
        [
            "replay",
            str(hotcold),
            "--ops",
            "fvaddr",
            "--range",
            RANGE[0],
            "--scheme",
            "reclaim",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0 and "watermarks" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "h.damos").exists()
    rc = main(
        [
            "replay",
            str(hotcold),
            "--ops",
            "fvaddr",
            "--range",
            RANGE[0],
            "--scheme",
            str(tmp_path / "nope.json"),
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0 and "nope.json" in err and not out.exists()


def test_tracedamon_damos_does_not_replace_the_replays_applications(hotcold, tmp_path, capsys):
    out = tmp_path / "h.parquet"
    replay(hotcold, damos=in_loop([RECLAIM]), output=out, **KW)
    before = (tmp_path / "h.damos" / "damos_apply.parquet").read_bytes()
    rc = main(["damos", str(out), "--scheme", RECLAIM, "--force"])
    err = capsys.readouterr().err
    assert rc != 0 and "an input of this command" in err
    assert (tmp_path / "h.damos" / "damos_apply.parquet").read_bytes() == before
