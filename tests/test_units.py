"""tracedamon.units: one page size, one byte formatter and parser, one duration
formatter and parser.

The formatter replaced four local ones (compare/heatmap/wss text, ``info``, the replay
summary, wss axis ticks) whose output users see and scripts parse: each is kept here as
a slow reference and must agree with ``format_bytes`` on every input drawn."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracedamon
from tracedamon.units import (
    PAGE_SHIFT,
    PAGE_SIZE,
    format_bytes,
    format_duration_ns,
    parse_bytes,
    parse_duration_ns,
    parse_number,
)

PACKAGE = Path(tracedamon.__file__).parent


# the formatters format_bytes replaced, as they were
def ref_three_decimals(n):  # export/grid.py fmt_bytes
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3f} {unit}"
        n /= 1024


def ref_one_decimal(n):  # info.py _fmt_size
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def ref_exact(b):  # engine/replay.py _size
    for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 1 << k:
            return f"{b >> k} {unit}" if b % (1 << k) == 0 else f"{b / (1 << k):.1f} {unit}"
    return f"{b} B"


def ref_tick(x):  # export/wss.py _short_bytes (x > 0)
    for unit, sh in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if x >= 1 << sh:
            return f"{x / (1 << sh):.3g} {unit}"
    return f"{x:.3g} B"


sizes = st.one_of(
    st.integers(0, 1 << 62),
    st.integers(0, 40).map(lambda k: 1 << k),
    st.tuples(st.integers(1, 4096), st.integers(0, 40)).map(lambda t: t[0] << t[1]),
)


@given(sizes)
def test_format_bytes_equals_the_formatters_it_replaced(n):
    assert format_bytes(n) == ref_three_decimals(n)
    assert format_bytes(n, 1) == ref_one_decimal(n)
    assert format_bytes(n, 1, exact=True, largest="GiB") == ref_exact(n)
    if n > 0:
        assert format_bytes(n, 3, significant=True) == ref_tick(n)
        assert format_bytes(n + 0.5, 3, significant=True) == ref_tick(n + 0.5)


def test_format_bytes_by_hand():
    assert format_bytes(1536) == "1.500 KiB"
    assert format_bytes(4096, exact=True) == "4 KiB"
    assert format_bytes(3 << 40) == "3.000 TiB"
    assert format_bytes(3 << 40, 1, exact=True, largest="GiB") == "3072 GiB"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(5 << 50) == "5120.000 TiB"
    assert format_bytes(123456789, 3, significant=True) == "118 MiB"  # 117.74 MiB


def test_parse_bytes():
    assert parse_bytes("4K") == parse_bytes("4 KiB") == parse_bytes("4kb") == 4096
    assert parse_bytes("4,096") == parse_bytes(4096) == 4096
    assert parse_bytes("1.5 MiB") == 3 << 19
    assert parse_bytes("128.000 MiB") == 128 << 20
    assert parse_bytes("2E") == 2 << 60
    assert parse_bytes("max", words={"max": 7}) == 7
    assert parse_bytes("8E", limit=1 << 63) == 1 << 63
    for bad in ("12 parsecs", "K", "", "4 K B", True):
        with pytest.raises(ValueError, match="not a size"):
            parse_bytes(bad, "region")


def test_parse_bytes_reads_back_what_format_bytes_writes():
    for n in (0, 1, 1023, 4096, 3 << 20, 5 << 30, 7 << 40):
        assert parse_bytes(format_bytes(n, 0, exact=True)) == n


def test_parse_duration():
    assert parse_duration_ns("1 m 30 s", "us") == 90 * 10**9
    assert parse_duration_ns("500ms") == 5 * 10**8
    assert parse_duration_ns("1.5") == 1_500_000_000  # seconds by default
    assert parse_duration_ns("1,234 us") == 1_234_000
    assert parse_duration_ns(5, "ms") == 5 * 10**6
    assert parse_duration_ns("2d") == 2 * 86_400 * 10**9
    assert parse_duration_ns("max", words={"max": -1}) == -1
    with pytest.raises(ValueError, match="unknown time unit 'fortnights'"):
        parse_duration_ns("3 fortnights")
    for bad in ("soon", "", "5 s later", False):
        with pytest.raises(ValueError, match="not a time"):
            parse_duration_ns(bad)


def test_format_duration():
    assert format_duration_ns(5_000_000) == "5 ms"
    assert format_duration_ns(1_500_000_000) == "1.5 s"
    assert format_duration_ns(250_000) == "250 us"
    assert format_duration_ns(999) == "999 ns"
    assert format_duration_ns(999, smallest="us") == "0.999 us"
    for ns in (7, 250_000, 5_000_000, 1_500_000_000, 60 * 10**9):
        assert parse_duration_ns(format_duration_ns(ns).replace(" ", "")) == ns


def test_parse_number():
    assert parse_number("4,096") == 4096 and isinstance(parse_number("7"), int)
    assert parse_number("2.5e3") == 2500.0
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_number("x", "field")


def test_one_page_size():
    """PAGE_SIZE is defined once: no other module assigns a page-size constant."""
    assert PAGE_SIZE == 4096 == 1 << PAGE_SHIFT
    for f in PACKAGE.rglob("*.py"):
        if f.name == "units.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        assert t.id not in ("PAGE", "PAGE_SIZE", "PAGE_SHIFT"), (
                            f"{f.relative_to(PACKAGE)}:{node.lineno} defines {t.id}"
                        )


def test_format_bytes_exact_is_decided_on_the_integer():
    # 2**54 - 1 bytes is not a whole number of GiB, although the float quotient rounds to one
    n = (1 << 54) - 1
    assert format_bytes(n, 1, exact=True, largest="GiB") == ref_exact(n) == "16777216.0 GiB"
    assert format_bytes(1 << 54, 1, exact=True, largest="GiB") == "16777216 GiB"
