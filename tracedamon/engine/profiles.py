"""Kernel profiles: which kernel generation's monitoring behaviour a replay mirrors.

One name (``replay --kernel PROFILE``, ``MonitorConfig.kernel``) selects a bundle
of behaviours of DAMON's core; the names are DAMOS's profiles
(:mod:`tracedamon.engine.damos.scheme`), so one ``--kernel`` value means the same
kernel for the monitor and for the schemes applied to its history.  The
``--fix`` switches stay for single quirks on top of a profile.

``released`` (the default): v6.15 ... v6.18.y, the behaviour the engine has
always mirrored (``docs/damon-engine-spec.md``): the merge loop counts ages on
every pass (Q3) and doubles its threshold until the pass at or above the
largest possible ``nr_accesses``; the random split stops above
``max_nr_regions / 2`` and then leaves ``last_nr_regions`` alone (Q11);
``damon_rand`` is ``get_random_u32_below`` (the span truncated to 32 bits,
Q1) -- the replay draws it from its PCG32 stream with the kernel's Lemire
reduction; ``nr_accesses_bp`` is the per-sample moving sum (with the Q4 residue
a snapshot shows); ``min_nr_regions`` is the merge size cap only (``legacy``,
unless ``--min-nr-regions-mode apply``); the paddr default range is the biggest
"System RAM" resource.  On a size tie that is the *last* one found:
``walk_system_ram()`` (gregkh/linux ``mm/damon/core.c`` @ 0ba956a2) compares the
kept range's ``end - start`` -- ``end`` stored inclusive (Q14), one byte short
-- with ``resource_size(res) < ``, so a later resource of equal size replaces it.

``released-nofix``: DAMOS's name for the released code before the 2026 stable
fix of the quota's resume address; that fix is DAMOS-only, so its monitoring is
``released``'s.

``mainline-2026``: the mm tree ``kernelorg-mirror/linux_kernel_git_mm_linux`` @
43ecc9c4 (``mm/damon/core.c``) plus the per-context PRNG patch (see
:mod:`tracedamon.engine.prng`):

* ``kdamond_split_regions``: ``n >= max_nr_regions`` splits nothing;
  ``n > max_nr_regions / 2`` calls ``damon_split_some_regions(ctx, max / (max -
  n))``, which splits one region in every ``step`` (counted over all targets)
  from the offset ``rotation++ % step`` (``rotation`` a function-static counter,
  like ``last_nr_regions``), each region of at least ``2 * min_region_sz`` once,
  at ``ALIGN_DOWN(damon_rand(1, 10) * sz / 10, min_region_sz)``;
  ``last_nr_regions`` is updated on every path;
* ``kdamond_merge_regions``: ages are counted on the first pass only
  (``count_age``); later passes double the threshold while it is below
  ``max_thres / 2`` and otherwise use ``max_thres`` itself, and the loop ends after
  a pass at ``max_thres`` or once ``nr_regions <= max_nr_regions``;
* ``damon_apply_min_nr_regions`` at start and after every merge (``apply`` mode);
* ``damon_rand``: the context's lfsr113 stream, ``(u64)rnd * span >> 32``;
* ``nr_accesses_bp`` is gone: ``damon_update_region_access_rate`` only counts, and
  readers call ``damon_nr_accesses_mvsum``, which at an aggregation boundary is
  ``nr_accesses`` itself -- the history's ``nr_accesses_bp`` column is therefore
  ``nr_accesses * 10000`` (no Q4 residue);
* paddr's default range (``damon_set_region_system_rams_default``): from the start
  of the first "System RAM" resource to the end of the last one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class KernelProfile:
    name: str
    split_some: bool = False  # partial split above max_nr_regions / 2
    merge_count_age_once: bool = False
    merge_thres_capped: bool = False  # threshold capped at max_thres, last pass at it
    min_nr_regions_mode: str | None = None  # forced mode, None: the config's
    prng: str = "pcg32"  # "pcg32" (get_random_u32_below) or "lfsr113"
    mvsum: bool = False  # on-demand moving sum instead of nr_accesses_bp
    paddr_default: str = "biggest"  # "biggest" System RAM (ties: last) or "all"
    source: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_RELEASED_SRC = "v6.15-v6.18 (gregkh/linux mm/damon/core.c @ 0ba956a2)"
PROFILES: dict[str, KernelProfile] = {
    "released": KernelProfile("released", source=_RELEASED_SRC),
    "released-nofix": KernelProfile("released-nofix", source=_RELEASED_SRC),
    "mainline-2026": KernelProfile(
        "mainline-2026",
        split_some=True,
        merge_count_age_once=True,
        merge_thres_capped=True,
        min_nr_regions_mode="apply",
        prng="lfsr113",
        mvsum=True,
        paddr_default="all",
        source="mm tree kernelorg-mirror/linux_kernel_git_mm_linux @ 43ecc9c4 "
        "mm/damon/core.c; per-ctx lfsr113 damon_rand (v2, 2026-05)",
    ),
}
DEFAULT_KERNEL = "released"


def kernel_profile(name) -> KernelProfile:
    """The profile called ``name`` (ConfigError naming the choices otherwise)."""
    if isinstance(name, KernelProfile):
        return name
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown kernel profile {name!r} (one of {', '.join(PROFILES)})"
        ) from None
