"""The perf.data reader by concern: header.py (file header, attrs, feature sections,
record and feature names), reader.py (:class:`~tracedamon.ingest.perf.reader.PerfData`:
opening, names, the record pass), stream.py (chunks, zstd, a stream cut short,
progress), ordering.py (FINISHED_ROUND order, directory merge), samples.py (decoded
sample columns, the samples file schema), sideband.py (the pass state and the
side-band records). The numba kernels: layout.py (the record and sample layout by
name), words.py (loads at any byte offset), scan.py (record boundaries), byteswap.py
(big-endian records made little-endian), sample_kernels.py (SAMPLE bodies),
read_values.py (PERF_SAMPLE_READ), sideband_kernels.py (MMAP, COMM, FORK, EXIT in
bulk); :mod:`tracedamon.ingest.perf_records` is their deprecated old path.
The entry points are :mod:`tracedamon.ingest.perf_data`'s.
"""
