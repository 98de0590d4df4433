"""Access sources: which samples count, and at which address (spec §12, §13).

* ``perf`` -- the RFC's perf-event check with virtual addresses: a region of a
  vaddr/fvaddr target is accessed in a sample interval iff a sample of the
  target's process hit one of its pages (matched by pid and 4 KiB page).
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


def select(samples: pa.Table, events: list[str] | None) -> tuple[pa.Table, list[str]]:
    """Rows of the selected events (all when ``events`` is empty) with a time."""
    ev = samples.column("event")
    names = _event_names(ev)
    if events:
        unknown = [e for e in events if e not in names]
        if unknown:
            raise ConfigError(f"event(s) {', '.join(unknown)} not in the trace; it holds: "
                              f"{', '.join(names) or 'no samples'}")
        chosen = sorted(set(events))
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
    else:
        chosen = names
    if samples.column("time_ns").null_count:
        samples = samples.filter(pc.is_valid(samples.column("time_ns")))
    return samples, chosen


def virtual_samples(samples: pa.Table, pids: list[int | None]) -> tuple[np.ndarray, ...]:
    """(time_ns, target, addr) from virtual addresses; target = index of the pid in
    ``pids`` (a ``None`` pid takes every process's samples)."""
    s = samples
    if s.column("addr").null_count:
        s = s.filter(pc.is_valid(s.column("addr")))
    t = _np(s.column("time_ns"), np.int64)
    pc_ = s.column("pid")
    pid = _np(pc_.fill_null(-1) if pc_.null_count else pc_, np.int64)
    addr = _np(s.column("addr"), np.uint64).view(np.int64)
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
    a = _np(s.column("phys_addr"), np.uint64).view(np.int64)
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
    vaddr = np.asarray(vaddr).astype(np.uint64).view(np.int64)
    ok = vpid >= 0
    return t[ok], _targets_of(vpid[ok], pids), vaddr[ok], int((~ok).sum())
