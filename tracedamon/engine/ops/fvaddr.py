"""fvaddr operations: fixed virtual address ranges of a process (``--range``).

The kernel's fvaddr is vaddr without the init and update hooks: the regions are
the user's ranges, installed once with ``damon_set_regions``.  (:func:`parse_range`,
the ``START-END`` parser, lives in :mod:`tracedamon.units`.)
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...units import parse_range
from ..address import ENGINE_LIMIT
from .base import (
    Operations,
    check_per_target,
    given_ranges,
    prepare_per_target,
    process_valid,
    set_regions_init,
)

FVADDR = Operations(
    name="fvaddr",
    space="virtual",
    init_ranges=given_ranges,
    init_regions=set_regions_init,
    update=None,
    prepare_access_checks=prepare_per_target,
    check_accesses=check_per_target,
    target_valid=process_valid,
)


def normalize_ranges(ranges) -> np.ndarray:
    """Sorted (k, 2) int64 array; overlapping ranges are refused like the kernel does."""
    rs = []
    for r in ranges:
        if isinstance(r, str):
            try:
                rs.append(parse_range(r))
            except ValueError as e:
                raise ConfigError(str(e)) from None
        else:
            rs.append((int(r[0]), int(r[1])))
    for s, e in rs:
        if s < 0 or e <= s:
            raise ConfigError(f"range {s:#x}-{e:#x}: END must be greater than START")
        if e >= ENGINE_LIMIT:
            raise ConfigError(f"range {s:#x}-{e:#x}: addresses must be below 2**63")
    rs.sort()
    for (s1, e1), (s2, e2) in zip(rs, rs[1:]):
        if s2 < e1:
            raise ConfigError(f"ranges {s1:#x}-{e1:#x} and {s2:#x}-{e2:#x} overlap")
    return np.array(rs, dtype=np.int64).reshape(-1, 2)


def aligned_union(ranges: np.ndarray, align: int) -> np.ndarray:
    """Ranges aligned out to ``align``, overlapping results united (so that regions built
    from them never overlap)."""
    out: list[list[int]] = []
    for s, e in sorted(
        (int(a) // align * align, -(-int(b) // align) * align)
        for a, b in np.asarray(ranges).reshape(-1, 2)
    ):
        if out and s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, dtype=np.int64).reshape(-1, 2)
