"""The native reader on synthetic perf.data files (tests/perfdata_writer.py): side-band
records, ordering by rounds (and a bounded window without them), zstd with records split
across payloads (COMPRESSED and COMPRESSED2), AUXTRACE payloads, and hand-built
``--threads`` directories."""

from __future__ import annotations

import random
import struct

import pyarrow as pa

from tracedamon.ingest.perf import ordering, stream
from tracedamon.ingest.perf_data import open_perf_data

from helpers.perf_synth import _ingest
import perfdata_writer as W
from perfdata_writer import S


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


def test_time_order_across_rounds(tmp_path):
    """Per-CPU rounds written out of order: samples come out sorted, ties in file order,
    whatever the chunk size."""
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
    old = stream.CHUNK_BYTES
    try:
        for chunk in (64, 1000, 1 << 20):
            stream.CHUNK_BYTES = chunk
            tr = _ingest(p, tmp_path, f"o{chunk}.td")
            got = [(r["time_ns"], r["ip"]) for r in tr.table("samples").to_pylist()]
            assert got == want
            assert tr.meta["samples_out_of_order"] == 0
    finally:
        stream.CHUNK_BYTES = old


def test_compressed_records_straddle_and_pipe_compressed(tmp_path):
    ev = W.Event("e", sample_type=S.IP | S.TID | S.TIME | S.ADDR)
    recs = [W.Sample(ev, ip=i, pid=1, tid=1, time=i, addr=i * 4096) for i in range(3000)]
    for layout in ("file", "pipe"):
        p = tmp_path / f"z{layout}.data"
        W.write_perf_data(
            p, [ev], recs, layout=layout, compress=True, chunks=[7, 13, 1000, 3] * 200
        )
        old = stream.CHUNK_BYTES
        try:
            for chunk in (256, 1 << 20):
                stream.CHUNK_BYTES = chunk
                tr = _ingest(p, tmp_path, f"{layout}{chunk}.td")
                t = tr.table("samples")
                assert t.column("ip").to_pylist() == list(range(3000))
                assert t.column("addr").to_pylist() == [i * 4096 for i in range(3000)]
                assert tr.meta["compression"]["type"] == "zstd"
        finally:
            stream.CHUNK_BYTES = old


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
    old = stream.CHUNK_BYTES
    try:
        for chunk in (512, 1 << 20):
            stream.CHUNK_BYTES = chunk
            rd = open_perf_data(p)
            t = pa.Table.from_batches(list(rd.iter_sample_batches()))
            assert t.column("ip").to_pylist() == [1, 2, 3]
            assert rd.tracing_data == blob
            assert rd.meta["record_counts"]["AUXTRACE"] == 1
            assert "--via-perf" in rd.meta["aux_data"]
    finally:
        stream.CHUNK_BYTES = old


def test_bounded_window_without_rounds(tmp_path, monkeypatch):
    """No FINISHED_ROUND at all: the pending window is bounded (MAX_PENDING); local
    disorder is still sorted out, a sample older than what was emitted is counted."""
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
