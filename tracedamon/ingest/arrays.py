"""Arrow arrays built from numpy buffers and Python lists, without ``pa.array()``.

``pa.array()`` (and ``Table.from_pylist``) import pandas on their first call: about
0.19 s and 40 MB, which is an eighth of ingesting 10 M samples. The ingest path builds
its arrays from buffers instead, so a perf.data ingest never imports pandas.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


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


def str_array(strings: list, typ: pa.DataType = pa.string()) -> pa.Array:
    """``pa.array(strings, pa.string())`` built from buffers (None: null)."""
    enc = [b"" if x is None else x.encode("utf-8") for x in strings]
    offsets = np.zeros(len(enc) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in enc], out=offsets[1:])
    nulls = sum(x is None for x in strings)
    vb = bitmap(np.array([x is not None for x in strings], dtype=bool)) if nulls else None
    return pa.Array.from_buffers(
        typ, len(enc), [vb, pa.py_buffer(offsets), pa.py_buffer(b"".join(enc))], null_count=nulls
    )


def py_array(values: list, typ: pa.DataType) -> pa.Array:
    """``pa.array(values, typ)`` for the types tracedamon's tables use: integers,
    booleans, floats, strings, dictionary<int32, string> and lists of integers (None:
    null). Integers out of the type's range raise OverflowError, as pa.array does."""
    n = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    mask = None if valid.all() else valid
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return str_array(values, typ)
    if pa.types.is_dictionary(typ):
        uniq = sorted({v for v in values if v is not None})
        pos = {v: i for i, v in enumerate(uniq)}
        idx = np.array([pos[v] if v is not None else 0 for v in values], dtype=np.int32)
        indices = (
            np_to_arrow(idx, typ.index_type, mask)
            if typ.index_type == pa.int32()
            else np_to_arrow(idx.astype(typ.index_type.to_pandas_dtype()), typ.index_type, mask)
        )
        return pa.DictionaryArray.from_arrays(indices, py_array(uniq, typ.value_type))
    if pa.types.is_list(typ):
        lens = np.array([0 if v is None else len(v) for v in values], dtype=np.int32)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        flat = [x for v in values if v is not None for x in v]
        inner = py_array(flat, typ.value_type)
        return pa.ListArray.from_arrays(
            np_to_arrow(offsets, pa.int32()),
            inner,
            type=typ,
            mask=None if mask is None else np_to_arrow(~valid, pa.bool_()),
        )
    if pa.types.is_boolean(typ):
        return np_to_arrow(np.array([bool(v) for v in values], dtype=bool), typ, mask)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        dt = np.dtype(typ.to_pandas_dtype())
        vals = values if mask is None else [0 if v is None else v for v in values]
        if pa.types.is_integer(typ) and n:
            info = np.iinfo(dt)
            lo, hi = min(vals), max(vals)
            if lo < info.min or hi > info.max:
                raise OverflowError(f"{lo if lo < info.min else hi} does not fit {typ}")
        return np_to_arrow(np.array(vals, dtype=dt), typ, mask)
    raise TypeError(f"py_array: unsupported type {typ}")


def table_from_pylist(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)`` (keys a row lacks: null)."""
    return pa.Table.from_arrays(
        [py_array([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema
    )
