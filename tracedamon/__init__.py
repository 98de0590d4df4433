"""tracedamon: what would DAMON have seen?

Ingest perf memory-access samples, DAMON traces and pagemap snapshots into
Parquet trace directories; replay the samples through an offline
re-implementation of DAMON's monitor; compare region histories.

Public API (each name is imported lazily, so ``import tracedamon`` stays cheap):

- :func:`ingest` — turn input files into a trace directory
- :func:`open_trace` — read a trace directory's tables
- :func:`replay` — run the DAMON monitor over a trace's samples
- :func:`compare` — metrics between two region histories
- :func:`sweep` — replay and score a grid of configurations over many traces
"""
__version__ = "0.1.0"

_LAZY = {
    "ingest": ("tracedamon.ingest", "ingest"),
    "open_trace": ("tracedamon.trace", "open_trace"),
    "replay": ("tracedamon.engine.replay", "replay"),
    "compare": ("tracedamon.export.compare", "compare"),
    "sweep": ("tracedamon.sweep", "sweep"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'tracedamon' has no attribute {name!r}")
