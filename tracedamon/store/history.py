"""A region history written to one Parquet file as it is produced (:class:`HistoryWriter`)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from ..schema import REGIONS
from .atomic import REGION_HISTORY, atomic_path
from .parquet import arrow_schema_entry, encode_metadata, open_writer

__all__ = ["HistoryWriter", "ROW_GROUP_ROWS"]

#: rows per Parquet row group of a written history (pyarrow's own default)
ROW_GROUP_ROWS = 1 << 20


class HistoryWriter:
    """Writes a region history to one Parquet file snapshot by snapshot, atomically.

    Snapshots are buffered and written as row groups of whole snapshots, each of at most
    ``row_group_rows`` rows (a snapshot that alone holds more is cut into pieces of that
    size), so readers can stream a history by snapshot and the writer holds at most one
    row group.  tracedamon's metadata is known only at the end: it goes into the file's
    key-value metadata on :meth:`close`, together with Arrow's serialized schema carrying
    it, so the file equals what ``pq.write_table`` makes of the whole table with that
    metadata (byte for byte, when the rows fit one row group).  The file appears under
    ``dest`` on :meth:`close`; :meth:`abort` (or an exception inside a ``with`` block)
    leaves nothing behind.
    """

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        force: bool = False,
        inputs=(),
        row_group_rows: int = ROW_GROUP_ROWS,
    ):
        self.dest = Path(dest)
        self.row_group_rows = row_group_rows
        self._ctx = atomic_path(
            self.dest, kind=REGION_HISTORY, force=force, inputs=[i for i in inputs if i is not None]
        )
        self.tmp = self._ctx.__enter__()
        try:
            self._w = open_writer(self.tmp, REGIONS)
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._buf: list[pa.Table] = []
        self._nbuf = 0
        self.rows = 0
        self.row_groups = 0

    def add(self, table: pa.Table) -> None:
        """Append one snapshot's rows (a REGIONS table)."""
        n = table.num_rows
        cap = self.row_group_rows
        if self._nbuf and self._nbuf + n > cap:
            self._flush()
        if n > cap:
            for off in range(0, n, cap):
                self._write(table.slice(off, cap))
            return
        if n:
            self._buf.append(table)
            self._nbuf += n

    def _flush(self) -> None:
        if self._buf:
            t = self._buf[0] if len(self._buf) == 1 else pa.concat_tables(self._buf)
            self._buf, self._nbuf = [], 0
            self._write(t)

    def _write(self, t: pa.Table) -> None:
        t = t.combine_chunks()
        self._w.write_table(t, row_group_size=max(t.num_rows, 1))
        self.rows += t.num_rows
        self.row_groups += 1

    def close(self, metadata: dict) -> Path:
        """Write the last row group and the metadata; move the file into place."""
        try:
            self._flush()
            if self.row_groups == 0:
                self._w.write_table(REGIONS.empty_table())  # as pq.write_table does
            md = encode_metadata({"replay": metadata})
            arrow_schema = arrow_schema_entry(REGIONS.with_metadata(md))
            # (in this order the footer lists them as pq.write_table does)
            self._w.add_key_value_metadata({**md, b"ARROW:schema": arrow_schema})
            self._w.close()
        except BaseException as e:
            raise self.abort(e) from None
        self._ctx.__exit__(None, None, None)
        return self.dest

    def abort(self, exc: BaseException | None = None) -> BaseException | None:
        """Remove the partial file.  Returns ``exc`` as the output names it (an error
        about the hidden temporary file names ``dest`` instead), for the caller to raise."""
        try:
            self._w.close()
        except Exception:
            pass
        stop = exc if exc is not None else RuntimeError("history not written")
        try:
            self._ctx.__exit__(type(stop), stop, stop.__traceback__)  # removes the file
        except BaseException as shown:
            return shown
        return exc
