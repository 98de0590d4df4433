"""Access sources: which samples count, and at which address (spec §12, §13).

* ``perf`` -- the RFC's perf-event check with virtual addresses: a region of a
  vaddr/fvaddr target is accessed in a sample interval iff a sample of the
  target's process hit one of its pages (matched by pid and 4 KiB page; below a
  page, by the byte: regions may be as small as a cache line).
* ``perf-phys`` -- the same with physical addresses: paddr regions match the
  sample's physical page directly (any process); vaddr/fvaddr targets get the
  physical address translated back to (pid, virtual address) through the
  pagemap snapshots (``translate.Translator``, nearest snapshot in time).
* ``abit`` -- the PTE accessed-bit check emulated over the samples: one random
  address per region per interval, accessed iff a sample hit its page in that
  interval (virtual addresses for vaddr/fvaddr, physical for paddr).

Several ``--event``s are OR'ed: samples of any selected event count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .address import engine_addresses
from .checks import PAGE_MASK

ACCESS = ("perf", "perf-phys", "abit")


@dataclass
class AccessSamples:
    """Access samples, sorted by time: ``time_ns``, ``target`` (index, -1 = none) and
    ``addr`` (the sampled address, to the byte, in the target's address space).

    Addresses are kept whole: the perf checks count a region when a sample lies in it,
    at any region size down to a cache line (region boundaries are multiples of the
    minimum region size, so the byte decides exactly what its page or cache line
    would); the accessed-bit check takes the page itself."""

    time_ns: np.ndarray
    target: np.ndarray
    addr: np.ndarray

    def __post_init__(self):
        self.time_ns = np.ascontiguousarray(self.time_ns, dtype=np.int64)
        self.target = np.ascontiguousarray(self.target, dtype=np.int64)
        addr, keep = engine_addresses(self.addr)
        if keep is not None:  # 2**63 and above: no region holds them
            self.time_ns, self.target = self.time_ns[keep], self.target[keep]
        self.addr = np.ascontiguousarray(addr, dtype=np.int64)
        if self.time_ns.size > 1 and np.any(np.diff(self.time_ns) < 0):
            order = np.argsort(self.time_ns, kind="stable")
            self.time_ns, self.target, self.addr = (
                self.time_ns[order],
                self.target[order],
                self.addr[order],
            )

    @property
    def page(self) -> np.ndarray:
        """The 4 KiB page of each address."""
        return self.addr & PAGE_MASK

    @property
    def empty(self) -> bool:
        return self.time_ns.size == 0

    def window(self, t_from: int, t_to: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time_ns, target, addr) of the samples with ``t_from <= time < t_to``.

        The monitors ask for windows in increasing time order; a streamed source (see
        :class:`tracedamon.engine.access.StreamedSamples`) relies on that."""
        lo, hi = np.searchsorted(self.time_ns, [t_from, t_to], side="left")
        return self.time_ns[lo:hi], self.target[lo:hi], self.addr[lo:hi]


class StreamedSamples:
    """Access samples fed to a monitor batch by batch, for bounded memory.

    ``batches`` yields ``(time_ns, target, addr)`` arrays in time order (each sorted, and
    each starting no earlier than the previous one ended), the rows of one table batch
    after event/target selection.  The monitors ask for :meth:`window` in increasing
    time order; samples before the current window are dropped as batches arrive, so at
    most a batch plus one window's samples are held.  ``used`` counts the samples at or
    after ``t0`` seen so far (:meth:`drain` reads the rest, to complete the count).
    The result equals :class:`AccessSamples` over the same rows.
    """

    def __init__(self, batches, t0: int):
        self._it = iter(batches)
        self._buf: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._done = False
        self._empty: bool | None = None
        self._floor = None  # samples before this time are no longer wanted
        self._last = None  # last time seen (order check)
        self.t0 = int(t0)
        self.used = 0

    def _pull(self) -> None:
        try:
            t, g, a = next(self._it)
        except StopIteration:
            self._done = True
            return
        t = np.ascontiguousarray(t, dtype=np.int64)
        a, keep = engine_addresses(a)
        if keep is not None:  # 2**63 and above: no region holds them
            t, g = t[keep], np.asarray(g)[keep]
        if t.size == 0:
            return
        if (self._last is not None and t[0] < self._last) or np.any(t[1:] < t[:-1]):
            raise InputError(
                "the samples are not in time order (a streamed replay needs them sorted by time_ns)"
            )
        self._last = int(t[-1])
        self.used += t.size - int(np.searchsorted(t, self.t0, side="left"))
        if self._empty is None:
            self._empty = False
        g = np.ascontiguousarray(g, dtype=np.int64)
        p = np.ascontiguousarray(a, dtype=np.int64)
        if self._floor is not None:
            k = int(np.searchsorted(t, self._floor, side="left"))
            if k == t.size:
                return
            t, g, p = t[k:], g[k:], p[k:]
        self._buf.append((t, g, p))

    @property
    def empty(self) -> bool:
        """True when the whole stream has no sample."""
        while self._empty is None and not self._done:
            self._pull()
        return not bool(self._empty is False)

    def window(self, t_from: int, t_to: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time_ns, target, addr) of the samples with ``t_from <= time < t_to``."""
        self._floor = t_from
        while not self._done and (not self._buf or self._buf[-1][0][-1] < t_to):
            self._pull()
        parts = []
        rest = []
        for i, (t, g, p) in enumerate(self._buf):
            lo, hi = np.searchsorted(t, [t_from, t_to], side="left")
            if hi > lo:
                parts.append((t[lo:hi], g[lo:hi], p[lo:hi]))
            if hi < t.size:
                rest = [(t[hi:], g[hi:], p[hi:])] + self._buf[i + 1 :]
                break
        self._buf = rest
        if not parts:
            z = np.zeros(0, np.int64)
            return z, z, z
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate([x[k] for x in parts]) for k in range(3))

    def drain(self) -> int:
        """Read the rest of the stream (nothing is kept); returns ``used``."""
        self._buf = []
        self._floor = np.iinfo(np.int64).max
        while not self._done:
            self._pull()
        return self.used
