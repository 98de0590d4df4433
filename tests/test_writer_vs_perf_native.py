"""tracedamon's native reader on the synthetic perf.data files of test_writer_vs_perf.py:
its ``samples`` rows (and side-band tables, decoded one by one or in bulk) must equal the
written truth field by field, data_src decoded text compared with what perf printed
(tests/helpers/native_truth.py).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tracedamon.ingest import perf_data as PD
from tracedamon.ingest.data_src import decode

from conftest import requires_perf
from helpers.native_truth import _native_tables, check_native, check_sideband, perf_decode_text
from helpers.perf_cases import attr_need, scenario, write_case
from helpers.perf_oracle import check_against_perf, run
from perfdata_writer import (
    Comm,
    Event,
    F,
    S,
    Sample,
    assign_ids,
    write_perf_data,
)

pytestmark = [requires_perf, pytest.mark.perf]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=scenario())
def test_native_reader_equals_written_truth(tmp_path_factory, case):
    tmp = tmp_path_factory.mktemp("n")
    path = write_case(tmp, case)
    decodes = check_against_perf(path, case)
    check_native(path, case, decodes, tmp)
    # the same content with 136-byte (VER8) attrs, which perf 6.1 refuses: same rows
    case136 = dict(case, attr_size=136)
    path136 = write_case(tmp, case136, name="case136.data")
    check_native(path136, case136, decodes, tmp / "v8")
    # a pipe stream with the smallest attrs that hold the events' fields
    small = dict(case, layout="pipe", attr_size=max(attr_need(e) for e in case["events"]))
    path_small = write_case(tmp, small, name="small_pipe.data")
    check_native(path_small, small, decodes, tmp / "small")


def _one_field_values():
    """data_src values that walk each field through all its values (others fixed)."""
    base = 0x02 | (0x02 | 0x08) << 5 | 0x02 << 19 | 0x01 << 24 | (0x02 | 0x08) << 26
    vals = [base, 0x1E05080021, 0x68100142, 0]
    vals += [0x02 | 0x01 << 5 | n << 33 for n in range(16)]  # lvl_num
    vals += [0x02 | (0x02 | 0x10) << 5 | n << 33 for n in (0, 12)]  # LFB both ways
    vals += [base | 1 << 37 | h << 43 for h in range(5)]  # remote, hops
    vals += [base | 13 << 33 | 1 << 37 | h << 43 for h in range(5)]
    vals += [base & ~(0x1F << 19) | x << 38 for x in range(4)]  # snoopx
    vals += [base | b << 40 for b in range(8)]  # blk
    vals += [(base & ~(0x7F << 26)) | t << 26 for t in range(0x80)]  # every dtlb mask
    vals += [(base & ~0x1F) | o for o in range(32)]  # every op mask
    vals += [(base & ~(0x1F << 19)) | s << 19 for s in range(32)]  # every snoop mask
    vals += [(base & ~(3 << 24)) | k << 24 for k in range(4)]  # lock
    vals += [(base & ~(0x3FFF << 5)) | 1 << (5 + b) | (1 << 6) for b in range(14)]
    return vals


def test_data_src_text_every_field_value(tmp_path):
    """perf script's data_src text for every value of every field, against
    tracedamon's decoder (tracedamon.ingest.data_src, which fills the mem_* columns of
    both the native and the text reader)."""
    vals = _one_field_values()
    ev = Event("ld", type=4, config=0x1CD, sample_type=S.IP | S.TID | S.TIME | S.DATA_SRC)
    recs = [Comm(ev, pid=9, tid=9, comm="ds", sid=dict(pid=9, tid=9, time=10**9))]
    recs += [
        Sample(ev, ip=0x400000, pid=9, tid=9, time=10**9 + 1 + i, data_src=v)
        for i, v in enumerate(vals)
    ]
    path = write_perf_data(tmp_path / "ds.data", [ev], recs)
    p = run(["perf", "script", "-i", path, "--ns", "-F", "data_src"])
    assert p.returncode == 0, p.stderr
    printed = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(printed) == len(vals)
    texts = {}
    for v, ln in zip(vals, printed):
        hexv, _, text = ln.strip().partition(" ")
        assert int(hexv, 16) == v
        texts[v] = text.rstrip()

    bad = []
    for v in vals:
        d = decode(v)
        if v >> 43 & 7 > 4:
            continue
        ours = perf_decode_text(
            d["mem_op"], d["mem_level"], d["mem_snoop"], d["mem_tlb"], d["mem_lock"], d["mem_blk"]
        )
        if ours != texts[v]:
            bad.append(f"{v:#x}: perf {texts[v]!r} / tracedamon {ours!r}")
    assert not bad, f"{len(bad)} of {len(vals)} data_src values decode differently:\n" + "\n".join(
        bad[:20]
    )


def test_leader_sampling_group_read(tmp_path):
    """A group leader sampling with READ|GROUP: perf delivers one sample per member,
    period = the member's counter increase; the native reader does the same."""
    st = S.IP | S.TID | S.TIME | S.ADDR | S.ID | S.READ
    lead = Event("cycles", type=0, sample_type=st, read_format=F.GROUP | F.ID | F.LOST)
    memb = Event(
        "instructions", type=0, config=1, sample_type=st, read_format=F.GROUP | F.ID | F.LOST
    )
    assign_ids([lead, memb], start=500)
    vals = [(100, 1000), (250, 1300), (260, 2000)]
    recs = [Comm(lead, pid=3, tid=3, comm="grp", sid=dict(pid=3, tid=3, time=10**9))]
    for i, (a, b) in enumerate(vals):
        recs.append(
            Sample(
                lead,
                ip=0x401000 + i,
                pid=3,
                tid=3,
                time=10**9 + 10 + i,
                addr=0x7000 + i,
                id=lead.ids[0],
                read=dict(
                    values=[
                        dict(value=a, id=lead.ids[0], lost=0),
                        dict(value=b, id=memb.ids[0], lost=0),
                    ]
                ),
            )
        )
    path = write_perf_data(tmp_path / "grp.data", [lead, memb], recs)
    p = run(["perf", "script", "-i", path, "--ns", "-F", "time,event,period,ip"])
    assert p.returncode == 0, p.stderr
    got = [ln.split() for ln in p.stdout.splitlines() if ln.strip()]
    want = []
    prev = (0, 0)
    for i, (a, b) in enumerate(vals):
        t = f"1.{10 + i:09d}:"
        want += [
            [t, str(a - prev[0]), "cycles:", f"{0x401000 + i:x}"],
            [t, str(b - prev[1]), "instructions:", f"{0x401000 + i:x}"],
        ]
        prev = (a, b)
    assert got == want
    tables = _native_tables(path, tmp_path / "n")
    rows = [
        (r["event"], r["event_id"], r["sample_id"], r["period"], r["ip"]) for r in tables["samples"]
    ]
    prev = (0, 0)
    expect = []
    for i, (a, b) in enumerate(vals):
        expect += [
            ("cycles", 0, lead.ids[0], a - prev[0], 0x401000 + i),
            ("instructions", 1, memb.ids[0], b - prev[1], 0x401000 + i),
        ]
        prev = (a, b)
    assert rows == expect


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=scenario())
def test_bulk_sideband_equals_written_truth(tmp_path_factory, case):
    """The same drawn files with every side-band record decoded in bulk (the numba path
    a chunk with many MMAP/COMM/FORK/EXIT records takes): equal to what was written."""
    tmp = tmp_path_factory.mktemp("b")
    path = write_case(tmp, case)
    old = PD._PassState.SIDEBAND_BULK
    PD._PassState.SIDEBAND_BULK = 1
    try:
        tables = _native_tables(path, tmp)
    finally:
        PD._PassState.SIDEBAND_BULK = old
    check_sideband(case, tables)
