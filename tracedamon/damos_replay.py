"""Deprecated path of :mod:`tracedamon.pipeline.damos_replay` (kept for one release): the same
module object under its old name."""

import sys

from .pipeline import damos_replay as _module

sys.modules[__name__] = _module
