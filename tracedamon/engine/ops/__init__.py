"""Operations sets: what plugs into the monitor's core, as the kernel's
``struct damon_operations`` does.

The core (:mod:`tracedamon.engine.core`, :mod:`tracedamon.engine.fixed`) knows nothing
of processes or physical memory: it calls the :class:`Operations` of its context.  Each
set lives in its own module and provides its own pieces:

======================  =============================================================
``init_ranges``         at start (``damon_operations.init``): a target's address
                        ranges, or None when they cannot be determined (vaddr: the
                        three regions of its mappings; fvaddr, paddr: the given ranges)
``init_regions``        how the core cuts its first regions from those ranges (vaddr on
                        released kernels: evenly split, ``__damon_va_init_regions``;
                        else ``damon_set_regions``)
``update``              at each ops update (``damon_operations.update``): the ranges to
                        fit the target's regions to, or None to leave them (vaddr: the
                        three regions again; fvaddr and paddr have no update hook:
                        ``update`` is None and the core skips the call)
``prepare_access_checks``  per run of sample intervals: the window's samples keyed the
                        way this set checks them (virtual sets: per target; paddr: one
                        physical space for every target)
``check_accesses``      the access check itself over the prepared window: the perf
                        histogram check, or the accessed-bit emulation with this set's
                        last-verdict cache rule (per target; paddr: global, quirk Q5)
``target_valid``        whether a target is still valid at a time (the kernel's
                        ``target_valid``; the core stops when none is,
                        ``kdamond_need_stop``): vaddr and fvaddr, while the process
                        exists; paddr has none (None: it never stops).  The virtual
                        sets' prepare and check also skip a target whose mm is gone
                        (:mod:`tracedamon.engine.lifetime`)
======================  =============================================================

:func:`get` returns a registered set by name (``vaddr``, ``fvaddr``, ``paddr``).
"""

from __future__ import annotations

from ...errors import ConfigError
from .base import Operations
from .fvaddr import FVADDR
from .paddr import PADDR
from .vaddr import VADDR

REGISTRY: dict[str, Operations] = {o.name: o for o in (VADDR, FVADDR, PADDR)}
NAMES = tuple(REGISTRY)


def get(ops: str | Operations) -> Operations:
    """The operations set named ``ops`` (an :class:`Operations` is returned as is)."""
    if isinstance(ops, Operations):
        return ops
    try:
        return REGISTRY[ops]
    except (KeyError, TypeError):
        raise ConfigError(
            f"ops must be one of {', '.join(NAMES)}, not {ops!r}",
            cli_message=f"--ops must be one of {', '.join(NAMES)}, not {ops!r}",
        ) from None


__all__ = ["FVADDR", "NAMES", "Operations", "PADDR", "REGISTRY", "VADDR", "get"]
