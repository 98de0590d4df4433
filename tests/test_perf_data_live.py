"""The native reader on live recordings of this machine's perf against ``perf script``:
``--threads`` directories, zstd, pipe mode (with a tracepoint's names and tracing data),
clock features, and every field perf prints for software events."""

from __future__ import annotations

import re
import subprocess

import pyarrow as pa
import pytest

from tracedamon.ingest.perf_data import open_perf_data

from conftest import PERF, missing, requires_perf
from helpers.perf_synth import _ingest


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
