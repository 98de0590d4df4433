"""DAMOS (DAMON-based Operation Schemes) over region arrays, as the kernel applies them.

* :mod:`.scheme` -- schemes, quotas, filters, watermarks (validated like the kernel),
  kernel profiles and the context the walk needs;
* :mod:`.core` -- :func:`apply_schemes`, the ``kdamond_apply_schemes`` step: call it
  after the merge of an aggregation, before reset and split; its parts: :mod:`.state`
  (what the kernel keeps per scheme, watermarks), :mod:`.quota` (charge windows,
  effective quota), :mod:`.score` (scores, the score histogram), :mod:`.walk` (the
  region walk) over the array layouts of :mod:`.layout`;
* :mod:`.ops_model` -- the ops' side of an application (ops filters per page, what
  an action achieves), modelled;
* :mod:`.outcome` -- what the actions would have done to the recorded workload.

Pure: numpy/numba arrays in and out, no I/O (``damos-spec.md`` is the reference).
"""

from .core import StepResult, apply_schemes
from .state import (
    DamosState,
    SchemeState,
    new_state,
    set_resume,
    update_watermarks,
)
from .scheme import (
    ACTIONS,
    FILTER_TYPES,
    PROFILES,
    AccessPattern,
    Context,
    Filter,
    Profile,
    Quota,
    QuotaGoal,
    Scheme,
    Watermarks,
    profile,
)

__all__ = [
    "ACTIONS",
    "FILTER_TYPES",
    "PROFILES",
    "AccessPattern",
    "Context",
    "DamosState",
    "Filter",
    "Profile",
    "Quota",
    "QuotaGoal",
    "Scheme",
    "SchemeState",
    "StepResult",
    "Watermarks",
    "apply_schemes",
    "new_state",
    "profile",
    "set_resume",
    "update_watermarks",
]
