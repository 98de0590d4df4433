"""paddr operations: the physical address space.

The monitored range is, in order of preference: the user's ``--range``s; the
biggest "System RAM" range when the trace directory knows it (``meta.json`` key
``system_ram``: a list of ``[start, end)`` byte ranges, e.g. from
``/proc/iomem``; on a size tie the first one, like newer kernels); else the
biggest run of contiguous online memory blocks in perf's MEM_TOPOLOGY header
feature (``meta.json`` key ``mem_topology``, which ``perf record`` writes into
every perf.data: the same memory the kernel lists as System RAM, at memory-block
granularity); else the span of the sampled physical addresses, page-aligned.  The
choice is reported in the replay's metadata.
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


def mem_topology_ranges(topo) -> list[tuple[int, int]]:
    """Byte ranges of runs of contiguous memory blocks from a MEM_TOPOLOGY feature
    (``{"block_size": B, "nodes": [{"node": n, "blocks": [k, ...]}, ...]}``)."""
    if not isinstance(topo, dict) or not topo.get("block_size"):
        return []
    bs = int(topo["block_size"])
    blocks = sorted({int(k) for nd in topo.get("nodes", []) for k in nd.get("blocks", [])})
    out: list[tuple[int, int]] = []
    for k in blocks:
        if out and out[-1][1] == k * bs:
            out[-1] = (out[-1][0], (k + 1) * bs)
        else:
            out.append((k * bs, (k + 1) * bs))
    return out


def default_range(meta: dict, phys: np.ndarray) -> tuple[np.ndarray, str]:
    """(ranges, source) for a paddr target without ``--range``."""
    ram = biggest_system_ram(meta.get("system_ram"))
    if ram is not None:
        return np.array([ram], np.int64), "biggest System RAM range (trace metadata)"
    ram = biggest_system_ram(mem_topology_ranges(meta.get("mem_topology")))
    if ram is not None:
        return (np.array([ram], np.int64),
                "biggest run of memory blocks in perf's MEM_TOPOLOGY (trace metadata)")
    phys = phys[phys > 0] if phys.size else phys
    if phys.size == 0:
        msg = ("paddr replay: no {} given, the trace does not know its System RAM, and no "
               "sample carries a physical address")
        raise InputError(msg.format("ranges"), cli_message=msg.format("--range"))
    lo = int(phys.min()) // PAGE_SIZE * PAGE_SIZE
    hi = (int(phys.max()) // PAGE_SIZE + 1) * PAGE_SIZE
    return np.array([(lo, hi)], np.int64), "span of the sampled physical addresses"
