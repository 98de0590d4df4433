"""PERF_SAMPLE_READ followed by more fields, for every read_format: the READ block's
length (a header word per TOTAL_TIME_* bit, the nr word of a GROUP, and per value the
value, its ID and its LOST word) must be skipped exactly, or every field after it is read
from the wrong place.  The files are written by tests/perfdata_writer.py in the kernel's
layout (perf_output_read_one / perf_output_read_group; docs/perf-data-format.md)."""

from __future__ import annotations

import pytest

import perfdata_writer as W
from perfdata_writer import F, S
from helpers.perf_synth import _ingest

ALL_FORMATS = [
    rf for rf in range(32) if not (rf & F.GROUP and not rf & F.ID)
]  # a group's values need their ids


def _name(rf: int) -> str:
    return (
        "|".join(
            n
            for n, b in (
                ("enabled", F.TOTAL_TIME_ENABLED),
                ("running", F.TOTAL_TIME_RUNNING),
                ("id", F.ID),
                ("group", F.GROUP),
                ("lost", F.LOST),
            )
            if rf & b
        )
        or "none"
    )


@pytest.mark.parametrize("rf", ALL_FORMATS, ids=_name)
def test_fields_after_the_read_block(tmp_path, rf):
    st_ = S.IP | S.TID | S.TIME | S.READ | S.CALLCHAIN | S.WEIGHT | S.DATA_SRC
    ev = W.Event("x", type=1, config=2, sample_type=st_, read_format=rf)
    W.assign_ids([ev])
    recs, want = [], []
    value = 0
    for i in range(4):
        value += 5 + i
        one = {"value": value, "id": ev.id(), "lost": 3 + i}
        read = {"enabled": 1100 + i, "running": 900 + i}
        read.update({"values": [one]} if rf & F.GROUP else one)
        cc = [0xFFFFFFFFFFFFFE00, 0x401000 + 16 * i]  # PERF_CONTEXT_USER, then an ip
        recs.append(
            W.Sample(
                ev,
                ip=0x401000 + i,
                pid=77,
                tid=78,
                time=500 + i,
                read=read,
                callchain=cc,
                weight=40 + i,
                data_src=0x68100142 + (i << 5),
            )
        )
        # period: the increase of the counter since the previous sample
        want.append((0x401000 + i, 77, 78, 500 + i, 5 + i, cc, 40 + i, 0x68100142 + (i << 5)))
    W.write_perf_data(tmp_path / "r.data", [ev], recs)
    rows = _ingest(tmp_path / "r.data", tmp_path).table("samples").to_pylist()
    got = [
        (
            r["ip"],
            r["pid"],
            r["tid"],
            r["time_ns"],
            r["period"],
            r["callchain"],
            r["weight"],
            r["data_src"],
        )
        for r in rows
    ]
    assert got == want
