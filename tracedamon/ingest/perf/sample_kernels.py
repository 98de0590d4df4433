"""numba kernels that decode PERF_RECORD_SAMPLE bodies held in a uint8 buffer.

* :func:`sample_attrs` maps each sample to its attr through its ID / IDENTIFIER;
* :func:`gather_fixed_attrs` decodes the samples of fixed-size layouts (every field
  at a constant offset, :func:`fixed_layouts`) in one pass;
* :func:`decode_samples` decodes every other layout field by field in the kernel's
  order into the columns of a column-major ``uint64`` matrix, with a cursor that
  bounds-checks every variable-size field against ``header.size``;
* :func:`gather_u64_lists` and :func:`gather_bytes` copy callchains and RAW payloads
  into Arrow list / binary layouts.

Nothing here allocates per record.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import (
    C_ADDR,
    C_CC_NR,
    C_CC_OFF,
    C_CGROUP,
    C_CODE_PAGE_SIZE,
    C_CPU,
    C_DATA_PAGE_SIZE,
    C_DATA_SRC,
    C_ID,
    C_IP,
    C_PERIOD,
    C_PHYS_ADDR,
    C_RAW_LEN,
    C_RAW_OFF,
    C_READ_LEN,
    C_READ_OFF,
    C_STREAM_ID,
    C_TID,
    C_TIME,
    C_TRANSACTION,
    C_WEIGHT,
    ERR_AUX,
    ERR_BRANCH,
    ERR_CALLCHAIN,
    ERR_RAW,
    ERR_READ,
    ERR_REGS,
    ERR_SHORT,
    ERR_STACK,
    S_ADDR,
    S_AUX,
    S_BRANCH_STACK,
    S_CALLCHAIN,
    S_CGROUP,
    S_CODE_PAGE_SIZE,
    S_CPU,
    S_DATA_PAGE_SIZE,
    S_DATA_SRC,
    S_ID,
    S_IDENTIFIER,
    S_IP,
    S_PERIOD,
    S_PHYS_ADDR,
    S_RAW,
    S_READ,
    S_REGS_INTR,
    S_REGS_USER,
    S_STACK_USER,
    S_STREAM_ID,
    S_TID,
    S_TIME,
    S_TRANSACTION,
    S_VARIABLE,
    S_WEIGHT,
    S_WEIGHT_STRUCT,
)
from .words import (
    u32_at,
    u64_at,
)
from .read_values import (
    read_len,
)

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def sample_attrs(buf, buf64, offs, sizes, id_off, ids_sorted, ids_attr, out):
    """Attr index of each sample: the id at body offset ``id_off`` looked up in
    ``ids_sorted``; -1 = unknown id, -2 = record too short to hold the id."""
    nid = ids_sorted.shape[0]
    for i in range(offs.shape[0]):
        p = offs[i] + 8 + id_off
        if id_off + 16 > sizes[i]:
            out[i] = -2
            continue
        v = u64_at(buf, buf64, p)
        lo = 0
        hi = nid
        while lo < hi:
            mid = (lo + hi) >> 1
            if ids_sorted[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        if lo < nid and ids_sorted[lo] == v:
            out[i] = ids_attr[lo]
        else:
            out[i] = -1


@_jit
def _popcount(x):
    c = 0
    while x:
        x &= x - np.uint64(1)
        c += 1
    return c


# long kernel: the fields of a sample in the kernel's order, each bounds-checked, in one
# loop body; split into numba helpers per field it ran 1.2x (helpers returning the next
# position) to 4x (helpers storing into the matrix) slower on a callchain recording
@_jit
def decode_samples(
    buf, buf64, offs, sizes, attr, st_a, rf_a, bhw_a, bcnt_a, nru_a, nri_a, out, err
):
    """Decode SAMPLE bodies into ``out`` (n × NCOLS, column-major uint64).

    ``attr[i]`` selects the per-attr parameters (sample_type, read_format,
    branch hw_idx flag, branch counters flag, popcounts of the user / interrupt
    register masks); rows with ``attr < 0`` are skipped. Columns of fields an
    attr did not record are left untouched. Offsets stored for variable fields
    are buffer positions. ``err[i]`` receives an ERR_* code, 0 when fine.
    """
    for i in range(offs.shape[0]):
        a = attr[i]
        if a < 0:
            continue
        st = st_a[a]
        p = offs[i] + 8
        end = offs[i] + sizes[i]
        e = 0
        # fixed 8-byte slots
        if st & S_IDENTIFIER:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_ID] = u64_at(buf, buf64, p)
            p += 8
        nfix = _popcount(
            np.uint64(st & (S_IP | S_TID | S_TIME | S_ADDR | S_ID | S_STREAM_ID | S_CPU | S_PERIOD))
        )
        if p + 8 * nfix > end:
            err[i] = ERR_SHORT
            continue
        if st & S_IP:
            out[i, C_IP] = u64_at(buf, buf64, p)
            p += 8
        if st & S_TID:
            out[i, C_TID] = u64_at(buf, buf64, p)
            p += 8
        if st & S_TIME:
            out[i, C_TIME] = u64_at(buf, buf64, p)
            p += 8
        if st & S_ADDR:
            out[i, C_ADDR] = u64_at(buf, buf64, p)
            p += 8
        if st & S_ID:
            out[i, C_ID] = u64_at(buf, buf64, p)
            p += 8
        if st & S_STREAM_ID:
            out[i, C_STREAM_ID] = u64_at(buf, buf64, p)
            p += 8
        if st & S_CPU:
            out[i, C_CPU] = u64_at(buf, buf64, p)
            p += 8
        if st & S_PERIOD:
            out[i, C_PERIOD] = u64_at(buf, buf64, p)
            p += 8
        if st & S_READ:
            ln = read_len(buf, p, end, rf_a[a])
            if ln < 0:
                err[i] = ERR_READ
                continue
            out[i, C_READ_OFF] = p
            out[i, C_READ_LEN] = ln
            p += ln
        if st & S_CALLCHAIN:
            if p + 8 > end:
                err[i] = ERR_CALLCHAIN
                continue
            nr = u64_at(buf, buf64, p)
            if nr > np.uint64((end - p - 8) // 8):
                err[i] = ERR_CALLCHAIN
                continue
            out[i, C_CC_OFF] = p + 8
            out[i, C_CC_NR] = nr
            p += 8 + 8 * np.int64(nr)
        if st & S_RAW:
            if p + 4 > end:
                err[i] = ERR_RAW
                continue
            sz = np.int64(u32_at(buf, p))
            if p + 4 + sz > end:
                err[i] = ERR_RAW
                continue
            out[i, C_RAW_OFF] = p + 4
            out[i, C_RAW_LEN] = sz
            p += 4 + sz
        if st & S_BRANCH_STACK:
            if p + 8 > end:
                err[i] = ERR_BRANCH
                continue
            nr = u64_at(buf, buf64, p)
            if nr > np.uint64((end - p) // 24):
                err[i] = ERR_BRANCH
                continue
            ln = 8 + 8 * bhw_a[a] + 24 * np.int64(nr) + 8 * bcnt_a[a] * np.int64(nr)
            if p + ln > end:
                err[i] = ERR_BRANCH
                continue
            p += ln
        if st & S_REGS_USER:
            if p + 8 > end:
                err[i] = ERR_REGS
                continue
            abi = u64_at(buf, buf64, p)
            p += 8
            if abi != 0:
                p += 8 * nru_a[a]
            if p > end:
                err[i] = ERR_REGS
                continue
        if st & S_STACK_USER:
            if p + 8 > end:
                err[i] = ERR_STACK
                continue
            sz = u64_at(buf, buf64, p)
            p += 8
            if sz != 0:
                if sz > np.uint64(end - p):
                    err[i] = ERR_STACK
                    continue
                p += np.int64(sz) + 8
            if p > end:
                err[i] = ERR_STACK
                continue
        # fixed slots after the variable part
        if st & (S_WEIGHT | S_WEIGHT_STRUCT):
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_WEIGHT] = u64_at(buf, buf64, p)
            p += 8
        if st & S_DATA_SRC:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_DATA_SRC] = u64_at(buf, buf64, p)
            p += 8
        if st & S_TRANSACTION:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_TRANSACTION] = u64_at(buf, buf64, p)
            p += 8
        if st & S_REGS_INTR:
            if p + 8 > end:
                err[i] = ERR_REGS
                continue
            abi = u64_at(buf, buf64, p)
            p += 8
            if abi != 0:
                p += 8 * nri_a[a]
            if p > end:
                err[i] = ERR_REGS
                continue
        if st & S_PHYS_ADDR:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_PHYS_ADDR] = u64_at(buf, buf64, p)
            p += 8
        if st & S_CGROUP:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_CGROUP] = u64_at(buf, buf64, p)
            p += 8
        if st & S_DATA_PAGE_SIZE:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_DATA_PAGE_SIZE] = u64_at(buf, buf64, p)
            p += 8
        if st & S_CODE_PAGE_SIZE:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_CODE_PAGE_SIZE] = u64_at(buf, buf64, p)
            p += 8
        if st & S_AUX:
            if p + 8 > end:
                err[i] = ERR_AUX
                continue
            sz = u64_at(buf, buf64, p)
            p += 8
            if sz > np.uint64(end - p):
                err[i] = ERR_AUX
                continue
            p += np.int64(sz)
        err[i] = e


@_jit
def gather_u64_lists(buf, buf64, off, nr, valid, list_offsets, values):
    """Copy ``nr[i]`` u64 values from ``off[i]`` for valid rows into ``values``;
    ``list_offsets`` (int32, n+1) receives the Arrow list offsets."""
    k = 0
    for i in range(off.shape[0]):
        list_offsets[i] = k
        if valid[i]:
            p = off[i]
            for j in range(nr[i]):
                values[k] = u64_at(buf, buf64, p + 8 * j)
                k += 1
    list_offsets[off.shape[0]] = k


@_jit
def gather_bytes(buf, off, ln, valid, bin_offsets, data):
    """Arrow binary layout of the byte ranges ``buf[off[i]:off[i]+ln[i]]``."""
    k = 0
    for i in range(off.shape[0]):
        bin_offsets[i] = k
        if valid[i]:
            p = off[i]
            for j in range(ln[i]):
                data[k] = buf[p + j]
                k += 1
    bin_offsets[off.shape[0]] = k


@_jit
def gather_u16(buf, offs, delta, out):
    for i in range(offs.shape[0]):
        p = offs[i] + delta
        out[i] = np.uint16(buf[p]) | (np.uint16(buf[p + 1]) << np.uint16(8))


_FIXED_ORDER = (
    (S_IDENTIFIER, C_ID),
    (S_IP, C_IP),
    (S_TID, C_TID),
    (S_TIME, C_TIME),
    (S_ADDR, C_ADDR),
    (S_ID, C_ID),
    (S_STREAM_ID, C_STREAM_ID),
    (S_CPU, C_CPU),
    (S_PERIOD, C_PERIOD),
    (S_WEIGHT | S_WEIGHT_STRUCT, C_WEIGHT),
    (S_DATA_SRC, C_DATA_SRC),
    (S_TRANSACTION, C_TRANSACTION),
    (S_PHYS_ADDR, C_PHYS_ADDR),
    (S_CGROUP, C_CGROUP),
    (S_DATA_PAGE_SIZE, C_DATA_PAGE_SIZE),
    (S_CODE_PAGE_SIZE, C_CODE_PAGE_SIZE),
)


def fixed_layouts(sample_types):
    """Per attr: (nslots, cols, deltas, need) of a fixed-size sample layout; nslots
    is -1 for attrs with variable-size fields (decoded by :func:`decode_samples`)."""
    na = len(sample_types)
    nslot = np.full(na, -1, dtype=np.int64)
    cols = np.zeros((na, len(_FIXED_ORDER)), dtype=np.int64)
    deltas = np.zeros((na, len(_FIXED_ORDER)), dtype=np.int64)
    need = np.zeros(na, dtype=np.int64)
    for a, st in enumerate(sample_types):
        st = int(st)
        if st & S_VARIABLE:
            continue
        k = 0
        for bit, col in _FIXED_ORDER:
            if st & bit:
                cols[a, k] = col
                deltas[a, k] = 8 + 8 * k
                k += 1
        nslot[a] = k
        need[a] = 8 + 8 * k
    return nslot, cols, deltas, need


@_jit
def gather_fixed_attrs(buf, buf64, offs, sizes, attr, nslot, cols, deltas, need, out, err):
    """Fixed-size sample layouts: every field of record i in one pass, at the constant
    offsets of its attr. Rows whose attr is variable-size (nslot < 0) are skipped."""
    for i in range(offs.shape[0]):
        a = attr[i]
        if a < 0:
            continue
        nj = nslot[a]
        if nj < 0:
            continue
        if sizes[i] < need[a]:
            err[i] = ERR_SHORT
            continue
        base = offs[i]
        if (base & 7) == 0:
            for j in range(nj):
                out[i, cols[a, j]] = buf64[(base + deltas[a, j]) >> 3]
        else:
            for j in range(nj):
                p = base + deltas[a, j]
                v = np.uint64(0)
                for k in range(8):
                    v |= np.uint64(buf[p + k]) << np.uint64(8 * k)
                out[i, cols[a, j]] = v
