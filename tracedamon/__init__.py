"""tracedamon: what would DAMON have seen?

Ingest perf memory-access samples, DAMON traces and pagemap snapshots into
Parquet trace directories; replay the samples through an offline
re-implementation of DAMON's monitor; compare region histories.

Public API (the functions and classes load on first use, so ``import tracedamon`` stays
cheap: it is the one place where tracedamon loads its own modules lazily, and the command
line calls the library through it):

- :func:`ingest` — turn input files into a trace directory
- :func:`open_trace` — read a trace directory's tables (a :class:`Trace`)
- :func:`replay` — run the DAMON monitor over a trace's samples (a :class:`RegionHistory`;
  its settings are a :class:`MonitorConfig`)
- :func:`compare` — metrics between two region histories
- :func:`damos` — DAMOS schemes applied to a region history
- :func:`sweep` — replay and score a grid of configurations over many traces
- the errors: :class:`TracedamonError` (the base of every error a user can cause),
  :class:`InputError`, :class:`TraceFormatError`, :class:`OutputError`,
  :class:`ConfigError`, :class:`CaptureError`, and the warning :class:`InputWarning`

Functions that write take ``force=``: an existing output is replaced only with
``force=True`` and only when it is tracedamon's own (:mod:`tracedamon.store.atomic`).
"""

__version__ = "0.1.0"

# the floor: importing it costs nothing (it imports no other module of tracedamon)
from .errors import (
    CaptureError,
    ConfigError,
    InputError,
    InputWarning,
    OutputError,
    TraceFormatError,
    TracedamonError,
)

# name -> (module, attribute), imported on first use
_LAZY = {
    "ingest": ("tracedamon.pipeline.ingest", "ingest"),
    "open_trace": ("tracedamon.store.trace", "open_trace"),
    "replay": ("tracedamon.pipeline.replay", "replay"),
    "compare": ("tracedamon.export.compare", "compare"),
    "damos": ("tracedamon.pipeline.damos", "damos"),
    "sweep": ("tracedamon.pipeline.sweep", "sweep"),
    "MonitorConfig": ("tracedamon.engine.config", "MonitorConfig"),
    "Trace": ("tracedamon.store.trace", "Trace"),
    "RegionHistory": ("tracedamon.pipeline.region_history", "RegionHistory"),
}

__all__ = [
    "__version__",
    "ingest",
    "open_trace",
    "replay",
    "compare",
    "damos",
    "sweep",
    "MonitorConfig",
    "Trace",
    "RegionHistory",
    "TracedamonError",
    "InputError",
    "TraceFormatError",
    "OutputError",
    "ConfigError",
    "CaptureError",
    "InputWarning",
]

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
