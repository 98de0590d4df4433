"""The record-boundary scan of a chunk of a perf.data record stream (numba kernels):
where each complete record starts, its type and its size (with the payload that
HEADER_TRACING_DATA and AUXTRACE carry outside ``header.size``)."""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import (
    R_AUXTRACE,
    R_HEADER_TRACING_DATA,
)
from .words import (
    be_u32_at,
    u32_at,
)
from .byteswap import (
    be_record_to_le,
)

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _rec_u32(buf, p, be):
    return be_u32_at(buf, p) if be else u32_at(buf, p)


@_jit
def _scan(buf, start, end, offs, types, sizes, be):
    """Walk records in ``buf[start:end]``.

    Returns ``(n, stop, err)``: ``n`` complete records were stored in
    ``offs/types/sizes``; ``stop`` is where the walk stopped (the start of an
    incomplete record, or ``end``); ``err`` is 1 when the record at ``stop`` has a
    size below 8, 2 when an AUXTRACE record announces an impossible payload.
    HEADER_TRACING_DATA (66) and AUXTRACE (71) are followed by a payload outside
    ``header.size``: their stored size includes it.

    ``be``: a big-endian stream. Each complete record is then rewritten in place: its
    header in little-endian order, the 8-byte words of its body swapped for the types
    in _WORDS_TYPES, the size fields of COMPRESSED2 (data size), AUXTRACE (payload
    size) and HEADER_TRACING_DATA (payload size); other bodies are left as they are
    (pipe-mode header records are parsed big-endian).
    """
    pos = start
    n = 0
    while pos + 8 <= end:
        typ = _rec_u32(buf, pos, be)
        if be:
            size = (np.int64(buf[pos + 6]) << 8) | np.int64(buf[pos + 7])
        else:
            size = np.int64(buf[pos + 6]) | (np.int64(buf[pos + 7]) << 8)
        if size < 8:
            return n, pos, 1
        total = size
        if typ == R_HEADER_TRACING_DATA:
            if pos + 12 > end:
                break
            total = size + np.int64(_rec_u32(buf, pos + 8, be))
        elif typ == R_AUXTRACE:
            if pos + 16 > end:
                break
            lo = np.int64(_rec_u32(buf, pos + 12 if be else pos + 8, be))
            hi = np.int64(_rec_u32(buf, pos + 8 if be else pos + 12, be))
            if hi != 0:
                return n, pos, 2
            total = size + lo
        if pos + total > end:
            break
        if be:
            be_record_to_le(buf, pos, typ, size)
        offs[n] = pos
        types[n] = typ
        sizes[n] = total
        n += 1
        pos += total
    return n, pos, 0


@_jit
def scan_records(buf, start, end, offs, types, sizes):
    """Record boundaries of a little-endian stream (see :func:`_scan`)."""
    return _scan(buf, start, end, offs, types, sizes, False)


@_jit
def scan_records_be(buf, start, end, offs, types, sizes):
    """:func:`scan_records` for a big-endian stream, whose complete records are made
    little-endian in place (see :func:`_scan`)."""
    return _scan(buf, start, end, offs, types, sizes, True)
