"""Deprecated path of :mod:`tracedamon.pipeline.schemes` (kept for one release): the same
module object under its old name."""

import sys

from .pipeline import schemes as _module

sys.modules[__name__] = _module
