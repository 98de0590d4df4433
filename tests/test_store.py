"""tracedamon.store on its own: the metadata reader, the Parquet reader's row groups and
statistics, the streaming writers, the sink interface, and the deprecated import paths.

Oracles: files written with pyarrow directly (not through the store), statistics
recomputed from the rows themselves, and ``pq.write_table`` of the same table."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tracedamon
from tracedamon import __version__
from tracedamon.errors import OutputError
from tracedamon.schema import METADATA_KEY, REGIONS, SCHEMA_VERSION
from tracedamon.store import atomic
from tracedamon.store.history import HistoryWriter
from tracedamon.store.parquet import ColumnStatistics, ParquetReader, encode_metadata, read_metadata
from tracedamon.store.sink import TableSink
from tracedamon.store.writer import TableWriter, TraceDirWriter

PACKAGE = Path(tracedamon.__file__).parent


def _plain_file(path, table, file_kv=None, row_group_size=None):
    """A Parquet file written by pyarrow itself; ``file_kv`` added to the footer only."""
    w = pq.ParquetWriter(path, table.schema)
    w.write_table(table, row_group_size=row_group_size)
    if file_kv:
        w.add_key_value_metadata(file_kv)
    w.close()
    return path


# --------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------
def test_encode_metadata_is_json_under_the_schema_key():
    kv = encode_metadata({"table": "x", "n": 3})
    assert list(kv) == [METADATA_KEY]
    assert json.loads(kv[METADATA_KEY]) == {
        "schema_version": SCHEMA_VERSION,
        "tracedamon_version": __version__,
        "table": "x",
        "n": 3,
    }


def test_read_metadata_from_the_footer_the_schema_or_a_table(tmp_path):
    t = pa.table({"a": [1, 2, 3]})
    # in the footer only (as trace-directory tables are written)
    f1 = _plain_file(tmp_path / "f.parquet", t, {METADATA_KEY: b'{"where": "footer"}'})
    assert pq.read_schema(f1).metadata is None or METADATA_KEY not in pq.read_schema(f1).metadata
    assert read_metadata(f1) == {"where": "footer"}
    assert read_metadata(ParquetReader(f1)) == {"where": "footer"}
    # in the Arrow schema (as single tables are written)
    ts = t.replace_schema_metadata({METADATA_KEY: b'{"where": "schema"}'})
    f2 = tmp_path / "s.parquet"
    pq.write_table(ts, f2)
    assert read_metadata(f2) == {"where": "schema"}
    assert read_metadata(ts) == {"where": "schema"}
    assert read_metadata(ts.schema) == {"where": "schema"}
    assert read_metadata(ts.to_batches()[0]) == {"where": "schema"}
    # none at all, or another key only
    f3 = _plain_file(tmp_path / "n.parquet", t, {b"other": b"{}"})
    assert read_metadata(f3) is None and read_metadata(t) is None
    # not JSON
    f4 = _plain_file(tmp_path / "bad.parquet", t, {METADATA_KEY: b"{nope"})
    with pytest.raises(ValueError):
        read_metadata(f4)


def test_the_metadata_key_is_spelled_in_one_place():
    """Only schema.py spells the key; only the store's Parquet module (and the output
    rule's marker, derived from it) use it."""
    users = set()
    for f in PACKAGE.rglob("*.py"):
        src = f.read_text()
        rel = str(f.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Constant) and node.value == b"tracedamon":
                assert rel == "schema.py", f"{rel} spells the metadata key"
            if isinstance(node, ast.Name) and node.id == "METADATA_KEY":
                users.add(rel)
    assert users <= {"schema.py", "store/parquet.py", "store/atomic.py"}, users


# --------------------------------------------------------------------------------------
# reading: row groups and statistics
# --------------------------------------------------------------------------------------
@pytest.fixture
def grouped(tmp_path):
    rng = np.random.default_rng(7)
    n = 1000
    pid = np.where(np.arange(n) < 400, 5, rng.integers(1, 9, n)).astype(np.int32)
    addr = rng.integers(0, 1 << 40, n).astype(np.uint64)
    addr_mask = rng.random(n) < 0.3
    t = pa.table(
        {
            "time_ns": pa.array(np.arange(n, dtype=np.int64) * 10),
            "pid": pa.array(pid),
            "callchain": pa.array([[int(i), int(i) + 1] for i in range(n)], pa.list_(pa.uint64())),
            "addr": pa.array(addr, mask=addr_mask),  # after a nested column
            "none": pa.nulls(n, pa.uint64()),
        }
    )
    return _plain_file(tmp_path / "g.parquet", t, row_group_size=300), t


def test_statistics_equal_the_rows_of_each_row_group(grouped):
    path, t = grouped
    r = ParquetReader(path)
    assert r.num_rows == 1000 and r.num_row_groups == 4
    assert [r.row_group_rows(g) for g in range(4)] == [300, 300, 300, 100]
    for g in range(4):
        rows = t.slice(300 * g, 300)
        for name in ("time_ns", "pid", "addr"):
            col = rows.column(name)
            valid = col.drop_null().to_numpy()
            st = r.statistics(g, name)
            assert st.null_count == col.null_count, (g, name)
            assert (st.min, st.max) == (valid.min(), valid.max()), (g, name)
        st = r.statistics(g, "none")
        assert st.null_count == 300 if g < 3 else 100
        assert not st.has_min_max
    # pid is one value in the first row group only
    assert r.statistics(0, "pid").constant
    assert not r.statistics(2, "pid").constant
    assert r.statistics(0, "no_such_column") is None


def test_iter_batches_reads_each_row_group_within_the_batch_size(grouped):
    path, t = grouped
    r = ParquetReader(path)
    batches = list(r.iter_batches(128, columns=["time_ns", "addr"]))
    assert all(b.num_rows <= 128 for b in batches)
    # no batch crosses a row group boundary (300 rows each: 128 + 128 + 44)
    assert [b.num_rows for b in batches] == [128, 128, 44] * 3 + [100]
    got = pa.Table.from_batches(batches)
    assert got.equals(t.select(["time_ns", "addr"]))
    only = pa.Table.from_batches(list(r.iter_batches(1000, row_groups=[2])))
    assert only.equals(t.slice(600, 300))


def test_column_statistics_flags():
    assert ColumnStatistics(0, 3, 3).constant
    assert not ColumnStatistics(1, 3, 3).constant
    assert not ColumnStatistics(None, 3, 3).constant
    assert not ColumnStatistics(0, None, None).has_min_max


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _regions(snapshots, per):
    n = snapshots * per
    snap = np.repeat(np.arange(snapshots), per)
    start = np.tile(np.arange(per, dtype=np.uint64) * 4096, snapshots)
    return pa.table(
        {
            "run": pa.array(np.zeros(n, np.int32)),
            "snapshot": pa.array(snap.astype(np.int64)),
            "time_ns": pa.array((snap * 100).astype(np.int64)),
            "target": pa.array(np.zeros(n, np.int32)),
            "pid": pa.array(np.full(n, 7, np.int32)),
            "start": pa.array(start),
            "end": pa.array(start + np.uint64(4096)),
            "nr_accesses": pa.array((np.arange(n) % 5).astype(np.uint32)),
            "age": pa.array((np.arange(n) % 3).astype(np.uint32)),
            "nr_accesses_bp": pa.array(np.zeros(n, np.uint32)),
        },
        schema=REGIONS,
    )


def test_history_writer_equals_write_table_byte_for_byte(tmp_path):
    t = _regions(4, 25)
    w = HistoryWriter(tmp_path / "h.parquet")
    for s in range(4):
        w.add(t.slice(25 * s, 25))
    w.close({"ops": "vaddr"})
    ref = tmp_path / "ref.parquet"
    pq.write_table(
        t.replace_schema_metadata(encode_metadata({"replay": {"ops": "vaddr"}})),
        ref,
        compression="zstd",
    )
    assert (tmp_path / "h.parquet").read_bytes() == ref.read_bytes()
    assert read_metadata(tmp_path / "h.parquet")["replay"] == {"ops": "vaddr"}


def test_history_writer_row_groups_hold_whole_snapshots(tmp_path):
    t = _regions(10, 30)
    w = HistoryWriter(tmp_path / "h.parquet", row_group_rows=100)
    for s in range(10):
        w.add(t.slice(30 * s, 30))
    w.close({})
    r = ParquetReader(tmp_path / "h.parquet")
    assert [r.row_group_rows(g) for g in range(r.num_row_groups)] == [90, 90, 90, 30]
    assert r.read().replace_schema_metadata(None).equals(t)


def test_history_writer_abort_leaves_nothing(tmp_path):
    w = HistoryWriter(tmp_path / "h.parquet")
    w.add(_regions(1, 5))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_table_writer_streams_atomically(tmp_path):
    dest = tmp_path / "cells.parquet"
    parts = [
        pa.table({"a": pa.array([1, 2], pa.int64())}),
        pa.table({"a": pa.array([3], pa.int32())}),
    ]  # cast to the first's schema
    with TableWriter(dest, kind=atomic.COMPARE_CELLS, metadata={"table": "compare_cells"}) as w:
        for p in parts:
            w.write(p)
        assert not dest.exists()  # in place only when closed
    got = pq.read_table(dest)
    assert got.column("a").to_pylist() == [1, 2, 3] and got.schema.field("a").type == pa.int64()
    assert read_metadata(dest)["table"] == "compare_cells"
    # tracedamon's own: replaced with force, refused without
    with pytest.raises(OutputError):
        TableWriter(dest, kind=atomic.COMPARE_CELLS)
    with TableWriter(
        dest,
        kind=atomic.COMPARE_CELLS,
        metadata={"table": "compare_cells"},
        force=True,
        empty_schema=pa.schema([("b", pa.int8())]),
    ):
        pass
    assert pq.read_table(dest).num_rows == 0 and pq.read_schema(dest).names == ["b"]


def test_table_writer_leaves_nothing_on_error(tmp_path):
    dest = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError):
        with TableWriter(dest, kind=atomic.COMPARE_CELLS) as w:
            w.write(pa.table({"a": [1]}))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_file_is_never_replaced(tmp_path):
    dest = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"a": [1]}), dest)
    before = dest.read_bytes()
    with pytest.raises(OutputError):
        TableWriter(dest, kind=atomic.COMPARE_CELLS, force=True)
    assert dest.read_bytes() == before


def test_trace_dir_writer_is_a_table_sink(tmp_path):
    with TraceDirWriter(tmp_path / "t.td") as w:
        assert isinstance(w, TableSink)
        assert w.row_counts() == {}
        w.write("lost", pa.table({"kind": ["LOST"], "lost": pa.array([3], pa.uint64())}))
        assert w.row_counts() == {"lost": 1} and w.rows("lost") == 1 and w.started("lost")
    assert not isinstance(object(), TableSink)


# --------------------------------------------------------------------------------------
# the deprecated paths still work
# --------------------------------------------------------------------------------------
def test_old_import_paths_re_export_the_store():
    from tracedamon import atomic as old_atomic
    from tracedamon import hashing as old_hashing
    from tracedamon import trace as old_trace
    from tracedamon.ingest import writer as old_writer
    from tracedamon.store import hashing, trace, writer

    assert old_trace.open_trace is trace.open_trace and old_trace.Trace is trace.Trace
    assert old_hashing.sha256_file is hashing.sha256_file
    assert old_hashing.prehash is hashing.prehash
    for name in (
        "TraceDirWriter",
        "write_table_atomic",
        "file_provenance",
        "parquet_metadata",
        "read_parquet_metadata",
    ):
        assert getattr(old_writer, name) is getattr(writer, name)
    for name in (
        "check_output",
        "atomic_path",
        "AtomicDir",
        "write_text_atomic",
        "REGION_HISTORY",
        "TRACE_DIR",
        "MARK",
    ):
        assert getattr(old_atomic, name) is getattr(atomic, name)
    for mod in (old_atomic, old_hashing, old_trace, old_writer):
        assert "Deprecated" in Path(mod.__file__).read_text().split("\n")[0]
