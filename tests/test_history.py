"""The streaming region-history reader: windows against a slow reference, stitching of
snapshots across row groups, sparse histories read back as their dense originals, the
fall-back for files out of order, and one-line errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from tracedamon.errors import InputError, TraceFormatError
from tracedamon.export.grid import load_history
from tracedamon.export.history import HistoryWarning, open_history

from sparse_history import canonical, dense_history, sparse_of, write_regions


def _naive_windows(df, aggr_us=None):
    """The window rules of grid.py, one snapshot at a time."""
    key = "pid" if df["pid"].notna().all() else "target"
    g = df.groupby([key, "run", "snapshot"], sort=True)["time_ns"].min()
    gaps = []
    per = {}
    for (k, r, s), t in g.items():
        per.setdefault((k, r), []).append((s, int(t)))
    for lst in per.values():
        gaps += [b[1] - a[1] for a, b in zip(lst, lst[1:]) if b[1] - a[1] > 0]
    aggr = aggr_us * 1000 if aggr_us else (float(np.median(gaps)) if gaps else 1.0)
    means = []
    for lst in per.values():
        if len(lst) > 1:
            means.append((lst[-1][1] - lst[0][1]) / (len(lst) - 1))
    cap = 1.5 * max([aggr] + [m for m in means if m == m])
    out = {}
    for (k, r), lst in per.items():
        for i, (s, t1) in enumerate(lst):
            if i == 0:
                mg = (lst[-1][1] - lst[0][1]) / (len(lst) - 1) if len(lst) > 1 else None
                t0 = t1 - (int(np.ceil(mg)) if mg and mg > 0 else round(aggr))
            else:
                t0 = lst[i - 1][1]
            t0 = max(t0, t1 - int(np.ceil(cap)))
            out[(k, r, s)] = (min(t0, t1 - 1), t1)
    return out


def _draw_history(data, *, with_pid=False):
    rows = []
    t = data.draw(st.integers(0, 10**6))
    for run in range(data.draw(st.integers(1, 2))):
        t += data.draw(st.integers(0, 10**4))
        for s in range(data.draw(st.integers(1, 6))):
            t += data.draw(st.integers(1, 300))
            for tg in range(data.draw(st.integers(1, 2))):
                cuts = sorted(set(data.draw(st.lists(st.integers(1, 31), max_size=5))))
                b = [0] + cuts + [32]
                for lo, hi in zip(b[:-1], b[1:]):
                    if data.draw(st.booleans()) and len(b) > 2:
                        continue
                    rows.append(
                        dict(
                            run=run,
                            snapshot=s,
                            time_ns=t,
                            target=tg,
                            pid=100 + tg if with_pid else None,
                            start=lo * 4096,
                            end=hi * 4096,
                            nr_accesses=data.draw(st.integers(0, 9)),
                            age=data.draw(st.integers(0, 9)),
                        )
                    )
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_snapshot_windows_follow_the_rules(data):
    df = _draw_history(data, with_pid=data.draw(st.booleans()))
    if df.empty:
        return
    hs = open_history(df)
    want = _naive_windows(df)
    got = {
        (k, r, s): (a, b)
        for k, r, s, a, b in hs.snaps[["key", "run", "snapshot", "t0", "t1"]].itertuples(
            index=False
        )
    }
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_snapshots_stitched_across_row_groups(tmp_path_factory, data):
    """Whatever the row groups and batch sizes, every snapshot comes out whole, with
    the rows the file holds for it, in time order per address space."""
    df = _draw_history(data, with_pid=True)
    if df.empty:
        return
    df = df.sort_values(["run", "snapshot", "target", "start"]).reset_index(drop=True)
    path = tmp_path_factory.mktemp("h") / "r.parquet"
    write_regions(df, path, row_group_size=data.draw(st.integers(1, 7)))
    hs = open_history(path, batch_rows=data.draw(st.integers(1, 9)))
    assert hs.streamed and hs.rows == len(df) and hs.key_column == "pid"
    seen = []
    for snap in hs.iter_snapshots():
        want = df[
            (df["pid"] == snap.key) & (df["run"] == snap.run) & (df["snapshot"] == snap.snapshot)
        ]
        assert snap.start.tolist() == want["start"].tolist()
        assert snap.nr_accesses.tolist() == want["nr_accesses"].tolist()
        assert snap.age.tolist() == want["age"].tolist()
        seen.append((snap.key, snap.run, snap.snapshot))
    assert len(seen) == len(set(seen)) == hs.n_snapshots
    for k in hs.keys:
        t1 = [s.t1 for s in hs.iter_snapshots(key=k)]
        assert t1 == sorted(t1) and len(t1) == (hs.snaps["key"] == k).sum()


def test_up_front_facts(tmp_path):
    rng = np.random.default_rng(3)
    df, _ = dense_history(rng, n_snap=6, targets=(0, 1), pids={0: 7, 1: 9})
    p = tmp_path / "r.parquet"
    write_regions(df, p, row_group_size=5)
    hs = open_history(p)
    assert hs.keys == [7, 9] and hs.key_column == "pid"
    assert hs.n_snapshots == 12 and hs.rows == len(df)
    assert hs.t_end == int(df["time_ns"].max())
    assert hs.t_start == int(df["time_ns"].min()) - 100_000_000
    assert hs.nr_accesses_max == df["nr_accesses"].max()
    assert hs.max_nr_accesses == 10 and hs.max_source == "intervals"
    assert hs.sparse is False and hs.address_unit() == 4096


# ------------------------------------------------------------------ sparse histories
@pytest.mark.parametrize("seed", range(12))
def test_sparse_reads_as_its_dense_original(tmp_path, seed):
    """A dense history and its sparse form (rows with accesses, coverage in the
    metadata) read the same, byte for byte and window for window: idle bytes come back
    with nr_accesses 0, snapshots without any access come back with their times."""
    rng = np.random.default_rng(seed)
    idle = {0, 3, 7} if seed % 2 else {4}
    df, meta = dense_history(
        rng,
        n_snap=8,
        targets=(0, 1),
        pids={0: 11, 1: 12},
        idle_snapshots=idle,
        change_at=5 if seed % 3 else None,
    )
    sp = sparse_of(df, meta)
    if seed % 4 == 0:  # the snapshot times must come from the neighbours
        sp.attrs["tracedamon"]["replay"].pop("t0_ns")
    dense = load_history(df)
    pd_path = tmp_path / "sparse.parquet"
    write_regions(sp, pd_path, row_group_size=3)
    for src in (sp, pd_path):
        hs = open_history(src, batch_rows=4)
        assert hs.sparse and hs.coverage_origin == "metadata"
        filled = hs.to_history()
        assert canonical(filled.df).equals(canonical(dense.df))
        pd.testing.assert_frame_equal(filled.snaps, dense.snaps, check_dtype=False)
        # the idle bytes are marked: no age for them
        idle_rows = filled.df[filled.df["nr_accesses"] == 0]
        assert idle_rows["age"].isna().all() and len(idle_rows)
        # without filling: only the file's rows
        assert len(hs.to_history(fill_sparse=False).df) == len(sp)


def test_sparse_idle_snapshot_at_both_ends_and_between():
    rng = np.random.default_rng(1)
    df, meta = dense_history(rng, n_snap=6, idle_snapshots={0, 2, 5})
    sp = sparse_of(df, meta)
    hs = open_history(sp)
    assert sorted(set(sp["snapshot"])) == [1, 3, 4]
    assert hs.snaps["snapshot"].tolist() == list(range(6))
    assert hs.snaps["synthetic"].tolist() == [True, False, True, False, False, True]
    want = sorted(df.groupby("snapshot")["time_ns"].min().tolist())
    assert hs.snaps["t1"].tolist() == want


def test_coverage_change_and_empty_coverage():
    """A target whose coverage changes at a snapshot, and one that has no region from
    some snapshot on ([k, target, 0, 0]): no snapshot is made up for it then."""
    base = 0x10000
    rows = []
    for s in range(4):
        rows.append(
            dict(
                run=0,
                snapshot=s,
                time_ns=(s + 1) * 100,
                target=0,
                pid=None,
                start=base,
                end=base + (0x2000 if s < 2 else 0x3000),
                nr_accesses=1 if s == 1 else 0,
                age=0,
            )
        )
        if s < 2:
            rows.append(
                dict(
                    run=0,
                    snapshot=s,
                    time_ns=(s + 1) * 100,
                    target=1,
                    pid=None,
                    start=base,
                    end=base + 0x1000,
                    nr_accesses=0,
                    age=0,
                )
            )
    df = pd.DataFrame(rows)
    sp = sparse_of(df)
    assert [e for e in sp.attrs["tracedamon"]["replay"]["coverage"] if e[1] == 1] == [
        [0, 1, base, base + 0x1000],
        [2, 1, 0, 0],
    ]
    h = load_history(sp)
    assert canonical(h.df).equals(canonical(load_history(df).df))
    assert h.df.groupby("target")["snapshot"].nunique().to_dict() == {0: 4, 1: 2}


def test_older_sparse_file_without_coverage_warns(tmp_path):
    rng = np.random.default_rng(5)
    df, meta = dense_history(rng, n_snap=5)
    sp = sparse_of(df, meta, coverage=False)
    p = tmp_path / "old.parquet"
    write_regions(sp, p)
    with pytest.warns(HistoryWarning, match="idle bytes outside every region ever accessed"):
        hs = open_history(p)
    assert hs.coverage_origin == "rows"
    # coverage: the union of the rows, so idle bytes between accessed regions are 0
    h = hs.to_history()
    u = sp.groupby("target")
    for t, g in u:
        lo, hi = int(g["start"].min()), int(g["end"].max())
        for s in range(5):
            at = h.df[(h.df["target"] == t) & (h.df["snapshot"] == s)]
            assert int(at["start"].min()) >= lo and int(at["end"].max()) <= hi
    dense_bytes = (sp["end"] - sp["start"]).astype(float) @ sp["nr_accesses"].astype(float)
    filled_bytes = (h.df["end"] - h.df["start"]).astype(float) @ h.df["nr_accesses"]
    assert dense_bytes == filled_bytes


def test_rows_outside_coverage_are_an_error():
    rng = np.random.default_rng(2)
    df, meta = dense_history(rng, n_snap=3)
    sp = sparse_of(df, meta)
    cov = sp.attrs["tracedamon"]["replay"]["coverage"]
    sp.attrs["tracedamon"]["replay"]["coverage"] = [[k, t, s + 0x1000, e] for k, t, s, e in cov]
    with pytest.raises(TraceFormatError, match="outside the coverage"):
        load_history(sp)
    sp.attrs["tracedamon"]["replay"]["coverage"] = [[0, 0, -5, 3]]
    with pytest.raises(TraceFormatError, match="coverage entry 0"):
        open_history(sp)


# ------------------------------------------------------------------ order and errors
def test_unsorted_file_is_read_whole_with_a_warning(tmp_path):
    rng = np.random.default_rng(4)
    df, _ = dense_history(rng, n_snap=5, targets=(0, 1))
    shuffled = df.sample(frac=1, random_state=1)
    p = tmp_path / "shuffled.parquet"
    write_regions(shuffled, p, row_group_size=4)
    with pytest.warns(HistoryWarning, match="not grouped by .* reading all"):
        hs = open_history(p)
    assert not hs.streamed
    assert canonical(hs.to_history().df).equals(canonical(load_history(df).df))
    # regions of one snapshot out of address order only: sorted, no warning
    p2 = tmp_path / "rev.parquet"
    write_regions(
        df.sort_values(["snapshot", "target", "start"], ascending=[True, True, False]),
        p2,
        row_group_size=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = load_history(p2)
    assert canonical(h.df).equals(canonical(load_history(df).df))


def test_bad_rows_are_one_line_errors(tmp_path):
    rng = np.random.default_rng(6)
    df, _ = dense_history(rng, n_snap=3)
    bad = df.copy()
    bad.loc[4, "end"] = bad.loc[4, "start"]
    p = tmp_path / "bad.parquet"
    write_regions(bad, p, row_group_size=2)
    with pytest.raises(TraceFormatError, match=r"bad\.parquet: row 4: region end"):
        load_history(p)
    over = df.copy()
    over.loc[1, "start"] = over.loc[0, "start"]
    write_regions(over, p)
    with pytest.raises(TraceFormatError, match="regions overlap within snapshot 0"):
        load_history(p)
    t = pq.read_table(p)
    i = t.schema.get_field_index("nr_accesses")
    arr = pa.array([None] + t.column(i).to_pylist()[1:], pa.uint32())
    pq.write_table(t.set_column(i, pa.field("nr_accesses", pa.uint32()), arr), p)
    with pytest.raises(TraceFormatError, match="row 0: nr_accesses is null"):
        open_history(p)
    pq.write_table(t.drop(["nr_accesses"]), p)
    with pytest.raises(TraceFormatError, match="missing column.*nr_accesses"):
        open_history(p)
    pq.write_table(t.slice(0, 0), p)
    with pytest.raises(InputError, match="empty"):
        open_history(p)
    p.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(TraceFormatError, match="not a readable Parquet"):
        open_history(p)


def test_key_filter_skips_row_groups(tmp_path, monkeypatch):
    """Reading one address space of a file sorted by target decodes only its row groups."""
    rng = np.random.default_rng(8)
    df, _ = dense_history(rng, n_snap=6, targets=(0, 1, 2), pids={0: 5, 1: 6, 2: 7})
    df = df.sort_values(["target", "snapshot", "start"])
    p = tmp_path / "bytarget.parquet"
    write_regions(df, p, row_group_size=4)
    hs = open_history(p)
    decoded = []
    orig = hs._rows.chunks

    def spy(columns, row_groups=None):
        decoded.extend(row_groups or [])
        return orig(columns, row_groups)

    monkeypatch.setattr(hs._rows, "chunks", spy)
    rows = sum(len(b) for b in hs.iter_batches(key=6))
    assert rows == (df["pid"] == 6).sum()
    first = np.flatnonzero((df["pid"] == 6).to_numpy())
    want = set(range(first[0] // 4, first[-1] // 4 + 1))
    assert set(decoded) == want


def test_replay_metadata_in_a_table_and_a_regionhistory():
    rng = np.random.default_rng(9)
    df, meta = dense_history(rng, n_snap=4)
    sp = sparse_of(df, meta)
    t = pa.Table.from_pandas(sp, preserve_index=False)
    t = t.replace_schema_metadata({b"tracedamon": json.dumps(sp.attrs["tracedamon"]).encode()})
    assert canonical(load_history(t).df).equals(canonical(load_history(df).df))

    class RH:  # the shape of pipeline.region_history.RegionHistory
        def __init__(self, table, metadata):
            self.table, self.metadata = table, metadata

    rh = RH(t, sp.attrs["tracedamon"]["replay"])
    assert open_history(rh).sparse
    assert canonical(load_history(rh).df).equals(canonical(load_history(df).df))


def test_a_history_in_memory_is_a_source_too():
    """compare and the reports accept what load_history returned (or a History built by
    hand): the former reuses its source, the latter is read as a frame."""
    from tracedamon.export.grid import History
    from tracedamon.export.compare import compare

    rng = np.random.default_rng(10)
    df, meta = dense_history(rng, n_snap=4)
    h = load_history(df)
    assert open_history(h) is h.source
    by_hand = History(
        h.df.drop(columns=["snap"]).assign(snap=h.df["snap"]), h.snaps, "mine", h.meta
    )
    hs = open_history(by_hand)
    assert hs.name == "mine" and canonical(hs.to_history().df).equals(canonical(h.df))
    assert compare(h, by_hand).metrics["hot"]["0.5"]["f1"] == 1.0


def test_sparse_target_never_accessed():
    """A target none of whose regions was ever accessed has no row in the sparse file: its
    snapshots come back from the coverage, keyed by the pid the metadata names (without
    one, they are left out with a warning)."""
    rng = np.random.default_rng(12)
    df, meta = dense_history(rng, n_snap=4, targets=(0, 1), pids={0: 30, 1: 31})
    df.loc[df["target"] == 1, "nr_accesses"] = 0
    dense = load_history(df)
    sp = sparse_of(df, dict(meta, targets=[{"target": 0, "pid": 30}, {"target": 1, "pid": 31}]))
    assert 1 not in set(sp["target"])
    h = load_history(sp)
    assert canonical(h.df).equals(canonical(dense.df))
    assert h.keys == [30, 31]
    no_pid = sparse_of(df, meta)
    with pytest.warns(HistoryWarning, match="target 1 has no accessed region and no known pid"):
        h2 = load_history(no_pid)
    assert h2.keys == [30]
