"""numba kernels for PERF_SAMPLE_READ: the size of a READ block and perf's delivery of
its values as samples of their own."""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import (
    F_GROUP,
    F_ID,
    F_LOST,
    F_TOTAL_TIME_ENABLED,
    F_TOTAL_TIME_RUNNING,
    S_READ,
)
from .words import (
    le_u64_at,
    u64_at,
)

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def read_len(buf, p, end, rf):
    """Bytes of the READ field at ``p`` for read_format ``rf``; -1 when it does not fit
    before ``end``."""
    per = 1 + ((rf & F_ID) != 0) + ((rf & F_LOST) != 0)
    hdr = ((rf & F_TOTAL_TIME_ENABLED) != 0) + ((rf & F_TOTAL_TIME_RUNNING) != 0)
    if rf & F_GROUP:
        if p + 8 > end:
            return -1
        nr = le_u64_at(buf, p)
        if nr > np.uint64((end - p) // 8):
            return -1
        ln = 8 * (1 + hdr + per * np.int64(nr))
    else:
        ln = 8 * (hdr + per)
    if p + ln > end:
        return -1
    return ln


@_jit
def _lookup(ids_sorted, v):
    lo = 0
    hi = ids_sorted.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ids_sorted[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    if lo < ids_sorted.shape[0] and ids_sorted[lo] == v:
        return lo
    return -1


@_jit
def count_read_values(buf, buf64, attr, read_off, st_a, rf_a):
    """Rows the READ expansion can produce (an upper bound for its output arrays)."""
    total = 0
    for i in range(attr.shape[0]):
        a = attr[i]
        if (st_a[a] & S_READ) and (rf_a[a] & F_GROUP):
            total += np.int64(u64_at(buf, buf64, read_off[i]))
        else:
            total += 1
    return total


@_jit
def expand_read(
    buf,
    buf64,
    attr,
    read_off,
    st_a,
    rf_a,
    ids_sorted,
    ids_attr,
    prev_id,
    prev_attr,
    out_row,
    out_attr,
    out_id,
    out_kind,
    out_period,
):
    """perf's delivery of PERF_SAMPLE_READ samples: one output per read value with the
    member's attr, id and period = value - previous value of that id (``prev_id``,
    indexed like ``ids_sorted``; without ids, ``prev_attr`` by attr); zero periods and
    unknown ids are dropped. Rows without READ are passed through (``out_kind`` 0);
    ``out_kind`` 1 = a value with an id, 2 = without. Returns (n_out, n_unknown)."""
    k = 0
    unknown = 0
    nattr = st_a.shape[0]
    for i in range(attr.shape[0]):
        a = attr[i]
        if not (st_a[a] & S_READ):
            out_row[k] = i
            out_attr[k] = a
            out_kind[k] = 0
            k += 1
            continue
        rf = rf_a[a]
        p = read_off[i]
        has_id = (rf & F_ID) != 0
        has_lost = (rf & F_LOST) != 0
        hdr = ((rf & F_TOTAL_TIME_ENABLED) != 0) + ((rf & F_TOTAL_TIME_RUNNING) != 0)
        if rf & F_GROUP:
            nr = np.int64(u64_at(buf, buf64, p))
            p += 8 + 8 * hdr
        else:
            nr = 1
        for j in range(nr):
            v = u64_at(buf, buf64, p)
            p += 8
            if not (rf & F_GROUP):
                p += 8 * hdr
            vid = np.uint64(0)
            if has_id:
                vid = u64_at(buf, buf64, p)
                p += 8
            if has_lost:
                p += 8
            if has_id:
                pos = _lookup(ids_sorted, vid)
                if pos < 0:
                    unknown += 1
                    continue
                m = ids_attr[pos]
                d = v - prev_id[pos]
                prev_id[pos] = v
            else:
                m = a + j
                if m >= nattr:
                    unknown += 1
                    continue
                d = v - prev_attr[m]
                prev_attr[m] = v
            if d == 0:
                continue
            out_row[k] = i
            out_attr[k] = m
            out_id[k] = vid
            out_kind[k] = 1 if has_id else 2
            out_period[k] = d
            k += 1
    return k, unknown
