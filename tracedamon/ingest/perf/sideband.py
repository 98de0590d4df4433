"""The record pass's state and the side-band records (MMAP/MMAP2, COMM, FORK,
EXIT, LOST...): in bulk by numba or one by one."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ...schema import LOST, MMAPS, TASKS
from ...errors import TraceFormatError
from ...schema import empty as _empty
from .. import data_src as _ds
from ..arrays import py_array, str_array
from .header import Attr, RECORD_NAMES, _TRAILER_BITS, _TRAILER_MASK, _id_pos_trailer
from . import layout as L
from .byteswap import be_fix_sideband
from .sample_kernels import gather_bytes
from .sideband_kernels import HEX_DIGITS, hex_bytes, sideband_fields

if TYPE_CHECKING:  # annotations only (at run time these modules would import each other)
    from .reader import PerfData
    from .stream import _Chunk


# ----------------------------------------------------------------------------------------
# pass state and side-band records
# ----------------------------------------------------------------------------------------
class _PassState:
    def __init__(self, rd: PerfData, sideband: bool):
        self.rd = rd
        self.sideband = sideband
        self.record_counts: dict[int, int] = {}
        self.unknown_sample_ids = 0
        self.unknown_record_ids = 0
        self.samples_out_of_order = 0
        self.forced_flushes = 0
        self.nr_samples = np.zeros(len(rd.attrs), dtype=np.int64)
        self.read_ids = None  # ids the read_prev_id array follows
        self.read_prev_id = np.zeros(0, np.uint64)
        self.read_prev_attr = np.zeros(0, np.uint64)
        self.id_index = None
        self.mmaps: list[tuple] = []
        self.tasks: list[tuple] = []
        self.lost: list[tuple] = []
        self._seq = 0
        #: side-band rows already converted to Arrow (bounded Python memory)
        self._done: dict[str, list[pa.Table]] = {"mmaps": [], "tasks": [], "lost": []}

    def add_samples(self, ev: np.ndarray, n: int):
        if len(self.nr_samples) < n:
            old = self.nr_samples
            self.nr_samples = np.zeros(n, dtype=np.int64)
            self.nr_samples[: len(old)] = old
        if n == 1:
            self.nr_samples[0] += len(ev)
        else:
            self.nr_samples += np.bincount(ev, minlength=len(self.nr_samples))[
                : len(self.nr_samples)
            ]

    def count(self, types: np.ndarray):
        if not len(types):
            return
        nsamples = int(np.count_nonzero(types == L.R_SAMPLE))
        if nsamples:
            self.record_counts[9] = self.record_counts.get(9, 0) + nsamples
        if nsamples == len(types):
            return
        rest = types[types != L.R_SAMPLE] if nsamples else types
        u, c = np.unique(rest, return_counts=True)
        for t, k in zip(u.tolist(), c.tolist()):
            self.record_counts[t] = self.record_counts.get(t, 0) + k

    def finish_meta(self):
        m = self.rd.meta
        m["record_counts"] = {
            RECORD_NAMES.get(t, f"UNKNOWN_{t}"): c for t, c in sorted(self.record_counts.items())
        }
        m["unknown_record_types"] = {
            str(t): c for t, c in sorted(self.record_counts.items()) if t not in RECORD_NAMES
        }
        m["unknown_sample_ids"] = self.unknown_sample_ids
        m["samples_out_of_order"] = self.samples_out_of_order
        if self.forced_flushes:
            m["forced_flushes"] = self.forced_flushes
        if self.record_counts.get(70) or self.record_counts.get(71):
            # Arm SPE / Intel PT: the accesses are in AUX data, which perf decodes
            m["aux_data"] = (
                "AUX-area trace data (AUXTRACE) is not decoded by the native "
                "reader: ingest with --via-perf (perf script) to get its samples"
            )
        if self.id_index is not None:
            m["id_index"] = [
                {"id": i, "idx": x, "cpu": _s32(c), "tid": _s32(t)} for i, x, c, t in self.id_index
            ]

    # -- side-band -------------------------------------------------------------------
    #: a chunk with at least this many MMAP/MMAP2/COMM/FORK/EXIT records decodes them
    #: in bulk (numba, straight to Arrow); fewer go record by record through Python
    #: (small files then never need pyarrow.compute to sort them)
    SIDEBAND_BULK = 512

    def collect_sideband(self, ch: "_Chunk", stream: int):
        types = ch.types
        sel = ch.other[np.isin(types[ch.other], (1, 2, 3, 4, 5, 6, 7, 10, 13))]
        if not len(sel):
            return
        rd = self.rd
        if rd.big_endian and rd.attrs:
            _be_fix_sideband(rd, ch, sel)
        seqs = np.arange(self._seq + 1, self._seq + 1 + len(sel), dtype=np.int64)
        self._seq += len(sel)
        layout = _trailer_layout(rd)
        if layout is not None and len(sel) >= self.SIDEBAND_BULK:
            bulk = np.isin(types[sel], (1, 3, 4, 7, 10))
            self._bulk(ch, sel[bulk], seqs[bulk], stream, layout)
            sel, seqs = sel[~bulk], seqs[~bulk]
        buf = ch.buf
        for i, q in zip(sel.tolist(), seqs.tolist()):
            off = int(ch.offs[i])
            typ = int(types[i])
            size = int(ch.sizes[i])
            rec = buf[off : off + size].tobytes()
            misc = struct.unpack_from("<H", rec, 4)[0]
            ai = rd.attr_of_record(buf, off, size)
            if ai is None and rd.attrs:
                # an id no attr owns (perf's synthesized records may carry id 0): the
                # trailer layout is still the one all attrs share
                self.unknown_record_ids += 1
                ai = 0
            tr = _trailer(rd, ai, rec) or {}
            blen = size - (rd.attrs[ai].trailer_len if ai is not None else 0)
            body = rec[8:blen]
            try:
                self._one(typ, misc, body, tr, ai, (stream, q))
            except struct.error:
                raise TraceFormatError(
                    ch.path,
                    f"{RECORD_NAMES[typ]} record too short ({size} bytes)",
                    offset=int(ch.fileoff[i]),
                ) from None

    def _bulk(
        self,
        ch: "_Chunk",
        sel: np.ndarray,
        seqs: np.ndarray,
        stream: int,
        layout: tuple[int, int, int],
    ):
        """MMAP, MMAP2, COMM, FORK and EXIT records of a chunk decoded by a numba kernel
        into Arrow tables (the rows :meth:`_one` makes, for many records at once)."""
        F = _decode_bulk(ch, sel, layout)
        rd = self.rd
        if len(rd.attrs) > 1 and layout[2] >= 0:
            known = np.fromiter(rd._id2attr, dtype=np.uint64, count=len(rd._id2attr))
            self.unknown_record_ids += int(np.count_nonzero(~F.has_rid)) + int(
                np.count_nonzero(F.has_rid & ~np.isin(F.rid, known))
            )
        mm = np.flatnonzero((F.types == L.R_MMAP) | (F.types == L.R_MMAP2))
        if len(mm):
            self._done["mmaps"].append(_mmaps_table(ch, F, mm, stream, seqs))
        tk = np.flatnonzero(np.isin(F.types, (L.R_COMM, L.R_EXIT, L.R_FORK)))
        if len(tk):
            self._done["tasks"].append(_tasks_table(ch, F, tk, stream, seqs))

    def _one(self, typ, misc, body, tr, ai, seq):
        time = tr.get("time")
        if typ in (L.R_MMAP, L.R_MMAP2):
            pid, tid, start, length, pgoff = struct.unpack_from("<IIQQQ", body, 0)
            prot = flags = maj = mn = ino = igen = None
            build_id = None
            if typ == L.R_MMAP2:
                if misc & 0x4000:
                    bsz = body[32]
                    build_id = body[36 : 36 + min(bsz, 20)].hex()
                else:
                    maj, mn, ino, igen = struct.unpack_from("<IIQQ", body, 32)
                prot, flags = struct.unpack_from("<II", body, 56)
                fname = body[64:]
            else:
                fname = body[32:]
            fname = fname.split(b"\0", 1)[0].decode("utf-8", "replace")
            self.mmaps.append(
                (
                    _key(time),
                    seq,
                    time,
                    _s32(pid),
                    _s32(tid),
                    start,
                    length,
                    pgoff,
                    prot,
                    flags,
                    fname,
                    build_id,
                    maj,
                    mn,
                    ino,
                    igen,
                    bool(misc & 0x2000),
                    misc & 7,
                    typ,
                )
            )
        elif typ == L.R_COMM:
            pid, tid = struct.unpack_from("<II", body, 0)
            comm = body[8:].split(b"\0", 1)[0].decode("utf-8", "replace")
            self.tasks.append(
                (
                    _key(time),
                    seq,
                    time,
                    "COMM",
                    _s32(pid),
                    _s32(tid),
                    None,
                    None,
                    comm,
                    bool(misc & 0x2000),
                )
            )
        elif typ in (L.R_EXIT, L.R_FORK):
            pid, ppid, tid, ptid, btime = struct.unpack_from("<IIIIQ", body, 0)
            t = time if time is not None else btime
            self.tasks.append(
                (
                    _key(t),
                    seq,
                    t,
                    "EXIT" if typ == L.R_EXIT else "FORK",
                    _s32(pid),
                    _s32(tid),
                    _s32(ppid),
                    _s32(ptid),
                    None,
                    None,
                )
            )
        elif typ == L.R_LOST:
            i, n = struct.unpack_from("<QQ", body, 0)
            ev = self.rd._id2attr.get(i)
            self.lost.append(
                (
                    _key(time),
                    seq,
                    time,
                    "LOST",
                    ev,
                    i,
                    tr.get("pid"),
                    tr.get("tid"),
                    tr.get("cpu"),
                    n,
                )
            )
        elif typ == L.R_LOST_SAMPLES:
            (n,) = struct.unpack_from("<Q", body, 0)
            sid = tr.get("id")
            ev = self.rd._id2attr.get(sid) if sid is not None else None
            if ev is None and len(self.rd.attrs) == 1 and sid is None:
                ev = 0
            self.lost.append(
                (
                    _key(time),
                    seq,
                    time,
                    "LOST_SAMPLES",
                    ev,
                    sid,
                    tr.get("pid"),
                    tr.get("tid"),
                    tr.get("cpu"),
                    n,
                )
            )
        elif typ in (L.R_THROTTLE, L.R_UNTHROTTLE):
            t, i, _sid = struct.unpack_from("<QQQ", body, 0)
            ev = self.rd._id2attr.get(i)
            what = "THROTTLE" if typ == L.R_THROTTLE else "UNTHROTTLE"
            self.lost.append(
                (_key(t), seq, t, what, ev, i, tr.get("pid"), tr.get("tid"), tr.get("cpu"), 0)
            )

    #: side-band rows kept as Python tuples before they are converted to Arrow
    SIDEBAND_BATCH = 50_000

    def _compact(self, final: bool = False):
        for name, schema in (("mmaps", MMAPS), ("tasks", TASKS), ("lost", LOST)):
            rows = getattr(self, name)
            if not rows or (not final and len(rows) < self.SIDEBAND_BATCH):
                continue
            cols = list(zip(*rows))
            arrays = [
                py_array(list(cols[0]), pa.int64()),
                py_array([q[0] for q in cols[1]], pa.int32()),
                py_array([q[1] for q in cols[1]], pa.int64()),
            ]
            for f, vals in zip(schema, cols[2:]):
                arrays.append(py_array(list(vals), f.type))
            names = ["_kt", "_ks", "_kq"] + schema.names
            self._done[name].append(pa.Table.from_arrays(arrays, names=names))
            rows.clear()

    def sideband_tables(self) -> dict[str, pa.Table]:
        """The mmaps, tasks and lost tables, sorted by time (records without a time
        first), ties in stream and file order."""
        out = {}
        for name, schema in (("mmaps", MMAPS), ("tasks", TASKS), ("lost", LOST)):
            parts = self._done[name]
            rows = getattr(self, name)
            if not parts:
                # all rows still in Python (fewer than SIDEBAND_BATCH): sorted there, by
                # (time key, (stream, sequence)), without loading pyarrow.compute
                rows.sort(key=lambda r: (r[0], r[1]))
                cols = list(zip(*rows))
                out[name] = (
                    pa.Table.from_arrays(
                        [py_array(list(c), f.type) for f, c in zip(schema, cols[2:])], schema=schema
                    )
                    if rows
                    else _empty(schema)
                )
                rows.clear()
                continue
            self._compact(final=True)
            t = pa.concat_tables(parts).unify_dictionaries() if len(parts) > 1 else parts[0]
            t = t.sort_by([("_kt", "ascending"), ("_ks", "ascending"), ("_kq", "ascending")])
            out[name] = t.select(schema.names).cast(schema)
        return out


class _BulkFields:
    """The fields of a chunk's side-band records as :func:`sideband_fields` decodes
    them (see there), with the records' offsets, sizes and types."""

    def __init__(self, ch: "_Chunk", sel: np.ndarray):
        n = len(sel)
        self.offs, self.sizes, self.types = ch.offs[sel], ch.sizes[sel], ch.types[sel]
        self.misc = np.empty(n, np.uint16)
        self.time = np.zeros(n, np.int64)
        self.has_time = np.zeros(n, bool)
        self.rid = np.zeros(n, np.uint64)
        self.has_rid = np.zeros(n, bool)
        self.f32 = np.zeros((n, 6), np.uint32)
        self.f64 = np.zeros((n, 5), np.uint64)
        self.bid_len = np.full(n, -1, np.int64)
        self.s_off = np.zeros(n, np.int64)
        self.s_len = np.zeros(n, np.int64)


def _decode_bulk(ch: "_Chunk", sel: np.ndarray, layout: tuple[int, int, int]) -> _BulkFields:
    """Records ``sel`` of the chunk decoded (``layout``: the trailer's length, its TIME
    position, how far back from the end its id sits); a TraceFormatError at the first
    record too short for its fixed part."""
    tl, time_pos, id_back = layout
    F = _BulkFields(ch, sel)
    err = np.zeros(len(sel), np.int8)
    sideband_fields(
        ch.buf,
        ch.buf64,
        F.offs,
        F.sizes,
        F.types,
        tl,
        time_pos,
        id_back,
        F.misc,
        F.time,
        F.has_time,
        F.rid,
        F.has_rid,
        F.f32,
        F.f64,
        F.bid_len,
        F.s_off,
        F.s_len,
        err,
    )
    if err.any():
        i = int(np.flatnonzero(err)[0])
        raise TraceFormatError(
            ch.path,
            f"{RECORD_NAMES[int(F.types[i])]} record too short ({int(F.sizes[i])} bytes)",
            offset=int(ch.fileoff_of(sel[i : i + 1], F.offs[i : i + 1])[0]),
        )
    return F


def _key_columns(rows: np.ndarray, t, tvalid, stream: int, seqs: np.ndarray) -> list:
    """The sort key of side-band rows: time (-1 when unknown), stream, sequence."""
    return [
        _ds.np_to_arrow(np.where(tvalid, t, -1) if tvalid is not None else t, pa.int64()),
        _ds.np_to_arrow(np.full(len(rows), stream, np.int32), pa.int32()),
        _ds.np_to_arrow(seqs[rows], pa.int64()),
    ]


def _mmaps_table(ch: "_Chunk", F: _BulkFields, mm: np.ndarray, stream: int, seqs) -> pa.Table:
    """MMAPS rows (with the sort key) of the MMAP and MMAP2 records ``mm``."""
    t = F.time[mm]
    tv = None if F.has_time[mm].all() else F.has_time[mm]
    is2 = F.types[mm] == L.R_MMAP2
    bid = F.bid_len[mm] >= 0
    inode = is2 & ~bid
    bo = np.empty(len(mm) + 1, np.int32)
    hexdata = np.empty(int(np.maximum(F.bid_len[mm], 0).sum()) * 2, np.uint8)
    hex_bytes(ch.buf, F.s_off[mm] - 28, np.where(bid, F.bid_len[mm], -1), HEX_DIGITS, bo, hexdata)
    build_id = pa.Array.from_buffers(
        pa.string(),
        len(mm),
        [_ds.bitmap(bid), pa.py_buffer(bo), pa.py_buffer(hexdata)],
        null_count=int((~bid).sum()),
    )
    m = F.misc[mm]
    s32 = F.f32.view(np.int32)
    f32, f64 = F.f32, F.f64
    cols = [
        _ds.np_to_arrow(t, pa.int64(), tv),
        _ds.np_to_arrow(s32[mm, 0].copy(), pa.int32()),
        _ds.np_to_arrow(s32[mm, 1].copy(), pa.int32()),
        _ds.np_to_arrow(f64[mm, 0].copy(), pa.uint64()),
        _ds.np_to_arrow(f64[mm, 1].copy(), pa.uint64()),
        _ds.np_to_arrow(f64[mm, 2].copy(), pa.uint64()),
        _ds.np_to_arrow(f32[mm, 4].copy(), pa.uint32(), is2),
        _ds.np_to_arrow(f32[mm, 5].copy(), pa.uint32(), is2),
        _utf8_column(ch.buf, F.s_off[mm], F.s_len[mm]),
        build_id,
        _ds.np_to_arrow(f32[mm, 2].copy(), pa.uint32(), inode),
        _ds.np_to_arrow(f32[mm, 3].copy(), pa.uint32(), inode),
        _ds.np_to_arrow(f64[mm, 3].copy(), pa.uint64(), inode),
        _ds.np_to_arrow(f64[mm, 4].copy(), pa.uint64(), inode),
        _ds.np_to_arrow((m & 0x2000) != 0, pa.bool_()),
        _ds.np_to_arrow((m & 7).astype(np.uint8), pa.uint8()),
        _ds.np_to_arrow(F.types[mm].astype(np.uint8), pa.uint8()),
    ]
    return pa.Table.from_arrays(
        _key_columns(mm, t, tv, stream, seqs) + cols, names=["_kt", "_ks", "_kq"] + MMAPS.names
    )


def _tasks_table(ch: "_Chunk", F: _BulkFields, tk: np.ndarray, stream: int, seqs) -> pa.Table:
    """TASKS rows (with the sort key) of the COMM, EXIT and FORK records ``tk``."""
    ty = F.types[tk]
    comm = ty == 3
    # FORK/EXIT: the trailer's time, else the record's own; COMM: the trailer's
    t = np.where(comm | F.has_time[tk], F.time[tk], F.f64[tk, 0].view(np.int64))
    tv = F.has_time[tk] | ~comm
    if tv.all():
        tv = None
    kind = pa.DictionaryArray.from_arrays(
        _ds.np_to_arrow(np.where(comm, 0, np.where(ty == 4, 1, 2)).astype(np.int32), pa.int32()),
        _TASK_KINDS,
    )
    m = F.misc[tk]
    s32 = F.f32.view(np.int32)
    names = _utf8_column(ch.buf, F.s_off[tk], F.s_len[tk])
    cols = [
        _ds.np_to_arrow(t, pa.int64(), tv),
        kind,
        _ds.np_to_arrow(s32[tk, 0].copy(), pa.int32()),
        _ds.np_to_arrow(s32[tk, 1].copy(), pa.int32()),
        _ds.np_to_arrow(s32[tk, 2].copy(), pa.int32(), ~comm),
        _ds.np_to_arrow(s32[tk, 3].copy(), pa.int32(), ~comm),
        pa.Array.from_buffers(
            pa.string(),
            len(tk),
            [_ds.bitmap(comm)] + names.buffers()[1:],
            null_count=int((~comm).sum()),
        ),
        _ds.np_to_arrow((m & 0x2000) != 0, pa.bool_(), comm),
    ]
    return pa.Table.from_arrays(
        _key_columns(tk, t, tv, stream, seqs) + cols, names=["_kt", "_ks", "_kq"] + TASKS.names
    )


def _key(t):
    return -1 if t is None else t


_TASK_KINDS = _ds.str_array(["COMM", "EXIT", "FORK"])


def _be_fix_sideband(rd: "PerfData", ch: "_Chunk", sel: np.ndarray) -> None:
    """Big-endian side-band records of a chunk made little-endian, each with the
    trailer layout of its attr (found as attr_of_record finds it: the id at the
    position the first attr's layout gives; the trailer words are swapped already)."""
    offs, sizes, types = ch.offs[sel], ch.sizes[sel], ch.types[sel]
    attr = np.zeros(len(sel), np.int64)
    first = rd.attrs[0]
    pos = _id_pos_trailer(first.sample_type)
    if len(rd.attrs) > 1 and first.sample_id_all and pos >= 0:
        for k in range(len(sel)):
            o, z = int(offs[k]), int(sizes[k])
            if pos <= z - 8:
                v = int.from_bytes(ch.buf[o + z - pos : o + z - pos + 8].tobytes(), "little")
                attr[k] = rd._id2attr.get(v, 0)
    tl_a = np.array([a.trailer_len for a in rd.attrs], np.int64)
    tid_a = np.array([_trailer_offset(a, L.S_TID) for a in rd.attrs], np.int64)
    cpu_a = np.array([_trailer_offset(a, L.S_CPU) for a in rd.attrs], np.int64)
    be_fix_sideband(ch.buf, offs, sizes, types, attr, tl_a, tid_a, cpu_a)


def _trailer_offset(a: Attr, bit: int) -> int:
    """Where field ``bit`` sits in attr ``a``'s sample_id_all trailer (-1: not there)."""
    if not a.trailer_len or not a.sample_type & bit:
        return -1
    before = _TRAILER_BITS[: _TRAILER_BITS.index(bit)]  # the trailer's own order
    return 8 * sum(1 for b in before if a.sample_type & b)


def _trailer_layout(rd: "PerfData") -> tuple[int, int, int] | None:
    """(trailer length, TIME offset in it or -1, how far back from a record's end its
    id sits or -1 when ids are not looked up) when every attr shares one sample_id_all
    trailer layout (perf writes files so); None otherwise."""
    if not rd.attrs:
        return None
    first = rd.attrs[0]
    key = (first.sample_id_all, first.sample_type & _TRAILER_MASK)
    if any((a.sample_id_all, a.sample_type & _TRAILER_MASK) != key for a in rd.attrs[1:]):
        return None
    tl = first.trailer_len
    time_pos = _trailer_offset(first, L.S_TIME)
    id_back = -1
    if len(rd.attrs) > 1 and first.sample_id_all:
        id_back = _id_pos_trailer(first.sample_type)
    return tl, time_pos, id_back


def _utf8_column(buf: np.ndarray, off: np.ndarray, ln: np.ndarray) -> pa.Array:
    """Strings at ``buf[off[i]:off[i]+ln[i]]`` as an Arrow string array; bytes that are
    not UTF-8 become U+FFFD, as ``bytes.decode("utf-8", "replace")`` makes them."""
    n = len(off)
    bo = np.empty(n + 1, np.int32)
    data = np.empty(int(ln.sum()), np.uint8)
    gather_bytes(buf, off, ln, np.ones(n, bool), bo, data)
    arr = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(bo), pa.py_buffer(data)], null_count=0
    )
    try:
        arr.validate(full=True)
        return arr
    except pa.ArrowInvalid:
        raw = data.tobytes()
        return str_array([raw[bo[i] : bo[i + 1]].decode("utf-8", "replace") for i in range(n)])


def _s32(v):
    if v is None:
        return None
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _trailer(rd: PerfData, ai, rec: bytes) -> dict | None:
    """The sample_id_all trailer of a non-SAMPLE record, parsed for attr ``ai``."""
    if ai is None:
        return None
    a = rd.attrs[ai]
    n = a.trailer_len
    if not n:
        return {}
    if n + 8 > len(rec):
        return {}
    p = len(rec) - n
    st = a.sample_type
    out = {}
    if st & L.S_TID:
        pid, tid = struct.unpack_from("<II", rec, p)
        out["pid"], out["tid"] = _s32(pid), _s32(tid)
        p += 8
    if st & L.S_TIME:
        out["time"] = struct.unpack_from("<q", rec, p)[0]
        p += 8
    if st & L.S_ID:
        out["id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    if st & L.S_STREAM_ID:
        out["stream_id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    if st & L.S_CPU:
        out["cpu"] = _s32(struct.unpack_from("<I", rec, p)[0])
        p += 8
    if st & L.S_IDENTIFIER:
        out["id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    return out
