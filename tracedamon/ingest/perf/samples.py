"""Decoded samples as numpy columns (sorted before they become Arrow), the samples
file's schema and the expansion of PERF_SAMPLE_READ rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ...schema import SAMPLES
from .. import data_src as _ds
from . import layout as L
from .read_values import count_read_values, expand_read
from .sample_kernels import gather_bytes, gather_u64_lists

if TYPE_CHECKING:  # annotations only (at run time these modules would import each other)
    from .reader import PerfData
    from .sideband import _PassState


# ----------------------------------------------------------------------------------------
# decoded samples as numpy columns (sorted before they become Arrow)
# ----------------------------------------------------------------------------------------
class _Block:
    """Decoded samples: ``cols[name] = (values, valid-or-None)`` numpy arrays in the
    SAMPLES column types, ``lists[name]`` Arrow arrays (callchain, raw) or None,
    ``times`` (the sort key, int64) and ``rounds`` (FINISHED_ROUNDs before each row)."""

    __slots__ = ("cols", "lists", "times", "rounds", "has_time")

    def __init__(self, cols, lists, times, rounds, has_time):
        self.cols = cols
        self.lists = lists
        self.times = times
        self.rounds = rounds
        self.has_time = has_time

    def __len__(self):
        return len(self.times)

    def take(self, idx: np.ndarray) -> "_Block":
        cols = {
            k: None if c is None else (c[0][idx], None if c[1] is None else c[1][idx])
            for k, c in self.cols.items()
        }
        lists = {
            k: None if a is None else a.take(_ds.np_to_arrow(np.asarray(idx, np.int64), pa.int64()))
            for k, a in self.lists.items()
        }
        return _Block(cols, lists, self.times[idx], self.rounds[idx], self.has_time)

    def slice(self, a: int, b: int) -> "_Block":
        cols = {
            k: None if c is None else (c[0][a:b], None if c[1] is None else c[1][a:b])
            for k, c in self.cols.items()
        }
        lists = {k: None if x is None else x.slice(a, b - a) for k, x in self.lists.items()}
        return _Block(cols, lists, self.times[a:b], self.rounds[a:b], self.has_time)

    @staticmethod
    def concat(blocks: list["_Block"]) -> "_Block":
        if len(blocks) == 1:
            return blocks[0]
        cols = {}
        for k in blocks[0].cols:
            cs = [b.cols[k] for b in blocks]
            if all(c is None for c in cs):
                cols[k] = None
                continue
            dt = next(c[0].dtype for c in cs if c is not None)
            vals = np.concatenate(
                [np.zeros(len(b), dt) if c is None else c[0] for b, c in zip(blocks, cs)]
            )
            if all(c is not None and c[1] is None for c in cs):
                m = None
            else:
                m = np.concatenate(
                    [
                        np.zeros(len(b), bool)
                        if c is None
                        else np.ones(len(b), bool)
                        if c[1] is None
                        else c[1]
                        for b, c in zip(blocks, cs)
                    ]
                )
            cols[k] = (vals, m)
        lists = {}
        for k in blocks[0].lists:
            arrs = [b.lists[k] for b in blocks]
            if all(x is None for x in arrs):
                lists[k] = None
            else:
                typ = SAMPLES.field(k).type
                lists[k] = pa.concat_arrays(
                    [pa.nulls(len(b), typ) if x is None else x for b, x in zip(blocks, arrs)]
                )
        return _Block(
            cols,
            lists,
            np.concatenate([b.times for b in blocks]),
            np.concatenate([b.rounds for b in blocks]),
            any(b.has_time for b in blocks),
        )

    def table(self, rd: "PerfData", schema: pa.Schema | None = None) -> pa.Table:
        """The block as an Arrow table in the SAMPLES schema, or in ``schema`` (a narrower
        form of it, see :func:`samples_file_schema`) when the block fits that."""
        n = len(self)
        arrays = {}
        for f in SAMPLES:
            k = f.name
            if k in self.cols:
                c = self.cols[k]
                if c is None:
                    arrays[k] = _nulls(n, f.type)
                else:
                    v, m = c
                    arrays[k] = _ds.np_to_arrow(v, f.type, m)
            elif k in self.lists:
                x = self.lists[k]
                arrays[k] = _nulls(n, f.type) if x is None else x
        arrays["event"] = pa.DictionaryArray.from_arrays(arrays["event_id"], rd.event_names_array())
        c = self.cols["data_src"]
        if c is None or (c[1] is not None and not c[1].any()):
            for name in _ds.COLUMNS + ("mem_remote", "mem_hops", "mem_lvl_num"):
                arrays[name] = _nulls(n, SAMPLES.field(name).type)
        else:
            arrays.update(_ds.decode_column(*c))
        if schema is not None and _fits(arrays, schema, n):
            return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)
        return pa.Table.from_arrays([arrays[f.name] for f in SAMPLES], schema=SAMPLES)


def _fits(arrays: dict, schema: pa.Schema, n: int) -> bool:
    """Whether the SAMPLES ``arrays`` of n rows can be written in the narrower
    ``schema``: no value in a left-out column, no null in a non-nullable one."""
    absent, required = _narrowing(schema)
    return all(arrays[c].null_count == n for c in absent) and not any(
        arrays[c].null_count for c in required
    )


_NARROWING: dict = {}


def _narrowing(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """(columns left out, columns non-nullable) of a narrower form of SAMPLES."""
    key = id(schema)
    got = _NARROWING.get(key)
    if got is None or got[0] is not schema:
        names = set(schema.names)
        got = (
            schema,
            [c for c in SAMPLES.names if c not in names],
            [f.name for f in schema if not f.nullable],
        )
        _NARROWING[key] = got
    return got[1], got[2]


#: the sample_type bits behind each SAMPLES column (the others: every record has them,
#: or see samples_file_schema)
_COLUMN_BITS = {
    "time_ns": L.S_TIME,
    "pid": L.S_TID,
    "tid": L.S_TID,
    "cpu": L.S_CPU,
    "ip": L.S_IP,
    "addr": L.S_ADDR,
    "phys_addr": L.S_PHYS_ADDR,
    "weight": L.S_WEIGHT | L.S_WEIGHT_STRUCT,
    "weight2": L.S_WEIGHT_STRUCT,
    "weight3": L.S_WEIGHT_STRUCT,
    "data_page_size": L.S_DATA_PAGE_SIZE,
    "code_page_size": L.S_CODE_PAGE_SIZE,
    "transaction": L.S_TRANSACTION,
    "cgroup": L.S_CGROUP,
    "stream_id": L.S_STREAM_ID,
    "callchain": L.S_CALLCHAIN,
    "raw": L.S_RAW,
    **{
        c: L.S_DATA_SRC
        for c in ("data_src",) + _ds.COLUMNS + ("mem_remote", "mem_hops", "mem_lvl_num")
    },
}


def samples_file_schema(rd: "PerfData") -> pa.Schema:
    """The narrowest form of SAMPLES that the file's events allow: a column that no
    event records is left out, and a column that every event records is non-nullable.

    A guess for files whose events change after the first samples are written (a
    pipe stream adding an event): the writer widens the file if a batch breaks it.
    """
    sts = [a.sample_type for a in rd.attrs]
    read = any(st & L.S_READ for st in sts)
    fields = []
    for f in SAMPLES:
        bits = _COLUMN_BITS.get(f.name)
        if f.name == "sample_id":
            # READ rows carry the ids of the group's members (read_format ID)
            bits = L.S_ID | L.S_IDENTIFIER
            every = not read and all(st & bits for st in sts)
            none = not read and not any(st & bits for st in sts)
        elif f.name == "period":
            # sampled PERIOD, else the attr's fixed period; READ rows: counter deltas
            every = all((a.sample_type & L.S_PERIOD) or not a.freq for a in rd.attrs)
            none = not read and not any(
                (a.sample_type & L.S_PERIOD) or not a.freq for a in rd.attrs
            )
        elif bits is None:  # event, cpumode, misc, file_offset, ...
            every, none = True, False
        else:
            every = all(st & bits for st in sts)
            none = not any(st & bits for st in sts)
        if none:
            continue
        fields.append(f.with_nullable(False) if every else f)
    return pa.schema(fields)


_NULLS: dict = {}


def _nulls(n: int, typ: pa.DataType) -> pa.Array:
    """An all-null array of ``n`` rows: a zero-copy slice of a cached one."""
    a = _NULLS.get(typ)
    if a is None or len(a) < n:
        a = pa.nulls(max(n, 1 << 16), typ)
        _NULLS[typ] = a
    return a.slice(0, n)


def _presence(P, attr, bit):
    """None when every row has the field, a False array when none has, else per row."""
    has = (P["st"] & bit) != 0
    if has.all():
        return None
    if not has.any():
        return _NONE
    return has[attr]


class _NoneMask:
    """Marker: the field is absent from every row."""


_NONE = _NoneMask()


def _sample_block(P, ch, out, attr, misc, fileoff, rounds) -> _Block:
    """The decoded samples of a chunk (``out``: the decode matrix, rows as ``attr``) as a
    block of SAMPLES columns; ``P`` holds the attrs' parameters (:meth:`PerfData.params`)."""
    n = len(attr)
    cols = {}
    pres_time = _presence(P, attr, L.S_TIME)
    _put_task_columns(cols, P, out, attr, n, pres_time)
    cols["event_id"] = (attr, None)
    for name, col, bit in _U64_FIELDS:
        pres = _presence(P, attr, bit)
        _put(cols, name, None if pres is _NONE else out[:, col], pres)
    cols["period"] = _period_column(P, out, attr, n)
    _put_weight_columns(cols, P, out, attr, n)
    cols["cpumode"] = ((misc & 7).astype(np.uint8), None)
    cols["misc"] = (misc, None)
    cols["file_offset"] = (np.asarray(fileoff, dtype=np.uint64), None)
    lists = {
        "callchain": _callchain_list(P, ch, out, attr, n),
        "raw": _raw_list(P, ch, out, attr, n),
    }
    # copy the used columns out of the reused scratch matrix
    for k, c in list(cols.items()):
        if c is not None and np.may_share_memory(c[0], out):
            cols[k] = (c[0].copy(), c[1])
    times = cols["time_ns"][0] if cols["time_ns"] is not None else np.zeros(n, np.int64)
    return _Block(cols, lists, np.ascontiguousarray(times), rounds, pres_time is not _NONE)


#: the u64 SAMPLES columns taken from the decode matrix as they are: (name, column,
#: the sample_type bits that record it)
_U64_FIELDS = (
    ("ip", L.C_IP, L.S_IP),
    ("addr", L.C_ADDR, L.S_ADDR),
    ("phys_addr", L.C_PHYS_ADDR, L.S_PHYS_ADDR),
    ("data_src", L.C_DATA_SRC, L.S_DATA_SRC),
    ("data_page_size", L.C_DATA_PAGE_SIZE, L.S_DATA_PAGE_SIZE),
    ("code_page_size", L.C_CODE_PAGE_SIZE, L.S_CODE_PAGE_SIZE),
    ("transaction", L.C_TRANSACTION, L.S_TRANSACTION),
    ("cgroup", L.C_CGROUP, L.S_CGROUP),
    ("stream_id", L.C_STREAM_ID, L.S_STREAM_ID),
    ("sample_id", L.C_ID, L.S_ID | L.S_IDENTIFIER),
)


def _put(cols: dict, name: str, vals, pres) -> None:
    """Column ``name``: absent (None) when no row has the field, else (values, validity)."""
    cols[name] = None if pres is _NONE else (vals, pres)


def _put_task_columns(cols: dict, P, out, attr, n: int, pres_time) -> None:
    """time_ns, pid, tid and cpu."""
    times = out[:, L.C_TIME].view(np.int64)
    if pres_time is _NONE:
        times = np.zeros(n, np.int64)
    elif pres_time is not None:
        times = np.where(pres_time, times, 0)
    _put(cols, "time_ns", times, pres_time)
    pres = _presence(P, attr, L.S_TID)
    if pres is _NONE:
        _put(cols, "pid", np.zeros(n, np.int32), pres)
        _put(cols, "tid", np.zeros(n, np.int32), pres)
    else:
        # the TID word is pid (low 32 bits) then tid: split through a 32-bit view
        halves = out[:, L.C_TID].view(np.int32)
        _put(cols, "pid", halves[0::2].copy(), pres)
        _put(cols, "tid", halves[1::2].copy(), pres)
    pres = _presence(P, attr, L.S_CPU)
    _put(
        cols,
        "cpu",
        np.zeros(n, np.int32)
        if pres is _NONE
        else (out[:, L.C_CPU] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32),
        pres,
    )


def _period_column(P, out, attr, n: int) -> tuple:
    """period: sampled, else the attr's fixed period (null in frequency mode)."""
    pres = _presence(P, attr, L.S_PERIOD)
    if pres is None:
        return (out[:, L.C_PERIOD], None)
    if (
        pres is _NONE
        and len(P["period"])
        and (P["period"] == P["period"][0]).all()
        and (P["freq"] == P["freq"][0]).all()
    ):
        # one fixed period for every event (perf record -c N): a shared constant column;
        # frequency mode without PERIOD: no period known (null)
        if P["freq"][0]:
            return (np.zeros(n, np.uint64), np.zeros(n, bool))
        return (_ds.constant(int(P["period"][0]), np.uint64, n), None)
    fixed = P["period"][attr]
    freq = P["freq"][attr]
    if pres is _NONE:
        vals, valid = fixed, ~freq
    else:
        vals, valid = np.where(pres, out[:, L.C_PERIOD], fixed), pres | ~freq
    return (vals, None if valid.all() else valid)


def _put_weight_columns(cols: dict, P, out, attr, n: int) -> None:
    """weight, weight2 and weight3: WEIGHT as it is, WEIGHT_STRUCT split in three."""
    pw = _presence(P, attr, L.S_WEIGHT)
    ps = _presence(P, attr, L.S_WEIGHT_STRUCT)
    if pw is _NONE and ps is _NONE:
        _put(cols, "weight", None, _NONE)
        _put(cols, "weight2", np.zeros(n, np.uint16), _NONE)
        _put(cols, "weight3", np.zeros(n, np.uint16), _NONE)
        return
    w = out[:, L.C_WEIGHT]
    if ps is _NONE:
        _put(cols, "weight", w, pw)
        _put(cols, "weight2", np.zeros(n, np.uint16), _NONE)
        _put(cols, "weight3", np.zeros(n, np.uint16), _NONE)
        return
    s_rows = np.ones(n, bool) if ps is None else ps
    w_rows = np.zeros(n, bool) if pw is _NONE else (np.ones(n, bool) if pw is None else pw)
    wv = np.where(s_rows, w & np.uint64(0xFFFFFFFF), w)
    anyw = s_rows | w_rows
    _put(cols, "weight", wv, None if anyw.all() else anyw)
    _put(cols, "weight2", (w >> np.uint64(32) & np.uint64(0xFFFF)).astype(np.uint16), ps)
    _put(cols, "weight3", (w >> np.uint64(48)).astype(np.uint16), ps)


def _callchain_list(P, ch, out, attr, n: int) -> pa.Array | None:
    """The callchains as an Arrow list<uint64> array (None when no event records them)."""
    pres = _presence(P, attr, L.S_CALLCHAIN)
    if pres is _NONE:
        return None
    valid = np.ones(n, bool) if pres is None else pres
    nr = out[:, L.C_CC_NR].astype(np.int64) * valid
    off = np.where(valid, out[:, L.C_CC_OFF], 0).astype(np.int64)
    lo = np.empty(n + 1, dtype=np.int32)
    vals = np.empty(int(nr.sum()), dtype=np.uint64)
    gather_u64_lists(ch.buf, ch.buf64, off, nr, valid, lo, vals)
    return pa.ListArray.from_arrays(
        _ds.np_to_arrow(lo, pa.int32()),
        _ds.np_to_arrow(vals, pa.uint64()),
        mask=None if pres is None else _ds.np_to_arrow(~valid, pa.bool_()),
    )


def _raw_list(P, ch, out, attr, n: int) -> pa.Array | None:
    """The RAW payloads as an Arrow binary array (None when no event records them)."""
    pres = _presence(P, attr, L.S_RAW)
    if pres is _NONE:
        return None
    valid = np.ones(n, bool) if pres is None else pres
    ln = out[:, L.C_RAW_LEN].astype(np.int64) * valid
    off = np.where(valid, out[:, L.C_RAW_OFF], 0).astype(np.int64)
    bo = np.empty(n + 1, dtype=np.int32)
    data = np.empty(int(ln.sum()), dtype=np.uint8)
    gather_bytes(ch.buf, off, ln, valid, bo, data)
    vb = None if pres is None else _ds.bitmap(valid)
    return pa.Array.from_buffers(pa.binary(), n, [vb, pa.py_buffer(bo), pa.py_buffer(data)])


def _expand_read(rd: PerfData, ch, out, attr, blk: _Block, st: "_PassState") -> _Block:
    """PERF_SAMPLE_READ: one row per read value (module doc), by a numba kernel; the
    previous counter values persist across chunks in ``st``."""
    P = rd.params()
    ids = P["ids"]
    if st.read_ids is None or not np.array_equal(st.read_ids, ids):
        old = (
            dict(zip(st.read_ids.tolist(), st.read_prev_id.tolist()))
            if st.read_ids is not None
            else {}
        )
        st.read_prev_id = np.array([old.get(int(i), 0) for i in ids], dtype=np.uint64)
        st.read_ids = ids
    if len(st.read_prev_attr) < len(rd.attrs):
        st.read_prev_attr = np.concatenate(
            [st.read_prev_attr, np.zeros(len(rd.attrs) - len(st.read_prev_attr), np.uint64)]
        )
    read_off = np.ascontiguousarray(out[:, L.C_READ_OFF]).astype(np.int64)
    total = count_read_values(ch.buf, ch.buf64, attr, read_off, P["st"], P["rf"])
    o_row = np.empty(total, np.int64)
    o_attr = np.empty(total, np.int32)
    o_id = np.zeros(total, np.uint64)
    o_kind = np.empty(total, np.int8)
    o_per = np.zeros(total, np.uint64)
    k, unknown = expand_read(
        ch.buf,
        ch.buf64,
        attr,
        read_off,
        P["st"],
        P["rf"],
        ids,
        P["ida"],
        st.read_prev_id,
        st.read_prev_attr,
        o_row,
        o_attr,
        o_id,
        o_kind,
        o_per,
    )
    st.unknown_sample_ids += int(unknown)
    o_row, o_attr, o_id, o_kind, o_per = (x[:k] for x in (o_row, o_attr, o_id, o_kind, o_per))
    nb = blk.take(o_row)
    keep = o_kind == 0
    nb.cols["event_id"] = (o_attr, None)
    old_sid = nb.cols["sample_id"]
    if old_sid is None:
        old_v, old_valid = np.zeros(k, np.uint64), np.zeros(k, bool)
    else:
        old_v = old_sid[0]
        old_valid = np.ones(k, bool) if old_sid[1] is None else old_sid[1]
    sid_v = np.where(keep, old_v, o_id).astype(np.uint64)
    sid_valid = np.where(keep, old_valid, o_kind == 1)
    nb.cols["sample_id"] = (sid_v, None if sid_valid.all() else sid_valid)
    per_v, per_m = nb.cols["period"]
    nb.cols["period"] = (
        np.where(keep, per_v, o_per).astype(np.uint64),
        None if per_m is None else (per_m | ~keep),
    )
    return nb


def finish_samples(rd: PerfData, blk: _Block, schema: pa.Schema | None = None) -> pa.Table:
    """A block as an Arrow table in the SAMPLES schema (dictionary columns added), or in
    the narrower ``schema`` when it fits (see :func:`samples_file_schema`)."""
    return blk.table(rd, schema)
