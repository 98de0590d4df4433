"""Deprecated: use :mod:`tracedamon.store.trace` (this alias goes in the next release)."""

from .store.trace import Trace, open_trace  # noqa: F401
