"""paddr operations: the physical address space.

The monitored range is, in order of preference: the user's ``--range``s; the
biggest "System RAM" range when the trace directory knows it (``meta.json`` key
``system_ram``: a list of ``[start, end)`` byte ranges, e.g. from
``/proc/iomem``; on a size tie the first one, like newer kernels); else the span
of the sampled physical addresses, page-aligned.  The choice is reported in
the replay's metadata.
"""
from __future__ import annotations

import numpy as np

from ...errors import InputError
from ..config import PAGE_SIZE


def biggest_system_ram(ranges) -> tuple[int, int] | None:
    best = None
    for r in ranges or []:
        s, e = int(r[0]), int(r[1])
        if e > s and (best is None or e - s > best[1] - best[0]):
            best = (s, e)
    return best


def default_range(meta: dict, phys: np.ndarray) -> tuple[np.ndarray, str]:
    """(ranges, source) for a paddr target without ``--range``."""
    ram = biggest_system_ram(meta.get("system_ram"))
    if ram is not None:
        return np.array([ram], np.int64), "biggest System RAM range (trace metadata)"
    phys = phys[phys > 0] if phys.size else phys
    if phys.size == 0:
        raise InputError("paddr replay: no --range given, the trace does not know its System "
                         "RAM, and no sample carries a physical address")
    lo = int(phys.min()) // PAGE_SIZE * PAGE_SIZE
    hi = (int(phys.max()) // PAGE_SIZE + 1) * PAGE_SIZE
    return np.array([(lo, hi)], np.int64), "span of the sampled physical addresses"
