"""Addresses in the engine: unsigned outside, ``int64`` inside, one invariant between.

Traces carry addresses as unsigned 64-bit integers (perf's ``u64``, the ``uint64``
columns of every table).  The engine's arrays and numba kernels are ``int64``
(numba turns mixed signed/unsigned arithmetic into floats, so the kernels stay
signed).  Both are exact together under one invariant, checked where addresses
enter the engine and where they leave it:

    every address the engine holds is in [0, 2**63).

Nothing the monitor can cover lies above: user address spaces end far lower (see
:func:`user_limit`), physical memory too.  So at the boundary

* mappings (perf MMAP/MMAP2 records, ``/proc/PID/maps`` snapshots) that the
  kernel's VMA walk would not see are left out (:func:`user_vma_mask`);
* samples whose address is 2**63 or more (kernel addresses) are dropped
  (:func:`engine_addresses`): no region can hold them;
* ranges from the user or the trace are refused if they break the invariant
  (:func:`check_ranges`), and region rows are checked before they become ``uint64``
  again (:func:`to_unsigned`).

A value of 2**63 or more is never reinterpreted as a negative ``int64`` (which would
sort it before every user address and hand the monitor a bogus region).

Which mappings the kernel's VMA walk sees.  DAMON's vaddr operations build a target's
regions from the VMAs of its ``mm`` (``for_each_vma``).  Two kinds of mapping that a
trace may list are not there:

* the **gate area**: x86-64's ``[vsyscall]`` page at 0xffffffffff600000 (and any
  gate page an architecture lists in ``/proc/PID/maps`` through ``get_gate_vma``).
  ``/proc/PID/maps`` prints it and ``perf record -p PID`` synthesizes an MMAP for it
  from there, but it belongs to no ``mm``;
* anything at or above the **user address-space limit** (``TASK_SIZE``): no VMA of a
  process lies there (kernel-half addresses, with the top bit set, never are user
  VMAs).  The limit depends on the architecture and, on x86-64, on the paging mode
  of the recording machine (4-level: 0x7ffffffff000; 5-level: 0xfffffffffff000),
  which a trace does not record.  The rule used is the largest ``TASK_SIZE`` the
  architecture can have, so that no real VMA is ever dropped: x86-64
  0x00fffffffffff000 (5-level), aarch64 2**52 (52-bit VAs); any other or unknown
  architecture 2**63 (the kernel half).  On a 4-level x86-64 machine nothing is
  mapped between the two limits, so the result is the same.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..units import PAGE_SIZE

#: exclusive bound of every address the engine holds (the int64 invariant)
ENGINE_LIMIT = 1 << 63

#: x86-64's vsyscall gate page (VSYSCALL_ADDR), listed as ``[vsyscall]``
X86_64_VSYSCALL = 0xFFFFFFFFFF600000

#: names of gate-area mappings in /proc/PID/maps and perf MMAP records
GATE_NAMES = ("[vsyscall]",)

#: the largest user address-space limit (TASK_SIZE) per architecture (uname -m)
USER_LIMITS = {
    "x86_64": (1 << 56) - PAGE_SIZE,  # TASK_SIZE_MAX with 5-level paging
    "aarch64": 1 << 52,  # TASK_SIZE_64 with 52-bit virtual addresses
    "arm64": 1 << 52,
}


def user_limit(arch: str | None = None) -> int:
    """Exclusive upper bound of user VMAs for an architecture (``uname -m``, as perf's
    header records it); the kernel half (2**63) when the architecture is unknown."""
    return USER_LIMITS.get((arch or "").strip().lower(), ENGINE_LIMIT)


def user_vma_mask(start, end, names=None, arch: str | None = None) -> np.ndarray:
    """Which mappings (``start``/``end`` unsigned, ``names`` their paths or None) are
    VMAs the kernel's VMA walk sees: not a gate area, and below :func:`user_limit`."""
    start = np.asarray(start, dtype=np.uint64)
    end = np.asarray(end, dtype=np.uint64)
    keep = (end <= np.uint64(user_limit(arch))) & (start < end)
    if names is not None:
        nm = np.asarray(names, dtype=object)
        keep &= ~np.isin(nm, np.array(GATE_NAMES, dtype=object))
    return keep


def engine_addresses(addr) -> tuple[np.ndarray, np.ndarray | None]:
    """Unsigned addresses as the engine's ``int64``: ``(values, keep)`` where ``keep``
    is None when every address is below 2**63, else the mask of those that are (the
    caller drops the others; ``values`` then holds only the kept ones)."""
    a = np.asarray(addr)
    if a.dtype.kind == "i":
        if a.size and int(a.min()) < 0:
            raise RuntimeError(
                "negative addresses reached the engine boundary: addresses must arrive unsigned"
            )
        return a.astype(np.int64, copy=False), None
    a = a.astype(np.uint64, copy=False)
    keep = a < np.uint64(ENGINE_LIMIT)
    if keep.all():
        return a.view(np.int64), None
    return a[keep].view(np.int64), keep


def check_ranges(ranges, what: str = "range") -> np.ndarray:
    """(k, 2) ``int64`` array of address ranges, refused (ConfigError) unless every
    bound lies in [0, 2**63] and every range is non-empty."""
    out = []
    for r in np.asarray(ranges, dtype=object).reshape(-1, 2):
        s, e = int(r[0]), int(r[1])
        if s < 0 or e > ENGINE_LIMIT - 1 or e <= s:
            raise ConfigError(
                f"{what} {s:#x}-{e:#x}: addresses must satisfy 0 <= START < END < 2**63"
            )
        out.append((s, e))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def to_unsigned(values: np.ndarray, what: str = "address") -> np.ndarray:
    """The engine's ``int64`` addresses as ``uint64``, checking the invariant (a negative
    value here is a bug upstream, never a real address)."""
    v = np.asarray(values)
    if v.dtype.kind == "i" and v.size and int(v.min()) < 0:
        raise RuntimeError(
            f"a negative {what} ({int(v.min())}) left the engine: addresses must stay in [0, 2**63)"
        )
    return v.astype(np.uint64)
