"""Random draws of the monitor: the kernel profile's generator, or an injected sequence.

:func:`draw` is the one place the core and the access checks take a random value
(``damon_rand`` in the kernel); tests inject the spec's worked examples' values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .prng import lfsr113_below, lfsr113_new
from .rng import new_rng, rand_below


# --------------------------------------------------------------------------------------
# random draws (with an optional injected sequence, for exact worked-example tests)
# --------------------------------------------------------------------------------------
@njit(cache=True)
def draw(st, n, fix_rand32, inj, injpos):
    """A value in [0, n): the next injected one, else from the generator ``st`` -- a
    two-word PCG32 state (released kernels' ``get_random_u32_below``) or a four-word
    lfsr113 state (mainline-2026's per-context ``damon_rand``, :mod:`.prng`)."""
    if injpos[0] < inj.shape[0]:
        v = inj[injpos[0]]
        injpos[0] += 1
        return v
    if st.shape[0] == 4:
        return lfsr113_below(st, n)
    return rand_below(st, n, fix_rand32)


def new_generator(seed: int, prng: str) -> np.ndarray:
    """The state of a kernel profile's generator (``pcg32`` or ``lfsr113``) for ``seed``."""
    return lfsr113_new(seed) if prng == "lfsr113" else new_rng(seed)
