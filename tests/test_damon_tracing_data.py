"""tracing-data blob parser and RAW tracepoint decoder.

Oracles: the tracepoint layout in damon-engine-spec.md §14 (LP64 offsets), and
perf 6.1's own decoding of the same samples (``perf script`` text and the
``raw_buf`` column of the corpus ``samples.csv``).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracedamon.errors import TraceFormatError
from tracedamon.ingest.tracing_data import MAGIC, decode_raw, parse_format, parse_tracing_data

from conftest import need_corpus


def tracing_blob(path) -> tuple[bytes, int]:
    """Cut the TRACING_DATA feature section out of a perf.data file, by hand:
    header (magic, size, attr_size, attrs, data, event_types, 256-bit feature
    mask at byte 72); feature 1 is the first section after the data section."""
    with open(path, "rb") as f:
        h = f.read(104)
        assert h[:8] == b"PERFILE2"
        data_off, data_size = struct.unpack_from("<QQ", h, 40)
        feats = int.from_bytes(h[72:104], "little")
        assert feats & 2, "no TRACING_DATA feature"
        f.seek(data_off + data_size)
        off, size = struct.unpack("<QQ", f.read(16))
        f.seek(off)
        return f.read(size), off


SPEC_AGGREGATED = {
    "target_id": (8, 8),
    "nr_regions": (16, 4),
    "start": (24, 8),
    "end": (32, 8),
    "nr_accesses": (40, 4),
    "age": (44, 4),
}


def _evlist_config(name: str, event: str) -> int:
    """The attr config perf evlist -v printed for ``event`` of the recorded case
    ``name``: a tracepoint's config is its id in the recording kernel."""
    for line in need_corpus("perf", f"{name}.evlist.txt").read_text().splitlines():
        if line.startswith(f"{event}: "):
            return int(re.search(r"config: (0x[0-9a-f]+|\d+)", line).group(1), 0)
    raise AssertionError(f"{event} not in the evlist of {name}")


def _samples_csv(name: str):
    """The recorded case's samples.csv, plain or gzipped (large ones are)."""
    for suffix in (".samples.csv", ".samples.csv.gz"):
        p = need_corpus("perf", name + ".data").with_name(name + suffix)
        if p.exists():
            return gzip.open(p, "rt") if suffix.endswith(".gz") else open(p)
    raise AssertionError(f"no samples.csv for {name}")


def test_damon_formats_match_the_spec_layout():
    blob, off = tracing_blob(need_corpus("perf", "24_damon_tracepoint.data"))
    td = parse_tracing_data(blob, path="x", base_offset=off)
    assert td.version == "0.6" and td.long_size == 8 and not td.big_endian
    assert td.page_size == 4096
    ev = td.event("damon:damon_aggregated")
    assert ev is td.event("damon_aggregated")
    assert ev.id == _evlist_config("24_damon_tracepoint", "damon:damon_aggregated")
    got = {f.name: (f.offset, f.size) for f in ev.fields if not f.name.startswith("common_")}
    assert got == SPEC_AGGREGATED
    assert all(not ev.by_name[k].signed for k in SPEC_AGGREGATED)
    assert ev.by_name["common_pid"].signed and ev.by_name["common_pid"].offset == 4
    assert ev.print_fmt.startswith('"target_id=%lu nr_regions=%u %lu-%lu: %u %u"')


def test_old_kernel_format_has_no_age_and_run1_has_intervals_tune():
    blob, _ = tracing_blob(need_corpus("damo-tests", "perf.data"))
    ev = parse_tracing_data(blob).event("damon:damon_aggregated")
    assert ev.id == 620
    assert "age" not in ev.by_name and ev.by_name["nr_accesses"].offset == 40
    blob, _ = tracing_blob(
        need_corpus("damon-paddr-run1", "paddr_run1", "damo_record_perf_data.data")
    )
    td = parse_tracing_data(blob)
    tune = td.event("damon:damon_monitor_intervals_tune")
    assert [(f.name, f.offset, f.size) for f in tune.fields][-1] == ("sample_us", 8, 8)


def _script_fields(line: str) -> tuple:
    # perf's own text:
    # "... <time>: <period> damon:damon_aggregated: target_id=A nr_regions=B C-D: E F"
    m = re.search(
        r"(\d+)\.(\d{9}):.*target_id=(\d+) nr_regions=(\d+) (\d+)-(\d+): (\d+) (\d+)", line
    )
    sec, ns, *rest = m.groups()
    return (int(sec) * 10**9 + int(ns), *map(int, rest))


def test_decode_raw_matches_perf_script_on_every_sample():
    blob, _ = tracing_blob(need_corpus("perf", "24_damon_tracepoint.data"))
    ev = parse_tracing_data(blob).event("damon:damon_aggregated")
    csv.field_size_limit(1 << 30)
    with _samples_csv("24_damon_tracepoint") as f:
        rows = [r for r in csv.DictReader(f) if r["event"] == "damon__damon_aggregated"]
    raws = [bytes.fromhex(json.loads(r["tp_fields"])["raw_buf"]) for r in rows]
    times = [int(r["time"]) for r in rows]
    with open(need_corpus("perf", "24_damon_tracepoint.script.txt")) as f:
        script = [_script_fields(ln) for ln in f if "damon:damon_aggregated" in ln]
    dump = need_corpus("perf", "24_damon_tracepoint.data").with_name(
        "24_damon_tracepoint.records.csv"
    )
    if not dump.exists():
        dump = dump.with_name(dump.name + ".gz")
    # perf report -D's SAMPLE records of the same file
    with (gzip.open if dump.suffix == ".gz" else open)(dump, "rt") as f:
        in_dump = sum(1 for r in csv.DictReader(f) if r["type"] == "9")
    assert len(raws) == len(script) == in_dump > 0
    dec = decode_raw(
        raws,
        ev,
        names=["common_pid", "target_id", "nr_regions", "start", "end", "nr_accesses", "age"],
    )
    assert dec["start"].dtype == np.uint64 and dec["nr_regions"].dtype == np.uint32
    got = list(
        zip(
            times,
            *(
                dec[k].tolist()
                for k in ("target_id", "nr_regions", "start", "end", "nr_accesses", "age")
            ),
        )
    )
    # perf script printed the two snapshots of this file in the opposite order to their
    # timestamps (the samples.csv is time-ordered), so compare as sorted lists
    assert sorted(got) == sorted(script)
    assert set(dec["common_pid"].tolist()) == {int(r["pid"]) for r in rows}


def _fmt_text(name, fields, ev_id=5):
    lines = [
        f"name: {name}",
        f"ID: {ev_id}",
        "format:",
        "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;",
        "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;",
        "",
    ]
    for fname, ctype, off, size, signed in fields:
        lines.append(
            f"\tfield:{ctype} {fname};\toffset:{off};\tsize:{size};\tsigned:{int(signed)};"
        )
    lines.append("")
    lines.append('print fmt: "x"')
    return "\n".join(lines) + "\n"


_CODES = {
    (1, False): "B",
    (2, False): "H",
    (4, False): "I",
    (8, False): "Q",
    (1, True): "b",
    (2, True): "h",
    (4, True): "i",
    (8, True): "q",
}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([1, 2, 4, 8]), st.booleans()), min_size=1, max_size=6),
    st.integers(0, 20),
    st.booleans(),
    st.data(),
)
def test_decode_raw_roundtrips_random_layouts(spec, nrows, big, data):
    # lay fields out naturally aligned after the 8-byte common header
    fields, off = [], 8
    for i, (size, signed) in enumerate(spec):
        off = (off + size - 1) // size * size
        fields.append((f"f{i}", ("" if signed else "unsigned ") + "int", off, size, signed))
        off += size
    ev = parse_format(_fmt_text("ev", fields), "sys")
    assert [(f.offset, f.size, f.signed) for f in ev.fields[2:]] == [
        (o, s, sg) for _, _, o, s, sg in fields
    ]
    rows, expect = [], {f[0]: [] for f in fields}
    for _ in range(nrows):
        buf = bytearray(off + data.draw(st.integers(0, 8)))  # RAW payloads carry padding
        for name, _, o, size, signed in fields:
            lo, hi = (
                (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1)
                if signed
                else (0, (1 << (8 * size)) - 1)
            )
            v = data.draw(st.integers(lo, hi))
            struct.pack_into((">" if big else "<") + _CODES[(size, signed)], buf, o, v)
            expect[name].append(v)
        rows.append(bytes(buf))
    dec = decode_raw(rows, ev, big_endian=big)
    for name in expect:
        assert dec[name].tolist() == expect[name]


def test_short_payload_and_bad_blobs_are_format_errors():
    blob, off = tracing_blob(need_corpus("perf", "24_damon_tracepoint.data"))
    td = parse_tracing_data(blob)
    ev = td.event("damon:damon_aggregated")
    with pytest.raises(TraceFormatError, match="sample 1 has 40 bytes, the format needs 48"):
        decode_raw([b"\0" * 52, b"\0" * 40], ev, path="f.data")
    with pytest.raises(TraceFormatError, match="bad magic"):
        parse_tracing_data(b"\x17\x08Dtracinx" + blob[10:], path="f.data", base_offset=off)
    # truncations anywhere inside the formats give an error at a byte offset, never a crash
    cut_points = [len(MAGIC) + 2, 30, 300, len(blob) // 3, blob.find(b"name: damon") + 20]
    for cut in cut_points:
        with pytest.raises(TraceFormatError) as ei:
            parse_tracing_data(blob[:cut], path="f.data", base_offset=off)
        assert ei.value.offset is not None and off <= ei.value.offset <= off + len(blob)
    with pytest.raises(TraceFormatError, match="version"):
        parse_tracing_data(MAGIC + b"9.9\0" + blob[len(MAGIC) + 4 :])
