"""mainline-2026's ``damon_rand``: a per-context lfsr113 generator (numba).

Source followed: Jiayuan Chen, "mm/damon: replace damon_rand() with a per-ctx
lockless PRNG" v2 (linux-mm, 2026-05-05; lore thread of 2026-05-06), whose
callers are in the mm tree's ``mm/damon/core.c`` at
``kernelorg-mirror/linux_kernel_git_mm_linux@43ecc9c4`` (``damon_rand(ctx, 1, 10)``
in ``damon_split_regions_of`` and ``damon_split_some_regions``).  The kernel's
``include/linux/damon.h`` of that tree is not among the stored trees, so the
range mapping below follows the patch's description:

* the state is the kernel's ``struct rnd_state`` (four u32 words) advanced by
  ``prandom_u32_state`` -- L'Ecuyer's maximally equidistributed combined
  Tausworthe generator "lfsr113" (lib/random32.c);
* the kernel seeds it once per context with ``prandom_seed_state(&rnd,
  get_random_u64())`` in ``damon_new_ctx()``.  The replay seeds it the same way
  from ``--seed`` instead of ``get_random_u64()``, so a fixed seed gives a fixed
  stream;
* ``damon_rand(ctx, l, r) = l + rand_below(r - l)`` with, for a span that fits
  32 bits, ``((u64)prandom_u32_state() * span) >> 32`` -- one draw, no
  rejection, so no 32-bit truncation of the span either (quirk Q1 is gone);
* for a span of 2**32 or more, two outputs are combined into a 64-bit value
  and mapped with ``mul_u64_u64_shr(x, span, 64)``.  The patch text does not say
  which output is the high word; the first one drawn is taken as the high word
  here (as ``rand_below_fixed`` does in the spec, §3.1).

The state is a ``uint64`` array of four words (each below 2**32), so the engine's
draw routine tells it from the PCG32 state (two words) by its length.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GENERATOR = "lfsr113"

_M32 = np.uint64(0xFFFFFFFF)


def _seed_word(x: int, m: int) -> int:
    """The kernel's ``__seed``: lfsr113 needs each word above a small minimum."""
    return x + m if x < m else x


def lfsr113_new(seed: int) -> np.ndarray:
    """The state ``prandom_seed_state(state, seed)`` makes (``seed`` a u64)."""
    seed &= (1 << 64) - 1
    i = ((seed >> 32) ^ (seed << 10) ^ seed) & 0xFFFFFFFF
    return np.array(
        [_seed_word(i, 2), _seed_word(i, 8), _seed_word(i, 16), _seed_word(i, 128)], dtype=np.uint64
    )


@njit(cache=True)
def lfsr113_next(st):
    """``prandom_u32_state``: advance the four Tausworthe components, return their xor."""
    s1, s2, s3, s4 = st[0], st[1], st[2], st[3]
    s1 = (((s1 & np.uint64(4294967294)) << np.uint64(18)) & _M32) ^ (
        (((s1 << np.uint64(6)) & _M32) ^ s1) >> np.uint64(13)
    )
    s2 = (((s2 & np.uint64(4294967288)) << np.uint64(2)) & _M32) ^ (
        (((s2 << np.uint64(2)) & _M32) ^ s2) >> np.uint64(27)
    )
    s3 = (((s3 & np.uint64(4294967280)) << np.uint64(7)) & _M32) ^ (
        (((s3 << np.uint64(13)) & _M32) ^ s3) >> np.uint64(21)
    )
    s4 = (((s4 & np.uint64(4294967168)) << np.uint64(13)) & _M32) ^ (
        (((s4 << np.uint64(3)) & _M32) ^ s4) >> np.uint64(12)
    )
    st[0], st[1], st[2], st[3] = s1, s2, s3, s4
    return s1 ^ s2 ^ s3 ^ s4


@njit(cache=True)
def _mul_hi64(a, b):
    """The high 64 bits of the 128-bit product of two u64 (``mul_u64_u64_shr(a, b, 64)``)."""
    a_lo = a & _M32
    a_hi = a >> np.uint64(32)
    b_lo = b & _M32
    b_hi = b >> np.uint64(32)
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    mid = (ll >> np.uint64(32)) + (lh & _M32) + (hl & _M32)
    return hh + (lh >> np.uint64(32)) + (hl >> np.uint64(32)) + (mid >> np.uint64(32))


@njit(cache=True)
def lfsr113_below(st, n64):
    """A value in ``[0, n64)`` (``n64 >= 1``) as mainline-2026's ``damon_rand`` maps it."""
    n = np.uint64(n64)
    if n <= _M32:
        return np.int64((lfsr113_next(st) * n) >> np.uint64(32))
    hi = lfsr113_next(st)
    lo = lfsr113_next(st)
    return np.int64(_mul_hi64((hi << np.uint64(32)) | lo, n))
