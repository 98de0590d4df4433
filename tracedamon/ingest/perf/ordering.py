"""Sample order: perf's ordered-events rule (FINISHED_ROUND), the pending window
and the merge of a directory's per-file streams."""

from __future__ import annotations


import numpy as np

from .samples import _Block

#: samples held back for sorting before the oldest are emitted regardless of rounds
MAX_PENDING = 1_000_000

# ----------------------------------------------------------------------------------------
# ordering
# ----------------------------------------------------------------------------------------
_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


class _Orderer:
    """Holds back the samples of the last two rounds and emits the rest in time order.

    Pending samples are kept as a list of blocks (no copying while they are already
    in time order); only out-of-order data is concatenated and permuted."""

    def __init__(self, st):
        self.st = st
        self.parts: list[_Block] = []
        self.limit = _I64_MIN
        self.emitted_max = _I64_MIN

    def _n(self):
        return sum(len(b) for b in self.parts)

    def add(self, blk: _Block | None, nrounds: int):
        if blk is not None and len(blk):
            self.parts.append(blk)
        if not self.parts:
            return
        if not self.parts[0].has_time:
            yield from self._emit_all()
            return
        for b in self.parts:
            closed = b.rounds <= nrounds - 2
            if closed.any():
                self.limit = max(self.limit, int(b.times[closed].max()))
        yield from self._emit_upto(self.limit)
        if self._n() > MAX_PENDING:
            self.st.forced_flushes += 1
            self._sort()
            b = self.parts[0]
            cut = int(b.times[len(b) - MAX_PENDING // 2])
            yield from self._emit_upto(cut - 1 if cut > _I64_MIN else cut)
            if self._n() > MAX_PENDING:
                yield from self._emit_upto(cut)

    def _sorted(self) -> bool:
        prev = _I64_MIN
        for b in self.parts:
            t = b.times
            if not len(t):
                continue
            if t[0] < prev or (len(t) > 1 and not (t[1:] >= t[:-1]).all()):
                return False
            prev = int(t[-1])
        return True

    def _sort(self):
        if not self._sorted():
            m = _Block.concat(self.parts)
            self.parts = [m.take(np.argsort(m.times, kind="stable"))]

    def _emit_upto(self, limit):
        if not self.parts:
            return
        self._sort()
        keep = []
        for b in self.parts:
            k = int(np.searchsorted(b.times, limit, side="right"))
            if k:
                yield from self._emit(b if k == len(b) else b.slice(0, k))
            if k < len(b):
                # the held-back rest is a view: it keeps its block's arrays (one chunk's
                # samples, not the chunk's bytes) alive until it is emitted
                keep.append(b.slice(k, len(b)) if k else b)
        self.parts = keep

    def _emit(self, out: _Block):
        if out.has_time and len(out):
            tt = out.times
            if tt[0] < self.emitted_max:
                self.st.samples_out_of_order += int((tt < self.emitted_max).sum())
            self.emitted_max = max(self.emitted_max, int(tt[-1]))
        yield out

    def _emit_all(self):
        parts, self.parts = self.parts, []
        for b in parts:
            yield from self._emit(b)

    def finish(self):
        if not self.parts:
            return
        if self.parts[0].has_time:
            yield from self._emit_upto(_I64_MAX)
        else:
            yield from self._emit_all()


def _merge_streams(streams):
    """k-way merge of time-ordered block streams; ties by stream order."""
    bufs: list[list[_Block]] = [[] for _ in streams]
    last: list[int | None] = [None] * len(streams)
    live = list(range(len(streams)))
    while live:
        for k in list(live):
            if not bufs[k]:
                try:
                    b = next(streams[k])
                except StopIteration:
                    live.remove(k)
                    continue
                bufs[k].append(b)
                last[k] = int(b.times[-1])
        limit = min((last[k] for k in live), default=None)
        parts = []
        for k in range(len(streams)):
            keep = []
            for b in bufs[k]:
                cut = len(b) if limit is None else int(np.searchsorted(b.times, limit, "right"))
                if cut:
                    parts.append(b.slice(0, cut))
                if cut < len(b):
                    keep.append(b.slice(cut, len(b)))
            bufs[k] = keep
        if parts:
            m = _Block.concat(parts)
            yield m.take(np.argsort(m.times, kind="stable"))
