"""The perf.data reader by concern: header.py (file header, attrs, feature sections,
record and feature names), reader.py (:class:`~tracedamon.ingest.perf.reader.PerfData`:
opening, names, the record pass), stream.py (chunks, zstd, a stream cut short,
progress), ordering.py (FINISHED_ROUND order, directory merge), samples.py (decoded
sample columns, the samples file schema), sideband.py (the pass state and the
side-band records); the numba kernels are :mod:`tracedamon.ingest.perf_records`.
The entry points are :mod:`tracedamon.ingest.perf_data`'s.
"""
