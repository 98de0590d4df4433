"""The native reader on synthetic perf.data files whose exact content the test wrote
(tests/perfdata_writer.py): every sample_type bit in every layout, every attr size,
READ groups (one row per member like perf), unknown sample ids, branch stacks with
hw_idx. Side-band records, ordering and compression are in
test_perf_data_synth_records.py; live recordings in test_perf_data_live.py."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracedamon.ingest.perf import stream as PD
from tracedamon.ingest.perf_data import open_perf_data

from helpers.perf_synth import _check_row, _ingest
import perfdata_writer as W
from perfdata_writer import F, S

ALL_BITS = (
    S.IP
    | S.TID
    | S.TIME
    | S.ADDR
    | S.ID
    | S.STREAM_ID
    | S.CPU
    | S.PERIOD
    | S.CALLCHAIN
    | S.RAW
    | S.BRANCH_STACK
    | S.REGS_USER
    | S.STACK_USER
    | S.WEIGHT_STRUCT
    | S.DATA_SRC
    | S.TRANSACTION
    | S.REGS_INTR
    | S.PHYS_ADDR
    | S.CGROUP
    | S.DATA_PAGE_SIZE
    | S.CODE_PAGE_SIZE
    | S.AUX
    | S.IDENTIFIER
)


u64 = st.integers(0, (1 << 64) - 1)
u32 = st.integers(0, (1 << 32) - 1)


@st.composite
def _sample_fields(draw, ev: W.Event, time: int):
    f = {}
    stt = ev.sample_type
    if stt & S.IP:
        f["ip"] = draw(u64)
    if stt & S.TID:
        f["pid"] = draw(st.integers(-1, 1 << 22))
        f["tid"] = draw(st.integers(-1, 1 << 22))
    if stt & S.TIME:
        f["time"] = time
    for bit, nm in (
        (S.ADDR, "addr"),
        (S.STREAM_ID, "stream_id"),
        (S.PERIOD, "period"),
        (S.DATA_SRC, "data_src"),
        (S.TRANSACTION, "transaction"),
        (S.PHYS_ADDR, "phys_addr"),
        (S.CGROUP, "cgroup"),
        (S.DATA_PAGE_SIZE, "data_page_size"),
        (S.CODE_PAGE_SIZE, "code_page_size"),
        (S.WEIGHT | S.WEIGHT_STRUCT, "weight"),
    ):
        if stt & bit:
            f[nm] = draw(u64)
    if stt & S.CPU:
        f["cpu"] = draw(st.integers(0, 4095))
    if stt & S.CALLCHAIN:
        f["callchain"] = draw(st.lists(u64, max_size=6))
    if stt & S.RAW:
        f["raw"] = draw(st.binary(max_size=40))
    if stt & S.BRANCH_STACK:
        f["branch_stack"] = draw(st.lists(st.tuples(u64, u64, u64), max_size=4))
        if ev.branch_sample_type & W.BRANCH_HW_INDEX:
            f["branch_hw_idx"] = draw(u64)
    if stt & S.REGS_USER:
        n = bin(ev.sample_regs_user).count("1")
        f["regs_user"] = draw(st.sampled_from([(0, []), (2, list(range(n)))]))
    if stt & S.REGS_INTR:
        n = bin(ev.sample_regs_intr).count("1")
        f["regs_intr"] = draw(st.sampled_from([(0, []), (2, list(range(10, 10 + n)))]))
    if stt & S.STACK_USER:
        f["stack_user"] = draw(st.sampled_from([(b"", 0), (b"\x01" * 64, 40)]))
    if stt & S.AUX:
        f["aux"] = draw(st.sampled_from([b"", b"\xaa" * 16]))
    return f


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_sample_field_every_layout(tmp_path, data):
    """Two events with different sample_types (IDENTIFIER), random subsets of every
    sample_type bit, any attr size that holds them, file or pipe, with or without zstd."""
    bits = [b for b in range(25) if (1 << b) & ALL_BITS and (1 << b) != S.IDENTIFIER]
    evs = []
    for k in range(2):
        chosen = data.draw(st.sets(st.sampled_from(bits)))
        stt = S.IDENTIFIER | S.TIME | sum(1 << b for b in chosen)
        if data.draw(st.booleans()) and stt & S.WEIGHT_STRUCT:
            stt = stt & ~S.WEIGHT_STRUCT | S.WEIGHT
        ev = W.Event(
            f"ev{k}",
            type=4,
            config=0x1CD + k,
            sample_type=stt,
            sample_period=data.draw(st.integers(1, 10**6)),
            branch_sample_type=(
                W.BRANCH_ANY | (W.BRANCH_HW_INDEX if data.draw(st.booleans()) else 0)
            )
            if stt & S.BRANCH_STACK
            else 0,
            sample_regs_user=0b1011 if stt & S.REGS_USER else 0,
            sample_regs_intr=0b111 if stt & S.REGS_INTR else 0,
            sample_stack_user=64 if stt & S.STACK_USER else 0,
        )
        evs.append(ev)
    W.assign_ids(evs)
    need = max(
        64 if not (e.branch_sample_type or e.sample_type & S.BRANCH_STACK) else 80 for e in evs
    )
    if any(e.sample_regs_user or e.sample_stack_user for e in evs):
        need = max(need, 96)
    if any(e.sample_regs_intr for e in evs):
        need = max(need, 104)
    attr_size = data.draw(st.sampled_from([s for s in W.ATTR_SIZES if s >= need]))
    layout = data.draw(st.sampled_from(["file", "pipe"]))
    compress = data.draw(st.booleans())
    n = data.draw(st.integers(1, 30))
    recs, truth = [], []
    for i in range(n):
        k = data.draw(st.integers(0, 1))
        f = data.draw(_sample_fields(evs[k], 1000 + 10 * i))
        recs.append(W.Sample(evs[k], misc=W.MISC_USER, **f))
        truth.append((k, f))
        if data.draw(st.integers(0, 5)) == 0:
            recs.append(W.FinishedRound())
    p = tmp_path / "s.data"
    W.write_perf_data(
        p,
        evs,
        recs,
        layout=layout,
        compress=compress,
        attr_size=attr_size,
        chunks=[data.draw(st.integers(1, 200)) for _ in range(50)],
    )
    tr = _ingest(p, tmp_path)
    rows = tr.table("samples").to_pylist()
    assert len(rows) == n
    for o, (k, f) in zip(rows, truth):
        _check_row(o, evs[k], f, f"ev{k}")
    ev_t = tr.df("events")
    assert list(ev_t["name"]) == ["ev0", "ev1"]
    assert list(ev_t["attr_size"]) == [attr_size] * 2
    assert list(ev_t["nr_samples"]) == [sum(1 for k, _ in truth if k == j) for j in (0, 1)]
    assert tr.meta["layout"] == layout


@pytest.mark.parametrize("attr_size", W.ATTR_SIZES)
def test_attr_sizes_and_larger_than_known(tmp_path, attr_size):
    """VER0 (64) … VER8 (136); and an attr section entry larger than any known attr."""
    ev = W.Event("cycles", type=0, config=0, sample_type=S.IP | S.TID | S.TIME | S.ADDR)
    recs = [W.Sample(ev, ip=1, pid=2, tid=3, time=4, addr=5)]
    p = tmp_path / "a.data"
    W.write_perf_data(p, [ev], recs, attr_size=attr_size)
    rd = open_perf_data(p)
    assert rd.events[0]["attr_size"] == attr_size
    t = pa.Table.from_batches(list(rd.iter_sample_batches())).to_pylist()
    assert [(r["ip"], r["pid"], r["tid"], r["time_ns"], r["addr"]) for r in t] == [(1, 2, 3, 4, 5)]


def test_attr_larger_than_known_struct(tmp_path):
    """A future attr (168 bytes): the unknown tail is ignored."""
    ev = W.Event("cycles", type=0, config=0, sample_type=S.IP | S.TIME)
    recs = [W.Sample(ev, ip=7, time=9)]
    p = tmp_path / "a.data"
    W.write_perf_data(p, [ev], recs, attr_size=136)
    b = bytearray(p.read_bytes())
    attr_size, a_off, a_size = struct.unpack_from("<QQQ", b, 16)
    entry = b[a_off : a_off + a_size]
    attr, ids = entry[:136], entry[136:]
    big = bytearray(attr) + bytes(32)
    struct.pack_into("<I", big, 4, 168)
    new_entry = bytes(big) + bytes(ids)
    # append the new attrs section at the end and point the header to it
    b2 = bytearray(b) + new_entry
    struct.pack_into("<QQQ", b2, 16, 168 + 16, len(b), len(new_entry))
    b2[72:104] = bytes(32)  # drop features (EVENT_DESC holds old attrs)
    p.write_bytes(bytes(b2))
    rd = open_perf_data(p)
    assert rd.events[0]["attr_size"] == 168
    t = pa.Table.from_batches(list(rd.iter_sample_batches())).to_pylist()
    assert [(r["ip"], r["time_ns"]) for r in t] == [(7, 9)]


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_read_group_one_row_per_member(tmp_path, chunk, monkeypatch):
    """Leader sampling {a,b}:S: each SAMPLE carries READ|GROUP; one row per member with
    period = the increase of the member's value; zero increases give no row."""
    rf = F.GROUP | F.ID | F.LOST | F.TOTAL_TIME_ENABLED
    st_ = S.IP | S.TID | S.TIME | S.ID | S.READ | S.PERIOD
    a = W.Event("a", type=1, config=2, sample_type=st_, read_format=rf)
    b = W.Event("b", type=1, config=5, sample_type=st_, read_format=rf)
    W.assign_ids([a, b])
    vals = [(10, 3), (25, 3), (40, 9)]
    recs = []
    for i, (va, vb) in enumerate(vals):
        recs.append(
            W.Sample(
                a,
                ip=100 + i,
                pid=1,
                tid=1,
                time=1000 + i,
                period=999,
                read={
                    "enabled": 5,
                    "values": [
                        {"value": va, "id": a.id(), "lost": 0},
                        {"value": vb, "id": b.id(), "lost": 0},
                    ],
                },
            )
        )
    p = tmp_path / "g.data"
    W.write_perf_data(p, [a, b], recs)

    monkeypatch.setattr(PD, "CHUNK_BYTES", chunk)  # counters carried across chunks
    tr = _ingest(p, tmp_path)
    rows = [
        (r["event"], r["ip"], r["period"], r["sample_id"]) for r in tr.table("samples").to_pylist()
    ]
    assert rows == [
        ("a", 100, 10, a.id()),
        ("b", 100, 3, b.id()),
        ("a", 101, 15, a.id()),  # b did not move: no row
        ("a", 102, 15, a.id()),
        ("b", 102, 6, b.id()),
    ]
    ev = tr.df("events")
    assert list(ev["nr_samples"]) == [3, 2]


def test_read_single_value(tmp_path):
    rf = F.ID | F.TOTAL_TIME_RUNNING
    ev = W.Event("x", type=1, config=2, sample_type=S.IP | S.TIME | S.READ, read_format=rf)
    W.assign_ids([ev])
    recs = [
        W.Sample(ev, ip=1, time=1, read={"value": 5, "running": 1, "id": ev.id()}),
        W.Sample(ev, ip=2, time=2, read={"value": 12, "running": 1, "id": ev.id()}),
    ]
    p = tmp_path / "r.data"
    W.write_perf_data(p, [ev], recs)
    rows = [(r["ip"], r["period"]) for r in _ingest(p, tmp_path).table("samples").to_pylist()]
    assert rows == [(1, 5), (2, 7)]


def test_unknown_sample_ids_counted(tmp_path):
    st_ = S.IP | S.TIME | S.ID
    a = W.Event("a", sample_type=st_)
    b = W.Event("b", sample_type=st_)
    W.assign_ids([a, b])
    recs = [
        W.Sample(a, ip=1, time=1),
        W.Sample(b, ip=2, time=2, id=424242),
        W.Sample(b, ip=3, time=3),
    ]
    p = tmp_path / "u.data"
    W.write_perf_data(p, [a, b], recs)
    tr = _ingest(p, tmp_path)
    assert [r["ip"] for r in tr.table("samples").to_pylist()] == [1, 3]
    assert tr.meta["unknown_sample_ids"] == 1


def test_branch_stack_with_hw_idx_and_counters(tmp_path):
    """BRANCH_STACK with PERF_SAMPLE_BRANCH_HW_INDEX and PERF_SAMPLE_BRANCH_COUNTERS
    (kernel >= 6.8: nr u64 counters after the entries): the fields after it still
    decode. The sample is built by hand, field by field (spec §6 item 13)."""
    st_ = S.IP | S.TIME | S.BRANCH_STACK | S.DATA_SRC | S.PHYS_ADDR
    ev = W.Event(
        "br",
        type=0,
        config=0,
        sample_type=st_,
        branch_sample_type=W.BRANCH_ANY | W.BRANCH_HW_INDEX | (1 << 19),
    )
    W.assign_ids([ev])
    entries = [(0x10, 0x20, 1), (0x30, 0x40, 2), (0x50, 0x60, 3)]
    body = struct.pack("<QQ", 0x401000, 77)
    body += struct.pack("<QQ", len(entries), 5)  # nr, hw_idx
    body += b"".join(struct.pack("<QQQ", *e) for e in entries)
    body += struct.pack(f"<{len(entries)}Q", 1, 2, 3)  # counters
    body += struct.pack("<QQ", 0x68100142, 0xABC000)
    rec = struct.pack("<IHH", 9, 2, 8 + len(body)) + body
    p = tmp_path / "br.data"
    W.write_perf_data(p, [ev], [W.RawRecord(rec)], attr_size=128)
    row = _ingest(p, tmp_path).table("samples").to_pylist()[0]
    assert (row["ip"], row["time_ns"], row["data_src"], row["phys_addr"]) == (
        0x401000,
        77,
        0x68100142,
        0xABC000,
    )
    assert row["mem_level"] == "L1 hit"
