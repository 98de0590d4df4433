"""Deprecated: use :mod:`tracedamon.store.writer` (this alias goes in the next release)."""
from ..store.writer import (TraceDirWriter, file_provenance, parquet_metadata,  # noqa: F401
                            read_parquet_metadata, write_table_atomic)
