"""The engine's one source of randomness: a seeded PCG32 generator in numba.

DAMON draws random numbers at two places only (spec §15.1): the sampling
address of every region in every sample interval (accessed-bit mode) and the
split points at each aggregation.  The kernel uses ``get_random_u32_below``;
the replay uses PCG32 (XSH-RR, 64-bit state) seeded from ``MonitorConfig.seed``
and reduces its 32-bit outputs to a range with the same Lemire
multiply-and-reject method the kernel uses (``rand_below``).

The generator state lives in a two-element ``uint64`` array ``[state, inc]`` so
numba kernels can advance it in place.  Everything here also runs as plain
Python under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GENERATOR = "pcg32-xsh-rr"

_MULT = np.uint64(6364136223846793005)
_MASK32 = np.uint64(0xFFFFFFFF)
_STREAM = 0xDA3E39CB94B95BDB


def new_rng(seed: int) -> np.ndarray:
    """A generator state array for ``seed`` (any non-negative integer < 2**64)."""
    st = np.zeros(2, dtype=np.uint64)
    st[1] = np.uint64(((_STREAM << 1) | 1) & 0xFFFFFFFFFFFFFFFF)
    next_u32(st)
    st[0] = np.uint64((int(st[0]) + int(seed)) & 0xFFFFFFFFFFFFFFFF)
    next_u32(st)
    return st


@njit(cache=True)
def next_u32(st):
    """Advance the generator and return its next 32-bit output (as uint64)."""
    old = st[0]
    st[0] = old * _MULT + st[1]
    xs = (((old >> np.uint64(18)) ^ old) >> np.uint64(27)) & _MASK32
    rot = old >> np.uint64(59)
    return ((xs >> rot) | (xs << ((np.uint64(32) - rot) & np.uint64(31)))) & _MASK32


@njit(cache=True)
def rand_below(st, n64, fix_rand32):
    """A value in ``[0, n64)``, drawn like the kernel's ``damon_rand`` (spec §3.1).

    Kernel-compatible by default: the range is truncated to 32 bits (quirk Q1)
    and a truncated range of 0 returns the raw 32-bit draw.  With
    ``fix_rand32`` ranges of 2**32 and more are drawn over their full width.
    """
    n64 = np.uint64(n64)
    if fix_rand32 and n64 > _MASK32:
        bits = 0
        v = n64 - np.uint64(1)
        while v > np.uint64(0):
            v = v >> np.uint64(1)
            bits += 1
        mask = (
            (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
            if bits < 64
            else np.uint64(0xFFFFFFFFFFFFFFFF)
        )
        while True:
            hi = next_u32(st)
            lo = next_u32(st)
            x = ((hi << np.uint64(32)) | lo) & mask
            if x < n64:
                return np.int64(x)
    n = n64 & _MASK32
    x = next_u32(st)
    if n == np.uint64(0):
        return np.int64(x)
    m = x * n
    if (m & _MASK32) < n:
        bound = ((np.uint64(1) << np.uint64(32)) - n) % n
        while (m & _MASK32) < bound:
            m = next_u32(st) * n
    return np.int64(m >> np.uint64(32))
