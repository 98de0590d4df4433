"""damo's human formats of sizes, times, ratios and flags ("128.000 MiB", "5 s",
"50 %", "max"), read as the kernel's integers."""

from __future__ import annotations

from ...engine.damos.scheme import UINT_MAX, ULONG_MAX
from ...errors import ConfigError
from ...units import DURATION_NS, parse_bytes, parse_duration_ns, parse_number

_LIMITS = {"max": ULONG_MAX, "min": 0}


def number(text: str, what: str):
    try:
        return parse_number(text, what)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def size_bytes(value, what: str = "size") -> int:
    """``"128.000 MiB"``, ``"4K"``, ``"max"``, ``4096`` → bytes."""
    try:
        return parse_bytes(value, what, words=_LIMITS, limit=ULONG_MAX)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def time_ns(value, default_unit: str, what: str = "time") -> int:
    """``"5 s"``, ``"1 m 30 s"``, ``"500ms"``, ``"max"``, a bare number in
    ``default_unit`` → nanoseconds (``ULONG_MAX`` for "max")."""
    try:
        return parse_duration_ns(value, default_unit, what, words=_LIMITS)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def to_unit(ns: int, unit: str) -> int:
    return ULONG_MAX if ns >= ULONG_MAX else int(ns // DURATION_NS[unit])


def ratio_in(value, scale: int, what: str) -> int:
    """``"50 %"`` → 50 % of ``scale`` (permil: 500); a bare number is already in the
    field's unit."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        return int(value)
    t = str(value).strip()
    if t == "max":
        return ULONG_MAX
    if t == "min":
        return 0
    if t.endswith("%"):
        return int(number(t[:-1], what) * scale / 100)
    return int(number(t, what))


def as_bool(value, what: str) -> bool:
    if isinstance(value, bool):
        return value
    t = str(value).strip().lower()
    if t in ("y", "yes", "true", "1"):
        return True
    if t in ("n", "no", "false", "0"):
        return False
    raise ConfigError(f"{what}: {value!r} is not a boolean (Y/N, true/false)")


def as_uint(value: int, what: str) -> int:
    """An ``unsigned int`` field written through sysfs: ULONG_MAX ("max") truncates to
    UINT_MAX as the kernel stores it; anything else above UINT_MAX is refused by the
    scheme's validation."""
    return UINT_MAX if value >= ULONG_MAX else value
