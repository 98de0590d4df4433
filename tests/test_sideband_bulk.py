"""Side-band records decoded in bulk (numba) equal the record-by-record decoding."""

from __future__ import annotations

import json

import pytest

from conftest import corpus_files, perf_cases
from perfdata_writer import (
    Comm,
    Event,
    Exit,
    Fork,
    Lost,
    Mmap,
    Mmap2,
    S,
    Sample,
    assign_ids,
    write_perf_data,
)
from tracedamon.errors import TraceFormatError
from tracedamon.ingest import perf_data as PD
from tracedamon.ingest.perf_data import ingest_into
from tracedamon.store.writer import TraceDirWriter
from tracedamon.store.trace import open_trace

FILES = perf_cases() + corpus_files("ubench-perf-mem", "perf-mem-*.data")


def _both(src, tmp_path, monkeypatch):
    out = []
    for bulk in (10**9, 1):
        monkeypatch.setattr(PD._PassState, "SIDEBAND_BULK", bulk)
        d = tmp_path / f"b{bulk}.td"
        with TraceDirWriter(d) as w:
            ingest_into(src, w)
        out.append((open_trace(d), json.loads((d / "meta.json").read_text())))
    return out


def _assert_same(out):
    (a, ma), (b, mb) = out
    for name in ("mmaps", "tasks", "lost", "samples"):
        ta, tb = a.table(name), b.table(name)
        assert ta.to_pylist() == tb.to_pylist(), name
    assert ma["unknown_record_ids"] == mb["unknown_record_ids"]
    assert ma["record_counts"] == mb["record_counts"]


@pytest.mark.parametrize("src", FILES, ids=lambda p: p.stem)
def test_corpus_files(src, tmp_path, monkeypatch):
    _assert_same(_both(src, tmp_path, monkeypatch))


def _fields(ev):
    names = {
        "ip": S.IP,
        "pid": S.TID,
        "tid": S.TID,
        "time": S.TIME,
        "addr": S.ADDR,
        "id": S.ID | S.IDENTIFIER,
        "cpu": S.CPU,
    }
    return {k for k, bit in names.items() if ev.sample_type & bit}


def _file(tmp_path, *, events, sid_all=True, extra=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for e in events:
        e.sample_id_all = sid_all
    assign_ids(events)
    ev = events[0]

    def sid(i, pid=7):
        return dict(pid=pid, tid=pid, time=10**9 + i, cpu=1)

    recs = [
        Comm(ev, pid=7, tid=7, comm="wörk", exec=True, sid=sid(0)),
        Comm(ev, pid=7, tid=8, comm="x" * 15, sid=sid(1)),
        Fork(ev, pid=7, ppid=7, tid=9, ptid=7, time=10**9 + 2, sid=sid(2)),
        Mmap(
            ev,
            pid=7,
            tid=7,
            start=0x400000,
            len=0x1000,
            pgoff=0,
            misc=2,
            filename="/bin/x",
            sid=sid(3),
        ),
        Mmap2(
            ev,
            pid=-1,
            tid=-1,
            start=0xFFFF0000,
            len=1 << 20,
            pgoff=1 << 12,
            maj=8,
            min=1,
            ino=2**40,
            ino_generation=5,
            prot=7,
            flags=2,
            filename="/usr/lib/libc.so.6",
            sid=sid(4),
        ),
        Mmap2(
            ev,
            pid=7,
            tid=7,
            start=0x7F0000,
            len=0x2000,
            pgoff=0,
            build_id=bytes(range(20)),
            filename="[vdso]",
            sid=sid(5),
        ),
        Mmap2(
            ev,
            pid=7,
            tid=7,
            start=0x7F8000,
            len=0x2000,
            pgoff=0,
            build_id=b"",
            filename="",
            sid=sid(6),
        ),
        Lost(ev, lost=3, sid=sid(7)),
        Sample(
            ev,
            **{
                k: v
                for k, v in dict(
                    ip=0x401000, pid=7, tid=7, time=10**9 + 8, addr=0x1000, id=ev.ids[0], cpu=1
                ).items()
                if k in _fields(ev)
            },
        ),
        *extra,
        Exit(ev, pid=7, ppid=7, tid=9, ptid=7, time=10**9 + 9, sid=sid(9)),
    ]
    return write_perf_data(tmp_path / "sb.data", events, recs)


def test_every_record_form(tmp_path, monkeypatch):
    ev = Event(
        "page-faults", type=1, config=2, sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.ID | S.CPU
    )
    out = _both(_file(tmp_path, events=[ev]), tmp_path, monkeypatch)
    _assert_same(out)
    m = out[0][0].table("mmaps").to_pylist()
    assert [r["build_id"] for r in m] == [None, None, bytes(range(20)).hex(), ""]
    assert m[1]["pid"] == -1 and m[1]["ino"] == 2**40
    assert [r["kind"] for r in out[0][0].table("tasks").to_pylist()] == [
        "COMM",
        "COMM",
        "FORK",
        "EXIT",
    ]


def test_without_sample_id_all_and_with_unknown_ids(tmp_path, monkeypatch):
    a = Event("a", type=1, config=2, sample_type=S.IP | S.TID | S.TIME | S.ID)
    b = Event("b", type=1, config=3, sample_type=S.IP | S.TID | S.TIME | S.ID)
    p = _file(tmp_path, events=[a, b], sid_all=False)
    _assert_same(_both(p, tmp_path / "x", monkeypatch))
    a2 = Event("a", type=1, config=2, sample_type=S.IP | S.TID | S.TIME | S.ID)
    b2 = Event("b", type=1, config=3, sample_type=S.IP | S.TID | S.TIME | S.ID)
    # a record whose trailer id no attr owns (perf's synthesized records carry 0)
    stray = Comm(a2, pid=5, tid=5, comm="stray", sid=dict(pid=5, tid=5, time=10**9 + 3, id=0))
    p2 = _file(tmp_path / "y", events=[a2, b2], extra=[stray])
    out = _both(p2, tmp_path / "z", monkeypatch)
    _assert_same(out)
    assert out[0][1]["unknown_record_ids"] >= 1


def test_short_record_is_reported_alike(tmp_path, monkeypatch):
    ev = Event("page-faults", type=1, config=2, sample_type=S.IP | S.TID | S.TIME)
    p = _file(tmp_path, events=[ev])
    data = bytearray(open(p, "rb").read())
    # shrink the first MMAP2 record's header size below its fixed part: 8 + 40 bytes
    # (the record boundary stays readable: the rest becomes an unknown record)
    import struct

    off = data.find(b"/usr/lib/libc.so.6") - 8 - 64
    assert struct.unpack_from("<I", data, off)[0] == 10
    total = struct.unpack_from("<H", data, off + 6)[0]
    struct.pack_into("<H", data, off + 6, 48)
    struct.pack_into("<IHH", data, off + 48, 99, 0, total - 48)
    bad = tmp_path / "bad.data"
    bad.write_bytes(bytes(data))
    errs = []
    for bulk in (10**9, 1):
        monkeypatch.setattr(PD._PassState, "SIDEBAND_BULK", bulk)
        with pytest.raises(TraceFormatError) as e:
            with TraceDirWriter(tmp_path / f"e{bulk}.td") as w:
                ingest_into(bad, w)
        errs.append(str(e.value))
    assert errs[0] == errs[1] and "MMAP2 record too short (48 bytes)" in errs[0]


def test_big_endian_file_equals_its_little_endian_twin(tmp_path):
    """The same records written little- and big-endian (plain and zstd) give the same
    tables; a 32-bit big-endian writer's feature bitmap (32-bit words) is read too."""
    import struct

    def make(order, name, compress):
        ev = Event(
            "page-faults",
            type=1,
            config=2,
            sample_type=S.IP
            | S.TID
            | S.TIME
            | S.ADDR
            | S.ID
            | S.CPU
            | S.PERIOD
            | S.DATA_SRC
            | S.WEIGHT_STRUCT
            | S.PHYS_ADDR
            | S.CALLCHAIN
            | S.RAW,
        )
        ev2 = Event("minor-faults", type=1, config=5, sample_type=ev.sample_type)
        evs = [ev, ev2]
        assign_ids(evs)
        recs = [Comm(ev, pid=7, tid=8, comm="w", sid=dict(pid=7, tid=8, time=10**9, cpu=1))]
        for i in range(600):  # enough for the bulk side-band path
            recs.append(
                Mmap2(
                    ev,
                    pid=7,
                    tid=8,
                    start=0x400000 + 4096 * i,
                    len=4096,
                    maj=8,
                    min=1,
                    ino=i,
                    prot=5,
                    flags=2,
                    build_id=bytes(range(20)) if i % 2 else None,
                    filename=f"/lib/{i}.so",
                    sid=dict(pid=7, tid=8, time=10**9 + i, cpu=1),
                )
            )
        for i in range(50):
            e = evs[i % 2]
            recs.append(
                Sample(
                    e,
                    ip=0x401000 + i,
                    pid=7,
                    tid=8,
                    time=10**9 + 1000 + i,
                    addr=0x7000 + i,
                    id=e.ids[0],
                    cpu=1,
                    period=100 + i,
                    data_src=0x68100142 + i,
                    weight=(3 << 32) | (29 + i),
                    phys_addr=0x1234000 + i,
                    callchain=[0x401000, i],
                    raw=bytes(range(i % 9 + 1)),
                )
            )
        recs.append(
            Exit(
                ev,
                pid=7,
                ppid=7,
                tid=8,
                ptid=7,
                time=10**9 + 5000,
                sid=dict(pid=7, tid=8, time=10**9 + 5000, cpu=1),
            )
        )
        return write_perf_data(tmp_path / name, evs, recs, byte_order=order, compress=compress)

    for compress in (False, True):
        le = make("little", f"le{compress}.data", compress)
        be = make("big", f"be{compress}.data", compress)
        tables = []
        for src in (le, be):
            d = tmp_path / (src.rsplit("/", 1)[1] + ".td")
            with TraceDirWriter(d) as w:
                ingest_into(src, w)
            tables.append(open_trace(d))
        for name in ("samples", "mmaps", "tasks", "lost", "events"):
            a, b = tables[0].table(name), tables[1].table(name)
            if compress and name == "samples":
                # records inside COMPRESSED containers take the container's offset, and
                # the two byte orders compress to containers of different sizes
                a, b = a.drop_columns(["file_offset"]), b.drop_columns(["file_offset"])
            assert a.equals(b), (compress, name)
        assert tables[1].meta["byte_order"] == "big" and "byte_order" not in tables[0].meta
        assert tables[0].meta["hostname"] == tables[1].meta["hostname"]
    # the feature bitmap as a 32-bit big-endian machine writes it
    data = bytearray(open(be, "rb").read())
    words = struct.unpack_from(">4Q", data, 72)
    bitmap = sum(w << (64 * k) for k, w in enumerate(words))
    struct.pack_into(">8I", data, 72, *[bitmap >> (32 * k) & 0xFFFFFFFF for k in range(8)])
    be32 = tmp_path / "be32.data"
    be32.write_bytes(bytes(data))
    with TraceDirWriter(tmp_path / "be32.td") as w:
        ingest_into(be32, w)
    t = open_trace(tmp_path / "be32.td")
    assert t.meta["hostname"] == tables[0].meta["hostname"]
    assert t.table("samples").equals(tables[1].table("samples"))
