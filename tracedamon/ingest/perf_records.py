"""numba kernels that decode perf.data record streams held in a uint8 buffer.

The reader (:mod:`tracedamon.ingest.perf_data`) loads many records at once into a
byte buffer; these kernels

* find the record boundaries (:func:`scan_records`),
* map each PERF_RECORD_SAMPLE to its attr through its ID / IDENTIFIER
  (:func:`sample_attrs`),
* decode every sample field in the kernel's order into the columns of a
  column-major ``uint64`` matrix (:func:`decode_samples`), with a cursor that
  bounds-checks every variable-size field against ``header.size``,
* gather callchains and RAW payloads into Arrow list / binary layouts.

Records need not be 8-byte aligned (perf 6.1 writes unpadded COMPRESSED and pipe
FEATURE records): loads go through :func:`_u64`, which uses an aligned load when
it can and assembles bytes otherwise. Nothing here allocates per record.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# PERF_SAMPLE_* bits
S_IP = 1 << 0
S_TID = 1 << 1
S_TIME = 1 << 2
S_ADDR = 1 << 3
S_READ = 1 << 4
S_CALLCHAIN = 1 << 5
S_ID = 1 << 6
S_CPU = 1 << 7
S_PERIOD = 1 << 8
S_STREAM_ID = 1 << 9
S_RAW = 1 << 10
S_BRANCH_STACK = 1 << 11
S_REGS_USER = 1 << 12
S_STACK_USER = 1 << 13
S_WEIGHT = 1 << 14
S_DATA_SRC = 1 << 15
S_IDENTIFIER = 1 << 16
S_TRANSACTION = 1 << 17
S_REGS_INTR = 1 << 18
S_PHYS_ADDR = 1 << 19
S_AUX = 1 << 20
S_CGROUP = 1 << 21
S_DATA_PAGE_SIZE = 1 << 22
S_CODE_PAGE_SIZE = 1 << 23
S_WEIGHT_STRUCT = 1 << 24
#: every bit whose sample layout this reader knows
S_KNOWN = (1 << 25) - 1

# read_format bits
F_TOTAL_TIME_ENABLED = 1
F_TOTAL_TIME_RUNNING = 2
F_ID = 4
F_GROUP = 8
F_LOST = 16

# PERF_RECORD_* types: the kernel's records (1..21) and perf's own (64..83), named as
# in tracedamon.ingest.perf.header.RECORD_NAMES (tests/test_ingest_layout.py checks
# that the two agree); module constants, so the kernels compile them in
R_MMAP = 1
R_LOST = 2
R_COMM = 3
R_EXIT = 4
R_THROTTLE = 5
R_UNTHROTTLE = 6
R_FORK = 7
R_SAMPLE = 9
R_MMAP2 = 10
R_LOST_SAMPLES = 13
R_HEADER_ATTR = 64
R_HEADER_TRACING_DATA = 66
R_FINISHED_ROUND = 68
R_ID_INDEX = 69
R_AUXTRACE = 71
R_EVENT_UPDATE = 78
R_HEADER_FEATURE = 80
R_COMPRESSED = 81
R_FINISHED_INIT = 82
R_COMPRESSED2 = 83

# columns of the decode matrix
C_IP, C_TID, C_TIME, C_ADDR, C_ID, C_STREAM_ID, C_CPU, C_PERIOD = range(8)
C_READ_OFF, C_READ_LEN, C_CC_OFF, C_CC_NR, C_RAW_OFF, C_RAW_LEN = range(8, 14)
C_WEIGHT, C_DATA_SRC, C_TRANSACTION, C_PHYS_ADDR, C_CGROUP = range(14, 19)
C_DATA_PAGE_SIZE, C_CODE_PAGE_SIZE = 19, 20
NCOLS = 21

# error codes of decode_samples (0 = fine)
ERR_SHORT = 1  # a field runs past header.size
ERR_READ = 2  # read_format group count impossible
ERR_CALLCHAIN = 3
ERR_RAW = 4
ERR_BRANCH = 5
ERR_REGS = 6
ERR_STACK = 7
ERR_AUX = 8
ERR_TEXT = {
    ERR_SHORT: "sample record shorter than its sample_type requires",
    ERR_READ: "sample READ block larger than the record",
    ERR_CALLCHAIN: "sample callchain larger than the record",
    ERR_RAW: "sample RAW payload larger than the record",
    ERR_BRANCH: "sample branch stack larger than the record",
    ERR_REGS: "sample register block larger than the record",
    ERR_STACK: "sample user stack larger than the record",
    ERR_AUX: "sample AUX data larger than the record",
}

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _le_u64(buf, p):
    """The little-endian u64 at any byte offset."""
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(buf[p + k]) << np.uint64(8 * k)
    return v


@_jit
def _u64(buf, buf64, p):
    if (p & 7) == 0:
        return buf64[p >> 3]
    return _le_u64(buf, p)


@_jit
def _u32(buf, p):
    return (
        np.uint32(buf[p])
        | (np.uint32(buf[p + 1]) << np.uint32(8))
        | (np.uint32(buf[p + 2]) << np.uint32(16))
        | (np.uint32(buf[p + 3]) << np.uint32(24))
    )


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
        v = _u64(buf, buf64, p)
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


@_jit
def _read_len(buf, p, end, rf):
    """Bytes of the READ field at ``p`` for read_format ``rf``; -1 when it does not fit
    before ``end``."""
    per = 1 + ((rf & F_ID) != 0) + ((rf & F_LOST) != 0)
    hdr = ((rf & F_TOTAL_TIME_ENABLED) != 0) + ((rf & F_TOTAL_TIME_RUNNING) != 0)
    if rf & F_GROUP:
        if p + 8 > end:
            return -1
        nr = _le_u64(buf, p)
        if nr > np.uint64((end - p) // 8):
            return -1
        ln = 8 * (1 + hdr + per * np.int64(nr))
    else:
        ln = 8 * (hdr + per)
    if p + ln > end:
        return -1
    return ln


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
            out[i, C_ID] = _u64(buf, buf64, p)
            p += 8
        nfix = _popcount(
            np.uint64(st & (S_IP | S_TID | S_TIME | S_ADDR | S_ID | S_STREAM_ID | S_CPU | S_PERIOD))
        )
        if p + 8 * nfix > end:
            err[i] = ERR_SHORT
            continue
        if st & S_IP:
            out[i, C_IP] = _u64(buf, buf64, p)
            p += 8
        if st & S_TID:
            out[i, C_TID] = _u64(buf, buf64, p)
            p += 8
        if st & S_TIME:
            out[i, C_TIME] = _u64(buf, buf64, p)
            p += 8
        if st & S_ADDR:
            out[i, C_ADDR] = _u64(buf, buf64, p)
            p += 8
        if st & S_ID:
            out[i, C_ID] = _u64(buf, buf64, p)
            p += 8
        if st & S_STREAM_ID:
            out[i, C_STREAM_ID] = _u64(buf, buf64, p)
            p += 8
        if st & S_CPU:
            out[i, C_CPU] = _u64(buf, buf64, p)
            p += 8
        if st & S_PERIOD:
            out[i, C_PERIOD] = _u64(buf, buf64, p)
            p += 8
        if st & S_READ:
            ln = _read_len(buf, p, end, rf_a[a])
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
            nr = _u64(buf, buf64, p)
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
            sz = np.int64(_u32(buf, p))
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
            nr = _u64(buf, buf64, p)
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
            abi = _u64(buf, buf64, p)
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
            sz = _u64(buf, buf64, p)
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
            out[i, C_WEIGHT] = _u64(buf, buf64, p)
            p += 8
        if st & S_DATA_SRC:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_DATA_SRC] = _u64(buf, buf64, p)
            p += 8
        if st & S_TRANSACTION:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_TRANSACTION] = _u64(buf, buf64, p)
            p += 8
        if st & S_REGS_INTR:
            if p + 8 > end:
                err[i] = ERR_REGS
                continue
            abi = _u64(buf, buf64, p)
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
            out[i, C_PHYS_ADDR] = _u64(buf, buf64, p)
            p += 8
        if st & S_CGROUP:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_CGROUP] = _u64(buf, buf64, p)
            p += 8
        if st & S_DATA_PAGE_SIZE:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_DATA_PAGE_SIZE] = _u64(buf, buf64, p)
            p += 8
        if st & S_CODE_PAGE_SIZE:
            if p + 8 > end:
                err[i] = ERR_SHORT
                continue
            out[i, C_CODE_PAGE_SIZE] = _u64(buf, buf64, p)
            p += 8
        if st & S_AUX:
            if p + 8 > end:
                err[i] = ERR_AUX
                continue
            sz = _u64(buf, buf64, p)
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
                values[k] = _u64(buf, buf64, p + 8 * j)
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


def as_u64_view(buf: np.ndarray) -> np.ndarray:
    """A uint64 view of the 8-aligned whole words of ``buf`` (numpy allocations are
    aligned; the tail beyond the last whole word is read through the byte path)."""
    n = len(buf) // 8
    base = buf.ctypes.data
    if base % 8:
        return np.zeros(0, dtype=np.uint64)
    return buf[: n * 8].view(np.uint64)


#: sample_type bits whose fields have a variable size
S_VARIABLE = (
    S_READ | S_CALLCHAIN | S_RAW | S_BRANCH_STACK | S_REGS_USER | S_STACK_USER | S_REGS_INTR | S_AUX
)

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
            total += np.int64(_u64(buf, buf64, read_off[i]))
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
            nr = np.int64(_u64(buf, buf64, p))
            p += 8 + 8 * hdr
        else:
            nr = 1
        for j in range(nr):
            v = _u64(buf, buf64, p)
            p += 8
            if not (rf & F_GROUP):
                p += 8 * hdr
            vid = np.uint64(0)
            if has_id:
                vid = _u64(buf, buf64, p)
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


# ----------------------------------------------------------------------------------------
# side-band records in bulk (MMAP, MMAP2, COMM, FORK, EXIT)
# ----------------------------------------------------------------------------------------
#: per-record error of the side-band kernels: the record is shorter than its fixed part
SB_SHORT = 1


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
                time[i] = np.int64(_u64(buf, buf64, tr + time_pos))
                has_time[i] = True
        if id_back >= 0 and id_back <= size - 8:
            rid[i] = _u64(buf, buf64, o + size - id_back)
            has_rid[i] = True
        body = o + 8
        bend = o + size - tl
        if typ == R_MMAP or typ == R_MMAP2:
            fixed = 32 if typ == R_MMAP else 64
            if bend - body < fixed:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = _u32(buf, body)
            f32[i, 1] = _u32(buf, body + 4)
            f64[i, 0] = _u64(buf, buf64, body + 8)
            f64[i, 1] = _u64(buf, buf64, body + 16)
            f64[i, 2] = _u64(buf, buf64, body + 24)
            bid_len[i] = -1
            if typ == R_MMAP2:
                if m & 0x4000:
                    bsz = np.int64(buf[body + 32])
                    bid_len[i] = bsz if bsz < 20 else 20
                else:
                    f32[i, 2] = _u32(buf, body + 32)
                    f32[i, 3] = _u32(buf, body + 36)
                    f64[i, 3] = _u64(buf, buf64, body + 40)
                    f64[i, 4] = _u64(buf, buf64, body + 48)
                f32[i, 4] = _u32(buf, body + 56)
                f32[i, 5] = _u32(buf, body + 60)
            s = body + fixed
            s_off[i] = s
            s_len[i] = _cstr_end(buf, s, bend) - s
        elif typ == R_COMM:
            if bend - body < 8:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = _u32(buf, body)
            f32[i, 1] = _u32(buf, body + 4)
            s = body + 8
            s_off[i] = s
            s_len[i] = _cstr_end(buf, s, bend) - s
        else:  # FORK, EXIT
            if bend - body < 24:
                err[i] = SB_SHORT
                continue
            f32[i, 0] = _u32(buf, body)  # pid
            f32[i, 2] = _u32(buf, body + 4)  # ppid
            f32[i, 1] = _u32(buf, body + 8)  # tid
            f32[i, 3] = _u32(buf, body + 12)  # ptid
            f64[i, 0] = _u64(buf, buf64, body + 16)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


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


# ----------------------------------------------------------------------------------------
# big-endian files: records turned into the little-endian layout, in place
# ----------------------------------------------------------------------------------------
# perf reads a file of the other byte order by swapping every 8-byte word of a record's
# body (perf_event__all64_swap) and then undoing that where a word holds two u32s (TID,
# CPU, MMAP's pid/tid, ...) or bytes (strings, RAW). tracedamon does the same to each
# chunk before decoding it, so the decoders only ever see little-endian records.

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
def _be_u32(buf, p):
    return (
        (np.uint32(buf[p]) << np.uint32(24))
        | (np.uint32(buf[p + 1]) << np.uint32(16))
        | (np.uint32(buf[p + 2]) << np.uint32(8))
        | np.uint32(buf[p + 3])
    )


@_jit
def _be_u64(buf, p):
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(buf[p + k])
    return v


@_jit
def _rec_u32(buf, p, be):
    return _be_u32(buf, p) if be else _u32(buf, p)


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
            _be_record_to_le(buf, pos, typ, size)
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


@_jit
def _be_record_to_le(buf, pos, typ, size):
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
            ln = _read_len(buf, p, end, rf_a[a])
            if ln < 0:
                continue
            p += ln
        if st & S_CALLCHAIN:
            if p + 8 > end:
                continue
            nr = np.int64(min(_le_u64(buf, p), np.uint64(end - p)))
            p += 8 + 8 * nr
        if st & S_RAW:
            if p + 8 > end:
                continue
            _swap_word(buf, p)  # the first word as recorded
            sz = np.int64(_be_u32(buf, p))
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
