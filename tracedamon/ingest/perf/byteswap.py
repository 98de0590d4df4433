"""Big-endian files: records turned into the little-endian layout, in place (numba
kernels).

perf reads a file of the other byte order by swapping every 8-byte word of a record's
body (perf_event__all64_swap) and then undoing that where a word holds two u32s (TID,
CPU, MMAP's pid/tid, ...) or bytes (strings, RAW). tracedamon does the same to each
chunk before decoding it (:func:`be_record_to_le` while :mod:`.scan` walks the
records, then :func:`be_fix_samples` and :func:`be_fix_sideband`), so the decoders
only ever see little-endian records.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import (
    R_AUXTRACE,
    R_COMM,
    R_COMPRESSED2,
    R_EXIT,
    R_FINISHED_INIT,
    R_FINISHED_ROUND,
    R_FORK,
    R_HEADER_TRACING_DATA,
    R_ID_INDEX,
    R_LOST,
    R_LOST_SAMPLES,
    R_MMAP,
    R_MMAP2,
    R_SAMPLE,
    R_THROTTLE,
    R_UNTHROTTLE,
    S_ADDR,
    S_CALLCHAIN,
    S_CPU,
    S_ID,
    S_IDENTIFIER,
    S_IP,
    S_PERIOD,
    S_RAW,
    S_READ,
    S_STREAM_ID,
    S_TID,
    S_TIME,
)
from .words import (
    be_u32_at,
    le_u64_at,
)
from .read_values import (
    read_len,
)

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


#: record types whose body is a sequence of 8-byte words (before the fix-ups below)
_WORDS_TYPES = (
    R_MMAP,
    R_LOST,
    R_COMM,
    R_EXIT,
    R_THROTTLE,
    R_UNTHROTTLE,
    R_FORK,
    R_SAMPLE,
    R_MMAP2,
    R_LOST_SAMPLES,
    R_FINISHED_ROUND,
    R_ID_INDEX,
    R_FINISHED_INIT,
)


@_jit
def _reverse(buf, p, n):
    """Reverse the n bytes at p (a byte swap of an n-byte integer)."""
    for j in range(n // 2):
        t = buf[p + j]
        buf[p + j] = buf[p + n - 1 - j]
        buf[p + n - 1 - j] = t


@_jit
def _swap_word(buf, p):
    _reverse(buf, p, 8)


@_jit
def _swap_u32(buf, p):
    _reverse(buf, p, 4)


@_jit
def _rotate_word(buf, p):
    """An 8-byte word read as one swapped u64 that held two u32s: put them back in
    their places (each keeps its new little-endian byte order)."""
    for j in range(4):
        t = buf[p + j]
        buf[p + j] = buf[p + 4 + j]
        buf[p + 4 + j] = t


@_jit
def be_record_to_le(buf, pos, typ, size):
    misc = (np.uint16(buf[pos + 4]) << np.uint16(8)) | np.uint16(buf[pos + 5])
    for k in range(4):
        buf[pos + k] = np.uint8((typ >> np.uint32(8 * k)) & np.uint32(0xFF))
    buf[pos + 4] = np.uint8(misc & np.uint16(0xFF))
    buf[pos + 5] = np.uint8(misc >> np.uint16(8))
    buf[pos + 6] = np.uint8(size & 0xFF)
    buf[pos + 7] = np.uint8(size >> 8)
    words = False
    for t in _WORDS_TYPES:
        if typ == t:
            words = True
    if words:
        q = pos + 8
        while q + 8 <= pos + size:
            _swap_word(buf, q)
            q += 8
    elif (typ == R_COMPRESSED2 or typ == R_AUXTRACE) and size >= 16:
        _swap_word(buf, pos + 8)
    elif typ == R_HEADER_TRACING_DATA and size >= 12:
        _swap_u32(buf, pos + 8)


@_jit
def _restore_bytes(buf, a, b):
    """Undo the word swap over [a, b) (whole words only): the bytes as recorded."""
    q = a
    while q + 8 <= b:
        _swap_word(buf, q)
        q += 8


@_jit
def be_fix_samples(buf, offs, sizes, attr, st_a, rf_a, bhw_a, bcnt_a, nru_a, nri_a):
    """After scan_records_be: the SAMPLE fields that are not one u64 (TID and CPU words,
    RAW's u32 size and bytes) put back in their little-endian layout. A record whose
    layout does not fit its size is left for the decoder to report."""
    for i in range(offs.shape[0]):
        a = attr[i]
        if a < 0:
            continue
        st = st_a[a]
        p = offs[i] + 8
        end = offs[i] + sizes[i]
        if st & S_IDENTIFIER:
            p += 8
        for bit in (S_IP, S_TID, S_TIME, S_ADDR, S_ID, S_STREAM_ID, S_CPU, S_PERIOD):
            if st & bit:
                if p + 8 > end:
                    break
                if bit == S_TID or bit == S_CPU:
                    _rotate_word(buf, p)
                p += 8
        if p > end:
            continue
        if st & S_READ:
            ln = read_len(buf, p, end, rf_a[a])
            if ln < 0:
                continue
            p += ln
        if st & S_CALLCHAIN:
            if p + 8 > end:
                continue
            nr = np.int64(min(le_u64_at(buf, p), np.uint64(end - p)))
            p += 8 + 8 * nr
        if st & S_RAW:
            if p + 8 > end:
                continue
            _swap_word(buf, p)  # the first word as recorded
            sz = np.int64(be_u32_at(buf, p))
            if p + 4 + sz > end:
                continue
            _restore_bytes(buf, p + 8, p + 4 + sz)
            _swap_u32(buf, p)  # the size, little-endian
            p += 4 + sz


@_jit
def be_fix_sideband(buf, offs, sizes, types, attr, tl_a, tid_a, cpu_a):
    """After scan_records_be: MMAP, MMAP2, COMM, FORK and EXIT bodies and the
    sample_id_all trailers put back in their little-endian layout. Record i's trailer
    is attr ``attr[i]``'s: ``tl_a`` bytes, TID and CPU words at ``tid_a`` and ``cpu_a``
    in it (-1 when absent)."""
    for i in range(offs.shape[0]):
        o = offs[i]
        size = sizes[i]
        typ = types[i]
        tl = tl_a[attr[i]]
        tid_pos = tid_a[attr[i]]
        cpu_pos = cpu_a[attr[i]]
        if tl and size >= tl + 8:
            tr = o + size - tl
            if tid_pos >= 0:
                _rotate_word(buf, tr + tid_pos)
            if cpu_pos >= 0:
                _rotate_word(buf, tr + cpu_pos)
        body = o + 8
        bend = o + size - tl
        misc = np.uint16(buf[o + 4]) | (np.uint16(buf[o + 5]) << np.uint16(8))
        if typ == R_MMAP or typ == R_MMAP2:
            fixed = 32 if typ == R_MMAP else 64
            if bend - body < fixed:
                continue
            _rotate_word(buf, body)
            if typ == R_MMAP2:
                if misc & 0x4000:
                    _restore_bytes(buf, body + 32, body + 56)
                else:
                    _rotate_word(buf, body + 32)
                _rotate_word(buf, body + 56)
            _restore_bytes(buf, body + fixed, bend)
        elif typ == R_COMM:
            if bend - body < 8:
                continue
            _rotate_word(buf, body)
            _restore_bytes(buf, body + 8, bend)
        elif typ == R_EXIT or typ == R_FORK:
            if bend - body < 24:
                continue
            _rotate_word(buf, body)
            _rotate_word(buf, body + 8)
