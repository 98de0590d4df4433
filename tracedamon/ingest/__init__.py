"""Readers: inputs of every kind → Arrow batches handed to a trace directory's writer.

Each reader module exposes ``ingest_into(path, writer, *, progress=None, **options)``
which streams its tables into a :class:`~tracedamon.store.sink.TableSink` (a
:class:`~tracedamon.store.writer.TraceDirWriter`), may add keys to ``writer.meta`` and
reports how far it got through ``progress(done, total, what)``
(:mod:`tracedamon.ingest.progress`); readers draw nothing and never import the
engine, the exporters or the orchestration.

The public function :func:`tracedamon.ingest` (planning the inputs, gzip, pagemap
groups, running the readers into one trace directory) lives in
:mod:`tracedamon.pipeline.ingest`. ``tracedamon.ingest`` is that function, whatever
was imported before; this package's modules are reached with ``from
tracedamon.ingest import perf_data`` or ``from tracedamon.ingest.perf_data import
...`` (``import tracedamon.ingest.perf_data as PD`` does not work: the attribute
``tracedamon.ingest`` is the function).
"""

from __future__ import annotations

import importlib

# Deprecated for one release: ``from tracedamon.ingest import ingest`` (and
# default_output, reader_for) from before the orchestration moved into the pipeline.
# Looked up by name when asked for, so the readers do not depend on the pipeline (the
# import contracts hold) and ``import tracedamon``, which loads this package, stays
# light.
_MOVED = frozenset({"ingest", "default_output", "reader_for"})


def __getattr__(name):
    if name in _MOVED:
        return getattr(importlib.import_module("tracedamon.pipeline.ingest"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
