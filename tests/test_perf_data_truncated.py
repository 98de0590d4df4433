"""Truncated recordings: `perf record` killed with SIGKILL (data size 0 in the header, no
feature sections), record streams cut inside a record, with and without -z, in files,
pipe streams and --threads directories, plain and gzipped.

Recordings are made here by the installed perf, of a running program, and killed.
Oracle: `perf script` on the same records. perf 6.1 itself delivers no sample from a
file whose header still says data size 0 (it warns "Was the 'perf record' command
properly terminated?" and stops), so for regular files it reads a copy of the file
whose header is completed the way perf record completes it at exit: data size = the
bytes of complete records, and no feature section (for -z only the COMPRESSED feature
perf needs to decompress). Pipe streams need no repair: perf reads a cut stream up to
its last complete record ("unexpected end of event stream").
"""

from __future__ import annotations

import gzip
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PERF, ROOT, missing, requires_perf
from tracedamon.errors import InputWarning, TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.ingest.perf.header import FEATURE_NAMES
from tracedamon.store.trace import open_trace

pytestmark = [requires_perf, pytest.mark.perf]

#: the recorded program: maps 4 MiB, writes every page (1024 page faults), unmaps, again
WORKLOAD = (
    "import mmap, time\nn = 1 << 22\nz = bytes(n)\nwhile True:\n"
    "    m = mmap.mmap(-1, n)\n    m.write(z)\n    m.close()\n    time.sleep(0.0005)\n"
)
FIELDS = "pid,tid,time,event,ip,addr,period"


def _poll(predicate, *, tries: int, step: float) -> bool:
    """Wait for ``predicate`` to hold, checking up to ``tries`` times ``step`` seconds
    apart (a bounded wait for the other process, not a measurement)."""
    for _ in range(tries):
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _size(p: Path) -> int:
    if p.is_dir():
        return sum(q.stat().st_size for q in p.glob("data.*"))
    return p.stat().st_size if p.exists() else 0


def record_and_kill(outs: dict[str, tuple], pipe_dir: Path | None = None) -> dict[str, Path]:
    """`perf record -e page-faults -d` of one running program, one perf per entry of
    ``outs`` (name -> (path, pipe?, extra options)), all at once; each is killed with
    SIGKILL once it has written some samples (perf writes whenever half its ring
    buffer is full)."""
    work = subprocess.Popen([sys.executable, "-c", WORKLOAD])
    recs, sinks = {}, []
    try:
        for name, (out, pipe, opts) in outs.items():
            cmd = [
                PERF,
                "record",
                "-N",
                "-q",
                "-m",
                "16",
                "-e",
                "page-faults",
                "-c",
                "16",
                "-d",
                *opts,
                "-p",
                str(work.pid),
                "-o",
                "-" if pipe else str(out),
            ]
            sink = open(out, "wb") if pipe else subprocess.DEVNULL
            if pipe:
                sinks.append(sink)
            recs[name] = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE)
        live = dict(recs)

        def step():
            for name, rec in list(live.items()):
                if rec.poll() is not None:
                    missing(f"perf record failed here: {rec.stderr.read().decode()[-300:]}")
                if _size(outs[name][0]) > 40 << 10:
                    rec.send_signal(signal.SIGKILL)
                    rec.wait()
                    del live[name]
            return not live

        done = _poll(step, tries=1000, step=0.02)
    finally:
        for rec in recs.values():
            if rec.poll() is None:
                rec.kill()
                rec.wait()
        for sink in sinks:
            sink.close()
        work.kill()
        work.wait()
    assert done, "perf record wrote no samples"
    return {name: out for name, (out, _, _) in outs.items()}


# ---------------------------------------------------------------------------- helpers
def walk(blob: bytes, start: int) -> tuple[list[tuple[int, int, int]], int]:
    """(offset, type, size) of every complete record from ``start`` (test-side walk),
    and the offset where the complete records end."""
    recs, p = [], start
    while p + 8 <= len(blob):
        typ, _misc, size = struct.unpack_from("<IHH", blob, p)
        assert size >= 8
        if p + size > len(blob):
            break
        recs.append((p, typ, size))
        p += size
    return recs, p


def header(blob: bytes) -> dict:
    d_off, d_size = struct.unpack_from("<QQ", blob, 40)
    bitmap = int.from_bytes(blob[72:104], "little")
    return {
        "data_offset": d_off,
        "data_size": d_size,
        "features": [FEATURE_NAMES[b] for b in range(256) if bitmap >> b & 1],
    }


def completed(blob: bytes, end: int, compressed: bool) -> bytes:
    """The file with its header completed as perf record completes it at exit: data
    size = the complete records up to ``end``, no feature sections but, with -z, the
    COMPRESSED one (version 1, zstd, level 1, ratio 1, 1 MiB decompression buffer)."""
    d_off = header(blob)["data_offset"]
    b = bytearray(blob[:end])
    struct.pack_into("<Q", b, 48, end - d_off)
    b[72:104] = bytes(32)
    if compressed:
        b[72 + 27 // 8] |= 1 << (27 % 8)
        payload = struct.pack("<5I", 1, 1, 1, 1, 1 << 20)
        b += struct.pack("<QQ", len(b) + 16, len(payload)) + payload
    return bytes(b)


def perf_script_rows(path: Path) -> tuple[list[tuple], str]:
    r = subprocess.run(
        [PERF, "script", "-i", str(path), "-F", FIELDS, "--ns"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = []
    for ln in r.stdout.splitlines():
        m = re.match(
            r"\s*(\d+)/(\d+)\s+(\d+)\.(\d{9}):\s+(\d+)\s+(\S+):\s+([0-9a-f]+)\s+"
            r"([0-9a-f]+)",
            ln,
        )
        assert m, ln
        pid, tid, s, ns, period, ev, addr, ip = m.groups()
        rows.append(
            (
                int(pid),
                int(tid),
                int(s) * 10**9 + int(ns),
                ev,
                int(addr, 16),
                int(ip, 16),
                int(period),
            )
        )
    return rows, r.stderr


def our_rows(td: Path) -> list[tuple]:
    t = open_trace(td).table("samples").to_pylist()
    return [
        (r["pid"], r["tid"], r["time_ns"], r["event"], r["addr"], r["ip"], r["period"]) for r in t
    ]


def ingest_warned(src: Path, out: Path, name: str | None = None, **opts) -> dict:
    """Ingest ``src``; exactly one InputWarning names it; returns meta.json."""
    with pytest.warns(InputWarning) as rec:
        ingest(src, out, force=True, **opts)
    msgs = [str(w.message) for w in rec if issubclass(w.category, InputWarning)]
    assert len(msgs) == 1 and (name or str(src)) in msgs[0], msgs
    assert "truncated recording" in msgs[0]
    return open_trace(out).meta


def inner_tail(blob: bytes, recs) -> bytes:
    """What is left of the last record in the decompressed payloads of the complete
    COMPRESSED records ``recs`` (test-side zstd walk, perf 6.1's COMPRESSED: payload =
    size - 8 bytes)."""
    import zstandard

    d = zstandard.ZstdDecompressor().decompressobj()
    data = b"".join(d.decompress(blob[o + 8 : o + s]) for o, t, s in recs if t == 81)
    _, end = walk(data, 0)
    return data[end:]


# ---------------------------------------------------------------------------- recordings
@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """name -> a perf.data of a program, perf record killed with SIGKILL."""
    d = tmp_path_factory.mktemp("killed")
    return record_and_kill(
        {
            "plain": (d / "plain.data", False, ()),
            "zstd": (d / "zstd.data", False, ("-z",)),
            "pipe": (d / "pipe.data", True, ()),
            "pipe-zstd": (d / "pipez.data", True, ("-z",)),
            "threads": (d / "threads.data", False, ("--threads",)),
        }
    )


@pytest.mark.parametrize("kind", ["plain", "zstd"])
def test_killed_recording_is_read_as_perf_reads_its_records(killed, kind, tmp_path):
    src = killed[kind]
    blob = src.read_bytes()
    h = header(blob)
    assert h["data_size"] == 0 and h["features"]  # what SIGKILL leaves
    _, perf_err = perf_script_rows(src)
    assert "data size field is 0" in perf_err  # perf's own warning
    recs, end = walk(blob, h["data_offset"])
    meta = ingest_warned(src, tmp_path / "k.td")
    done = tmp_path / "completed.data"
    done.write_bytes(completed(blob, end, kind == "zstd"))
    want, _ = perf_script_rows(done)
    got = our_rows(tmp_path / "k.td")
    assert len(want) > 100 and got == want
    t = meta["truncation"]
    assert meta["truncated"] is True and meta["unfinished_recording"] is True
    assert t["unfinished"] is True and t["features_lost"] == h["features"]
    assert t["data_bytes_kept"] == end - h["data_offset"]
    assert t["partial_records"] == ([] if end == len(blob) else [partial(blob, end, src)])
    tail = inner_tail(blob, recs) if kind == "zstd" else b""
    assert [c["bytes"] for c in t["compressed_tails"]] == ([len(tail)] if tail else [])


def partial(blob: bytes, end: int, src: Path) -> dict:
    """The record cut by the end of ``blob`` at offset ``end``, as meta.json names it:
    its type when 4 bytes of it are there, its size when its 8-byte header is."""
    have = len(blob) - end
    typ = struct.unpack_from("<I", blob, end)[0] if have >= 4 else None
    names = {9: "SAMPLE", 81: "COMPRESSED", 10: "MMAP2", 68: "FINISHED_ROUND"}
    return {
        "file": src.name,
        "offset": end,
        "bytes": have,
        "type": names[typ] if typ is not None else None,
        "size": struct.unpack_from("<H", blob, end + 6)[0] if have >= 8 else None,
    }


def _cuts(blob: bytes, start: int, kind: str):
    """Cut points in the second half of the records: inside a record, inside a record
    header (5 bytes into it: its type is there, its size is not), at a record
    boundary."""
    recs, _ = walk(blob, start)
    big = [r for r in recs[len(recs) // 2 :] if r[2] > 16 and r[1] == (81 if "zstd" in kind else 9)]
    o, t, s = big[len(big) // 2]
    return {"mid-record": o + s // 2, "mid-header": o + 5, "boundary": o}


@pytest.mark.parametrize("where", ["mid-record", "mid-header", "boundary"])
@pytest.mark.parametrize("kind", ["plain", "zstd"])
def test_killed_recording_cut_inside_the_data(killed, kind, where, tmp_path):
    blob = killed[kind].read_bytes()
    h = header(blob)
    cut = _cuts(blob, h["data_offset"], kind)[where]
    src = tmp_path / f"cut-{kind}.data"
    src.write_bytes(blob[:cut])
    recs, end = walk(blob[:cut], h["data_offset"])
    meta = ingest_warned(src, tmp_path / "c.td")
    done = tmp_path / "completed.data"
    done.write_bytes(completed(blob, end, kind == "zstd"))
    want, _ = perf_script_rows(done)
    assert our_rows(tmp_path / "c.td") == want and len(want) > 50
    t = meta["truncation"]
    assert t["data_bytes_kept"] == end - h["data_offset"]
    if where == "boundary":
        assert end == cut and t["partial_records"] == []
    else:
        p = partial(blob[:cut], end, src)
        assert p["type"] == ("COMPRESSED" if kind == "zstd" else "SAMPLE")
        assert (p["size"] is None) == (where == "mid-header")
        assert t["partial_records"] == [p]
    tail = inner_tail(blob[:cut], recs) if kind == "zstd" else b""
    assert [c["bytes"] for c in t["compressed_tails"]] == ([len(tail)] if tail else [])


@pytest.mark.parametrize("kind", ["pipe", "pipe-zstd"])
def test_killed_pipe_stream_cut_inside_a_record_equals_perf(killed, kind, tmp_path):
    """perf itself reads a cut pipe stream up to its last complete record."""
    blob = killed[kind].read_bytes()
    cut = _cuts(blob, 16, kind)["mid-record"]
    src = tmp_path / "cut-pipe.data"
    src.write_bytes(blob[:cut])
    want, err = perf_script_rows(src)
    assert "unexpected end of event stream" in err
    meta = ingest_warned(src, tmp_path / "p.td")
    assert our_rows(tmp_path / "p.td") == want and len(want) > 50
    _, end = walk(blob[:cut], 16)
    assert meta["truncation"]["partial_records"][0]["offset"] == end
    assert meta["truncation"]["data_bytes_kept"] == end - 16
    assert meta["truncation"]["unfinished"] is False


def test_killed_threads_directory(killed, tmp_path):
    """perf record --threads killed: `data` says data size 0 and lost its DIR_FORMAT
    feature; each data.N runs to its end, the last record of one cut in the middle."""
    d = tmp_path / "thr.data"
    shutil.copytree(killed["threads"], d)
    streams = sorted(q for q in d.glob("data.*") if q.stat().st_size)
    assert streams and header((d / "data").read_bytes())["data_size"] == 0
    n = streams[-1]
    blob = n.read_bytes()
    recs, end = walk(blob, 0)
    o, t, s = [r for r in recs if r[1] == 9][len(recs) // 2]
    n.write_bytes(blob[: o + s // 2])
    meta = ingest_warned(d, tmp_path / "t.td")
    assert meta["layout"] == "directory"
    assert meta["truncation"]["partial_records"] == [
        {"file": n.name, "offset": o, "bytes": s // 2, "type": "SAMPLE", "size": s}
    ]
    # perf: the directory with `data` completed and the cut stream ending at its last
    # complete record
    ref = tmp_path / "ref.data"
    shutil.copytree(d, ref)
    data = (d / "data").read_bytes()
    _, dend = walk(data, header(data)["data_offset"])
    done = bytearray(completed(data, dend, False))
    # perf reads the data.N files of a directory only with DIR_FORMAT (bit 24) = 1
    done[72 + 24 // 8] |= 1 << (24 % 8)
    payload = struct.pack("<Q", 1)
    done += struct.pack("<QQ", len(done) + 16, len(payload)) + payload
    (ref / "data").write_bytes(bytes(done))
    (ref / n.name).write_bytes(blob[:o])
    want, _ = perf_script_rows(ref)
    got = our_rows(tmp_path / "t.td")
    assert len(want) > 50 and sorted(got) == sorted(want)
    # naming the directory's 'data' file reads the whole directory too
    meta2 = ingest_warned(d / "data", tmp_path / "t2.td", name=str(d / "data"))
    assert meta2["layout"] == "directory" and open_trace(tmp_path / "t2.td").num_rows(
        "samples"
    ) == len(got)


# ---------------------------------------------------------------------------- gzip
@pytest.mark.parametrize("kind", ["plain", "zstd"])
def test_gzipped_killed_recording_behaves_like_the_plain_one(killed, kind, tmp_path):
    src = killed[kind]
    blob = src.read_bytes()
    cut = _cuts(blob, header(blob)["data_offset"], kind)["mid-record"]
    plain = tmp_path / "k.data"
    plain.write_bytes(blob[:cut])
    gz = tmp_path / "k.data.gz"
    gz.write_bytes(gzip.compress(blob[:cut]))
    m_plain = ingest_warned(plain, tmp_path / "p.td")
    m_gz = ingest_warned(gz, tmp_path / "g.td", name=f"{gz} (decompressed)")
    assert our_rows(tmp_path / "g.td") == our_rows(tmp_path / "p.td")
    a, b = m_plain["truncation"], m_gz["truncation"]
    for k in (
        "unfinished",
        "features_lost",
        "partial_records",
        "compressed_tails",
        "data_bytes_kept",
        "description",
    ):
        assert a[k] == b[k], k
    assert b["gzip_cut"] is None


def test_cut_gzip_stream_reads_like_the_plain_file_cut_at_the_same_place(killed, tmp_path):
    """A .gz whose own stream is cut short (a copy cut short): what it decompresses to
    is read as the plain file cut at that place, and the gzip cut is named."""
    import zlib

    blob = killed["plain"].read_bytes()
    gzb = gzip.compress(blob)
    gz = tmp_path / "k.data.gz"
    gz.write_bytes(gzb[: len(gzb) * 2 // 3])
    out = zlib.decompressobj(wbits=31).decompress(gzb[: len(gzb) * 2 // 3])
    plain = tmp_path / "k.data"
    plain.write_bytes(out)
    m_plain = ingest_warned(plain, tmp_path / "p.td")
    m_gz = ingest_warned(gz, tmp_path / "g.td", name=f"{gz} (decompressed)")
    assert our_rows(tmp_path / "g.td") == our_rows(tmp_path / "p.td")
    assert m_gz["truncation"]["gzip_cut"] == {
        "gzip_bytes": len(gzb) * 2 // 3,
        "bytes_out": len(out),
    }
    assert m_gz["truncation"]["partial_records"] == m_plain["truncation"]["partial_records"]
    with pytest.raises(TraceFormatError, match="gzip stream ends early"):
        ingest(gz, tmp_path / "s.td", strict=True)
    assert not (tmp_path / "s.td").exists()


# ---------------------------------------------------------------------------- strict, CLI
def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tracedamon", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("kind", ["plain", "zstd", "pipe"])
def test_strict_refuses_and_writes_nothing(killed, kind, tmp_path):
    blob = killed[kind].read_bytes()
    start = 16 if kind == "pipe" else header(blob)["data_offset"]
    cut = _cuts(blob, start, kind)["mid-record"]
    src = tmp_path / "cut.data"
    src.write_bytes(blob[:cut])
    with pytest.raises(TraceFormatError) as e:
        ingest(src, tmp_path / "s.td", strict=True)
    if kind == "pipe":
        _, end = walk(blob[:cut], 16)
        assert e.value.offset == end and "truncated record" in e.value.problem
    else:
        assert e.value.offset == 48 and "data size 0" in e.value.problem
    assert sorted(q.name for q in tmp_path.iterdir()) == ["cut.data"]


def test_cli_warns_in_one_line_info_shows_it_strict_refuses_in_one_line(killed, tmp_path):
    from tracedamon.cli.info import describe

    src = killed["plain"]
    r = _cli("ingest", src, "-o", tmp_path / "k.td")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"tracedamon: warning: {src}: truncated recording: perf record did not finish"
    )
    assert "lost:" in lines[0] and "samples" in lines[0]
    assert "truncated recording: perf record did not finish" in r.stdout  # the summary
    assert "truncated recording: perf record did not finish" in describe(tmp_path / "k.td")
    r = _cli("ingest", src, "-o", tmp_path / "s.td", "--strict")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and "byte offset 48 " in lines[0]
    assert not (tmp_path / "s.td").exists()


def test_killed_damon_recording_says_why_its_events_are_missing(tmp_path):
    """A DAMON tracepoint recording killed before perf wrote its tracing data: the
    samples are kept (unnamed), and the damon reader says what is missing."""
    from conftest import need_corpus

    src = need_corpus("damon-paddr-run1", "paddr_run1", "damo_record_perf_data.data")
    blob = bytearray(src.read_bytes())
    h = header(bytes(blob))
    struct.pack_into("<Q", blob, 48, 0)
    k = tmp_path / "damon-killed.data"
    k.write_bytes(bytes(blob[: h["data_offset"] + h["data_size"] // 2]))
    meta = ingest_warned(k, tmp_path / "d.td")
    assert "tracepoint formats" in meta["truncation"]["description"]
    assert open_trace(tmp_path / "d.td").num_rows("samples") > 0
    with pytest.raises(TraceFormatError, match="did not finish"):
        ingest(k, tmp_path / "d2.td", format="damon")
    assert not (tmp_path / "d2.td").exists()


def test_via_perf_says_why_perf_reads_nothing_and_marks_a_cut_stream(killed, tmp_path):
    """--via-perf: perf script delivers nothing from a recording whose header says
    data size 0 (one line saying so and what to do); a pipe stream perf reads up to a
    cut is marked truncated, with perf's own reason."""
    from tracedamon.errors import InputError

    with pytest.raises(InputError) as e:
        ingest(killed["plain"], tmp_path / "v.td", via_perf=True)
    assert "\n" not in str(e.value) and "without --via-perf" in e.value.cli_message
    blob = killed["pipe"].read_bytes()
    src = tmp_path / "cut-pipe.data"
    src.write_bytes(blob[: _cuts(blob, 16, "pipe")["mid-record"]])
    meta = ingest_warned(src, tmp_path / "p.td", via_perf=True)
    assert meta["truncated"] is True
    assert "unexpected end of event stream" in meta["truncation"]["description"]
    want, _ = perf_script_rows(src)
    assert len(our_rows(tmp_path / "p.td")) == len(want)
    with pytest.raises(TraceFormatError, match="ends inside a record"):
        ingest(src, tmp_path / "s.td", via_perf=True, strict=True)
