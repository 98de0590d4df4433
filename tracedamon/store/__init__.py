"""Storage: the only package that reads or writes tracedamon's Parquet and JSON files.

Its API, by module (import from the module; this package imports nothing, so that
:mod:`~tracedamon.store.hashing` can start hashing inputs before pyarrow loads):

- :mod:`~tracedamon.store.trace`: :func:`open_trace`, :class:`Trace` -- a trace
  directory's tables read back (whole, or batch by batch in the full schema);
- :mod:`~tracedamon.store.sink`: :class:`TableSink` -- the interface ingest readers
  write to;
- :mod:`~tracedamon.store.writer`: :class:`TraceDirWriter` (the trace-directory
  ``TableSink``), :class:`TableWriter` (one table streamed), :func:`write_table_atomic`,
  :func:`file_provenance`;
- :mod:`~tracedamon.store.history`: :class:`HistoryWriter` -- a region history streamed
  to one Parquet file, snapshot by snapshot;
- :mod:`~tracedamon.store.parquet`: :func:`read_metadata` (the one reader of
  tracedamon's metadata key), :func:`encode_metadata`, :class:`ParquetReader` (row
  groups with their column statistics), :func:`read_table`, :func:`read_schema`;
- :mod:`~tracedamon.store.atomic`: the output rule (``force``, what is tracedamon's,
  atomic replacement) every output follows;
- :mod:`~tracedamon.store.hashing`: sha256 of inputs for the provenance, started early.
"""
