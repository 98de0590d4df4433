"""Units: the page size, byte sizes and durations, each parsed and formatted one way.

Part of the floor (with :mod:`tracedamon.errors` and :mod:`tracedamon.schema`): it
imports nothing from tracedamon. A parse error is a ``ValueError`` whose message names
what was parsed (``what``); callers raise it as their own error class (a
``ConfigError`` for an option, a ``TraceFormatError`` for a file).
"""

from __future__ import annotations

import re
from typing import Mapping

__all__ = [
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "parse_number",
    "parse_bytes",
    "format_bytes",
    "parse_duration_ns",
    "format_duration_ns",
    "DURATION_NS",
    "parse_range",
    "ADDRESS_LIMIT",
]

#: the base page size DAMON, pagemap and the engine work in (x86-64, arm64 with 4 KiB
#: pages): regions are page aligned, frames are ``paddr >> PAGE_SHIFT``
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

#: addresses are below 2**63 (the engine keeps them in int64)
ADDRESS_LIMIT = 1 << 63

#: byte units, upper case, as damo, the kernel and perf write them (K, KB and KiB alike)
_BYTE_UNITS = {
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
    "TIB": 1 << 40,
    "P": 1 << 50,
    "PB": 1 << 50,
    "PIB": 1 << 50,
    "E": 1 << 60,
    "EB": 1 << 60,
    "EIB": 1 << 60,
}
#: nanoseconds per duration unit
DURATION_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_NUM = r"[-+]?\d[\d,]*(?:\.\d*)?(?:[eE][-+]?\d+)?"
_SIZE = re.compile(rf"({_NUM})\s*([A-Za-z]*)")
_DURATION_PART = re.compile(rf"({_NUM})\s*([a-z]*)")


def parse_number(text: str, what: str = "number") -> int | float:
    """A decimal number, thousands separators allowed (``"4,096"``, ``"1.5"``, ``"2e3"``):
    an int when it is written as one."""
    t = str(text).strip().replace(",", "")
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None


def parse_bytes(
    value, what: str = "size", *, words: Mapping[str, int] | None = None, limit: int | None = None
) -> int:
    """A byte size: ``4096``, ``"4,096"``, ``"4K"``, ``"4 KiB"``, ``"128.000 MiB"`` (units
    B, K/KB/KiB ... E/EB/EiB, any case, all binary), or one of ``words``
    (e.g. ``{"max": ULONG_MAX}``). A number is taken as bytes; a result above ``limit``
    becomes ``limit``."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a size")
    if isinstance(value, (int, float)):
        return int(value)
    t = str(value).strip()
    if words and t in words:
        return words[t]
    m = _SIZE.fullmatch(t)
    if not m or (m[2] and m[2].upper() not in _BYTE_UNITS):
        raise ValueError(f"{what}: {value!r} is not a size (e.g. 4096, 4K, 128.000 MiB)")
    n = int(parse_number(m[1], what) * _BYTE_UNITS[m[2].upper() if m[2] else "B"])
    return n if limit is None else min(limit, n)


_FORMAT_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(
    n: float,
    digits: int = 3,
    *,
    exact: bool = False,
    largest: str = "TiB",
    significant: bool = False,
) -> str:
    """``n`` bytes in the largest binary unit (up to ``largest``) in which it is at least
    1: ``"786.734 MiB"``. ``digits`` decimals (significant digits with
    ``significant``); with ``exact``, a whole number of units has none (``"4 KiB"``).
    Bytes below 1 KiB are a whole number (``significant``: ``digits`` significant)."""
    x = float(n)
    units = _FORMAT_UNITS[: _FORMAT_UNITS.index(largest) + 1]
    scale = 1
    for unit in units:
        if abs(x) < 1024 or unit == units[-1]:
            break
        x /= 1024
        scale *= 1024
    if unit == "B":
        return f"{x:.{digits}g} B" if significant else f"{x:.0f} B"
    # whole units decided on the integer, not on the quotient (a float may round
    # 2**54 - 1 bytes to exactly 16777216 GiB)
    if exact and float(n).is_integer() and int(n) % scale == 0:
        return f"{int(n) // scale} {unit}"
    return f"{x:.{digits}{'g' if significant else 'f'}} {unit}"


def parse_duration_ns(
    value,
    default_unit: str = "s",
    what: str = "duration",
    *,
    words: Mapping[str, int] | None = None,
) -> int:
    """A duration in nanoseconds: ``"500ms"``, ``"5 s"``, ``"1 m 30 s"``, ``"1,234 us"``
    (units ns, us, ms, s, m, h, d), a bare number (or int/float) in ``default_unit``, or
    one of ``words`` (e.g. ``{"max": ULONG_MAX}``)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        return int(value * DURATION_NS[default_unit])
    t = str(value).strip()
    if words and t in words:
        return words[t]
    parts = _DURATION_PART.findall(t)
    if not parts or _DURATION_PART.sub("", t).strip():
        raise ValueError(f"{what}: {value!r} is not a time (e.g. 500 ms, 5 s, 1 m 30 s)")
    total = 0
    for num, unit in parts:
        unit = unit or default_unit
        if unit not in DURATION_NS:
            raise ValueError(f"{what}: unknown time unit {unit!r} in {value!r}")
        total += parse_number(num, what) * DURATION_NS[unit]
    return int(total)


def format_duration_ns(ns: float, smallest: str = "ns") -> str:
    """``ns`` in the largest of s, ms, us, ns (not below ``smallest``) in which it is at
    least 1, shortest form: ``"5 ms"``, ``"1.5 s"``."""
    order = ("s", "ms", "us", "ns")
    for unit in order[: order.index(smallest) + 1]:
        if abs(ns) >= DURATION_NS[unit] or unit == smallest:
            return f"{ns / DURATION_NS[unit]:g} {unit}"
    raise AssertionError("unreachable")


def parse_range(text: str, what: str = "range") -> tuple[int, int]:
    """``START-END`` with decimal or 0x-hex numbers -> (start, end), end exclusive, both
    below :data:`ADDRESS_LIMIT`."""
    parts = str(text).strip().split("-")
    if len(parts) != 2:
        raise ValueError(f"{what} {text!r}: expected START-END (decimal or 0x-hex)")
    try:
        s, e = (int(p.strip(), 0) for p in parts)
    except ValueError:
        raise ValueError(
            f"{what} {text!r}: START and END must be decimal or 0x-hex integers"
        ) from None
    if s < 0 or e <= s:
        raise ValueError(f"{what} {text!r}: END must be greater than START")
    if e >= ADDRESS_LIMIT:
        raise ValueError(f"{what} {text!r}: addresses must be below 2**63")
    return s, e
