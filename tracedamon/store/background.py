"""Writing a table from a thread, and the Parquet tuning of the ``samples`` table.

:class:`BackgroundWriter` hands a reader's batches to a
:class:`~tracedamon.store.sink.TableSink` from a second thread, so decoding and
Parquet encoding overlap (the perf.data reader uses it); :data:`SAMPLES_PARQUET` are
the Parquet writer options the perf.data reader asks for its ``samples`` table
(through the sink's ``table_options``).
"""

from __future__ import annotations

import queue
import threading
import time

import pyarrow as pa

from ..schema import SAMPLES

#: Parquet options of the samples table: dictionary encoding for the low-cardinality
#: columns only (trying it on addresses and times costs more than it saves), delta
#: encoding for the sorted ones, statistics for the columns people filter on, and zstd
#: only where it shrinks something: dictionary indices, RLE'd nulls and constant
#: columns gain nothing from it, yet every compressed page pays for a fresh zstd
#: context (measured on 10 M page-fault samples: 1.55 -> 1.36 s CPU of Parquet
#: encoding, file size unchanged to 1 %).
#: weight, sample_id, stream_id, cgroup and transaction take few distinct values: they
#: are dictionary-encoded too (Parquet falls back to plain pages past 1 MiB of
#: dictionary), so they need no compression either.
_HIGH_CARDINALITY = ("time_ns", "ip", "addr", "phys_addr", "file_offset", "callchain", "raw")
_ZSTD_COLUMNS = _HIGH_CARDINALITY + ("mem_remote",)
SAMPLES_PARQUET = {
    # keys are Parquet column paths (a list's values live in "callchain.list.element")
    "compression": {
        (f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name): "zstd"
        if f.name in _ZSTD_COLUMNS
        else "none"
        for f in SAMPLES
    },
    "use_dictionary": [f.name for f in SAMPLES if f.name not in _HIGH_CARDINALITY],
    "column_encoding": {"time_ns": "DELTA_BINARY_PACKED", "file_offset": "DELTA_BINARY_PACKED"},
    "write_statistics": ["time_ns", "pid", "tid", "cpu", "event_id", "addr", "phys_addr"],
}


class BackgroundWriter:
    """Writes one table's batches from a thread (Parquet encoding releases the GIL), so
    decoding and writing overlap; at most one batch waits, so memory stays bounded."""

    def __init__(self, writer, name: str):
        self.writer = writer
        self.name = name
        self.q: queue.Queue = queue.Queue(maxsize=1)
        self.err: BaseException | None = None
        #: seconds the thread spent writing: wall and its own CPU (for bench/)
        self.busy_s = 0.0
        self.cpu_s = 0.0
        self.t = threading.Thread(target=self._run, name="tracedamon-parquet", daemon=True)

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.err is None:
                t0, c0 = time.perf_counter(), time.thread_time()
                try:
                    self.writer.write(self.name, item)
                except BaseException as e:  # re-raised in the caller's thread
                    self.err = e
                self.busy_s += time.perf_counter() - t0
                self.cpu_s += time.thread_time() - c0

    def put(self, table: pa.Table):
        if self.err is not None:
            raise self.err
        self.q.put(table)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.q.put(None)
        self.t.join()
        if exc_type is None and self.err is not None:
            raise self.err
