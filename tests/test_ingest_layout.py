"""The ingest layout: the public function lives in the pipeline, readers report
progress through a callback and draw nothing, magic sniffing in one place."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from tracedamon.errors import InputError

SAMPLES = ROOT / "sample_traces"

NAME_PROBE = r"""
import inspect, json, sys
import tracedamon
import tracedamon.ingest.detect                      # a reader module, plain import
from tracedamon.ingest import perf_data              # and from-import
from tracedamon.ingest.pagemap import parse_maps     # and a name of one
print(json.dumps([inspect.isfunction(tracedamon.ingest),
                  getattr(tracedamon.ingest, "__module__", None)]), flush=True)
import tracedamon.pipeline.ingest as P
from tracedamon import ingest
from tracedamon.ingest import ingest as old_path
print(json.dumps([tracedamon.ingest is P.ingest, ingest is P.ingest, old_path is P.ingest,
                  sys.modules["tracedamon.ingest.perf_data"] is perf_data]))
"""


def test_public_ingest_is_the_pipeline_function_whatever_was_imported():
    """``tracedamon.ingest`` is the function (not the readers' package, made callable)
    after reader modules are imported in every style; the old path still gives it."""
    r = subprocess.run(
        [sys.executable, "-c", NAME_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    lines = r.stdout.strip().splitlines()
    assert lines, r.stderr
    assert json.loads(lines[0]) == [True, "tracedamon.pipeline.ingest"]
    assert r.returncode == 0, r.stderr
    assert json.loads(lines[1]) == [True, True, True, True]


PROGRESS_PROBE = r"""
import json, sys
from tracedamon import ingest
calls = []
ingest(sys.argv[1], sys.argv[2], progress=lambda d, t, w: calls.append((d, t, w)),
       **json.loads(sys.argv[3]))
print(json.dumps({"calls": calls, "rich": "rich" in sys.modules}))
"""


def _progress_calls(src: Path, out: Path, **opts) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", PROGRESS_PROBE, str(src), str(out), json.dumps(opts)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "name, opts",
    [
        ("hotcold.perf.data", {}),  # native perf.data reader
        ("damon/live_paddr.script.txt.gz", {"format": "damon"}),  # DAMON text (gzip)
    ],
)
def test_readers_report_progress_and_draw_nothing(tmp_path, name, opts):
    """The callback gets (done, total, what) with ``done`` never going back, ending at
    ``total``: the bytes the reader reads (a DAMON text: the file's size on disk; a
    perf.data: its data section, whose size the file header gives at bytes 48..56,
    perf-data-format.md); no bar is drawn (rich is not even imported)."""
    src = SAMPLES / name
    size = src.stat().st_size
    if name.endswith(".perf.data"):
        size = struct.unpack_from("<Q", src.read_bytes(), 48)[0]
    got = _progress_calls(src, tmp_path / "o.td", **opts)
    calls = got["calls"]
    assert calls, "the reader never reported progress"
    done = [c[0] for c in calls]
    assert done == sorted(done)
    assert {c[2] for c in calls} == {src.name}
    assert calls[-1][0] == calls[-1][1] == size
    assert got["rich"] is False


def test_perf_script_text_reports_bytes(tmp_path):
    from tracedamon import ingest
    from tracedamon.ingest.perf_script import RECOMMENDED_FIELDS  # still documented there

    assert "addr" in RECOMMENDED_FIELDS
    src = tmp_path / "s.txt"
    line = "  w 5/5 1.000000000: 1 page-faults:  7fff0000\n"
    src.write_text(line * 50)
    calls = []
    ingest(
        src,
        tmp_path / "o.td",
        format="perf-script",
        fields="comm,pid,tid,time,period,event,addr",
        progress=lambda d, t, w: calls.append((d, t, w)),
    )
    assert calls[-1] == (src.stat().st_size, src.stat().st_size, "s.txt")


def test_head_undoes_gzip_and_names_a_corrupt_stream(tmp_path):
    from tracedamon.ingest.detect import GZIP_MAGIC, head, is_gzip, raw_head

    plain = b"PERFILE2" + bytes(100)
    gz = tmp_path / "a.gz"
    gz.write_bytes(gzip.compress(plain))
    assert is_gzip(gz) and raw_head(gz, 2) == GZIP_MAGIC
    assert head(gz, 8) == b"PERFILE2"
    assert head(gz, 1000) == plain  # no more than there is
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(plain)[:10] + b"\xff" * 64)
    with pytest.raises(InputError, match=r"bad\.gz: gzip stream unreadable"):
        head(bad)
    assert not is_gzip(tmp_path)  # a directory is not a gzip file


def test_record_type_constants_match_the_name_table():
    """The readers test record types by name (perf.layout.R_*); each constant is the
    number the name table (perf's PERF_RECORD_* list) gives that name."""
    from tracedamon.ingest.perf import layout as K
    from tracedamon.ingest.perf.header import RECORD_NAMES

    consts = {k[2:]: v for k, v in vars(K).items() if k.startswith("R_")}
    assert len(consts) >= 20
    for name, num in consts.items():
        assert RECORD_NAMES[num] == name


def test_cursor_errors_name_the_file_and_offset(tmp_path):
    """Every overrun of the one binary parse helper is a TraceFormatError at the file
    offset of the field (``base`` + position), never IndexError or struct.error."""
    from tracedamon.errors import TraceFormatError
    from tracedamon.ingest.binparse import Cursor, unpack

    f = tmp_path / "x.data"
    data = (5).to_bytes(4, "little") + b"abc"  # a string of 5 bytes, 3 there
    c = Cursor(data, f, base=1000, what="feature X")
    with pytest.raises(TraceFormatError) as ei:
        c.string()
    assert ei.value.offset == 1004 and "x.data" in str(ei.value)
    assert "feature X" in str(ei.value)
    c = Cursor(b"\x01\x00\x00\x00\x02", f, base=10)
    assert c.u32() == 1
    with pytest.raises(TraceFormatError) as ei:
        c.u64()
    assert ei.value.offset == 14
    big = Cursor(b"\x00\x00\x00\x07", f, big=True)
    assert big.u32() == 7
    with pytest.raises(TraceFormatError) as ei:
        Cursor(b"abc", f, base=3).cstr()
    assert ei.value.offset == 3 and "unterminated" in str(ei.value)
    with pytest.raises(TraceFormatError) as ei:
        Cursor((10**6).to_bytes(4, "little"), f, base=40, what="cmdline").strings()
    assert ei.value.offset == 40
    assert unpack("<QQ", bytes(16), 0, path=f, what="header") == (0, 0)
    with pytest.raises(TraceFormatError) as ei:
        unpack("<QQ", bytes(20), 8, path=f, base=100, what="header")
    assert ei.value.offset == 108


@pytest.mark.parametrize("fmt", ["auto", "perf-data", "damon", "damo", "perf-script"])
def test_corrupt_gzip_is_a_clear_error_for_every_reader(tmp_path, fmt):
    """A gzip file whose deflate data is corrupt (here its first block has the reserved
    block type) is a one-line error naming the file, whichever reader is asked, and
    leaves no output: never zlib.error."""
    from tracedamon import ingest
    from tracedamon.errors import TracedamonError

    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"x")[:10] + b"\xff" * 64)
    with pytest.raises(TracedamonError) as ei:
        ingest(bad, tmp_path / "o.td", format=fmt)
    msg = str(ei.value)
    assert "bad.gz" in msg and ("gzip" in msg.lower() or "unreadable" in msg)
    assert not (tmp_path / "o.td").exists()
