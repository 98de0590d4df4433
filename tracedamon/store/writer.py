"""Streaming, atomic writing of a trace directory.

A :class:`TraceDirWriter` writes every table into a hidden temporary directory
beside the destination, one Parquet row group per batch as batches arrive, so
memory stays bounded. ``commit()`` writes ``meta.json`` and swaps the
temporary directory into place; leaving the ``with`` block with an exception
removes it, so a failed run leaves nothing behind. Which existing outputs may be
replaced (only tracedamon's own, only with ``force``) is :mod:`tracedamon.store.atomic`'s
rule, shared by every command. :class:`TraceDirWriter` is the
:class:`~tracedamon.store.sink.TableSink` the ingest readers write to.

A table may be written in a narrower form of its schema (:meth:`set_file_schema`):
columns no row has left out, columns no row lacks declared non-nullable. Parquet
encoding then skips the null bookkeeping those columns would cost (on 10 M
page-fault samples it is over a third of the encoding time). Should a later batch
break the narrow form (a value in a left-out column, a null in a non-nullable one),
the rows written so far are rewritten in a wider form, so a guess that was wrong
costs time, never rows. Readers restore the full schema
(:func:`tracedamon.schema.conform`).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import __version__
from ..schema import SCHEMA_VERSION, TABLES, conform
from .atomic import REGION_HISTORY, TRACE_DIR, AtomicDir, Kind, atomic_path
from .hashing import sha256_file
from .parquet import ParquetReader, encode_metadata, open_writer, read_metadata, write_table

__all__ = [
    "TraceDirWriter",
    "TableWriter",
    "write_table_atomic",
    "file_provenance",
    "parquet_metadata",
    "read_parquet_metadata",
]


def file_provenance(path: str | os.PathLike) -> dict:
    """Name, size and sha256 of an input file (or of every file of a directory)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        return {
            "name": p.name,
            "kind": "directory",
            "files": [file_provenance(q) | {"name": str(q.relative_to(p))} for q in files],
        }
    size, digest = sha256_file(p)
    return {"name": p.name, "size": size, "sha256": digest}


#: tracedamon's metadata as a Parquet key-value entry (:func:`~tracedamon.store.parquet.encode_metadata`)
parquet_metadata = encode_metadata


def read_parquet_metadata(path: str | os.PathLike) -> dict:
    """tracedamon's JSON metadata of a Parquet file ({} when absent).

    Trace-directory tables keep it in the file's key-value metadata (written when the
    table is closed, once the provenance is known); single tables written with
    :func:`write_table_atomic` keep it in the Arrow schema too.
    """
    return read_metadata(path) or {}


def write_table_atomic(
    table: pa.Table,
    dest: str | os.PathLike,
    *,
    metadata: dict | None = None,
    kind: Kind = REGION_HISTORY,
    force: bool = False,
    inputs=(),
) -> Path:
    """Write one Parquet file atomically (temporary file + rename). An existing
    ``dest`` is replaced only with ``force`` and only when it is tracedamon's output
    of ``kind`` (:func:`tracedamon.atomic.check_output`)."""
    schema = table.schema.with_metadata(
        {**(table.schema.metadata or {}), **parquet_metadata(metadata)}
    )
    table = table.replace_schema_metadata(schema.metadata)
    with atomic_path(dest, kind=kind, force=force, inputs=inputs) as tmp:
        write_table(table, tmp)
    return Path(dest)


class TableWriter:
    """One Parquet table streamed to ``dest`` batch by batch, atomically: the file
    appears whole on :meth:`close` (or at the end of a ``with`` block), an exception
    leaves nothing behind. The schema is the first table's (or ``schema``), carrying
    tracedamon's metadata (``metadata``); later tables are cast to it. A writer closed
    without any table writes ``empty_schema``'s empty table.
    An existing ``dest`` is replaced only as :func:`write_table_atomic` replaces it."""

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        kind: Kind,
        metadata: dict | None = None,
        force: bool = False,
        inputs=(),
        empty_schema: pa.Schema | None = None,
    ):
        self.dest = Path(dest)
        self._metadata = encode_metadata(metadata)
        self._empty = empty_schema
        self._ctx = atomic_path(self.dest, kind=kind, force=force, inputs=inputs)
        self._tmp = self._ctx.__enter__()
        self._w = None
        self.schema: pa.Schema | None = None
        self.rows = 0

    def _open(self, schema: pa.Schema) -> None:
        self.schema = schema.with_metadata(self._metadata)
        self._w = open_writer(self._tmp, self.schema)

    def write(self, table: pa.Table) -> None:
        if self._w is None:
            self._open(table.schema)
        self._w.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def close(self) -> Path:
        try:
            if self._w is None and self._empty is not None:
                self._open(self._empty)
            if self._w is not None:
                self._w.close()
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)
        return self.dest

    def abort(self, exc: BaseException) -> None:
        if self._w is not None:
            try:
                self._w.close()
            except Exception:
                pass
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)


class TraceDirWriter:
    """Write the tables of one trace directory, atomically.

    >>> with TraceDirWriter("run.td", provenance={...}) as w:   # doctest: +SKIP
    ...     w.write("samples", batch)
    ...     w.meta["layout"] = "file"
    ... # on success run.td/ appears whole; on an exception nothing appears
    """

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        provenance: "dict | concurrent.futures.Future | None" = None,
        force: bool = False,
        tables: tuple[str, ...] = (),
        inputs=(),
    ):
        self.dest = Path(dest)
        self.force = force
        # refuses here, before any work, an output it may not write or replace
        self._out = AtomicDir(self.dest, kind=TRACE_DIR, force=force, inputs=inputs)
        # A Future lets the caller hash big inputs in a thread while they are decoded;
        # it is resolved at commit, when the metadata is written.
        self._provenance = provenance if provenance is not None else {}
        self.meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tracedamon_version": __version__,
        }
        self._tables_always = tables
        self._writers: dict[str, Any] = {}  # name -> pyarrow.parquet.ParquetWriter
        self._rows: dict[str, int] = {}
        self._file_schemas: dict[str, pa.Schema] = {}
        #: tables rewritten in a wider form (name -> times), see set_file_schema
        self.widened: dict[str, int] = {}
        self._tmp: Path | None = None
        #: extra pq.ParquetWriter options per table (set before the table's first write;
        #: may override the default compression="zstd", e.g. per column)
        self.table_options: dict[str, dict] = {}

    @property
    def provenance(self) -> dict:
        if isinstance(self._provenance, concurrent.futures.Future):
            self._provenance = self._provenance.result()
        return self._provenance

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "TraceDirWriter":
        self._tmp = self._out.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException as e:
                self.abort()
                raise self._out.shown(e)
        else:
            self._out.shown(exc)  # name the output, not the hidden directory
            self.abort()

    # -- writing ---------------------------------------------------------------------
    @property
    def tmpdir(self) -> Path:
        assert self._tmp is not None, "use TraceDirWriter as a context manager"
        return self._tmp

    def _writer(self, name: str):
        w = self._writers.get(name)
        if w is None:
            w = open_writer(
                self.tmpdir / f"{name}.parquet",
                self.file_schema(name),
                **self.table_options.get(name, {}),
            )
            self._writers[name] = w
            self._rows.setdefault(name, 0)
        return w

    def started(self, name: str) -> bool:
        """Whether table ``name`` has been opened for writing."""
        return name in self._writers

    def set_file_schema(self, name: str, schema: pa.Schema) -> None:
        """Write table ``name`` in ``schema``, a narrower form of its full schema: some
        columns left out (no row has them), some fields non-nullable (no row lacks
        them). Call it before the table's first write."""
        full = TABLES[name]
        if name in self._writers:
            raise RuntimeError(f"{name}: file schema set after the first write")
        pos = [full.get_field_index(f.name) for f in schema]
        if (
            -1 in pos
            or pos != sorted(pos)
            or any(
                f.type != full.field(f.name).type
                or (f.nullable and not full.field(f.name).nullable)
                for f in schema
            )
        ):
            raise ValueError(f"{name}: {schema.names} is not a narrower form of its schema")
        self._file_schemas[name] = schema

    def file_schema(self, name: str) -> pa.Schema:
        """The schema table ``name`` is written in (its full schema unless narrowed)."""
        return self._file_schemas.get(name, TABLES[name])

    def absent_columns(self, name: str) -> list[str]:
        have = set(self.file_schema(name).names)
        return [c for c in TABLES[name].names if c not in have]

    def write(self, name: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append a batch (or table) to table ``name``; its columns must have the types
        of the table's schema (columns it lacks are null, extra ones are dropped)."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if data.num_rows == 0:
            self._writer(name)
            return
        if not data.schema.equals(self.file_schema(name), check_metadata=False):
            data = self._fit(name, data)
        self._writer(name).write_table(data)
        self._rows[name] += data.num_rows

    def _fit(self, name: str, data: pa.Table) -> pa.Table:
        """``data`` in the table's file schema, widening that schema first if ``data``
        does not fit it."""
        full = TABLES[name]
        data = conform(data, full, full.names)
        fs = self.file_schema(name)
        if fs is not full:
            want = []
            for f in full:
                nulls = data.column(f.name).null_count
                if f.name in fs.names:
                    g = fs.field(f.name)
                    want.append(f if (nulls and not g.nullable) else g)
                elif nulls < data.num_rows:
                    want.append(f)
            if [g.name for g in want] != fs.names or any(
                g.nullable != fs.field(g.name).nullable for g in want
            ):
                self._widen(name, pa.schema(want))
                fs = self.file_schema(name)
        return pa.Table.from_arrays([data.column(c) for c in fs.names], schema=fs)

    def _widen(self, name: str, schema: pa.Schema) -> None:
        """Rewrite what table ``name`` holds so far in the wider ``schema``."""
        self._file_schemas[name] = schema
        self.widened[name] = self.widened.get(name, 0) + 1
        w = self._writers.pop(name, None)
        if w is None:
            return
        w.close()
        path = self.tmpdir / f"{name}.parquet"
        narrow = path.with_name(f"{name}.narrow.parquet")
        os.replace(path, narrow)
        nw = self._writer(name)
        full = TABLES[name]
        with ParquetReader(narrow) as pf:
            for g in range(pf.num_row_groups):
                t = conform(pf.read_row_group(g), full, full.names)
                nw.write_table(
                    pa.Table.from_arrays([t.column(c) for c in schema.names], schema=schema)
                )
        narrow.unlink()

    def rows(self, name: str) -> int:
        return self._rows.get(name, 0)

    def row_counts(self) -> dict[str, int]:
        """Rows written so far, per table opened."""
        return dict(self._rows)

    def commit(self) -> Path:
        for name in self._tables_always:
            self._writer(name)
        prov = self.provenance
        self.meta["provenance"] = prov
        absent = {}
        for name, w in self._writers.items():
            extra = {"table": name, "provenance": prov}
            if self.absent_columns(name):
                absent[name] = extra["absent_columns"] = self.absent_columns(name)
            w.add_key_value_metadata(encode_metadata(extra))
            w.close()
        self._writers.clear()
        self.meta["tables"] = {k: v for k, v in sorted(self._rows.items())}
        if absent:
            # columns a table's file leaves out because no row has them (readers
            # restore them as nulls: tracedamon.schema.conform)
            self.meta["absent_columns"] = absent
        with open(self.tmpdir / "meta.json", "w") as f:
            json.dump(self.meta, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        self._out.commit()  # checks the destination again, then swaps it in
        self._tmp = None
        return self.dest

    def abort(self) -> None:
        for w in self._writers.values():
            try:
                w.close()
            except Exception:
                pass
        self._writers.clear()
        self._out.abort()
        self._tmp = None
