"""The native perf.data reader against perf's own oracles on real perf.data files.

Every ``*.data`` of ``corpus/perf`` (perf 6.1, software events) and
``corpus/ubench-perf-mem`` (Intel PEBS mem-loads, attr size 96) is ingested with
``ingest_into`` and compared field by field with what perf printed for the same file:
``samples.csv`` (perf's delivered samples, time order), ``records.csv`` (every record in
file order, with its offset), ``script.txt`` (data_src strings) and ``header.txt``
(header features).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import CORPUS, corpus_files, need_corpus, perf_cases, perf_corpus, requires
from tracedamon.ingest.perf_data import ingest_into, open_perf_data
from tracedamon.store.writer import TraceDirWriter
from tracedamon.store.trace import open_trace

PERF_DIR = perf_corpus().dir
UBENCH_DIR = CORPUS / "ubench-perf-mem"
PERF_FILES = perf_cases()
UBENCH_FILES = corpus_files("ubench-perf-mem", "perf-mem-*.data")
ALL_FILES = PERF_FILES + UBENCH_FILES

pytestmark = requires(ALL_FILES, "reference corpus not found")


def _oracle(data: Path, suffix: str) -> Path | None:
    stem = data.stem
    if data.parent == UBENCH_DIR:
        stem = "ubench_" + stem
    for p in (data.parent / f"{stem}.{suffix}", data.parent / f"{stem}.{suffix}.gz"):
        if p.exists():
            return p
    return None


def _text(p: Path) -> str:
    if p.suffix == ".gz":
        return gzip.decompress(p.read_bytes()).decode()
    return p.read_text()


def _csv(p: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_text(p))))


_CACHE: dict = {}


def _ingest(data: Path, tmp_factory):
    if data not in _CACHE:
        out = tmp_factory.mktemp(data.stem) / "t.td"
        with TraceDirWriter(out) as w:
            ingest_into(data, w)
        tr = open_trace(out)
        _CACHE[data] = (tr, {n: tr.df(n) for n in ("samples", "events", "mmaps", "tasks", "lost")})
    return _CACHE[data]


def _hex(s: str):
    return int(s, 16) if s not in ("", None) else None


def _int(s: str):
    return int(s) if s not in ("", None) else None


def _val(x):
    """A pandas cell as a python int or None."""
    if x is None:
        return None
    try:
        import pandas as pd

        if pd.isna(x):
            return None
    except (TypeError, ValueError):
        pass
    return int(x)


# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", PERF_FILES, ids=lambda p: p.stem)
def test_samples_equal_perf_script(data, tmp_path_factory):
    """Row i of our samples table == row i of perf's delivered samples, field by field."""
    _, t = _ingest(data, tmp_path_factory)
    s = t["samples"]
    rows = _csv(_oracle(data, "samples.csv"))
    assert len(s) == len(rows)
    for i, r in enumerate(rows):
        o = s.iloc[i]
        tp = json.loads(r["tp_fields"]) if r["tp_fields"] else {}
        ev_name = tp.get("ev_name", r["event"])
        if tp:
            # tracepoint rows: perf's handler puts the sample fields into tp_fields
            smp = tp["sample"]
            r = dict(
                r,
                tid=str(smp["tid"]),
                cpu=str(smp["cpu"]),
                ip=hex(smp["ip"]),
                period=str(smp["period"]),
            )
        assert o["event"] == ev_name, i
        assert _val(o["pid"]) == int(r["pid"]), i
        assert _val(o["tid"]) == int(r["tid"]), i
        if r["cpu"] and r["cpu"] != "4294967295":
            assert _val(o["cpu"]) == int(r["cpu"]), i
        else:
            # perf prints nothing / (u32)-1 for events without the CPU bit: ours is null
            assert _val(o["cpu"]) is None, i
        assert _val(o["time_ns"]) == int(r["time"]), i
        assert _val(o["ip"]) == _hex(r["ip"]), i
        assert _val(o["period"]) == int(r["period"]), i
        if not tp:
            assert _val(o["addr"]) == _hex(r["addr"]), i
            assert _val(o["phys_addr"]) == _hex(r["phys_addr"]), i
            assert _val(o["data_src"]) == _hex(r["data_src"]), i
        if r["weight"]:
            assert _val(o["weight"]) == int(r["weight"]), i
        assert _val(o["cpumode"]) == int(r["cpumode"]) if r["cpumode"] else True
        cc = o["callchain"]
        if r["callchain"]:
            # perf's scripting drops the context markers (PERF_CONTEXT_*) from the chain
            ips = [int(x) for x in cc if int(x) < 0xFFFFFFFFFFFFF001]
            assert ips == [_hex(x) for x in r["callchain"].split(";")], i
        if tp.get("raw_buf"):
            assert bytes(o["raw"]) == bytes.fromhex(tp["raw_buf"]), i
        elif r["raw_len"] and int(r["raw_len"]):
            assert len(o["raw"]) == int(r["raw_len"]), i
        if r["data_src_decode"]:
            d = r["data_src_decode"]
            for col, key in (
                ("mem_op", "OP"),
                ("mem_level", "LVL"),
                ("mem_snoop", "SNP"),
                ("mem_tlb", "TLB"),
                ("mem_lock", "LCK"),
            ):
                part = re.search(rf"\|{key} ([^|]*)", d).group(1)
                assert o[col] == part, (i, col)
            assert o["mem_blk"] == d.split("|BLK ")[1].strip()


def _record_rows(data: Path) -> list[dict]:
    return _csv(_oracle(data, "records.csv"))


@pytest.mark.parametrize("data", ALL_FILES, ids=lambda p: p.stem)
def test_samples_equal_perf_dump_records(data, tmp_path_factory):
    """Every SAMPLE record of perf's dump (file order, with offsets) is one of our rows
    with the same fields; and our rows are in time order, ties in file order."""
    tr, t = _ingest(data, tmp_path_factory)
    s = t["samples"]
    recs = [r for r in _record_rows(data) if r["type"] == "9"]
    assert len(s) == len(recs)
    # file order of our rows: (file_offset, position) -- compressed records share offsets
    import numpy as np

    times = s["time_ns"].to_numpy()
    assert (np.diff(times) >= 0).all()
    # stable: within equal times, file order
    key = list(zip(s["time_ns"], s["file_offset"]))
    for a, b in zip(key, key[1:]):
        if a[0] == b[0]:
            assert a[1] <= b[1]
    ours = s.sort_values(["file_offset"], kind="stable")
    # compressed records: many records share the container offset -> order by time there
    ours = sorted(
        (
            (
                int(r.file_offset),
                int(r.time_ns),
                int(r.addr) if _val(r.addr) is not None else None,
                int(r.ip),
                _val(r.pid),
                _val(r.tid),
                _val(r.data_src),
                _val(r.weight),
                _val(r.phys_addr),
                _val(r.period),
                _val(r.cpu),
                tuple(int(x) for x in r.callchain) if r.callchain is not None else None,
            )
            for r in ours.itertuples()
        )
    )
    theirs = []
    for r in recs:
        cpu = _int(r["cpu"])
        if not r["pid"]:
            # perf's dump printed this sample only in its one-line form
            m = re.match(
                r"\(IP, 0x[0-9a-f]+\): (-?\d+)/(-?\d+): (0x[0-9a-f]+) period: (\d+) "
                r"addr: (0x[0-9a-f]+|0)",
                r["extra"],
            )
            assert m, r["extra"]
            r = dict(
                r, pid=m.group(1), tid=m.group(2), ip=m.group(3), period=m.group(4), addr=m.group(5)
            )
        theirs.append(
            (
                _hex(r["file_offset"]) if r["file_offset"] != "0" else 0,
                int(r["time"]),
                _hex(r["addr"]),
                _hex(r["ip"]),
                _int(r["pid"]),
                _int(r["tid"]),
                _hex(r["data_src"]),
                _int(r["weight"]),
                _hex(r["phys_addr"]),
                _int(r["period"]),
                cpu,
                tuple(int(x, 16) for x in r["callchain"].split(";")) if r["callchain"] else None,
            )
        )
    theirs.sort()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        off, time, addr, ip, pid, tid, dsrc, w, phys, period, cpu, cc = b
        if cc is not None:
            assert a[11] == cc  # raw chain, context markers included
        assert a[0] == off and a[1] == time and a[3] == ip and a[4] == pid and a[5] == tid
        # the one-line form prints "addr: 0" for events without ADDR (ours: null)
        assert a[2] == addr or (a[2] is None and addr == 0)
        if dsrc is not None:
            assert a[6] == dsrc
        if w is not None:
            assert a[7] == w
        if phys is not None:
            assert a[8] == phys
        assert a[9] == period
        if cpu is not None and cpu != 4294967295:
            assert a[10] == cpu


_MMAP_RE = re.compile(
    r"^(-?\d+)/(-?\d+): \[(0x[0-9a-f]+|0)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0)"
    r"(?: ([0-9a-f]+):([0-9a-f]+) (\d+) (\d+))?\]: (\S+) (.*)$"
)


@pytest.mark.parametrize("data", ALL_FILES, ids=lambda p: p.stem)
def test_sideband_equals_perf_dump(data, tmp_path_factory):
    """MMAP/MMAP2, COMM, FORK, EXIT rows against perf's one-line decodings."""
    _, t = _ingest(data, tmp_path_factory)
    recs = _record_rows(data)
    mm = t["mmaps"]
    want = []
    for r in recs:
        if r["type"] not in ("1", "10"):
            continue
        m = _MMAP_RE.match(r["extra"])
        assert m, r["extra"]
        pid, tid, start, ln, pgoff, maj, mn, ino, gen, prot, fname = m.groups()
        want.append(
            (
                int(r["time"]),
                int(pid),
                int(tid),
                int(start, 16),
                int(ln, 16),
                int(pgoff, 16),
                None if maj is None else int(maj, 16),
                None if mn is None else int(mn, 16),
                None if ino is None else int(ino),
                None if gen is None else int(gen),
                fname,
                int(r["type"]),
            )
        )
    got = [
        (
            _val(r.time_ns),
            _val(r.pid),
            _val(r.tid),
            int(r.start),
            int(r.length),
            int(r.pgoff),
            _val(r.maj),
            _val(r.min),
            _val(r.ino),
            _val(r.ino_generation),
            r.filename,
            int(r.record_type),
        )
        for r in mm.itertuples()
    ]
    # perf prints the kernel map's name with its symbol appended ("[kernel.kallsyms]_text")
    got = [
        g if not g[10].startswith("[kernel.kallsyms]") else g[:10] + ("K",) + g[11:] for g in got
    ]
    want = [
        w if not w[10].startswith("[kernel.kallsyms]") else w[:10] + ("K",) + w[11:] for w in want
    ]
    assert sorted(got, key=str) == sorted(want, key=str)
    # time order, stable
    times = [g[0] for g in got]
    assert times == sorted(times)
    # data mappings: misc MMAP_DATA
    nd = sum(1 for r in recs if r["type"] in ("1", "10") and int(r["misc"], 16) & 0x2000)
    assert int(mm["data"].sum()) == nd

    tk = t["tasks"]
    want_t = []
    for r in recs:
        if r["type"] == "3":
            m = re.match(r"^(exec)?: (.*):(-?\d+)/(-?\d+)$", r["extra"])
            assert m, r["extra"]
            want_t.append(
                (
                    "COMM",
                    int(r["time"]),
                    int(m.group(3)),
                    int(m.group(4)),
                    None,
                    None,
                    m.group(2),
                    bool(m.group(1)),
                )
            )
        elif r["type"] in ("4", "7"):
            m = re.match(r"^\((-?\d+):(-?\d+)\):\((-?\d+):(-?\d+)\)$", r["extra"])
            assert m, r["extra"]
            pid, tid, ppid, ptid = map(int, m.groups())
            want_t.append(
                (
                    "EXIT" if r["type"] == "4" else "FORK",
                    int(r["time"]),
                    pid,
                    tid,
                    ppid,
                    ptid,
                    None,
                    None,
                )
            )
    got_t = [
        (
            str(r.kind),
            _val(r.time_ns),
            _val(r.pid),
            _val(r.tid),
            _val(r.ppid),
            _val(r.ptid),
            r.comm if isinstance(r.comm, str) else None,
            None if r.exec is None or (isinstance(r.exec, float)) else bool(r.exec),
        )
        for r in tk.itertuples()
    ]
    assert sorted(got_t, key=str) == sorted(want_t, key=str)


@pytest.mark.parametrize("data", ALL_FILES, ids=lambda p: p.stem)
def test_record_counts_and_events(data, tmp_path_factory):
    tr, t = _ingest(data, tmp_path_factory)
    recs = _record_rows(data)
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["type_name"]] = counts.get(r["type_name"], 0) + 1
    rc = tr.meta["record_counts"]
    # perf's dump names pipe header records ATTR / FEATURE; it never lists COMPRESSED
    alias = {"ATTR": "HEADER_ATTR", "FEATURE": "HEADER_FEATURE"}
    mine = {k: v for k, v in rc.items() if k not in ("COMPRESSED",)}
    assert mine == {alias.get(k, k): v for k, v in counts.items()}
    ev = t["events"]
    assert int(ev["nr_samples"].sum()) == len(t["samples"])
    per = t["samples"].groupby("event", observed=True).size()
    for row in ev.itertuples():
        assert per.get(row.name, 0) == row.nr_samples


def _header_fields(data: Path) -> dict:
    out: dict = {}
    events = []
    for line in _text(_oracle(data, "header.txt")).splitlines():
        m = re.match(r"^# ([a-z][a-z ]*?)\s*: (.*)$", line)
        if not m:
            continue
        k, v = m.group(1), m.group(2).strip()
        if k == "event":
            events.append(v)
        else:
            out.setdefault(k, v)
    out["events"] = events
    return out


@pytest.mark.parametrize("data", ALL_FILES, ids=lambda p: p.stem)
def test_header_features_equal_perf_header(data, tmp_path_factory):
    tr, t = _ingest(data, tmp_path_factory)
    h = _header_fields(data)
    m = tr.meta
    assert m["hostname"] == h["hostname"]
    assert m["os_release"] == h["os release"]
    assert m["perf_version"] == h["perf version"]
    assert m["arch"] == h["arch"]
    assert m["nrcpus"]["online"] == int(h["nrcpus online"])
    assert m["nrcpus"]["avail"] == int(h["nrcpus avail"])
    assert m["cpu_desc"] == h["cpudesc"]
    assert m["cpuid"] == h["cpuid"]
    assert f"{m['total_mem_kb']} kB" == h["total memory"]
    assert " ".join(m["cmdline"]) == h["cmdline"].strip()
    assert m["layout"] == ("pipe" if "pipe" in data.stem else "file")
    evs = t["events"]
    assert len(evs) == len(h["events"])
    for row, line in zip(evs.itertuples(), h["events"]):
        name = re.match(r"name = ([^,]+),", line).group(1)
        assert row.name == name
        ids = re.search(r"id = \{ ([0-9, ]+) \}", line)
        if ids:
            assert [int(x) for x in row.ids] == [int(x) for x in ids.group(1).split(",")]
        st = re.search(r"sample_type = ([A-Z_|]+)", line).group(1).split("|")
        bits = {
            "IP": 0,
            "TID": 1,
            "TIME": 2,
            "ADDR": 3,
            "READ": 4,
            "CALLCHAIN": 5,
            "ID": 6,
            "CPU": 7,
            "PERIOD": 8,
            "STREAM_ID": 9,
            "RAW": 10,
            "BRANCH_STACK": 11,
            "REGS_USER": 12,
            "STACK_USER": 13,
            "WEIGHT": 14,
            "DATA_SRC": 15,
            "IDENTIFIER": 16,
            "TRANSACTION": 17,
            "REGS_INTR": 18,
            "PHYS_ADDR": 19,
            "AUX": 20,
            "CGROUP": 21,
            "DATA_PAGE_SIZE": 22,
            "CODE_PAGE_SIZE": 23,
            "WEIGHT_STRUCT": 24,
        }
        assert int(row.sample_type) == sum(1 << bits[b] for b in st)
        sz = re.search(r"size = (\d+)", line)
        if sz:
            assert row.attr_size == int(sz.group(1))
    if "time of first sample" in h:
        first = float(h["time of first sample"])
        assert abs(m["sample_time"]["first_ns"] / 1e9 - first) < 2e-6


@pytest.mark.parametrize("data", UBENCH_FILES, ids=lambda p: p.stem)
def test_pebs_data_src_and_weight_equal_perf_script(data, tmp_path_factory):
    """Real Intel PEBS loads: every sample's address, data_src decoding (each part as
    perf 6.1 prints it) and load latency equal perf script's line for it."""
    _, t = _ingest(data, tmp_path_factory)
    s = t["samples"]
    lines = [
        ln
        for ln in _text(_oracle(data, "script.txt")).splitlines()
        if "PERF_RECORD" not in ln and "|OP " in ln
    ]
    assert len(lines) == len(s)
    seen = set()
    for ln, o in zip(lines, s.itertuples()):
        m = re.search(
            r"(\d+)/(\d+)\s+(\d+)\.(\d{9}): (\S+):\s+([0-9a-f]+)\s+([0-9a-f]+) "
            r"\|OP ([^|]*)\|LVL ([^|]*)\|SNP ([^|]*)\|TLB ([^|]*)\|LCK ([^|]*)"
            r"\|BLK (.*?)\s{2,}(\d+)\s+([0-9a-f]+) ",
            ln,
        )
        assert m, ln
        (pid, tid, sec, ns, ev, addr, dsrc, op, lvl, snp, tlb, lck, blk, w, ip) = m.groups()
        assert (o.pid, o.tid, o.time_ns) == (int(pid), int(tid), int(sec) * 10**9 + int(ns))
        assert o.event == ev and o.addr == int(addr, 16) and o.ip == int(ip, 16)
        assert o.data_src == int(dsrc, 16)
        assert (o.mem_op, o.mem_level, o.mem_snoop, o.mem_tlb, o.mem_lock, o.mem_blk) == (
            op,
            lvl,
            snp,
            tlb,
            lck,
            blk.strip(),
        )
        assert o.weight == int(w)
        assert o.misc & 0x4000  # EXACT_IP (PEBS)
        assert o.cpumode == (1 if o.ip >= 0xFFFF800000000000 else 2)
        seen.add(o.data_src)
    assert seen


def test_open_perf_data_api():
    """The API other modules build on: events, meta, tracing_data, sample batches."""
    p = need_corpus("perf", "18_tracepoint_mmap.data")
    rd = open_perf_data(p)
    names = [e["name"] for e in rd.events]
    assert names == ["syscalls:sys_enter_mmap", "syscalls:sys_exit_mmap", "page-faults"]
    assert all(
        {"event_id", "name", "type", "config", "sample_type", "ids"} <= set(e) for e in rd.events
    )
    assert rd.events[0]["type"] == 2
    assert rd.tracing_data is not None and rd.tracing_data[:10] == b"\x17\x08\x44tracing"
    batches = list(rd.iter_sample_batches())
    from tracedamon.schema import SAMPLES

    assert all(b.schema.equals(SAMPLES, check_metadata=False) for b in batches)
    t = pa.Table.from_batches(batches)
    assert t.num_rows == len(_csv(_oracle(p, "samples.csv")))  # as perf delivers them
    raw = t.column("raw").to_pylist()
    ev = t.column("event").to_pylist()
    assert all((r is None) == (e == "page-faults") for r, e in zip(raw, ev))
    # an iteration can be repeated and gives the same rows
    t2 = pa.Table.from_batches(list(rd.iter_sample_batches()))
    assert t2.equals(t)


def test_pipe_tracing_data_and_names():
    p = need_corpus("perf", "12_pipe.data")
    rd = open_perf_data(p)
    assert rd.layout == "pipe"
    assert [e["name"] for e in rd.events] == ["page-faults"]  # from EVENT_UPDATE
    # the version perf report --header-only printed for this recording
    assert rd.meta["hostname"] and rd.meta["perf_version"] == _header_fields(p)["perf version"]


def test_damon_tracepoint_raw_payloads(tmp_path_factory):
    """RAW payloads of damon:damon_aggregated equal perf's raw_buf for every sample."""
    p = need_corpus("perf", "24_damon_tracepoint.data")
    rd = open_perf_data(p)
    t = pa.Table.from_batches(list(rd.iter_sample_batches()))
    rows = _csv(_oracle(p, "samples.csv"))
    assert t.num_rows == len(rows)
    raws = t.column("raw").to_pylist()
    for r, raw in zip(rows, raws):
        assert raw == bytes.fromhex(json.loads(r["tp_fields"])["raw_buf"])


def test_sideband_same_when_converted_in_small_batches(tmp_path, monkeypatch):
    """Side-band rows are converted to Arrow in batches (bounded memory): the tables do
    not depend on the batch size."""
    p = need_corpus("perf", "24_damon_tracepoint.data")
    from tracedamon.ingest import perf_data as PD

    outs = []
    for batch in (PD._PassState.SIDEBAND_BATCH, 7):
        monkeypatch.setattr(PD._PassState, "SIDEBAND_BATCH", batch)
        out = tmp_path / f"b{batch}.td"
        with TraceDirWriter(out) as w:
            ingest_into(p, w)
        outs.append(open_trace(out))
    for name in ("mmaps", "tasks", "lost"):
        assert outs[0].table(name).equals(outs[1].table(name)), name
    # perf's dump of the same file: its MMAP/MMAP2 and its COMM/EXIT/FORK records
    types = [r["type"] for r in _record_rows(p)]
    assert outs[0].num_rows("mmaps") == sum(t in ("1", "10") for t in types) > 0
    assert outs[0].num_rows("tasks") == sum(t in ("3", "4", "7") for t in types) > 0
