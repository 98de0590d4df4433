"""perf's tracing-data blob: the tracepoint ``format`` files a perf.data file carries.

``perf record -e <tracepoint>`` stores, in the TRACING_DATA feature (or a
HEADER_TRACING_DATA record in pipe mode), a "tracing/0.6" file holding the
tracefs ``format`` text of every recorded event. A tracepoint sample's RAW
payload is the kernel's trace entry; its field offsets, sizes and signedness
are only known from that text (the layout depends on the kernel), so this module
parses it and :func:`decode_raw` turns a column of RAW payloads into numpy
columns, without running perf.

Blob layout (all integers in the blob's own byte order; ``u64``/``u32`` below):

* magic ``17 08 44`` + ``"tracing"``, the version as a NUL-terminated string
  (``"0.5"`` or ``"0.6"``), one byte endianness (0 little, 1 big), one byte
  ``sizeof(long)``, ``u32`` page size;
* ``"header_page\\0"`` + ``u64`` size + text; ``"header_event\\0"`` + ``u64`` size + text;
* ``u32`` count of ftrace-internal formats, each ``u64`` size + format text;
* ``u32`` count of event systems, each: system name NUL-terminated, ``u32``
  count, each ``u64`` size + format text;
* ``u32`` size + kallsyms text; ``u32`` size + printk formats;
* version 0.6 only: ``u64`` size + saved cmdlines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..errors import TraceFormatError
from .binparse import Cursor

MAGIC = b"\x17\x08\x44tracing"


@dataclass(frozen=True)
class Field:
    """One field of a trace entry, as its ``format`` file describes it."""

    name: str
    type: str  # C type text, e.g. "unsigned long"
    offset: int
    size: int
    signed: bool
    array_len: int | None = None  # "char comm[16]" → 16; None for scalars
    data_loc: bool = False  # "__data_loc char[] name": u32 (len << 16 | offset)


@dataclass
class EventFormat:
    """The format of one tracepoint: ``system:name``, its ID and its fields."""

    system: str
    name: str
    id: int
    fields: list[Field]
    print_fmt: str = ""
    by_name: dict[str, Field] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.by_name = {f.name: f for f in self.fields}

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}"

    @property
    def entry_size(self) -> int:
        """Bytes up to the end of the last field (the minimum RAW payload length)."""
        return max((f.offset + f.size for f in self.fields), default=0)


@dataclass
class TracingData:
    version: str
    big_endian: bool
    long_size: int
    page_size: int
    events: dict[str, EventFormat]  # by "system:name"
    header_page: str = ""
    header_event: str = ""

    def event(self, name: str) -> EventFormat | None:
        """The format of ``name`` ("system:name", or a bare name if unambiguous)."""
        if name in self.events:
            return self.events[name]
        hits = [e for e in self.events.values() if e.name == name]
        return hits[0] if len(hits) == 1 else None

    def by_id(self) -> dict[int, EventFormat]:
        return {e.id: e for e in self.events.values()}


def parse_tracing_data(blob: bytes, *, path=None, base_offset: int = 0) -> TracingData:
    """Parse a tracing-data blob. ``base_offset`` is the blob's offset in ``path``,
    so errors name the byte where the problem is in the file."""
    c = Cursor(bytes(blob), path, base_offset, "tracing data")
    if c.take(len(MAGIC)) != MAGIC:
        c.pos = 0
        c.fail(f"bad magic {bytes(blob[:10])!r} (expected a 'tracing' blob)")
    version = c.cstr(16)
    if version not in ("0.5", "0.6"):
        c.fail(f"unsupported tracing-data version {version!r}")
    big = c.uint(1) != 0
    c.byte_order(big)
    long_size = c.uint(1)
    if long_size not in (4, 8):
        c.fail(f"implausible sizeof(long) {long_size}")
    page_size = c.uint(4)
    pos = c.pos
    if c.cstr(32) != "header_page":
        c.pos = pos
        c.fail("missing header_page section")
    header_page = c.sized_text(8, "header_page")
    pos = c.pos
    if c.cstr(32) != "header_event":
        c.pos = pos
        c.fail("missing header_event section")
    header_event = c.sized_text(8, "header_event")
    events: dict[str, EventFormat] = {}
    for _ in range(c.uint(4)):  # ftrace's own formats
        start = c.pos
        ev = parse_format(
            c.sized_text(8, "ftrace format"), "ftrace", path=path, offset=base_offset + start
        )
        if ev is not None:
            events[ev.full_name] = ev
    nr_systems = c.uint(4)
    if nr_systems > 100000:
        c.fail(f"implausible number of event systems {nr_systems}")
    for _ in range(nr_systems):
        system = c.cstr()
        count = c.uint(4)
        if count > 100000:
            c.fail(f"implausible number of events {count} in system {system!r}")
        for _ in range(count):
            start = c.pos
            ev = parse_format(
                c.sized_text(8, "event format"), system, path=path, offset=base_offset + start
            )
            if ev is not None:
                events[ev.full_name] = ev
    # kallsyms, printk formats and saved cmdlines follow; tracedamon needs none of them,
    # but their sizes are checked so that a truncated blob is reported, not half-read.
    c.sized_text(4, "kallsyms")
    c.sized_text(4, "printk formats")
    if version == "0.6":
        c.sized_text(8, "saved cmdlines")
    return TracingData(
        version=version,
        big_endian=big,
        long_size=long_size,
        page_size=page_size,
        events=events,
        header_page=header_page,
        header_event=header_event,
    )


_FIELD_RE = re.compile(
    r"^\s*field:(?P<decl>[^;]*);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>-?\d+);)?"
)
_DECL_RE = re.compile(r"^(?P<type>.*?)\s*(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?\s*$")


def parse_format(
    text: str, system: str, *, path=None, offset: int | None = None
) -> EventFormat | None:
    """Parse one tracefs ``format`` file. Returns None for a text without a name."""
    name = None
    ev_id = None
    fields: list[Field] = []
    print_fmt = ""
    for line in text.splitlines():
        if line.startswith("name:"):
            name = line[5:].strip()
        elif line.startswith("ID:"):
            try:
                ev_id = int(line[3:].strip())
            except ValueError:
                raise TraceFormatError(
                    path, f"tracing data: bad event ID line {line!r}", offset=offset
                ) from None
        elif line.startswith("print fmt:"):
            print_fmt = line[len("print fmt:") :].strip()
        elif "field:" in line:
            m = _FIELD_RE.match(line)
            if not m:
                raise TraceFormatError(
                    path,
                    f"tracing data: bad field line {line.strip()!r} "
                    f"in the format of {system}:{name}",
                    offset=offset,
                )
            decl = m["decl"].strip()
            data_loc = decl.startswith("__data_loc ")
            if data_loc:
                decl = decl[len("__data_loc ") :]
            d = _DECL_RE.match(decl)
            if not d:
                raise TraceFormatError(
                    path, f"tracing data: cannot read declaration {decl!r}", offset=offset
                )
            arr = None
            if d["len"] not in (None, ""):
                try:
                    arr = int(d["len"], 0)
                except ValueError:
                    arr = None
            ftype = d["type"].strip()
            if data_loc and d["len"] == "" and not ftype.endswith("[]"):
                ftype += "[]"
            signed = (
                (m["signed"] == "1")
                if m["signed"] is not None
                else not ftype.startswith("unsigned") and "u" != ftype[:1]
            )
            fields.append(
                Field(d["name"], ftype, int(m["off"]), int(m["size"]), signed, arr, data_loc)
            )
    if name is None:
        return None
    if ev_id is None:
        raise TraceFormatError(
            path, f"tracing data: format of {system}:{name} has no ID", offset=offset
        )
    return EventFormat(system, name, ev_id, fields, print_fmt)


def decode_raw(
    raw,
    fmt: EventFormat,
    names: Iterable[str] | None = None,
    *,
    big_endian: bool = False,
    path=None,
) -> dict[str, np.ndarray]:
    """Decode scalar fields of a column of RAW payloads (all of event ``fmt``).

    ``raw`` is a pyarrow binary/large_binary array (or a list of bytes). Returns
    ``{field name: numpy array}`` with the field's size and signedness
    (``uint64`` for ``unsigned long`` and so on). A payload shorter than the
    event's entry is a :class:`TraceFormatError`.
    """
    import pyarrow as pa

    if not isinstance(raw, (pa.Array, pa.ChunkedArray)):
        raw = pa.array(list(raw), type=pa.binary())
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    if pa.types.is_large_binary(raw.type):
        raw = raw.cast(pa.binary())
    n = len(raw)
    want = [
        fmt.by_name[k]
        for k in (names if names is not None else fmt.by_name)
        if not k.startswith("common_") or names is not None
    ]
    for f in want:
        if f.array_len is not None or f.data_loc or f.size not in (1, 2, 4, 8):
            raise ValueError(f"field {f.name} of {fmt.full_name} is not a scalar")
    if raw.null_count:
        raise TraceFormatError(
            path, f"{fmt.full_name}: {raw.null_count} samples carry no RAW payload"
        )
    bufs = raw.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=raw.offset * 4)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lens = np.diff(offs)
    need = max((f.offset + f.size for f in want), default=0)
    short = np.flatnonzero(lens < need)
    if short.size:
        i = int(short[0])
        raise TraceFormatError(
            path,
            f"{fmt.full_name}: RAW payload of sample {i} has "
            f"{int(lens[i])} bytes, the format needs {need}",
        )
    starts = offs[:-1].astype(np.int64)
    out: dict[str, np.ndarray] = {}
    order = ">" if big_endian else "<"
    for f in want:
        idx = starts[:, None] + (f.offset + np.arange(f.size, dtype=np.int64))[None, :]
        chunk = np.ascontiguousarray(data[idx]) if n else np.zeros((0, f.size), np.uint8)
        dt = np.dtype(f"{order}{'i' if f.signed else 'u'}{f.size}")
        out[f.name] = chunk.view(dt).reshape(n).astype(dt.newbyteorder("="), copy=False)
    return out
