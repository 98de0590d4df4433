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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, InputError
from .address import engine_addresses

ACCESS = ("perf", "perf-phys", "abit")


def _np(col: pa.ChunkedArray, dtype) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _event_names(col: pa.ChunkedArray) -> list[str]:
    if pa.types.is_dictionary(col.type):
        names = set()
        for ch in col.chunks:
            used = pc.unique(ch.indices).drop_null().to_numpy(zero_copy_only=False)
            d = ch.dictionary.to_pylist()
            names.update(d[int(i)] for i in used)
        return sorted(n for n in names if n is not None)
    return sorted(x for x in pc.unique(col).to_pylist() if x is not None)


def choose_events(names: list[str], events: list[str] | None) -> list[str]:
    """The selected event names (all ``names`` when ``events`` is empty)."""
    if events:
        unknown = [e for e in events if e not in names]
        if unknown:
            raise ConfigError(f"event(s) {', '.join(unknown)} not in the trace; it holds: "
                              f"{', '.join(names) or 'no samples'}")
        return sorted(set(events))
    return names


def select(samples: pa.Table, events: list[str] | None) -> tuple[pa.Table, list[str]]:
    """Rows of the selected events (all when ``events`` is empty) with a time."""
    names = _event_names(samples.column("event"))
    chosen = choose_events(names, events)
    return filter_events(samples, chosen, names), chosen


def filter_events(samples: pa.Table, chosen: list[str], names: list[str]) -> pa.Table:
    """Rows of the ``chosen`` events (of the trace's ``names``) that have a time."""
    ev = samples.column("event")
    if chosen != names:
        if pa.types.is_dictionary(ev.type):
            masks = []
            for ch in ev.chunks:
                keep = np.isin(np.array(ch.dictionary.to_pylist(), dtype=object),
                               np.array(chosen, dtype=object))
                idx = ch.indices.fill_null(0).to_numpy(zero_copy_only=False)
                m = keep[idx] if keep.size else np.zeros(len(ch), bool)
                masks.append(m & ~ch.is_null().to_numpy(zero_copy_only=False))
            mask = pa.array(np.concatenate(masks) if masks else np.zeros(0, bool))
        else:
            mask = pc.is_in(ev, value_set=pa.array(chosen, pa.string()))
        samples = samples.filter(mask)
    if samples.column("time_ns").null_count:
        samples = samples.filter(pc.is_valid(samples.column("time_ns")))
    return samples


def virtual_samples(samples: pa.Table, pids: list[int | None]) -> tuple[np.ndarray, ...]:
    """(time_ns, target, addr) from virtual addresses; target = index of the pid in
    ``pids`` (a ``None`` pid takes every process's samples)."""
    s = samples
    if s.column("addr").null_count:
        s = s.filter(pc.is_valid(s.column("addr")))
    t = _np(s.column("time_ns"), np.int64)
    pc_ = s.column("pid")
    pid = _np(pc_.fill_null(-1) if pc_.null_count else pc_, np.int64)
    addr, keep = engine_addresses(_np(s.column("addr"), np.uint64))
    if keep is not None:                 # kernel addresses: no region can hold them
        t, pid = t[keep], pid[keep]
    return t, _targets_of(pid, pids), addr


def _targets_of(pid: np.ndarray, pids: list[int | None]) -> np.ndarray:
    tgt = np.full(pid.shape, -1, np.int64)
    for i, p in reversed(list(enumerate(pids))):
        if p is None:
            tgt[:] = i
        else:
            tgt[pid == p] = i
    return tgt


def physical_samples(samples: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(time_ns, phys_addr) of the samples that carry a physical address."""
    s = samples.filter(pc.is_valid(samples.column("phys_addr")))
    t = _np(s.column("time_ns"), np.int64)
    a, keep = engine_addresses(_np(s.column("phys_addr"), np.uint64))
    if keep is not None:
        t = t[keep]
    keep = a != 0
    return t[keep], a[keep]


def translated_samples(samples: pa.Table, pids: list[int | None], translator):
    """perf-phys for vaddr targets: physical → (pid, virtual) through pagemap snapshots."""
    t, a = physical_samples(samples)
    if t.size == 0:
        raise InputError("perf-phys access: no sample carries a physical address "
                         "(record with `perf mem record --phys-data`)")
    vpid, vaddr = translator.phys_to_virt(a.view(np.uint64), t)
    vpid = np.asarray(vpid, np.int64)
    ok = vpid >= 0
    vaddr, keep = engine_addresses(np.asarray(vaddr, np.uint64)[ok])
    t, vpid = t[ok], vpid[ok]
    if keep is not None:
        t, vpid = t[keep], vpid[keep]
    return t, _targets_of(vpid, pids), vaddr, int((~ok).sum())


class StreamedSamples:
    """Access samples fed to a monitor batch by batch, for bounded memory.

    ``batches`` yields ``(time_ns, target, addr)`` arrays in time order (each sorted, and
    each starting no earlier than the previous one ended), the rows of one table batch
    after event/target selection.  The monitors ask for :meth:`window` in increasing
    time order; samples before the current window are dropped as batches arrive, so at
    most a batch plus one window's samples are held.  ``used`` counts the samples at or
    after ``t0`` seen so far (:meth:`drain` reads the rest, to complete the count).
    The result equals :class:`tracedamon.engine.core.AccessSamples` over the same rows.
    """

    def __init__(self, batches, t0: int):
        self._it = iter(batches)
        self._buf: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._done = False
        self._empty: bool | None = None
        self._floor = None            # samples before this time are no longer wanted
        self._last = None             # last time seen (order check)
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
        if keep is not None:             # 2**63 and above: no region holds them
            t, g = t[keep], np.asarray(g)[keep]
        if t.size == 0:
            return
        if (self._last is not None and t[0] < self._last) or np.any(t[1:] < t[:-1]):
            raise InputError("the samples are not in time order (a streamed replay needs "
                             "them sorted by time_ns)")
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
                rest = [(t[hi:], g[hi:], p[hi:])] + self._buf[i + 1:]
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
