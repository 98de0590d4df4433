"""Bad perf.data input: a TraceFormatError naming the file and the byte offset, through
the API and the CLI (non-zero exit, one line, no traceback, no output directory), and a
bounded fuzz run over mutated real files."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CORPUS, ROOT, perf_corpus, requires
from tracedamon.errors import TraceFormatError
from tracedamon.ingest.perf_data import ingest_into, open_perf_data
from tracedamon.store.writer import TraceDirWriter

PERF_DIR = perf_corpus().dir
_NAMES = {9: "SAMPLE", 10: "MMAP2", 3: "COMM", 68: "FINISHED_ROUND", 81: "COMPRESSED"}
BASE = PERF_DIR / "01_pf_c1_addr.data"
ZSTD = PERF_DIR / "11_zstd.data"
PIPE = PERF_DIR / "12_pipe.data"

pytestmark = requires(BASE.exists(), perf_corpus().why_missing("01_pf_c1_addr") or "")


def _ingest(path: Path, tmp_path: Path):
    out = tmp_path / "out.td"
    with TraceDirWriter(out) as w:
        ingest_into(path, w)
    return out


def _records(blob: bytes, start: int, end: int):
    """(offset, type, size) of every record of a data section (test-side walk)."""
    out = []
    p = start
    while p + 8 <= end:
        typ, _misc, size = struct.unpack_from("<IHH", blob, p)
        out.append((p, typ, size))
        p += size
    return out


def _data_section(blob: bytes):
    d_off, d_size = struct.unpack_from("<QQ", blob, 40)
    return d_off, d_size


def _expect_error(path: Path, tmp_path: Path, offset: int | None = None, words=()):
    with pytest.raises(TraceFormatError) as ei:
        _ingest(path, tmp_path)
    e = ei.value
    msg = str(e)
    assert str(path) in msg
    if offset is not None:
        assert e.offset == offset, msg
        assert f"byte offset {offset}" in msg
    for w in words:
        assert w in msg, msg
    assert not (tmp_path / "out.td").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.td")]
    return e


def test_empty_file(tmp_path):
    p = tmp_path / "empty.data"
    p.write_bytes(b"")
    _expect_error(p, tmp_path, offset=0)


def test_text_file(tmp_path):
    p = tmp_path / "notes.data"
    p.write_text("this is not a perf.data file\n" * 10)
    _expect_error(p, tmp_path, offset=0, words=["not a perf.data"])


def test_wrong_magic(tmp_path):
    b = bytearray(BASE.read_bytes())
    b[0:8] = b"PERFILE3"
    p = tmp_path / "magic.data"
    p.write_bytes(b)
    _expect_error(p, tmp_path, offset=0)


def test_big_endian_magic_on_a_little_endian_body(tmp_path):
    """A big-endian magic makes the header read big-endian: a little-endian body then
    gives an impossible header size, reported where it sits."""
    b = bytearray(BASE.read_bytes())
    b[0:8] = b"2ELIFREP"
    p = tmp_path / "be.data"
    p.write_bytes(b)
    _expect_error(p, tmp_path, offset=8, words=["header size"])


def test_header_only(tmp_path):
    p = tmp_path / "short.data"
    p.write_bytes(BASE.read_bytes()[:60])
    _expect_error(p, tmp_path)


def _perf_fails(path: Path) -> bool:
    """Whether the installed perf refuses the file (`perf script` exits non-zero or is
    killed by a signal); True when perf is not installed (nothing to compare with)."""
    from conftest import PERF

    if PERF is None:
        return True
    r = subprocess.run([PERF, "script", "-i", str(path)], capture_output=True, timeout=120)
    return r.returncode != 0


def _perf_samples(path: Path) -> int | None:
    """How many samples `perf script` delivers from the file (None without perf)."""
    from conftest import PERF

    if PERF is None:
        return None
    r = subprocess.run(
        [PERF, "script", "-i", str(path), "-F", "time"], capture_output=True, text=True, timeout=120
    )
    return len(r.stdout.splitlines())


@pytest.mark.parametrize("where", ["boundary", "inside"])
def test_truncated_file_section_outside(tmp_path, where):
    """The file ends before the data section the header announces (a finished
    recording cut short afterwards): perf cannot read it either (it stops at the
    zeros past the end, or dies of SIGBUS on larger files)."""
    blob = BASE.read_bytes()
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off = recs[len(recs) // 2][0] + (0 if where == "boundary" else 5)
    p = tmp_path / "trunc.data"
    p.write_bytes(blob[:off])
    assert _perf_fails(p)
    _expect_error(p, tmp_path, offset=40, words=["outside the file"])


def _with_data_size(blob: bytes, size: int) -> bytes:
    """The file with data.size changed; the feature bitmap is cleared, since the
    feature index sits right after the data section."""
    b = bytearray(blob)
    struct.pack_into("<Q", b, 48, size)
    b[72:104] = bytes(32)
    return bytes(b)


@pytest.mark.parametrize("k", [1, 7, 40, 100])
def test_truncated_inside_record(tmp_path, k):
    """data.size cut inside record k: the error names that record's offset."""
    blob = BASE.read_bytes()
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off, typ, size = recs[k]
    for cut in (3, size // 2, size - 1):
        b = _with_data_size(blob, off + cut - d_off)
        p = tmp_path / f"cut{cut}.data"
        p.write_bytes(b)
        if k == 40 and cut == size // 2:
            assert _perf_fails(p)  # a data size ending inside a record: perf refuses
        _expect_error(p, tmp_path, offset=off, words=["truncated"])


def test_cut_at_record_boundary_is_a_shorter_file(tmp_path):
    blob = BASE.read_bytes()
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off = recs[60][0]
    p = tmp_path / "short.data"
    p.write_bytes(_with_data_size(blob, off - d_off))
    from tracedamon.store.trace import open_trace

    tr = open_trace(_ingest(p, tmp_path))
    n_samples = sum(1 for r in recs[:60] if r[1] == 9)
    assert tr.num_rows("samples") == n_samples


@pytest.mark.parametrize("bad_size", [0, 4, 7])
def test_record_size_below_header(tmp_path, bad_size):
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off = recs[20][0]
    struct.pack_into("<H", blob, off + 6, bad_size)
    p = tmp_path / "size.data"
    p.write_bytes(blob)
    _expect_error(p, tmp_path, offset=off, words=["below 8"])


def test_sample_smaller_than_its_fields(tmp_path):
    """A SAMPLE whose size cannot hold its sample_type: shrink it, pad a fake record."""
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off, typ, size = next(r for r in recs if r[1] == 9)
    assert size == 48
    # sample of 16 bytes, then a 32-byte record of an unknown type keeps the stream walkable
    struct.pack_into("<H", blob, off + 6, 16)
    struct.pack_into("<IHH", blob, off + 16, 250, 0, 32)
    p = tmp_path / "small.data"
    p.write_bytes(blob)
    _expect_error(p, tmp_path, offset=off, words=["shorter than its sample_type"])


def test_size_pointing_past_the_end(tmp_path):
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off = recs[-2][0]
    struct.pack_into("<H", blob, off + 6, 0xFFF8)
    p = tmp_path / "past.data"
    p.write_bytes(blob)
    _expect_error(p, tmp_path, offset=off, words=["truncated"])


@pytest.mark.parametrize("field,fo", [("attrs", 24), ("data", 40)])
def test_section_offset_outside_file(tmp_path, field, fo):
    blob = bytearray(BASE.read_bytes())
    struct.pack_into("<Q", blob, fo, len(blob) + 4096)
    p = tmp_path / "sec.data"
    p.write_bytes(blob)
    _expect_error(p, tmp_path, offset=fo, words=[field])


def test_feature_section_outside_file(tmp_path):
    """perf skips a feature section it cannot read and reads the data: so does the
    reader, naming the lost feature; --strict refuses."""
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    feat = d_off + d_size
    struct.pack_into("<Q", blob, feat, len(blob) + 100)
    p = tmp_path / "feat.data"
    p.write_bytes(blob)
    from tracedamon.errors import InputWarning
    from tracedamon.store.trace import open_trace

    with pytest.warns(InputWarning, match="BUILD_ID"):
        tr = open_trace(_ingest(p, tmp_path))
    n = sum(1 for r in _records(blob, d_off, d_off + d_size) if r[1] == 9)
    assert tr.num_rows("samples") == n
    assert _perf_samples(p) in (None, n)
    assert tr.meta["truncation"]["features_lost"] == ["BUILD_ID"]
    assert tr.meta["hostname"]  # the other features are read
    import shutil

    shutil.rmtree(tmp_path / "out.td")
    with pytest.raises(TraceFormatError) as e:
        with TraceDirWriter(tmp_path / "out.td") as w:
            ingest_into(p, w, strict=True)
    assert e.value.offset == feat and "feature" in str(e.value)
    assert not (tmp_path / "out.td").exists()


@pytest.mark.parametrize("cut", ["index", "payload"])
def test_file_cut_in_its_feature_sections(tmp_path, cut):
    """A finished recording cut after its data (inside the feature index, or inside
    the payloads): the samples are all there, the features that are not are named."""
    blob = BASE.read_bytes()
    d_off, d_size = _data_section(blob)
    feat = d_off + d_size
    nfeat = bin(int.from_bytes(blob[72:104], "little")).count("1")
    entries = [struct.unpack_from("<QQ", blob, feat + 16 * k) for k in range(nfeat)]
    # inside the index, or in the middle of the third feature section
    end = feat + 5 if cut == "index" else entries[2][0] + entries[2][1] // 2
    p = tmp_path / "cut.data"
    p.write_bytes(blob[:end])
    from tracedamon.errors import InputWarning
    from tracedamon.store.trace import open_trace

    with pytest.warns(InputWarning, match="feature section"):
        tr = open_trace(_ingest(p, tmp_path))
    n = sum(1 for r in _records(blob, d_off, d_off + d_size) if r[1] == 9)
    assert tr.num_rows("samples") == n and _perf_samples(p) in (None, n)
    lost = tr.meta["truncation"]["features_lost"]
    assert len(lost) == (
        nfeat if cut == "index" else sum(1 for o, z in entries if z and o + z > end)
    )
    assert cut == "index" or 0 < len(lost) < nfeat
    assert tr.meta["truncation"]["partial_records"] == []


def test_unknown_record_types_are_counted(tmp_path):
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    mm = [r for r in recs if r[1] == 10][:3]
    for off, _t, _s in mm:
        struct.pack_into("<I", blob, off, 200)
    p = tmp_path / "unk.data"
    p.write_bytes(blob)
    from tracedamon.store.trace import open_trace

    tr = open_trace(_ingest(p, tmp_path))
    assert tr.meta["record_counts"]["UNKNOWN_200"] == 3
    assert tr.meta["unknown_record_types"] == {"200": 3}
    assert tr.num_rows("mmaps") == sum(1 for r in recs if r[1] in (1, 10)) - 3
    assert tr.num_rows("samples") == sum(1 for r in recs if r[1] == 9)


def test_corrupt_zstd(tmp_path):
    blob = bytearray(ZSTD.read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    off = next(r[0] for r in recs if r[1] == 81)
    blob[off + 8 : off + 12] = b"\0\0\0\0"  # the zstd frame magic
    p = tmp_path / "z.data"
    p.write_bytes(blob)
    _expect_error(p, tmp_path, offset=off, words=["zstd"])


def test_truncated_pipe_stream(tmp_path):
    """perf reads a pipe stream cut inside a record up to its last complete record
    ("unexpected end of event stream"): so does the reader; --strict refuses."""
    blob = PIPE.read_bytes()
    recs = _records(blob, 16, len(blob))
    off, typ, size = recs[len(recs) // 2]
    p = tmp_path / "pipe.data"
    p.write_bytes(blob[: off + size // 2])
    from tracedamon.errors import InputWarning
    from tracedamon.store.trace import open_trace

    with pytest.warns(InputWarning, match=f"byte offset {off} "):
        tr = open_trace(_ingest(p, tmp_path))
    n = sum(1 for r in recs[: len(recs) // 2] if r[1] == 9)
    assert tr.num_rows("samples") == n and _perf_samples(p) in (None, n)
    assert tr.meta["truncation"]["partial_records"] == [
        {"file": "pipe.data", "offset": off, "bytes": size // 2, "type": _NAMES[typ], "size": size}
    ]
    import shutil

    shutil.rmtree(tmp_path / "out.td")
    with pytest.raises(TraceFormatError) as e:
        with TraceDirWriter(tmp_path / "out.td") as w:
            ingest_into(p, w, strict=True)
    assert e.value.offset == off and "truncated" in str(e.value)
    assert not (tmp_path / "out.td").exists()


def test_directory_without_data(tmp_path):
    d = tmp_path / "x.data"
    d.mkdir()
    (d / "data.0").write_bytes(b"")
    with pytest.raises(TraceFormatError):
        open_perf_data(d)


# ---------------------------------------------------------------------------- CLI
def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tracedamon", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("case", ["truncated", "zstd", "magic"])
def test_cli_reports_one_line_and_leaves_nothing(tmp_path, case):
    blob = bytearray((ZSTD if case == "zstd" else BASE).read_bytes())
    d_off, d_size = _data_section(blob)
    recs = _records(blob, d_off, d_off + d_size)
    if case == "truncated":
        blob = _with_data_size(bytes(blob), recs[10][0] + 5 - d_off)
    elif case == "zstd":
        off = next(r[0] for r in recs if r[1] == 81)
        blob[off + 8 : off + 12] = b"\0\0\0\0"
    else:
        blob[8:16] = struct.pack("<Q", 77)  # header size
    p = tmp_path / "bad.data"
    p.write_bytes(bytes(blob))
    r = _cli("ingest", p, "-o", tmp_path / "bad.td", "--format", "perf-data", cwd=ROOT)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.data" in lines[0] and "byte offset" in lines[0], r.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == ["bad.data"]


# ---------------------------------------------------------------------------- fuzz
_FUZZ_FILES = [
    p
    for p in (
        BASE,
        ZSTD,
        PIPE,
        PERF_DIR / "16_threads.data",
        PERF_DIR / "08_callchain_fp.data",
        CORPUS / "ubench-perf-mem" / "perf-mem-39891.data",
    )
    if p.exists()
]
_BLOBS = {p: p.read_bytes() for p in _FUZZ_FILES}


def _synthetic_variable_layout(byte_order="little", compress=True, many_mmaps=False) -> bytes:
    """A file whose samples have every variable-size field (READ group, callchain, RAW,
    branch stack, registers, user stack, AUX), two events, zstd: fuzz input."""
    import tempfile

    import perfdata_writer as W
    from perfdata_writer import F, S

    st_ = (
        S.IDENTIFIER
        | S.IP
        | S.TID
        | S.TIME
        | S.ADDR
        | S.READ
        | S.CALLCHAIN
        | S.RAW
        | S.BRANCH_STACK
        | S.REGS_USER
        | S.STACK_USER
        | S.WEIGHT
        | S.DATA_SRC
        | S.AUX
    )
    a = W.Event(
        "a",
        type=4,
        sample_type=st_,
        read_format=F.GROUP | F.ID | F.LOST,
        branch_sample_type=W.BRANCH_ANY | W.BRANCH_HW_INDEX,
        sample_regs_user=0b111,
        sample_stack_user=16,
    )
    b = W.Event("b", type=4, config=1, sample_type=S.IDENTIFIER | S.IP | S.TIME)
    W.assign_ids([a, b])
    recs = []
    for i in range(20):
        recs.append(
            W.Sample(
                a,
                ip=i,
                pid=1,
                tid=1,
                time=i,
                addr=4096 * i,
                read={
                    "values": [
                        {"value": 3 * i, "id": a.id(), "lost": 0},
                        {"value": 5 * i, "id": b.id(), "lost": 0},
                    ]
                },
                callchain=[1, 2, i],
                raw=b"x" * (i % 7),
                branch_stack=[(1, 2, 3)],
                branch_hw_idx=4,
                regs_user=(2, [7, 8, 9]),
                stack_user=(b"\0" * 16, 8),
                weight=i,
                data_src=0x68100142,
                aux=b"\1" * 8,
            )
        )
        recs.append(W.Sample(b, ip=i, time=i))
        recs.append(W.Comm(a, {"pid": 1, "tid": 1, "time": i}, pid=1, tid=1, comm="c"))
    if many_mmaps:
        # enough side-band records in one chunk for the bulk (numba) decoder
        for i in range(600):
            recs.append(
                W.Mmap2(
                    a,
                    {"pid": 1, "tid": 1, "time": 100 + i},
                    pid=1,
                    tid=1,
                    start=4096 * i,
                    len=4096,
                    filename=f"/l/{i}",
                    build_id=b"\7" * 20 if i % 3 == 0 else None,
                )
            )
    with tempfile.TemporaryDirectory() as d:
        p = W.write_perf_data(
            f"{d}/v.data",
            [a, b],
            recs,
            compress=compress,
            attr_size=104,
            chunks=[50, 70] * 100,
            byte_order=byte_order,
        )
        return open(p, "rb").read()


for _name, _opts in (
    ("synthetic variable-layout file", {}),
    ("synthetic big-endian file, zstd", dict(byte_order="big")),
    (
        "synthetic big-endian file, many MMAP2",
        dict(byte_order="big", compress=False, many_mmaps=True),
    ),
):
    _SYNTH = Path(f"<{_name}>")
    _BLOBS[_SYNTH] = _synthetic_variable_layout(**_opts)
    _FUZZ_FILES.append(_SYNTH)


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzz_mutated_files(tmp_path, data):
    """Mutated real files: TraceFormatError or success, never another exception."""
    src = data.draw(st.sampled_from(_FUZZ_FILES))
    b = bytearray(_BLOBS[src])
    kind = data.draw(st.sampled_from(["bytes", "u16", "u64", "cut"]))
    if kind == "cut":
        b = b[: data.draw(st.integers(0, len(b)))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(b) - 8))
            if kind == "bytes":
                b[pos] = data.draw(st.integers(0, 255))
            elif kind == "u16":
                struct.pack_into("<H", b, pos, data.draw(st.integers(0, 0xFFFF)))
            else:
                struct.pack_into(
                    "<Q",
                    b,
                    pos,
                    data.draw(
                        st.sampled_from([0, 1, 8, 0xFFFFFFFF, 1 << 40, (1 << 64) - 1, len(b)])
                    ),
                )
    p = tmp_path / "fuzz.data"
    p.write_bytes(bytes(b))
    out = tmp_path / "fuzz.td"
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    try:
        with TraceDirWriter(out) as w:
            ingest_into(p, w)
    except TraceFormatError as e:
        assert str(p) in str(e)
        assert not out.exists()


@pytest.mark.parametrize("bits", ["cleared", "kept"])
def test_unfinished_recording_read_to_eof(tmp_path, bits):
    """data.size 0 (perf was killed) and no feature index where the header's feature
    bits say it would be: records are read to EOF; --strict refuses."""
    blob = BASE.read_bytes()
    d_off, d_size = _data_section(blob)
    b = bytearray(_with_data_size(blob, 0)[: d_off + d_size])
    if bits == "kept":  # what perf record leaves when it is killed
        b[72:104] = blob[72:104]
    p = tmp_path / "unfinished.data"
    p.write_bytes(bytes(b))
    from tracedamon.errors import InputWarning
    from tracedamon.store.trace import open_trace

    with pytest.warns(InputWarning, match="did not finish"):
        tr = open_trace(_ingest(p, tmp_path))
    recs = _records(blob, d_off, d_off + d_size)
    assert tr.num_rows("samples") == sum(1 for r in recs if r[1] == 9)
    assert tr.meta["unfinished_recording"] is True and tr.meta["truncated"] is True
    assert tr.meta["truncation"]["data_bytes_kept"] == d_size
    nfeat = bin(int.from_bytes(b[72:104], "little")).count("1")
    assert len(tr.meta["truncation"]["features_lost"]) == nfeat
    import shutil

    shutil.rmtree(tmp_path / "out.td")
    with pytest.raises(TraceFormatError) as e:
        with TraceDirWriter(tmp_path / "out.td") as w:
            ingest_into(p, w, strict=True)
    assert e.value.offset == 48 and "data size 0" in str(e.value)


def test_empty_data_section_with_features(tmp_path):
    blob = bytearray(BASE.read_bytes())
    d_off, d_size = _data_section(blob)
    feats = blob[d_off + d_size :]
    # move the feature index right after an empty data section (offsets shift too)
    nfeat = bin(int.from_bytes(blob[72:104], "little")).count("1")
    idx = bytearray(feats[: 16 * nfeat])
    for k in range(nfeat):
        off, size = struct.unpack_from("<QQ", idx, 16 * k)
        struct.pack_into("<QQ", idx, 16 * k, off - d_size, size)
    b = blob[:d_off] + idx + feats[16 * nfeat :]
    struct.pack_into("<Q", b, 48, 0)
    p = tmp_path / "nodata.data"
    p.write_bytes(bytes(b))
    from tracedamon.store.trace import open_trace

    tr = open_trace(_ingest(p, tmp_path))
    assert tr.num_rows("samples") == 0 and tr.meta["hostname"]


def test_big_endian_pipe_stream_is_refused_clearly(tmp_path):
    """perf 6.1 cannot read a big-endian pipe stream either: one clear line, not rows."""
    import struct

    p = tmp_path / "be-pipe.data"
    p.write_bytes(b"2ELIFREP" + struct.pack(">Q", 16) + b"\0" * 64)
    from tracedamon.errors import TraceFormatError
    from tracedamon.ingest.perf_data import open_perf_data

    with pytest.raises(TraceFormatError) as e:
        open_perf_data(p)
    assert "big-endian pipe streams are not supported" in str(e.value)
    assert str(p) in str(e.value) and "byte offset 0" in str(e.value)
