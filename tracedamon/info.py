"""Deprecated: `tracedamon info`'s text is :mod:`tracedamon.cli.info`'s, its reading
:mod:`tracedamon.pipeline.info`'s. This module re-exports both for one release (it goes in the
next release)."""

from __future__ import annotations

from .cli.info import describe, describe_history, render
from .pipeline.info import history_stats as _history_stats
from .pipeline.info import sample_stats as _sample_stats
from .pipeline.info import summarize

__all__ = ["describe", "describe_history", "render", "summarize", "_history_stats", "_sample_stats"]
