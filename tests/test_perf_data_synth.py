"""The native reader on synthetic perf.data files whose exact content the test wrote
(tests/perfdata_writer.py): every sample_type bit, every attr size, file / pipe /
directory layouts, zstd with records split across payloads, READ groups (one row per
member like perf), side-band records, ordering by rounds; and on live recordings of
this machine's perf (``--threads`` directories, pipe + zstd) against ``perf script``."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfdata_writer as W
from conftest import PERF, missing, requires_perf
from perfdata_writer import S, F
from tracedamon.ingest.perf_data import ingest_into, open_perf_data
from tracedamon.store.writer import TraceDirWriter
from tracedamon.store.trace import open_trace

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


def _ingest(path, tmp_path, name="t.td"):
    out = tmp_path / name
    if out.exists():
        shutil.rmtree(out)
    with TraceDirWriter(out) as w:
        ingest_into(path, w)
    return open_trace(out)


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


def _check_row(o: dict, ev: W.Event, f: dict, name: str):
    stt = ev.sample_type
    assert o["event"] == name
    for bit, col, nm in (
        (S.IP, "ip", "ip"),
        (S.ADDR, "addr", "addr"),
        (S.STREAM_ID, "stream_id", "stream_id"),
        (S.DATA_SRC, "data_src", "data_src"),
        (S.TRANSACTION, "transaction", "transaction"),
        (S.PHYS_ADDR, "phys_addr", "phys_addr"),
        (S.CGROUP, "cgroup", "cgroup"),
        (S.DATA_PAGE_SIZE, "data_page_size", "data_page_size"),
        (S.CODE_PAGE_SIZE, "code_page_size", "code_page_size"),
        (S.TIME, "time_ns", "time"),
    ):
        assert o[col] == (f[nm] if stt & bit else None), col
    if stt & S.TID:
        assert (o["pid"], o["tid"]) == (f["pid"], f["tid"])
    else:
        assert o["pid"] is None and o["tid"] is None
    assert o["cpu"] == (f["cpu"] if stt & S.CPU else None)
    assert o["period"] == (f["period"] if stt & S.PERIOD else ev.sample_period)
    assert o["sample_id"] == (ev.id() if stt & (S.ID | S.IDENTIFIER) else None)
    if stt & S.WEIGHT:
        assert (o["weight"], o["weight2"], o["weight3"]) == (f["weight"], None, None)
    elif stt & S.WEIGHT_STRUCT:
        w = f["weight"]
        assert (o["weight"], o["weight2"], o["weight3"]) == (
            w & 0xFFFFFFFF,
            w >> 32 & 0xFFFF,
            w >> 48,
        )
    else:
        assert o["weight"] is None
    assert o["callchain"] == (f["callchain"] if stt & S.CALLCHAIN else None)
    if stt & S.RAW:
        raw = f["raw"] + b"\0" * (-(4 + len(f["raw"])) % 8)
        assert o["raw"] == raw
    else:
        assert o["raw"] is None
    if stt & S.DATA_SRC:
        from tracedamon.ingest.data_src import decode

        d = decode(f["data_src"])
        for k in (
            "mem_op",
            "mem_level",
            "mem_snoop",
            "mem_tlb",
            "mem_lock",
            "mem_blk",
            "mem_remote",
            "mem_hops",
            "mem_lvl_num",
        ):
            assert o[k] == d[k], k
    else:
        assert o["mem_op"] is None and o["mem_hops"] is None


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
    from tracedamon.ingest.perf import stream as PD  # CHUNK_BYTES

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


def test_sideband_records(tmp_path):
    st_ = S.IP | S.TID | S.TIME | S.CPU | S.ID
    ev = W.Event("page-faults", type=1, config=2, sample_type=st_)
    ev2 = W.Event("minor-faults", type=1, config=5, sample_type=st_)
    W.assign_ids([ev, ev2])
    sid = lambda t: {"pid": 7, "tid": 8, "time": t, "cpu": 1}  # noqa: E731
    recs = [
        W.Comm(ev, sid(5), pid=7, tid=7, comm="work", exec=True),
        W.Mmap2(
            ev,
            sid(6),
            pid=7,
            tid=7,
            start=0x1000,
            len=0x2000,
            pgoff=0,
            maj=8,
            min=1,
            ino=99,
            ino_generation=3,
            prot=5,
            flags=2,
            filename="/bin/work",
        ),
        W.Mmap2(
            ev,
            sid(7),
            pid=7,
            tid=7,
            start=0x5000,
            len=0x1000,
            pgoff=0x10,
            build_id=bytes(range(20)),
            filename="/lib/x.so",
            misc=W.MISC_MMAP_DATA,
        ),
        W.Mmap(
            ev,
            sid(8),
            pid=-1,
            tid=0,
            start=0xFFFF0000,
            len=0x100,
            pgoff=0,
            filename="[kernel.kallsyms]_text",
        ),
        W.Fork(ev, sid(9), pid=7, ppid=7, tid=9, ptid=7, time=9),
        W.Sample(ev2, ip=1, pid=7, tid=9, time=10, cpu=1),
        W.Lost(ev2, sid(11), lost=17),
        W.LostSamples(ev, sid(12), lost=4),
        W.Throttle(ev, sid(13), time=13),
        W.Throttle(ev, sid(14), time=14, unthrottle=True),
        W.Exit(ev, sid(15), pid=7, ppid=1, tid=9, ptid=7, time=15),
    ]
    p = tmp_path / "sb.data"
    W.write_perf_data(p, [ev, ev2], recs)
    tr = _ingest(p, tmp_path)
    mm = tr.table("mmaps").to_pylist()
    assert [
        (m["time_ns"], m["start"], m["length"], m["pgoff"], m["filename"], m["record_type"])
        for m in mm
    ] == [
        (6, 0x1000, 0x2000, 0, "/bin/work", 10),
        (7, 0x5000, 0x1000, 0x10, "/lib/x.so", 10),
        (8, 0xFFFF0000, 0x100, 0, "[kernel.kallsyms]_text", 1),
    ]
    assert (
        mm[0]["maj"],
        mm[0]["min"],
        mm[0]["ino"],
        mm[0]["ino_generation"],
        mm[0]["prot"],
        mm[0]["flags"],
        mm[0]["build_id"],
    ) == (8, 1, 99, 3, 5, 2, None)
    assert mm[1]["build_id"] == bytes(range(20)).hex() and mm[1]["ino"] is None
    assert [m["data"] for m in mm] == [False, True, False]
    assert mm[2]["pid"] == -1
    tk = tr.table("tasks").to_pylist()
    assert [
        (t["kind"], t["time_ns"], t["pid"], t["tid"], t["ppid"], t["ptid"], t["comm"], t["exec"])
        for t in tk
    ] == [
        ("COMM", 5, 7, 7, None, None, "work", True),
        ("FORK", 9, 7, 9, 7, 7, None, None),
        ("EXIT", 15, 7, 9, 1, 7, None, None),
    ]
    lost = tr.table("lost").to_pylist()
    assert [
        (x["kind"], x["time_ns"], x["event_id"], x["lost"], x["cpu"], x["pid"]) for x in lost
    ] == [
        ("LOST", 11, 1, 17, 1, 7),
        ("LOST_SAMPLES", 12, 0, 4, 1, 7),
        ("THROTTLE", 13, 0, 0, 1, 7),
        ("UNTHROTTLE", 14, 0, 0, 1, 7),
    ]
    rc = tr.meta["record_counts"]
    assert rc["THROTTLE"] == rc["UNTHROTTLE"] == rc["LOST"] == 1


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


def test_time_order_across_rounds(tmp_path):
    """Per-CPU rounds written out of order: samples come out sorted, ties in file order,
    whatever the chunk size."""
    from tracedamon.ingest.perf import stream as PD  # CHUNK_BYTES

    ev = W.Event("e", sample_type=S.IP | S.TIME)
    rng = random.Random(5)
    recs, truth = [], []
    t0 = 0
    ip = 0
    for r in range(40):
        times = [t0 + rng.randrange(0, 100) for _ in range(rng.randrange(1, 30))]
        for t in times:
            recs.append(W.Sample(ev, ip=ip, time=t))
            truth.append((t, ip))
            ip += 1
        recs.append(W.FinishedRound())
        t0 += 50  # the next round overlaps this one (perf's two-round rule)
    p = tmp_path / "o.data"
    W.write_perf_data(p, [ev], recs)
    want = sorted(truth, key=lambda x: x[0])  # stable: file order on ties
    old = PD.CHUNK_BYTES
    try:
        for chunk in (64, 1000, 1 << 20):
            PD.CHUNK_BYTES = chunk
            tr = _ingest(p, tmp_path, f"o{chunk}.td")
            got = [(r["time_ns"], r["ip"]) for r in tr.table("samples").to_pylist()]
            assert got == want
            assert tr.meta["samples_out_of_order"] == 0
    finally:
        PD.CHUNK_BYTES = old


def test_compressed_records_straddle_and_pipe_compressed(tmp_path):
    from tracedamon.ingest.perf import stream as PD  # CHUNK_BYTES

    ev = W.Event("e", sample_type=S.IP | S.TID | S.TIME | S.ADDR)
    recs = [W.Sample(ev, ip=i, pid=1, tid=1, time=i, addr=i * 4096) for i in range(3000)]
    for layout in ("file", "pipe"):
        p = tmp_path / f"z{layout}.data"
        W.write_perf_data(
            p, [ev], recs, layout=layout, compress=True, chunks=[7, 13, 1000, 3] * 200
        )
        old = PD.CHUNK_BYTES
        try:
            for chunk in (256, 1 << 20):
                PD.CHUNK_BYTES = chunk
                tr = _ingest(p, tmp_path, f"{layout}{chunk}.td")
                t = tr.table("samples")
                assert t.column("ip").to_pylist() == list(range(3000))
                assert t.column("addr").to_pylist() == [i * 4096 for i in range(3000)]
                assert tr.meta["compression"]["type"] == "zstd"
        finally:
            PD.CHUNK_BYTES = old


def test_hand_built_directory(tmp_path):
    """`data` (regular file with side-band) + bare `data.N` streams, merged by time."""
    ev = W.Event("e", sample_type=S.IP | S.TID | S.TIME | S.CPU)
    W.assign_ids([ev])
    d = tmp_path / "perf.data"
    d.mkdir()
    W.write_perf_data(
        d / "data", [ev], [W.Comm(ev, {"pid": 1, "tid": 1, "time": 0}, pid=1, tid=1, comm="w")]
    )
    streams = {0: [1, 4, 6, 9], 1: [2, 3, 7], 2: [], 3: [5, 8, 10]}
    for k, times in streams.items():
        recs = [W.Sample(ev, ip=100 * k + t, pid=1, tid=1, time=t, cpu=k) for t in times]
        (d / f"data.{k}").write_bytes(W.build_data([ev], recs, compress=False))
    tr = _ingest(d, tmp_path)
    rows = tr.table("samples").to_pylist()
    assert [r["time_ns"] for r in rows] == list(range(1, 11))
    assert [r["cpu"] for r in rows] == [0, 1, 1, 0, 3, 0, 1, 3, 0, 3]
    assert tr.meta["layout"] == "directory"
    assert tr.num_rows("tasks") == 1


# ---------------------------------------------------------------------------- live perf
def _perf_record(tmp_path, args, out):
    cmd = [
        PERF,
        "record",
        "-N",
        "-q",
        "-o",
        str(out),
        *args,
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64k",
        "count=200",
    ]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=120)
    if r.returncode != 0:
        missing(f"perf record failed here: {r.stderr.decode()[-300:]}")


def _perf_script_rows(path):
    r = subprocess.run(
        [PERF, "script", "-i", str(path), "-F", "event,pid,tid,time,ip,addr", "--ns"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = []
    import re

    for ln in r.stdout.splitlines():
        m = re.match(
            r"\s*(\d+)/(\d+)\s+(\d+)\.(\d{9}):\s+(?:\d+\s+)?(\S+):\s+([0-9a-f]+)\s+"
            r"([0-9a-f]+)",
            ln,
        )
        assert m, ln
        pid, tid, s, ns, ev, addr, ip = m.groups()
        rows.append(
            (
                int(pid),
                int(tid),
                int(s) * 10**9 + int(ns),
                ev.rstrip(":"),
                int(addr, 16),
                int(ip, 16),
            )
        )
    return rows


@requires_perf
@pytest.mark.parametrize(
    "opts,layout",
    [
        (["--threads"], "directory"),
        (["--threads", "-z"], "directory"),
        (["-z"], "file"),
    ],
)
def test_live_recording_equals_perf_script(tmp_path, opts, layout):
    out = tmp_path / "live.data"
    _perf_record(tmp_path, ["-e", "page-faults", "-c", "1", "-d", *opts], out)
    want = _perf_script_rows(out)
    tr = _ingest(out, tmp_path)
    t = tr.table("samples").to_pylist()
    got = [(r["pid"], r["tid"], r["time_ns"], r["event"], r["addr"], r["ip"]) for r in t]
    assert tr.meta["layout"] == layout
    assert len(got) == len(want) > 0
    if layout == "directory":
        # naming the directory's 'data' file reads the whole directory too
        rd = open_perf_data(out / "data")
        assert rd.layout == "directory"
        assert sum(b.num_rows for b in rd.iter_sample_batches()) == len(want)
    # perf's order of equal timestamps across files may differ: compare as time-sorted
    assert sorted(got) == sorted(want)
    assert [g[2] for g in got] == sorted(g[2] for g in got)


@requires_perf
def test_live_pipe_compressed_equals_perf_script(tmp_path):
    out = tmp_path / "pipe.data"
    cmd = (
        f"{PERF} record -N -q -z -e page-faults -c 1 -d -o - -- "
        "dd if=/dev/zero of=/dev/null bs=64k count=200 > pipe.data"
    )
    r = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, timeout=120)
    if r.returncode != 0:
        missing(f"perf record failed here: {r.stderr.decode()[-300:]}")
    want = _perf_script_rows(out)
    tr = _ingest(out, tmp_path)
    got = [
        (r["pid"], r["tid"], r["time_ns"], r["event"], r["addr"], r["ip"])
        for r in tr.table("samples").to_pylist()
    ]
    assert tr.meta["layout"] == "pipe"
    assert got == want and got


# ---------------------------------------------------------------------------- more records
def _to_compressed2(data: bytes) -> bytes:
    """Rewrite every COMPRESSED (81) record of a stream as COMPRESSED2 (83): header,
    u64 data_size, the zstd bytes, zero padding to 8 (perf >= 6.16)."""
    out = bytearray()
    p = 0
    while p < len(data):
        typ, misc, size = struct.unpack_from("<IHH", data, p)
        if typ == 81:
            payload = data[p + 8 : p + size]
            pad = -(16 + len(payload)) % 8
            out += struct.pack("<IHHQ", 83, misc, 16 + len(payload) + pad, len(payload))
            out += payload + b"\0" * pad
        else:
            out += data[p : p + size]
        p += size
    return bytes(out)


def test_compressed2_records(tmp_path):
    ev = W.Event("e", sample_type=S.IP | S.TIME | S.ADDR)
    W.assign_ids([ev])
    recs = [W.Sample(ev, ip=i, time=i, addr=7 * i) for i in range(500)]
    recs.insert(200, W.FinishedRound())
    d = tmp_path / "c2"
    d.mkdir()
    # a directory: `data` holds the attrs, data.0 a COMPRESSED2 stream
    W.write_perf_data(d / "data", [ev], [W.FinishedInit()])
    inner = W.build_data([ev], recs, compress=True, chunks=[100, 37] * 50)
    c2 = _to_compressed2(inner)
    assert struct.unpack_from("<I", c2, 0)[0] == 83
    (d / "data.0").write_bytes(c2)
    tr = _ingest(d, tmp_path)
    t = tr.table("samples")
    assert t.column("addr").to_pylist() == [7 * i for i in range(500)]
    assert tr.meta["record_counts"]["COMPRESSED2"] > 1


def test_auxtrace_payload_skipped_and_tracing_data_read(tmp_path):
    """AUXTRACE (71) and HEADER_TRACING_DATA (66) carry payloads outside header.size;
    the next record starts after them, also when they exceed a chunk."""
    from tracedamon.ingest.perf import stream as PD  # CHUNK_BYTES

    ev = W.Event("e", sample_type=S.IP | S.TIME | S.ID)
    W.assign_ids([ev])
    aux_payload = bytes(range(256)) * 40  # 10240 bytes
    aux = struct.pack("<IHHQQQIIII", 71, 0, 48, len(aux_payload), 0, 1, 0, 1, 0, 0)
    blob = b"tracing-data-blob-" * 100
    blob += b"\0" * (-len(blob) % 8)
    td = struct.pack("<IHHII", 66, 0, 16, len(blob), 0)
    recs = [
        W.Sample(ev, ip=1, time=1),
        W.RawRecord(aux + aux_payload),
        W.Sample(ev, ip=2, time=2),
        W.RawRecord(td + blob),
        W.Sample(ev, ip=3, time=3),
    ]
    p = tmp_path / "aux.data"
    W.write_perf_data(p, [ev], recs, layout="pipe")
    old = PD.CHUNK_BYTES
    try:
        for chunk in (512, 1 << 20):
            PD.CHUNK_BYTES = chunk
            rd = open_perf_data(p)
            t = pa.Table.from_batches(list(rd.iter_sample_batches()))
            assert t.column("ip").to_pylist() == [1, 2, 3]
            assert rd.tracing_data == blob
            assert rd.meta["record_counts"]["AUXTRACE"] == 1
            assert "--via-perf" in rd.meta["aux_data"]
    finally:
        PD.CHUNK_BYTES = old


@requires_perf
def test_live_pipe_tracepoint_names_and_tracing_data(tmp_path):
    """Pipe mode with a tracepoint: names from EVENT_UPDATE, tracing data from the
    HEADER_TRACING_DATA record, RAW payloads equal to perf script's."""
    cmd = (
        f"{PERF} record -N -q -e syscalls:sys_enter_getpid -c 1 -o - -- "
        "python3 -c 'import os\nfor _ in range(50): os.getpid()' > tp.data"
    )
    r = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, timeout=120)
    if r.returncode != 0:
        missing(f"perf record failed here: {r.stderr.decode()[-300:]}")
    p = tmp_path / "tp.data"
    rd = open_perf_data(p)
    assert [e["name"] for e in rd.events][0] == "syscalls:sys_enter_getpid"
    assert rd.tracing_data and rd.tracing_data[:10] == b"\x17\x08\x44tracing"
    t = pa.Table.from_batches(list(rd.iter_sample_batches()))
    r = subprocess.run(
        [PERF, "script", "-i", str(p), "-F", "pid,time", "--ns"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0
    assert t.num_rows == len([ln for ln in r.stdout.splitlines() if ln.strip()]) >= 50
    assert all(x is not None for x in t.column("raw").to_pylist())


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


@requires_perf
def test_live_clockid_features(tmp_path):
    """`perf record -k mono`: CLOCKID and CLOCK_DATA features, the attr's clockid."""
    out = tmp_path / "clk.data"
    _perf_record(tmp_path, ["-k", "mono", "-e", "page-faults", "-c", "1", "-d"], out)
    tr = _ingest(out, tmp_path)
    assert tr.meta["clock_data"]["clockid"] == 1 == tr.meta["clock_id"]
    assert tr.meta["clock_data"]["tod_ns"] > 10**18
    assert tr.meta["clock_resolution_ns"] >= 1
    assert list(tr.df("events")["clockid"]) == [1]
    assert tr.num_rows("samples") > 0


def test_bounded_window_without_rounds(tmp_path, monkeypatch):
    """No FINISHED_ROUND at all: the pending window is bounded (MAX_PENDING); local
    disorder is still sorted out, a sample older than what was emitted is counted."""
    from tracedamon.ingest.perf import ordering, stream

    monkeypatch.setattr(ordering, "MAX_PENDING", 64)
    monkeypatch.setattr(stream, "CHUNK_BYTES", 256)
    ev = W.Event("e", sample_type=S.IP | S.TIME)
    rng = random.Random(3)
    times = [10 * i + rng.randrange(0, 25) for i in range(2000)]  # jitter < 3 slots
    recs = [W.Sample(ev, ip=i, time=t) for i, t in enumerate(times)]
    p = tmp_path / "w.data"
    W.write_perf_data(p, [ev], recs)
    tr = _ingest(p, tmp_path)
    got = tr.table("samples").column("time_ns").to_pylist()
    assert got == sorted(times)
    assert tr.meta["samples_out_of_order"] == 0 and tr.meta["forced_flushes"] > 0
    # one sample far in the past, written at the end
    recs.append(W.Sample(ev, ip=9999, time=5))
    W.write_perf_data(p, [ev], recs)
    tr = _ingest(p, tmp_path, "w2.td")
    assert tr.num_rows("samples") == 2001
    assert tr.meta["samples_out_of_order"] == 1


_PAGE_NAMES = {0: "N/A", 4096: "4K", 2 << 20: "2M", 1 << 30: "1G"}


@requires_perf
@pytest.mark.parametrize(
    "opts,fields",
    [
        (
            [
                "-e",
                "page-faults",
                "-e",
                "minor-faults",
                "-c",
                "1",
                "-d",
                "--phys-data",
                "--data-page-size",
                "--sample-cpu",
                "-W",
            ],
            [
                "pidtid",
                "cpu",
                "time",
                "period",
                "event",
                "addr",
                "weight",
                "ip",
                "phys_addr",
                "data_page_size",
            ],
        ),
        (
            ["-e", "page-faults", "-F", "4000", "-d"],
            ["pidtid", "time", "period", "event", "addr", "ip"],
        ),
        (
            ["-e", "page-faults", "-c", "1", "-d", "--sample-identifier", "--sample-cpu", "-z"],
            ["pidtid", "cpu", "time", "period", "event", "addr", "ip"],
        ),
        (
            ["-a", "-e", "page-faults", "-c", "1", "-d"],
            ["pidtid", "time", "period", "event", "addr", "ip"],
        ),
        (
            ["-e", "{page-faults,minor-faults}:S", "-c", "1", "-d"],
            ["pidtid", "time", "period", "event", "addr", "ip"],
        ),
    ],
    ids=[
        "two-events-phys-pgsz-weight",
        "freq",
        "identifier-zstd",
        "system-wide",
        "leader-sampling",
    ],
)
def test_live_fields_equal_perf_script(tmp_path, opts, fields):
    """Differential test against this machine's perf: every printed field of every
    sample, in perf's delivery order."""
    out = tmp_path / "live.data"
    _perf_record(tmp_path, opts, out)
    r = subprocess.run(
        [
            PERF,
            "script",
            "-i",
            str(out),
            "--ns",
            "-F",
            ",".join(f for f in fields if f != "pidtid") + ",pid,tid",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    want = []
    for ln in r.stdout.splitlines():
        tok = ln.split()
        row = {}
        for f, v in zip(fields, tok):
            row[f] = v
        want.append(row)
    tr = _ingest(out, tmp_path)
    got = tr.table("samples").to_pylist()
    # perf script shows only events with samples (dummy tracking events have none)
    assert len(got) == len(want) > 0
    for o, w in zip(got, want):
        assert f"{o['pid']}/{o['tid']}" == w["pidtid"]
        sec, ns = w["time"].rstrip(":").split(".")
        assert o["time_ns"] == int(sec) * 10**9 + int(ns)
        assert o["event"] == w["event"].rstrip(":")
        assert o["period"] == int(w["period"])
        assert o["addr"] == int(w["addr"], 16)
        assert o["ip"] == int(w["ip"], 16)
        if "cpu" in w:
            assert o["cpu"] == int(w["cpu"].strip("[]"))
        if "weight" in w:
            assert o["weight"] == int(w["weight"])
        if "phys_addr" in w:
            assert o["phys_addr"] == int(w["phys_addr"], 16)
        if "data_page_size" in w:
            assert _PAGE_NAMES.get(o["data_page_size"]) == w["data_page_size"]
