"""Streaming, atomic writing of a trace directory.

A :class:`TraceDirWriter` writes every table into a hidden temporary directory
beside the destination, one Parquet row group per batch as batches arrive, so
memory stays bounded. ``commit()`` writes ``meta.json`` and renames the
temporary directory into place; leaving the ``with`` block with an exception
removes it, so a failed run leaves nothing behind.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..atomic import atomic_path
from ..errors import InputError
from ..schema import METADATA_KEY, SCHEMA_VERSION, TABLES


def file_provenance(path: str | os.PathLike, *, hash_limit: int | None = None) -> dict:
    """Name, size and sha256 of an input file (or of every file of a directory)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        return {"name": p.name, "kind": "directory",
                "files": [file_provenance(q) | {"name": str(q.relative_to(p))} for q in files]}
    h = hashlib.sha256()
    size = 0
    with open(p, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            size += len(chunk)
            h.update(chunk)
    return {"name": p.name, "size": size, "sha256": h.hexdigest()}


def parquet_metadata(extra: dict | None = None) -> dict[bytes, bytes]:
    meta = {"schema_version": SCHEMA_VERSION, "tracedamon_version": __version__}
    if extra:
        meta.update(extra)
    return {METADATA_KEY: json.dumps(meta, sort_keys=True, default=str).encode()}


def read_parquet_metadata(path: str | os.PathLike) -> dict:
    """tracedamon's JSON metadata of a Parquet file ({} when absent).

    Trace-directory tables keep it in the file's key-value metadata (written when the
    table is closed, once the provenance is known); single tables written with
    :func:`write_table_atomic` keep it in the Arrow schema too.
    """
    raw = (pq.read_metadata(path).metadata or {}).get(METADATA_KEY)
    if raw is None:
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def write_table_atomic(table: pa.Table, dest: str | os.PathLike, *,
                       metadata: dict | None = None) -> Path:
    """Write one Parquet file atomically (temporary file + rename)."""
    schema = table.schema.with_metadata({**(table.schema.metadata or {}),
                                         **parquet_metadata(metadata)})
    table = table.replace_schema_metadata(schema.metadata)
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(dest)


class TraceDirWriter:
    """Write the tables of one trace directory, atomically.

    >>> with TraceDirWriter("run.td", provenance={...}) as w:   # doctest: +SKIP
    ...     w.write("samples", batch)
    ...     w.meta["layout"] = "file"
    ... # on success run.td/ appears whole; on an exception nothing appears
    """

    def __init__(self, dest: str | os.PathLike, *,
                 provenance: "dict | concurrent.futures.Future | None" = None,
                 force: bool = False, tables: tuple[str, ...] = ()):
        self.dest = Path(dest)
        self.force = force
        if self.dest.exists() and not force:
            raise InputError(f"{self.dest}: output exists (use --force to replace it)")
        # A Future lets the caller hash big inputs in a thread while they are decoded;
        # it is resolved at commit, when the metadata is written.
        self._provenance = provenance if provenance is not None else {}
        self.meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tracedamon_version": __version__,
        }
        self._tables_always = tables
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, int] = {}
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
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".tmp",
                                          dir=self.dest.parent))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- writing ---------------------------------------------------------------------
    @property
    def tmpdir(self) -> Path:
        assert self._tmp is not None, "use TraceDirWriter as a context manager"
        return self._tmp

    def _writer(self, name: str) -> pq.ParquetWriter:
        w = self._writers.get(name)
        if w is None:
            opts = {"compression": "zstd", **self.table_options.get(name, {})}
            w = pq.ParquetWriter(self.tmpdir / f"{name}.parquet", TABLES[name], **opts)
            self._writers[name] = w
            self._rows[name] = 0
        return w

    def write(self, name: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append a batch (or table) to table ``name``; columns must match the schema."""
        schema = TABLES[name]
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if data.num_rows == 0:
            self._writer(name)
            return
        if not data.schema.equals(schema, check_metadata=False):
            data = data.select(schema.names).cast(schema)
        self._writer(name).write_table(data)
        self._rows[name] += data.num_rows

    def rows(self, name: str) -> int:
        return self._rows.get(name, 0)

    def commit(self) -> Path:
        for name in self._tables_always:
            self._writer(name)
        prov = self.provenance
        self.meta["provenance"] = prov
        for name, w in self._writers.items():
            w.add_key_value_metadata(parquet_metadata({"table": name, "provenance": prov}))
            w.close()
        self._writers.clear()
        self.meta["tables"] = {k: v for k, v in sorted(self._rows.items())}
        with open(self.tmpdir / "meta.json", "w") as f:
            json.dump(self.meta, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        if self.dest.exists():
            if not self.force:
                raise InputError(f"{self.dest}: output appeared while writing")
            old = self.dest.with_name(f".{self.dest.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.dest, old)
            os.replace(self.tmpdir, self.dest)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(self.tmpdir, self.dest)
        self._tmp = None
        return self.dest

    def abort(self) -> None:
        for w in self._writers.values():
            try:
                w.close()
            except Exception:
                pass
        self._writers.clear()
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
