"""numba kernels for side-band records in bulk (MMAP, MMAP2, COMM, FORK, EXIT): their
fields into columns, and MMAP2 build ids as hex strings."""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import (
    R_COMM,
    R_MMAP,
    R_MMAP2,
    SB_SHORT,
)
from .words import (
    u32_at,
    u64_at,
)

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _cstr_end(buf, p, end):
    """The offset of the first NUL in buf[p:end] (end when there is none)."""
    while p < end and buf[p] != 0:
        p += 1
    return p


@_jit
def sideband_fields(
    buf,
    buf64,
    offs,
    sizes,
    types,
    tl,
    time_pos,
    id_back,
    misc,
    time,
    has_time,
    rid,
    has_rid,
    f32,
    f64,
    bid_len,
    s_off,
    s_len,
    err,
):
    """Fields of MMAP (1), MMAP2 (10), COMM (3), EXIT (4) and FORK (7) records.

    ``tl`` is the sample_id_all trailer's length, ``time_pos`` the TIME field's offset
    in it (-1: none), ``id_back`` how far back from the record end its id sits (-1:
    none). Per record: ``f32`` columns pid, tid, maj/ppid, min/ptid, prot, flags;
    ``f64`` columns start, len, pgoff, ino, ino_generation, and FORK/EXIT's own time in
    column 0; ``bid_len`` the MMAP2 build-id length (-1: the inode form or MMAP);
    ``s_off``/``s_len`` the file name or comm up to its NUL.
    """
    for i in range(offs.shape[0]):
        o = offs[i]
        size = sizes[i]
        typ = types[i]
        m = np.uint16(buf[o + 4]) | (np.uint16(buf[o + 5]) << np.uint16(8))
        misc[i] = m
        if tl and size >= tl + 8:
            tr = o + size - tl
            if time_pos >= 0:
                time[i] = np.int64(u64_at(buf, buf64, tr + time_pos))
                has_time[i] = True
        if id_back >= 0 and id_back <= size - 8:
            rid[i] = u64_at(buf, buf64, o + size - id_back)
            has_rid[i] = True
        body = o + 8
        bend = o + size - tl
        if typ == R_MMAP or typ == R_MMAP2:
            fixed = 32 if typ == R_MMAP else 64
            if bend - body < fixed:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = u32_at(buf, body)
            f32[i, 1] = u32_at(buf, body + 4)
            f64[i, 0] = u64_at(buf, buf64, body + 8)
            f64[i, 1] = u64_at(buf, buf64, body + 16)
            f64[i, 2] = u64_at(buf, buf64, body + 24)
            bid_len[i] = -1
            if typ == R_MMAP2:
                if m & 0x4000:
                    bsz = np.int64(buf[body + 32])
                    bid_len[i] = bsz if bsz < 20 else 20
                else:
                    f32[i, 2] = u32_at(buf, body + 32)
                    f32[i, 3] = u32_at(buf, body + 36)
                    f64[i, 3] = u64_at(buf, buf64, body + 40)
                    f64[i, 4] = u64_at(buf, buf64, body + 48)
                f32[i, 4] = u32_at(buf, body + 56)
                f32[i, 5] = u32_at(buf, body + 60)
            s = body + fixed
            s_off[i] = s
            s_len[i] = _cstr_end(buf, s, bend) - s
        elif typ == R_COMM:
            if bend - body < 8:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = u32_at(buf, body)
            f32[i, 1] = u32_at(buf, body + 4)
            s = body + 8
            s_off[i] = s
            s_len[i] = _cstr_end(buf, s, bend) - s
        else:  # FORK, EXIT
            if bend - body < 24:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = u32_at(buf, body)  # pid
            f32[i, 2] = u32_at(buf, body + 4)  # ppid
            f32[i, 1] = u32_at(buf, body + 8)  # tid
            f32[i, 3] = u32_at(buf, body + 12)  # ptid
            f64[i, 0] = u64_at(buf, buf64, body + 16)


HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@_jit
def hex_bytes(buf, off, ln, hexdigits, bin_offsets, data):
    """Arrow string layout of the lowercase hex of ``buf[off[i]:off[i]+ln[i]]``
    (rows with ln < 0 are empty)."""
    k = 0
    for i in range(off.shape[0]):
        bin_offsets[i] = k
        for j in range(max(ln[i], 0)):
            b = buf[off[i] + j]
            data[k] = hexdigits[b >> 4]
            data[k + 1] = hexdigits[b & 15]
            k += 2
    bin_offsets[off.shape[0]] = k
