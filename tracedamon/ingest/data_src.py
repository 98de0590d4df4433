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

import functools

import numpy as np
import pyarrow as pa


from .arrays import bitmap, np_to_arrow, str_array  # noqa: F401  (used as _ds.*)


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

_LVL_NAMES = (
    "N/A",
    "HIT",
    "MISS",
    "L1",
    "LFB/MAB",
    "L2",
    "L3",
    "Local RAM",
    "Remote RAM (1 hop)",
    "Remote RAM (2 hops)",
    "Remote Cache (1 hop)",
    "Remote Cache (2 hops)",
    "I/O",
    "Uncached",
)
_LVLNUM_NAMES = {
    9: "CXL",
    10: "I/O",
    11: "Any cache",
    12: "LFB/MAB",
    13: "RAM",
    14: "PMEM",
    15: "N/A",
}
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
        "mem_op": op_text(v),
        "mem_level": level_text(v),
        "mem_snoop": snoop_text(v),
        "mem_tlb": tlb_text(v),
        "mem_lock": lock_text(v),
        "mem_blk": blk_text(v),
        "mem_remote": bool(_field(v, _REMOTE)),
        "mem_hops": _field(v, _HOPS),
        "mem_lvl_num": _field(v, _LVLNUM),
    }


def perf_string(v: int) -> str:
    """The string ``perf script -F data_src`` (perf 6.1) prints after the hex value."""
    d = decode(v)
    return (
        f"|OP {d['mem_op']}|LVL {d['mem_level']}|SNP {d['mem_snoop']}|TLB {d['mem_tlb']}"
        f"|LCK {d['mem_lock']}|BLK  {d['mem_blk']}"
    )


def decode_column(values: np.ndarray, valid: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Decoded Arrow columns (see :data:`COLUMNS` + mem_remote/mem_hops/mem_lvl_num)
    for an array of raw data_src values; rows where ``valid`` is False are null.

    Each distinct value is decoded once; rows are mapped through a dictionary. The
    usual case, one value in the whole batch, reuses a cached dictionary and a shared
    run of zero indices, so a batch costs a few array headers.
    """
    n = len(values)
    values = np.asarray(values, dtype=np.uint64)
    mask = None if valid is None or valid.all() else bitmap(valid)
    if n and values[0] == values[-1] and (values == values[0]).all():
        return _constant_columns(int(values[0]), n, mask, valid)
    uniques, codes = np.unique(values, return_inverse=True)
    codes = codes.astype(np.int32).reshape(-1)
    decoded = [_decoded(int(u)) for u in uniques]
    out: dict[str, pa.Array] = {}
    for col in COLUMNS:
        texts = [d[col] for d in decoded]
        uniq = sorted(set(texts))
        pos = {t: i for i, t in enumerate(uniq)}
        remap = np.array([pos[t] for t in texts], dtype=np.int32)
        idx = pa.Array.from_buffers(pa.int32(), n, [mask, pa.py_buffer(remap[codes])])
        out[col] = pa.DictionaryArray.from_arrays(idx, _dictionary(tuple(uniq)))
    for col, typ, dt in _NUMERIC:
        vals = np.array([d[col] for d in decoded], dtype=dt)
        out[col] = np_to_arrow(vals[codes], typ, valid)
    return out


_NUMERIC = (
    ("mem_remote", pa.bool_(), np.bool_),
    ("mem_hops", pa.uint8(), np.uint8),
    ("mem_lvl_num", pa.uint8(), np.uint8),
)


@functools.lru_cache(maxsize=4096)
def _decoded(v: int) -> dict:
    return decode(v)


@functools.lru_cache(maxsize=4096)
def _dictionary(texts: tuple[str, ...]) -> pa.Array:
    return str_array(list(texts))


_ZERO_CODES = np.zeros(0, np.int32)
_FULL: dict = {}


def _zero_codes(n: int) -> pa.Buffer:
    """n int32 zeros, sliced from one shared read-only buffer."""
    global _ZERO_CODES
    if len(_ZERO_CODES) < n:
        _ZERO_CODES = np.zeros(max(n, 1 << 16), np.int32)
        _ZERO_CODES.flags.writeable = False
    return pa.py_buffer(_ZERO_CODES[:n])


def _full(value, dt, n: int) -> np.ndarray:
    """n copies of ``value``, sliced from a cached read-only array."""
    a = _FULL.get((value, dt))
    if a is None or len(a) < n:
        a = np.full(max(n, 1 << 16), value, dtype=dt)
        a.flags.writeable = False
        _FULL[(value, dt)] = a
    return a[:n]


def constant(value, dt, n: int) -> np.ndarray:
    """n copies of ``value`` as a read-only array sliced from a cached one."""
    return _full(value, dt, n)


def _constant_columns(v: int, n: int, mask, valid) -> dict[str, pa.Array]:
    d = _decoded(v)
    codes = _zero_codes(n)
    out: dict[str, pa.Array] = {}
    for col in COLUMNS:
        idx = pa.Array.from_buffers(pa.int32(), n, [mask, codes])
        out[col] = pa.DictionaryArray.from_arrays(idx, _dictionary((d[col],)), safe=False)
    for col, typ, dt in _NUMERIC:
        out[col] = np_to_arrow(_full(d[col], dt, n), typ, valid)
    return out
