"""Loads of little- and big-endian integers at any byte offset of a uint8 buffer
(numba kernels), and the aligned uint64 view they use.

Records need not be 8-byte aligned (perf 6.1 writes unpadded COMPRESSED and pipe
FEATURE records): :func:`u64_at` uses an aligned load when it can and assembles bytes
otherwise.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def le_u64_at(buf, p):
    """The little-endian u64 at any byte offset."""
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(buf[p + k]) << np.uint64(8 * k)
    return v


@_jit
def u64_at(buf, buf64, p):
    if (p & 7) == 0:
        return buf64[p >> 3]
    return le_u64_at(buf, p)


@_jit
def u32_at(buf, p):
    return (
        np.uint32(buf[p])
        | (np.uint32(buf[p + 1]) << np.uint32(8))
        | (np.uint32(buf[p + 2]) << np.uint32(16))
        | (np.uint32(buf[p + 3]) << np.uint32(24))
    )


@_jit
def be_u32_at(buf, p):
    return (
        (np.uint32(buf[p]) << np.uint32(24))
        | (np.uint32(buf[p + 1]) << np.uint32(16))
        | (np.uint32(buf[p + 2]) << np.uint32(8))
        | np.uint32(buf[p + 3])
    )


def as_u64_view(buf: np.ndarray) -> np.ndarray:
    """A uint64 view of the 8-aligned whole words of ``buf`` (numpy allocations are
    aligned; the tail beyond the last whole word is read through the byte path)."""
    n = len(buf) // 8
    base = buf.ctypes.data
    if base % 8:
        return np.zeros(0, dtype=np.uint64)
    return buf[: n * 8].view(np.uint64)
