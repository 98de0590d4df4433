"""Deprecated path of :mod:`tracedamon.pipeline.damos_history` (kept for one release): the same
module object under its old name."""

import sys

from .pipeline import damos_history as _module

sys.modules[__name__] = _module
