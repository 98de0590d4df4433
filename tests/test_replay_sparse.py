"""The writer side of the sparse-history contract: ``sparse`` and ``coverage``.

Every replay's metadata (``replay`` object under the Parquet key ``tracedamon``) holds
``sparse`` (rows with nr_accesses 0 left out) and ``coverage``: per target, the union
of its regions, from a snapshot on, emitted when it changes.  Oracles: the rows
themselves -- a dense replay's coverage in effect at each snapshot equals the union of
that snapshot's rows; a sparse replay leaves out exactly rows that lie inside its
coverage and have nr_accesses 0 (the dense replay of the same input and seed).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES

from tracedamon.pipeline.replay import replay
from tracedamon.ingest import ingest
from tracedamon.store.writer import read_parquet_metadata

PAGE = 4096
HOT = 0x200000000000
AREA = f"{HOT:#x}-{HOT + 288 * PAGE:#x}"
WIDE = f"{HOT:#x}-{HOT + 4096 * PAGE:#x}"


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    return ingest(SAMPLES / "hotcold.perf.data", tmp_path_factory.mktemp("hc") / "hc.td")


def union(starts, ends) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(zip(starts, ends)):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(x) for x in out]


def coverage_at(cov, snapshot: int, target: int) -> list[tuple[int, int]]:
    """The contract's reading: the ranges of the target's latest entry group at or before
    ``snapshot`` ((0, 0) means none)."""
    frm = max(e[0] for e in cov if e[1] == target and e[0] <= snapshot)
    return [(e[2], e[3]) for e in cov if e[0] == frm and e[1] == target and e[3] > e[2]]


def check_contract_form(cov, n_snapshots):
    assert cov == sorted(cov)
    assert all(len(e) == 4 and all(isinstance(x, int) and x >= 0 for x in e) for e in cov)
    assert all(e[0] < n_snapshots for e in cov)
    targets = sorted({e[1] for e in cov})
    for t in targets:
        groups = {}
        for e in cov:
            if e[1] == t:
                groups.setdefault(e[0], []).append((e[2], e[3]))
        assert 0 in groups  # in effect from the start
        seq = [groups[k] for k in sorted(groups)]
        assert all(a != b for a, b in zip(seq, seq[1:]))  # entries only on change
        for g in seq:  # merged: no touching ranges
            if g != [(0, 0)]:
                assert all(e1 < s2 for (_, e1), (s2, _) in zip(g, g[1:]))


CASES = {
    "fvaddr": dict(ops="fvaddr", ranges=[AREA], seed=3),
    "fvaddr-2pids": dict(
        ops="fvaddr",
        ranges=[AREA, f"{HOT + 400 * PAGE:#x}-{HOT + 500 * PAGE:#x}"],
        pids=[2291, 1],
        seed=3,
    ),
    "vaddr-updates": dict(ops="vaddr", update_us=100_000, seed=2, start_ns="first"),
    "vaddr-auto-abit": dict(ops="vaddr", start_ns="auto", access="abit", seed=1, update_us=300_000),
    "vaddr-apply": dict(
        ops="vaddr", start_ns="auto", min_nr_regions_mode="apply", update_us=200_000
    ),
    "fixed-vaddr-updates": dict(
        ops="vaddr",
        update_us=100_000,
        start_ns="first",
        min_region=PAGE,
        max_region=PAGE,
        synthetic=True,
    ),
    "adaptive-vaddr-updates": dict(ops="vaddr", update_us=100_000, synthetic=True, seed=5),
    "fixed-fvaddr": dict(ops="fvaddr", ranges=[WIDE], min_region=PAGE, max_region=PAGE),
    "tuning": dict(
        ops="fvaddr",
        ranges=[AREA],
        goal_access_bp=400,
        goal_aggrs=3,
        goal_min_sample_us=1000,
        goal_max_sample_us=20_000,
    ),
}


def synthetic_vaddr():
    """Samples of pid 9 over 1 s; areas A, B, C (1 MiB each, far apart) mapped at 0, area
    D (256 KiB, 64 KiB after C) at 350 ms: with 100 ms ops updates the three regions
    grow from [A] [B] [C] to [A] [B] [C..D] at the update after 350 ms."""
    import pandas as pd
    import pyarrow as pa

    G = 1 << 30
    A, B, C = 0x10 * G, 0x400 * G, 0x7000 * G
    D = C + (1 << 20) + (64 << 10)
    mm = pd.DataFrame(
        {
            "pid": 9,
            "time_ns": [0, 0, 0, 350_000_000],
            "start": np.array([A, B, C, D], np.uint64),
            "length": np.array([1 << 20] * 3 + [256 << 10], np.uint64),
        }
    )
    rng = np.random.default_rng(0)
    n = 20_000
    t = np.sort(rng.integers(0, 1_000_000_000, n))
    base = rng.choice([A, B, C, D], n, p=[0.5, 0.2, 0.2, 0.1])
    addr = base + rng.integers(0, 64, n) * PAGE
    return pa.table(
        {
            "time_ns": t,
            "pid": pa.array(np.full(n, 9, np.int32)),
            "addr": pa.array(addr.astype(np.uint64)),
        }
    ), mm


def run(hotcold, tmp=None, **kw):
    if kw.pop("synthetic", False):
        tbl, mm = synthetic_vaddr()
        return replay(tbl, mmaps=mm, **kw)
    return replay(hotcold, output=None if tmp is None else tmp / "d.parquet", **kw)


@pytest.mark.parametrize("name", CASES)
def test_dense_coverage_is_the_union_of_each_snapshots_rows(hotcold, tmp_path, name):
    kw = CASES[name]
    h = run(hotcold, tmp_path, **kw)
    if h.path is not None:
        assert read_parquet_metadata(h.path)["replay"] == h.metadata
    m = h.metadata
    assert m["sparse"] is False
    cov = m["coverage"]
    check_contract_form(cov, h.n_snapshots)
    df = h.df
    ntgt = len(m["targets"])
    for snap in range(h.n_snapshots):
        rows = df[df.snapshot == snap]
        for t in range(ntgt):
            r = rows[rows.target == t]
            got = union(r.start.astype(np.int64).tolist(), r.end.astype(np.int64).tolist())
            assert coverage_at(cov, snap, t) == got, (name, snap, t)
    if name == "vaddr-updates":
        # no regions at the first sample; the first ops update (end of snapshot 0)
        # brings the workload's three regions: two entries for the target
        assert cov[0] == [0, 0, 0, 0] and {e[0] for e in cov} == {0, 1}
    if name.endswith("vaddr-updates") and kw.get("synthetic"):
        # the update after D is mapped (at 400 ms, end of snapshot 3) changes coverage
        assert sorted({e[0] for e in cov}) == [0, 4] and len(cov) == 6


SPARSE = [
    (n, "asked")
    for n in (
        "fvaddr",
        "vaddr-updates",
        "vaddr-auto-abit",
        "fixed-vaddr-updates",
        "adaptive-vaddr-updates",
        "fixed-fvaddr",
    )
] + [(n, "max_rows") for n in ("fixed-vaddr-updates", "fixed-fvaddr")]  # fixed only


@pytest.mark.parametrize("name,how", SPARSE)
def test_sparse_rows_left_out_lie_inside_coverage_with_no_access(hotcold, name, how):
    kw = dict(CASES[name])
    dense = run(hotcold, max_rows=None, **kw)
    sparse = run(hotcold, **kw, **({"accessed_only": True} if how == "asked" else {"max_rows": 10}))
    m = sparse.metadata
    assert m["sparse"] is True and m["accessed_only"] is True
    assert m["coverage"] == dense.metadata["coverage"]
    key = ["snapshot", "target", "start", "end"]
    d = dense.df.merge(sparse.df[key], on=key, how="left", indicator=True)
    gone = d[d._merge == "left_only"]
    kept = d[d._merge == "both"]
    assert len(kept) == len(sparse.df) and len(gone) > 0
    assert (gone.nr_accesses == 0).all() and (kept.nr_accesses > 0).all()
    cov = m["coverage"]
    for (snap, t), g in gone.groupby(["snapshot", "target"]):
        rg = coverage_at(cov, int(snap), int(t))
        st, en = np.array([r[0] for r in rg]), np.array([r[1] for r in rg])
        s = g.start.astype(np.int64).to_numpy()
        i = np.searchsorted(st, s, side="right") - 1
        assert (i >= 0).all() and (g.end.astype(np.int64).to_numpy() <= en[i]).all()


def test_paddr_coverage_is_its_range(tmp_path):
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 5000
    t = np.sort(rng.integers(0, 1_000_000_000, n))
    phys = (0x10000000 + rng.integers(0, 4096, n) * PAGE).astype(np.uint64)
    tbl = pa.table(
        {
            "time_ns": t,
            "pid": pa.array(np.ones(n, np.int32)),
            "addr": pa.nulls(n, pa.uint64()),
            "phys_addr": pa.array(phys),
        }
    )
    h = replay(
        tbl,
        ops="paddr",
        access="perf-phys",
        ranges=["0x10000000-0x11000000", "0x20000000-0x20001000"],
    )
    assert h.metadata["coverage"] == [
        [0, 0, 0x10000000, 0x11000000],
        [0, 0, 0x20000000, 0x20001000],
    ]
    assert h.metadata["sparse"] is False


def test_coverage_records_only_changes_seen_by_a_snapshot():
    """Ops updates more often than aggregations: a change undone before the next
    snapshot leaves no entry; one kept is in effect from that snapshot."""
    from tracedamon.engine.core import Coverage

    c = Coverage(2)
    c.note(0, 0, [(0, 10)])
    c.note(0, 1, [])
    c.note(3, 0, [(0, 20)])
    c.note(3, 0, [(0, 10)])  # undone before snapshot 3: nothing changed
    c.note(5, 0, [(0, 10)])  # no change
    c.note(7, 1, [(4, 8), (9, 12)])
    c.note(7, 1, [(4, 8)])  # changed again: the last one counts
    assert c.sorted(10) == [[0, 0, 0, 10], [0, 1, 0, 0], [7, 1, 4, 8]]
    assert c.sorted(7) == [[0, 0, 0, 10], [0, 1, 0, 0]]  # snapshot 7 was never taken
