"""The ages of idle bytes that a sparse region history does not record.

A sparse history (``tracedamon replay --accessed-only``, or past ``--max-rows``;
see :mod:`tracedamon.export.history`) leaves out the regions whose nr_accesses is
0. The reader gives those bytes back with nr_accesses 0, but their age is not in
the file. The reports that need it (the access report's idle times and
temperatures, the damo export) derive it per byte with DAMON's own age rule
(docs: damon-engine-spec §6.2) from what the file does record::

    age_s = 0            if |nr_s - nr_{s-1}| > thres_s
                         or (nr_s == 0) != (nr_{s-1} == 0)      (the v6.18 zero-ness rule,
                                                                 when the replay used it)
    age_s = age_{s-1} + 1 otherwise

where ``thres_s`` is the largest nr_accesses of aggregation ``s`` over every
target, divided by 10 (the kernel's merge threshold), an accessed byte's
nr_accesses and age are those of its recorded region, and a byte that enters the
monitored ranges was born in the aggregation before (age 1 in its first
snapshot, as the monitor creates regions).

At fixed granularity (``--min-region == --max-region``) regions are never merged
or split, so this *is* the age the monitor gave every idle region: a sparse fixed
replay reads exactly as its dense original, ages included. With adaptive regions
an idle region's real age also went through merges (which average ages); the
derived age is then the one the byte's own access history implies. Filled idle
bytes are handed out as one region per run of bytes with the same derived age.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .history import HistorySource, open_history, replay_meta
from .history_frame import HistoryFrame


def open_source(src, **kw) -> HistorySource:
    """A :class:`HistorySource` for any region-history source, including an
    in-memory :class:`tracedamon.export.history_frame.HistoryFrame` (its own source when it was
    read from one)."""
    kw = {k: v for k, v in kw.items() if v is not None}
    if isinstance(src, HistorySource):
        return src
    if isinstance(src, HistoryFrame):
        if src.source is not None and not kw:
            return src.source
        df = src.df.drop(columns=[c for c in ("key", "snap") if c in src.df.columns])
        df.attrs["tracedamon"] = src.meta
        kw.setdefault("sample_us", src.sample_us)
        kw.setdefault("aggr_us", src.aggr_us)
        return open_history(df, name=src.name, **kw)
    return open_history(src, **kw)


@dataclass
class Rows:
    """Regions of whole snapshots: ``snap`` per row (index into ``source.snaps``),
    start, end, nr_accesses, age (NaN only where the source has no age at all) and
    ``filled`` (an idle byte a sparse history does not record)."""

    snap: np.ndarray
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray
    filled: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def age_thresholds(hs: HistorySource) -> np.ndarray:
    """Per snapshot (index into ``hs.snaps``): the merge threshold of its aggregation,
    the largest nr_accesses of that aggregation over every target, divided by 10."""
    sn = hs.snaps
    top = sn.groupby(["run", "snapshot"])["nr_max"].transform("max").to_numpy()
    return np.floor(np.nan_to_num(top, nan=0.0) / 10.0)


def zero_reset(hs: HistorySource) -> bool:
    """Whether the replay reset ages when nr_accesses changes between zero and non-zero
    (the kernel's v6.18 rule; tracedamon's default kernel profile has it)."""
    cfg = replay_meta(hs.meta).get("config") or {}
    v = cfg.get("age_zero_reset")
    return True if v is None else bool(v)


def iter_rows(hs: HistorySource, *, key=None) -> Iterator[Rows]:
    """Whole snapshots, a bounded number of rows at a time; idle bytes of a sparse
    source come with derived ages (see the module docstring), dense sources as
    recorded."""
    if not hs.sparse:
        for b in hs.iter_batches(key=key):
            yield Rows(b.row_snap, b.start, b.end, b.nr_accesses, b.age, b.filled)
        return
    thres = age_thresholds(hs)
    zr = zero_reset(hs)
    keys = [key] if key is not None else hs.keys
    for k in keys:
        prev = None
        for b in hs.iter_batches(key=k):
            out = []
            for s in b.snapshots():
                cur = _derive(
                    s.start, s.end, s.nr_accesses, s.age, s.filled, prev, thres[s.snap], zr
                )
                prev = cur
                out.append((np.full(len(cur[0]), s.snap, np.int64),) + cur)
            if out:
                yield Rows(*(np.concatenate([o[i] for o in out]) for i in range(6)))


def _derive(st, en, nr, age, filled, prev, thres: float, zr: bool):
    """One snapshot with its filled rows' ages derived from the previous snapshot's
    rows ``prev`` (start, end, nr, age, filled; None before the first)."""
    nr = np.asarray(nr, np.float64)
    age = np.asarray(age, np.float64).copy()
    if not filled.any():
        return st, en, nr, age, filled
    fs, fe = st[filled], en[filled]
    if prev is None:
        ps = pe = np.zeros(0, np.uint64)
        pnr = page = np.zeros(0)
    else:
        ps, pe, pnr, page = prev[0], prev[1], prev[2], prev[3]
    # elementary pieces of the filled rows, cut at the previous snapshot's boundaries
    cut = np.concatenate([ps, pe])
    cut = cut[(cut > fs.min()) & (cut < fe.max())] if len(cut) else cut
    pts = np.unique(np.concatenate([fs, fe, cut]))
    lo, hi = pts[:-1], pts[1:]
    j = np.searchsorted(fs, lo, side="right") - 1
    inside = (j >= 0) & (lo < fe[np.maximum(j, 0)])
    lo, hi = lo[inside], hi[inside]
    # the previous snapshot's region holding each piece (none: born the aggregation before)
    i = np.searchsorted(ps, lo, side="right") - 1
    had = (i >= 0) & (lo < pe[np.maximum(i, 0)]) if len(ps) else np.zeros(len(lo), bool)
    ii = np.maximum(i, 0)
    last_nr = np.where(had, pnr[ii] if len(ps) else 0.0, 0.0)
    last_age = np.where(had, page[ii] if len(ps) else 0.0, 0.0)
    last_age = np.nan_to_num(last_age, nan=0.0)
    reset = last_nr > thres  # |0 - last| > thres
    if zr:
        reset |= last_nr != 0
    new_age = np.where(reset, 0.0, last_age + 1.0)
    # join neighbouring pieces of the same age
    keep = np.ones(len(lo), bool)
    keep[1:] = (lo[1:] != hi[:-1]) | (new_age[1:] != new_age[:-1])
    starts = np.flatnonzero(keep)
    ends = np.concatenate([starts[1:], [len(lo)]]) - 1
    f_st, f_en, f_age = lo[starts], hi[ends], new_age[starts]
    # put them back among the recorded rows
    r_st, r_en = st[~filled], en[~filled]
    all_st = np.concatenate([r_st, f_st])
    o = np.argsort(all_st, kind="stable")
    out_st = all_st[o]
    out_en = np.concatenate([r_en, f_en])[o]
    out_nr = np.concatenate([nr[~filled], np.zeros(len(f_st))])[o]
    out_age = np.concatenate([age[~filled], f_age])[o]
    out_f = np.concatenate([np.zeros(len(r_st), bool), np.ones(len(f_st), bool)])[o]
    return out_st, out_en, out_nr, out_age, out_f
