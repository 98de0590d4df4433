"""perf_mem_data_src decoding, bit by bit, without perf.

Oracle: the kernel's UAPI layout of ``union perf_mem_data_src``
(include/uapi/linux/perf_event.h; docs/perf-data-format.md §7): mem_op bits 0-4,
mem_lvl 5-18, mem_snoop 19-23, mem_lock 24-25, mem_dtlb 26-32, mem_lvl_num 33-36,
mem_remote 37, mem_snoopx 38-39, mem_blk 40-42, mem_hops 43-45, reserved 46-63 -- and
the printing rules of perf 6.1's ``perf script`` spelled out in §7.  Every one of the
64 bits is set alone, and the whole decoded record is compared, so a field that is too
narrow loses its top bit and a field that is too wide or shifted shows in a neighbour.
"""

from __future__ import annotations

import pytest

from tracedamon.ingest import data_src as D

# what a value of 0 decodes to: no operation, nothing known
NOTHING = {
    "mem_op": "No",
    "mem_level": "N/A",
    "mem_snoop": "N/A",
    "mem_tlb": "N/A",
    "mem_lock": "No",
    "mem_blk": "N/A",
    "mem_remote": False,
    "mem_hops": 0,
    "mem_lvl_num": 0,
}

OP = ["N/A", "LOAD", "STORE", "PFETCH", "EXEC"]
LVL = [
    "N/A",
    "N/A hit",
    "N/A miss",
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
]  # HIT and MISS alone: " hit"/" miss"
SNOOP = ["N/A", "None", "Hit", "Miss", "HitM"]
TLB = ["N/A", "N/A hit", "N/A miss", "L1", "L2", "Walker", "Fault"]
HOPS = ["core, same node ", "node, same socket ", "board "]  # hops 1, 2 and 4 (bits 43-45)

SINGLE_BITS = (
    [(b, {"mem_op": OP[b]}) for b in range(0, 5)]
    + [(5 + i, {"mem_level": LVL[i]}) for i in range(14)]
    + [(19 + i, {"mem_snoop": SNOOP[i]}) for i in range(5)]
    + [(24, {"mem_lock": "N/A"}), (25, {"mem_lock": "Yes"})]
    + [(26 + i, {"mem_tlb": TLB[i]}) for i in range(7)]
    + [(33 + i, {"mem_lvl_num": 1 << i, "mem_level": f"L{1 << i}"}) for i in range(4)]
    + [(37, {"mem_remote": True, "mem_level": "Remote "})]
    + [(38, {"mem_snoop": "Fwd"}), (39, {"mem_snoop": "Peer"})]
    + [(40, {"mem_blk": "N/A"}), (41, {"mem_blk": "Data"}), (42, {"mem_blk": "Addr"})]
    + [(43 + i, {"mem_hops": 1 << i, "mem_level": HOPS[i]}) for i in range(3)]
    + [(b, {}) for b in range(46, 64)]  # reserved: nothing
)


def test_every_bit_is_accounted_for():
    assert sorted(b for b, _ in SINGLE_BITS) == list(range(64))


@pytest.mark.parametrize("bit, change", SINGLE_BITS, ids=[f"bit{b}" for b, _ in SINGLE_BITS])
def test_one_bit_alone(bit, change):
    assert D.decode(1 << bit) == {**NOTHING, **change}


@pytest.mark.parametrize(
    "value, name",
    [
        (v, n)
        for v, n in [
            (1, "L1"),
            (2, "L2"),
            (3, "L3"),
            (4, "L4"),
            (5, "L5"),
            (6, "L6"),
            (7, "L7"),
            (8, "L8"),
            (9, "CXL"),
            (10, "I/O"),
            (11, "Any cache"),
            (12, "LFB/MAB"),
            (13, "RAM"),
            (14, "PMEM"),
            (15, "N/A"),
        ]
    ],
)
def test_every_lvl_num_value(value, name):
    """mem_lvl_num is a number, not a mask: every value of the 4 bits, named where perf
    6.1 names it (9, 10, 12 as this machine's perf 6.1 prints them), else L<n>."""
    d = D.decode(value << 33)
    assert (d["mem_lvl_num"], d["mem_level"]) == (value, name)


@pytest.mark.parametrize("value, hops", [(v, v) for v in range(1, 5)])
def test_every_named_hops_value(value, hops):
    d = D.decode(value << 43)
    names = {1: "core, same node", 2: "node, same socket", 3: "socket, same board", 4: "board"}
    assert (d["mem_hops"], d["mem_level"]) == (hops, names[value] + " ")


def test_field_values_at_their_widest():
    """All bits of a field set at once: the masks join with " or " in bit order."""
    assert D.decode(0x1F)["mem_op"] == "N/A"  # the first set bit wins
    assert D.decode(0x1E)["mem_op"] == "LOAD"
    assert D.decode(0x18)["mem_op"] == "PFETCH"
    assert D.decode(0x3FFF << 5)["mem_level"] == (
        "N/A or L1 or LFB/MAB or L2 or L3 or Local RAM or Remote RAM (1 hop) or "
        "Remote RAM (2 hops) or Remote Cache (1 hop) or Remote Cache (2 hops) or I/O or "
        "Uncached hit miss"
    )
    assert D.decode(0x1F << 19)["mem_snoop"] == "N/A or None or Hit or Miss or HitM"
    assert (
        D.decode((0x1F << 19) | (3 << 38))["mem_snoop"]
        == "N/A or None or Hit or Miss or HitM or Fwd or Peer"
    )
    assert D.decode(3 << 24)["mem_lock"] == "N/A"  # N/A before LOCKED
    assert D.decode(0x7F << 26)["mem_tlb"] == "N/A or L1 or L2 or Walker or Fault hit miss"
    assert D.decode(7 << 40)["mem_blk"] == "N/A"  # N/A wins
    assert D.decode(6 << 40)["mem_blk"] == "Data Addr"


def test_fields_side_by_side():
    """Every field set together, each read back from its own bits only."""
    v = (
        0x02
        | (0x20 | 0x02) << 5
        | 0x04 << 19
        | 0x02 << 24
        | (0x10 | 0x04) << 26
        | 13 << 33
        | 1 << 37
        | 1 << 38
        | 0x02 << 40
        | 0 << 43
    )
    d = D.decode(v)
    assert d == {
        "mem_op": "LOAD",
        "mem_level": "Remote L2 or RAM hit",
        "mem_snoop": "Hit or Fwd",
        "mem_tlb": "L2 miss",
        "mem_lock": "Yes",
        "mem_blk": "Data",
        "mem_remote": True,
        "mem_hops": 0,
        "mem_lvl_num": 13,
    }
    # the same with hops: the legacy level list gives way to the hops name
    d = D.decode(v | 3 << 43)
    assert d["mem_level"] == "Remote socket, same board RAM hit" and d["mem_hops"] == 3
