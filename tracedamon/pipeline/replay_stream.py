"""The samples the replay streams into the engine: (time_ns, target, addr) batches in
time order, as the targets see them (:meth:`ReplayState.convert`), read again for each
pass over the trace (``--start auto`` makes more than one)."""

from __future__ import annotations

import numpy as np

from .replay_state import ReplayState
from .samples import translated_samples


def access_batches(r: ReplayState):
    """A callable giving the (time_ns, target, addr) batches the targets see, in time
    order (called again for each pass); the whole table converted once when it is in
    memory."""

    def streamed_batches():
        for tb in r.selected():
            t_, g_, a_ = r.convert(tb)
            keep = g_ >= 0
            if not keep.all():
                t_, g_, a_ = t_[keep], g_[keep], a_[keep]
            yield t_, g_, a_

    if r.src.streamed:
        return streamed_batches
    # the whole table in memory: convert it once, sorted by time like AccessSamples;
    # without a pagemap translation the result depends on the samples, the address
    # space and the selection alone, so replays of one in-memory source share it
    key = shared_key(r)
    one = _whole(r) if key is None else r.src.remember(key, lambda: _whole(r))

    def one_batch():
        yield one

    return one_batch


def shared_key(r: ReplayState) -> tuple | None:
    """What the (time_ns, target, addr) samples a replay sees depend on, besides the
    samples themselves: physical or virtual addresses, the targets' pids, the chosen
    events -- or None when a pagemap translation takes part (not shared then)."""
    if r.translator is not None:
        return None
    return ("access", r.physical, tuple(r.tpids), tuple(r.chosen))


def _whole(r: ReplayState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time_ns, target, addr) of an in-memory table's selected samples, by time."""
    tb = next(r.selected())
    if r.access == "perf-phys" and not r.physical:
        s_time, s_tgt, s_addr, untranslated = translated_samples(tb, r.tpids, r.translator)
        if untranslated:
            r.warnings.append(f"{untranslated} samples' physical addresses did not translate")
    else:
        s_time, s_tgt, s_addr = r.convert(tb)
    del tb
    keep = s_tgt >= 0
    if not keep.all():
        s_time, s_tgt, s_addr = s_time[keep], s_tgt[keep], s_addr[keep]
    if s_time.size > 1 and np.any(np.diff(s_time) < 0):
        order = np.argsort(s_time, kind="stable")
        s_time, s_tgt, s_addr = s_time[order], s_tgt[order], s_addr[order]
    return s_time, s_tgt, s_addr
