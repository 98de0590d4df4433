"""Decoding of ``perf_mem_data_src`` (the PERF_SAMPLE_DATA_SRC u64).

The bit layout is the kernel's UAPI union (docs/perf-data-format.md §7). The text of
each part is what ``perf script -F data_src`` of perf 6.1 prints between the ``|``
separators (``|OP LOAD|LVL L1 hit|SNP None|TLB L1 or L2 hit|LCK No|BLK  N/A``), without
the part's keyword and without perf's leading blank of the BLK part:

>>> decode(0x68100142)["mem_level"], decode(0x68100142)["mem_tlb"]
('L1 hit', 'L1 or L2 hit')

A trace holds few distinct values, so :func:`decode_column` decodes each distinct
value once and maps the rows to dictionary-encoded Arrow columns.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


# -- numpy -> Arrow without pa.array() ------------------------------------------------
# pa.array() imports pandas on its first call (~0.15 s, ~40 MB); the sample path builds
# its arrays from buffers instead (zero-copy), so decoding starts without it.

def bitmap(valid: np.ndarray) -> pa.Buffer:
    """An Arrow validity (or boolean values) bitmap of a bool array."""
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def np_to_arrow(v: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """``pa.array(v, type=typ, mask=~valid)`` for a fixed-width ``typ`` (zero-copy
    when ``v`` already has the matching dtype)."""
    n = len(v)
    if pa.types.is_boolean(typ):
        data = bitmap(np.asarray(v, dtype=bool))
    else:
        dt = np.dtype(typ.to_pandas_dtype())
        if v.dtype != dt:
            # a conversion: let pyarrow check it (never taken on the sample path)
            return pa.array(v, type=typ, mask=None if valid is None else ~valid)
        data = pa.py_buffer(np.ascontiguousarray(v))
    if valid is None:
        return pa.Array.from_buffers(typ, n, [None, data], null_count=0)
    nvalid = int(np.count_nonzero(valid))
    if nvalid == n:
        return pa.Array.from_buffers(typ, n, [None, data], null_count=0)
    return pa.Array.from_buffers(typ, n, [bitmap(valid), data], null_count=n - nvalid)


def str_array(strings: list[str]) -> pa.Array:
    """``pa.array(strings, pa.string())`` built from buffers."""
    enc = [x.encode("utf-8") for x in strings]
    offsets = np.zeros(len(enc) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in enc], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(enc),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(enc))],
                                 null_count=0)


# field positions (bit shift, width)
_OP = (0, 5)
_LVL = (5, 14)
_SNOOP = (19, 5)
_LOCK = (24, 2)
_DTLB = (26, 7)
_LVLNUM = (33, 4)
_REMOTE = (37, 1)
_SNOOPX = (38, 2)
_BLK = (40, 3)
_HOPS = (43, 3)

#: PERF_MEM_NA as current kernels report it for events without memory-source data.
PERF_MEM_NA = 0x1E05080021

_LVL_NAMES = ("N/A", "HIT", "MISS", "L1", "LFB/MAB", "L2", "L3", "Local RAM",
              "Remote RAM (1 hop)", "Remote RAM (2 hops)", "Remote Cache (1 hop)",
              "Remote Cache (2 hops)", "I/O", "Uncached")
_LVLNUM_NAMES = {9: "CXL", 10: "I/O", 11: "Any cache", 12: "LFB/MAB", 13: "RAM", 14: "PMEM",
                 15: "N/A"}
_HOPS_NAMES = ("N/A", "core, same node", "node, same socket", "socket, same board", "board")
_SNOOP_NAMES = ("N/A", "None", "Hit", "Miss", "HitM")
_TLB_NAMES = ("N/A", "HIT", "MISS", "L1", "L2", "Walker", "Fault")

COLUMNS = ("mem_op", "mem_level", "mem_snoop", "mem_tlb", "mem_lock", "mem_blk")


def _field(v: int, f: tuple[int, int]) -> int:
    return (v >> f[0]) & ((1 << f[1]) - 1)


def _bits(mask: int, names) -> list[str]:
    return [names[i] for i in range(len(names)) if mask & (1 << i)]


def op_text(v: int) -> str:
    op = _field(v, _OP)
    for bit, name in ((1, "N/A"), (2, "LOAD"), (4, "STORE"), (8, "PFETCH"), (16, "EXEC")):
        if op & bit:
            return name
    return "No"


def level_text(v: int) -> str:
    m = _field(v, _LVL)
    hit, miss = m & 2, m & 4
    m &= ~6
    out = ""
    printed = 0
    if _field(v, _REMOTE):
        out += "Remote "
    hops = _field(v, _HOPS)
    if hops:
        out += (_HOPS_NAMES[hops] if hops < len(_HOPS_NAMES) else "N/A") + " "
    else:
        names = _bits(m, _LVL_NAMES)
        out += " or ".join(names)
        printed = len(names)
    lvlnum = _field(v, _LVLNUM)
    if lvlnum:
        if printed:
            out += " or "
        out += _LVLNUM_NAMES.get(lvlnum, f"L{lvlnum}")
    if not out:
        out = "N/A"
    if hit:
        out += " hit"
    if miss:
        out += " miss"
    return out


def snoop_text(v: int) -> str:
    names = _bits(_field(v, _SNOOP), _SNOOP_NAMES)
    x = _field(v, _SNOOPX)
    if x & 1:
        names.append("Fwd")
    if x & 2:
        names.append("Peer")
    return " or ".join(names) if names else "N/A"


def tlb_text(v: int) -> str:
    m = _field(v, _DTLB)
    hit, miss = m & 2, m & 4
    out = " or ".join(_bits(m & ~6, _TLB_NAMES)) or "N/A"
    if hit:
        out += " hit"
    if miss:
        out += " miss"
    return out


def lock_text(v: int) -> str:
    m = _field(v, _LOCK)
    if m & 1:
        return "N/A"
    return "Yes" if m & 2 else "No"


def blk_text(v: int) -> str:
    m = _field(v, _BLK)
    if not m or m & 1:
        return "N/A"
    parts = []
    if m & 2:
        parts.append("Data")
    if m & 4:
        parts.append("Addr")
    return " ".join(parts)


def decode(v: int) -> dict:
    """Every decoded part of one data_src value (texts and integer fields)."""
    v = int(v)
    return {
        "mem_op": op_text(v), "mem_level": level_text(v), "mem_snoop": snoop_text(v),
        "mem_tlb": tlb_text(v), "mem_lock": lock_text(v), "mem_blk": blk_text(v),
        "mem_remote": bool(_field(v, _REMOTE)), "mem_hops": _field(v, _HOPS),
        "mem_lvl_num": _field(v, _LVLNUM),
    }


def perf_string(v: int) -> str:
    """The string ``perf script -F data_src`` (perf 6.1) prints after the hex value."""
    d = decode(v)
    return (f"|OP {d['mem_op']}|LVL {d['mem_level']}|SNP {d['mem_snoop']}|TLB {d['mem_tlb']}"
            f"|LCK {d['mem_lock']}|BLK  {d['mem_blk']}")


def decode_column(values: np.ndarray, valid: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Decoded Arrow columns (see :data:`COLUMNS` + mem_remote/mem_hops/mem_lvl_num)
    for an array of raw data_src values; rows where ``valid`` is False are null.

    Each distinct value is decoded once; rows are mapped through a dictionary.
    """
    n = len(values)
    values = np.asarray(values, dtype=np.uint64)
    if n and values[0] == values[-1] and (values == values[0]).all():
        codes = None                      # one distinct value: every code is 0
        uniques = values[:1]
    else:
        uniques, codes = np.unique(values, return_inverse=True)
        codes = codes.astype(np.int32).reshape(-1)
    decoded = [decode(u) for u in uniques]
    mask = None if valid is None or valid.all() else bitmap(valid)
    zeros = None

    def const_codes():
        nonlocal zeros
        if zeros is None:
            zeros = np.zeros(n, dtype=np.int32)
        return zeros

    out: dict[str, pa.Array] = {}
    for col in COLUMNS:
        texts = [d[col] for d in decoded]
        uniq = sorted(set(texts))
        if len(uniq) == 1 or codes is None:
            col_codes = const_codes()
        else:
            pos = {t: i for i, t in enumerate(uniq)}
            remap = np.array([pos[t] for t in texts], dtype=np.int32)
            col_codes = remap[codes]
        idx = pa.Array.from_buffers(pa.int32(), n, [mask, pa.py_buffer(col_codes)])
        out[col] = pa.DictionaryArray.from_arrays(idx, str_array(uniq))
    for col, typ, dt in (("mem_remote", pa.bool_(), np.bool_), ("mem_hops", pa.uint8(), np.uint8),
                         ("mem_lvl_num", pa.uint8(), np.uint8)):
        vals = np.array([d[col] for d in decoded], dtype=dt)
        full = np.full(n, vals[0], dtype=dt) if codes is None else vals[codes]
        out[col] = np_to_arrow(full, typ, valid)
    return out
