"""tracedamon: what would DAMON have seen?

Ingest perf memory-access samples, DAMON traces and pagemap snapshots into
Parquet trace directories; replay the samples through an offline
re-implementation of DAMON's monitor; compare region histories.

Public API (each name is imported lazily, so ``import tracedamon`` stays cheap):

- :func:`ingest` — turn input files into a trace directory
- :func:`open_trace` — read a trace directory's tables
- :func:`replay` — run the DAMON monitor over a trace's samples
- :func:`compare` — metrics between two region histories
- :func:`damos` — DAMOS schemes applied to a region history
- :func:`sweep` — replay and score a grid of configurations over many traces

Functions that write take ``force=``: an existing output is replaced only with
``force=True`` and only when it is tracedamon's own (:mod:`tracedamon.atomic`).
"""
__version__ = "0.1.0"

_LAZY = {
    "ingest": ("tracedamon.pipeline.ingest", "ingest"),
    "open_trace": ("tracedamon.trace", "open_trace"),
    "replay": ("tracedamon.pipeline.replay", "replay"),
    "compare": ("tracedamon.export.compare", "compare"),
    "damos": ("tracedamon.pipeline.damos", "damos"),
    "sweep": ("tracedamon.pipeline.sweep", "sweep"),
}

__all__ = ["__version__", *_LAZY]

# before any numba kernel is defined: fall back to no caching (one warning line) when
# numba has nowhere to write its cache
from . import numba_cache as _numba_cache  # noqa: E402

_numba_cache.setup()

# ``tracedamon.ingest`` is the public function, not the package of readers of the same
# name: the package (nothing but a docstring and the old paths) is loaded here, so that
# the import system binds it to the name once, now, and the name is then left to the
# lazy function below. Later imports of ``tracedamon.ingest.*`` modules find the
# package loaded and leave the name alone. (Loaded by name: the top package does not
# depend on the readers, and the import contracts see no such edge.)
import importlib as _importlib  # noqa: E402

_importlib.import_module("tracedamon.ingest")
del globals()["ingest"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'tracedamon' has no attribute {name!r}")


def __dir__():
    """The public API (names loaded lazily included) and the module's own names."""
    return sorted(set(globals()) | set(__all__))
