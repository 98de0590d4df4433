"""A whole perf.data: ids, checks, the data section (optionally zstd-compressed), and
the regular file or pipe stream layout around it."""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from .constants import _cstr8, _E, _magic, _pk, _u64, FEAT, PIPE_LAST_FEATURE, REC, S
from .records import _popcount, Event, FinishedRound, IdIndex
from .encode import _features, _header, encode_record


def assign_ids(events: Sequence[Event], start: int = 1000) -> None:
    nxt = start
    for ev in events:
        if ev.ids is None:
            ev.ids = [nxt, nxt + 1]
            nxt += 2
        else:
            nxt = max([nxt] + [i + 1 for i in ev.ids])


def check_events(events: Sequence[Event], *, pipe: bool = False) -> None:
    """perf's rules for matching records to attrs: with several events every attr
    has ID or IDENTIFIER, at the same position."""
    if len(events) > 1 or pipe and len(events) > 0:
        if len(events) > 1:
            for ev in events:
                if not ev.sample_type & (S.ID | S.IDENTIFIER):
                    raise ValueError(f"event {ev.name}: several events need ID or IDENTIFIER")
        ident = {bool(ev.sample_type & S.IDENTIFIER) for ev in events}
        if len(ident) > 1:
            raise ValueError("IDENTIFIER must be set on all events or none")
        if ident == {False}:
            pos = {_popcount(ev.sample_type & (S.IP | S.TID | S.TIME | S.ADDR)) for ev in events}
            trl = {_popcount(ev.sample_type & (S.CPU | S.STREAM_ID)) for ev in events}
            if len(pos) > 1 or len(trl) > 1:
                raise ValueError("events with ID but different id positions need IDENTIFIER")
    sia = {ev.sample_id_all for ev in events}
    if len(sia) > 1:
        raise ValueError("sample_id_all must be the same for all events")


def build_data(
    events: Sequence[Event],
    records: Iterable,
    *,
    compress: bool,
    chunks: Sequence[int] | None = None,
    compress_level: int = 1,
    where: list | None = None,
) -> bytes:
    """The record stream. With ``compress``, every record except FINISHED_ROUND goes into
    the zstd stream; a FINISHED_ROUND closes the current compressed run and sits between
    containers, as perf writes it.

    ``where`` (a list) receives, per record, ``(first, last)`` offsets *within the
    data section* of the record itself (uncompressed: first == last) or of the
    COMPRESSED containers holding its first and its last byte.
    """
    enc = [(r, encode_record(r, events)) for r in records]
    if not compress:
        pos = 0
        for _, b in enc:
            if where is not None:
                where.append((pos, pos))
            pos += len(b)
        return b"".join(b for _, b in enc)
    out = []
    out_pos = [0]
    pending = bytearray()
    pending_recs: list[tuple[int, int, int]] = []  # (record index, start, end) in pending
    import zstandard

    cobj = zstandard.ZstdCompressor(level=compress_level).compressobj()
    sizes = list(chunks) if chunks else []
    spans: dict[int, list] = {}

    def emit(b: bytes) -> int:
        off = out_pos[0]
        out.append(b)
        out_pos[0] += len(b)
        return off

    def flush_pending():
        nonlocal pending, pending_recs
        pos = 0
        while pos < len(pending):
            n = sizes.pop(0) if sizes else 4096
            n = max(1, n)
            piece = bytes(pending[pos : pos + n])
            payload = cobj.compress(piece) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            if 8 + len(payload) > 0xFFFF:
                raise ValueError("compressed piece too large for one record")
            off = emit(_pk("IHH", REC["COMPRESSED"], 0, 8 + len(payload)) + payload)
            for idx, a, e in pending_recs:
                if a < pos + n and e > pos:  # the record has bytes in this piece
                    sp = spans.setdefault(idx, [off, off])
                    sp[1] = off
            pos += n
        pending = bytearray()
        pending_recs = []

    for i, (r, b) in enumerate(enc):
        if isinstance(r, FinishedRound):
            flush_pending()
            off = emit(b)
            spans[i] = [off, off]
        else:
            pending_recs.append((i, len(pending), len(pending) + len(b)))
            pending += b
    flush_pending()
    if where is not None:
        where.extend(tuple(spans[i]) for i in range(len(enc)))
    return b"".join(out)


def write_perf_data(
    path,
    events: Sequence[Event],
    records: Iterable,
    *,
    layout: str = "file",
    compress: bool = False,
    attr_size: int = 128,
    chunks: Sequence[int] | None = None,
    compress_level: int = 1,
    mmap_len: int = 1 << 20,
    meta: dict | None = None,
    id_index: bool = False,
    event_update_names: bool = True,
    feature_end_marker: bool = True,
    info: dict | None = None,
    byte_order: str = "little",
) -> str:
    """Write a perf.data file; returns its path.

    ``layout``: "file" (regular) or "pipe". ``attr_size``: bytes of perf_event_attr
    (64..136; the file header's attr_size is this + 16). ``chunks``: compression piece
    sizes (see :func:`build_data`). ``id_index``: put an ID_INDEX record first.
    ``info`` (a dict) receives ``offsets``: per given record, the file offsets
    ``(first, last)`` of the record itself, or of the COMPRESSED records holding its
    first and last byte; and ``data_offset``.
    """
    events = list(events)
    assign_ids(events)
    check_events(events, pipe=layout == "pipe")
    for ev in events:
        ev.attr_bytes(attr_size)  # validates the size
    records = list(records)
    if id_index:
        records = [IdIndex()] + records
    where: list = []
    if byte_order not in ("little", "big"):
        raise ValueError(f"byte_order {byte_order!r}")
    _E[0] = "<" if byte_order == "little" else ">"
    try:
        data = build_data(
            events,
            records,
            compress=compress,
            chunks=chunks,
            compress_level=compress_level,
            where=where,
        )
        feats = _features(
            events, attr_size, meta or {}, compress_level if compress else None, mmap_len
        )
        if layout == "file":
            blob = _file_layout(events, attr_size, data, feats)
            data_off = len(blob) - len(data) - _feature_tail_len(feats)
        elif layout == "pipe":
            blob = _pipe_layout(
                events, attr_size, data, feats, event_update_names, feature_end_marker
            )
            data_off = len(blob) - len(data)
        else:
            raise ValueError(f"unknown layout {layout!r}")
    finally:
        _E[0] = "<"
    assert blob[data_off : data_off + len(data)] == data
    if info is not None:
        skip = 1 if id_index else 0
        info["data_offset"] = data_off
        info["offsets"] = [(data_off + a, data_off + b) for a, b in where[skip:]]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return os.fspath(path)


def _feature_tail_len(feats) -> int:
    return 16 * len(feats) + sum(len(p) for p in feats.values())


def _file_layout(events, attr_size, data, feats) -> bytes:
    hdr_size = 104
    pos = hdr_size
    id_blobs = []
    id_sections = []
    for ev in events:
        b = b"".join(_u64(i) for i in ev.ids)
        id_sections.append((pos, len(b)))
        id_blobs.append(b)
        pos += len(b)
    attrs_off = pos
    attrs = b"".join(
        ev.attr_bytes(attr_size) + _pk("QQ", *sec) for ev, sec in zip(events, id_sections)
    )
    data_off = attrs_off + len(attrs)
    feat_off = data_off + len(data)
    bits = sorted(feats)
    index_size = 16 * len(bits)
    payload_pos = feat_off + index_size
    index = b""
    payloads = b""
    for bit in bits:
        p = feats[bit]
        index += _pk("QQ", payload_pos, len(p))
        payloads += p
        payload_pos += len(p)
    bitmap = [0, 0, 0, 0]
    for bit in bits:
        bitmap[bit // 64] |= 1 << (bit % 64)
    header = _magic() + _pk("QQ", hdr_size, attr_size + 16)
    header += _pk("QQ", attrs_off, len(attrs))
    header += _pk("QQ", data_off, len(data))
    header += _pk("QQ", 0, 0)
    header += _pk("4Q", *bitmap)
    assert len(header) == hdr_size
    return header + b"".join(id_blobs) + attrs + data + index + payloads


def _pipe_layout(events, attr_size, data, feats, event_update_names, end_marker) -> bytes:
    out = [_magic() + _u64(16)]
    for ev in events:
        body = ev.attr_bytes(attr_size) + b"".join(_u64(i) for i in ev.ids)
        out.append(_header(REC["HEADER_ATTR"], 0, body))
    for bit in sorted(feats):
        if bit == FEAT["EVENT_DESC"]:
            continue  # perf sends names as EVENT_UPDATE in pipe mode
        out.append(_header(REC["HEADER_FEATURE"], 0, _u64(bit) + feats[bit]))
    if end_marker:
        out.append(_header(REC["HEADER_FEATURE"], 0, _u64(PIPE_LAST_FEATURE)))
    if event_update_names:
        for ev in events:
            body = _u64(2) + _u64(ev.ids[0]) + _cstr8(ev.name)
            out.append(_header(REC["EVENT_UPDATE"], 0, body))
    out.append(data)
    return b"".join(out)
