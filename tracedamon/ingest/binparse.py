"""The binary readers' one parse helper: a bounds-checked cursor over bytes read from a
file, in the spirit of pyelftools' ``struct_parse``. Whatever goes wrong (a field past
the end, an unterminated string, an impossible count) is a
:class:`~tracedamon.errors.TraceFormatError` naming the file and the byte offset in it,
never an ``IndexError`` or ``struct.error``.

The perf.data reader parses its header feature sections with it, the tracing-data
parser its blob; :func:`unpack` checks one fixed-layout struct the same way.
"""

from __future__ import annotations

import struct
from typing import NoReturn

from ..errors import TraceFormatError


def unpack(fmt: str | struct.Struct, data, off: int, *, path, base: int = 0, what: str) -> tuple:
    """``struct.unpack_from(fmt, data, off)``, or a TraceFormatError at file offset
    ``base + off`` when ``data`` ends inside the struct."""
    st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
    if off < 0 or off + st.size > len(data):
        raise TraceFormatError(
            path,
            f"{what}: ends inside a field ({st.size} bytes wanted, {max(0, len(data) - off)} left)",
            offset=base + off,
        )
    return st.unpack_from(data, off)


class Cursor:
    """Reads ``data`` (found at offset ``base`` of ``path``) front to back, in the
    file's byte order (``big``); ``what`` names the section in errors."""

    def __init__(self, data, path, base: int = 0, what: str = "", big: bool = False):
        self.data = data
        self.pos = 0
        self.path = path
        self.base = base
        self.what = what
        self.byte_order(big)

    def byte_order(self, big: bool) -> None:
        """Read what follows big-endian (``big``) or little-endian."""
        self.order = "big" if big else "little"
        self._u32 = struct.Struct(">I" if big else "<I").unpack_from
        self._u64 = struct.Struct(">Q" if big else "<Q").unpack_from

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def fail(self, problem: str, at: int | None = None) -> NoReturn:
        """A TraceFormatError at the cursor (or at ``at``, relative to ``data``)."""
        where = self.pos if at is None else at
        raise TraceFormatError(
            self.path, f"{self.what}: {problem}" if self.what else problem, offset=self.base + where
        )

    def need(self, n: int) -> None:
        if n < 0 or n > self.left:
            self.fail(f"ends inside a field ({n} bytes wanted, {self.left} left)")

    def take(self, n: int) -> bytes:
        self.need(n)
        b = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return b

    def u32(self) -> int:
        self.need(4)
        v = self._u32(self.data, self.pos)[0]
        self.pos += 4
        return v

    def u64(self) -> int:
        self.need(8)
        v = self._u64(self.data, self.pos)[0]
        self.pos += 8
        return v

    def uint(self, n: int) -> int:
        """An unsigned integer of ``n`` bytes."""
        return int.from_bytes(self.take(n), self.order)

    def cstr(self, limit: int = 4096) -> str:
        """A NUL-terminated string (at most ``limit`` bytes before the NUL)."""
        i = self.data.find(b"\0", self.pos, self.pos + limit)
        if i < 0:
            self.fail("unterminated string")
        s = bytes(self.data[self.pos : i]).decode("utf-8", errors="replace")
        self.pos = i + 1
        return s

    def string(self) -> str:
        """perf's header string: a u32 length, then that many bytes, NUL-padded."""
        n = self.u32()
        return self.take(n).split(b"\0", 1)[0].decode("utf-8", "replace")

    def strings(self) -> list[str]:
        """perf's string list: a u32 count, then that many :meth:`string`."""
        n = self.u32()
        if n > len(self.data):
            self.fail(f"impossible string count {n}", at=self.pos - 4)
        return [self.string() for _ in range(n)]

    def sized_text(self, size_bytes: int, what: str) -> str:
        """Text preceded by its length, an unsigned integer of ``size_bytes`` bytes."""
        n = self.uint(size_bytes)
        if n > self.left:
            self.fail(f"{what} size {n} exceeds the {self.left} bytes left")
        return self.take(n).decode("utf-8", errors="replace")
