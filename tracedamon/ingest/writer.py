"""Deprecated: use :mod:`tracedamon.store.writer` (this alias goes in the next release)."""

from ..store.writer import (  # noqa: F401
    TraceDirWriter,
    file_provenance,
    parquet_metadata,
    read_parquet_metadata,
    write_table_atomic,
)
