"""Vectorised pagemap decoding and run-length encoding against plain per-entry Python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracedamon.errors import InputError, TraceFormatError
from tracedamon.ingest import pagemap as pm
from tracedamon.schema import (
    PAGEMAP_FLAG_COMPOUND_HEAD,
    PAGEMAP_FLAG_EXCLUSIVE,
    PAGEMAP_FLAG_FILE,
    PAGEMAP_FLAG_HUGE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_SOFT_DIRTY,
    PAGEMAP_FLAG_SWAPPED,
    PAGEMAP_FLAG_THP,
)

PS = 4096


def ref_decode(e: int):
    """One entry, per Documentation/admin-guide/mm/pagemap.rst."""
    flags = 0
    if e >> 63 & 1:
        flags |= PAGEMAP_FLAG_PRESENT
    if e >> 62 & 1:
        flags |= PAGEMAP_FLAG_SWAPPED
    if e >> 61 & 1:
        flags |= PAGEMAP_FLAG_FILE
    if e >> 56 & 1:
        flags |= PAGEMAP_FLAG_EXCLUSIVE
    if e >> 55 & 1:
        flags |= PAGEMAP_FLAG_SOFT_DIRTY
    pfn = e & ((1 << 55) - 1) if e >> 63 & 1 else 0
    return flags, pfn


@st.composite
def entries(draw):
    """Entries with long contiguous stretches, holes, swap entries and flag changes."""
    out = []
    pfn = draw(st.integers(1, 1 << 40))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["present", "present", "hole", "swap", "hidden"]))
        n = draw(st.integers(1, 6))
        hi = draw(st.sampled_from([0, 1 << 56, 1 << 55, 1 << 61, (1 << 56) | (1 << 55)]))
        for _ in range(n):
            if kind == "present":
                out.append((1 << 63) | hi | pfn)
                pfn += 1 if draw(st.integers(0, 5)) else draw(st.integers(2, 9))
            elif kind == "hidden":
                out.append((1 << 63) | hi)  # PFN zeroed: no CAP_SYS_ADMIN
            elif kind == "swap":
                out.append((1 << 62) | draw(st.integers(0, (1 << 50))))
            else:
                out.append(0)
    return out


@settings(max_examples=300, deadline=None)
@given(entries(), st.integers(0, 1 << 30))
def test_encode_runs_against_per_entry_reference(ents, vpage):
    e = np.array(ents, dtype=np.uint64)
    vs, ve, pfn, flags = pm.encode_runs(vpage * PS, pm.entry_frames(e), pm.entry_flags(e))
    # expanding the runs gives back every entry's decoding
    got = []
    for a, b, p, f in zip(vs.tolist(), ve.tolist(), pfn.tolist(), flags.tolist()):
        assert b > a and (b - a) % PS == 0
        for i in range((b - a) // PS):
            got.append((f, p + i if p else 0))
    assert got == [ref_decode(x) for x in ents]
    # contiguous cover of the range, and runs are maximal
    assert vs.tolist() == ([vpage * PS] + ve[:-1].tolist() if len(ents) else [])
    for i in range(1, vs.size):
        continues = flags[i] == flags[i - 1] and (
            (pfn[i] == 0 and pfn[i - 1] == 0)
            or (pfn[i - 1] != 0 and pfn[i] == pfn[i - 1] + (ve[i - 1] - vs[i - 1]) // PS)
        )
        assert not continues


@settings(max_examples=200, deadline=None)
@given(entries(), st.integers(1, 7))
def test_chunked_encoding_then_join_equals_whole(ents, chunk):
    e = np.array(ents, dtype=np.uint64)
    whole = pm.encode_runs(0, pm.entry_frames(e), pm.entry_flags(e))
    parts = [
        pm.encode_runs(i * PS, pm.entry_frames(e[i : i + chunk]), pm.entry_flags(e[i : i + chunk]))
        for i in range(0, len(ents), chunk)
    ]
    if not parts:
        return
    cat = [np.concatenate([p[k] for p in parts]) for k in range(4)]
    joined = pm.join_runs(*cat)
    for a, b in zip(whole, joined):
        assert a.tolist() == b.tolist()


def test_kpageflags_bits():
    # include/uapi/linux/kernel-page-flags.h: COMPOUND_HEAD 15, COMPOUND_TAIL 16, HUGE 17,
    # THP 22; the head bit is kept for THP and hugetlb pages only
    k = np.array(
        [
            0,
            1 << 22,
            1 << 17,
            (1 << 22) | (1 << 15),
            1 << 16,
            (1 << 17) | (1 << 22),
            1 << 15,
            (1 << 17) | (1 << 15),
            (1 << 22) | (1 << 16),
        ],
        dtype=np.uint64,
    )
    assert pm.kpageflags_to_flags(k).tolist() == [
        0,
        PAGEMAP_FLAG_THP,
        PAGEMAP_FLAG_HUGE,
        PAGEMAP_FLAG_THP | PAGEMAP_FLAG_COMPOUND_HEAD,
        0,
        PAGEMAP_FLAG_THP | PAGEMAP_FLAG_HUGE,
        0,
        PAGEMAP_FLAG_HUGE | PAGEMAP_FLAG_COMPOUND_HEAD,
        PAGEMAP_FLAG_THP,
    ]


def test_parse_maps_and_errors():
    text = (
        "55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 2148556                    /usr/bin/x y\n"
        "7ffd1e5e0000-7ffd1e601000 rw-p 00000000 00:00 0                          [stack]\n"
        "7f8a1a199000-7f8a1a19c000 rw-p 00000000 00:00 0 \n"
    )
    v = pm.parse_maps(text)
    assert [(x.start, x.end, x.perms, x.path) for x in v] == [
        (0x55D0C0A00000, 0x55D0C0A01000, "r--p", "/usr/bin/x y"),
        (0x7FFD1E5E0000, 0x7FFD1E601000, "rw-p", "[stack]"),
        (0x7F8A1A199000, 0x7F8A1A19C000, "rw-p", ""),
    ]
    with pytest.raises(TraceFormatError) as ei:
        pm.parse_maps(text + "zzz\n", "m.maps")
    assert ei.value.line == 4
    with pytest.raises(TraceFormatError, match="end"):
        pm.parse_maps("2000-1000 rw-p 00000000 00:00 0\n")


@pytest.mark.parametrize(
    "text,ns",
    [
        ("1s", 10**9),
        ("500ms", 5 * 10**8),
        ("250us", 250_000),
        ("2m", 120 * 10**9),
        ("1.5", 1_500_000_000),
        (3, 3 * 10**9),
    ],
)
def test_durations(text, ns):
    assert pm.parse_duration_ns(text) == ns


def test_bad_duration():
    with pytest.raises(InputError, match="bad duration"):
        pm.parse_duration_ns("soon")
