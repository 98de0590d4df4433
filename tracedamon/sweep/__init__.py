"""Deprecated path of :mod:`tracedamon.pipeline.sweep` (kept for one release).

``tracedamon.sweep`` and ``tracedamon.sweep.{batch,grid,runner,summary,task}`` are the
modules of :mod:`tracedamon.pipeline.sweep` under their old names (the same module
objects, so patching one patches the other).
"""

import sys

from ..pipeline import sweep as _sweep
from ..pipeline.sweep import batch, grid, runner, summary, task

sys.modules[__name__] = _sweep
for _module in (batch, grid, runner, summary, task):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
