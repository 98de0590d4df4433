"""Corrupted DAMON inputs: a TraceFormatError or a consistent table, never another
exception (a traceback) or a hang."""

from __future__ import annotations

import gzip

import zlib
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tracedamon.errors import TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.ingest.tracing_data import MAGIC, decode_raw, parse_tracing_data
from tracedamon.store.trace import open_trace

from conftest import CORPUS, need_corpus
from helpers.damon_trace import LIVE, _Wrapped, _write_from
from test_damon_tracing_data import SPEC_AGGREGATED, tracing_blob

RUN1 = CORPUS / "damon-paddr-run1" / "paddr_run1"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def script_lines():
    return (
        gzip.open(need_corpus("damon-paddr-run1", "paddr_run1", "perf_script.txt.gz"), "rt")
        .read()
        .splitlines(keepends=True)[1400:4400]
    )  # 2 snapshots+


def _consistent(out):
    df = open_trace(out).df("regions")
    for _, g in df.groupby(["run", "snapshot", "target"]):
        s, e = g["start"].to_numpy(), g["end"].to_numpy()
        assert (s < e).all() and (s[1:] >= e[:-1]).all()


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.integers(0, 200),
            st.sampled_from(
                [
                    "",
                    "x",
                    "0",
                    "-",
                    ":",
                    " ",
                    "\n",
                    "[",
                    "\0",
                    "9999999999999999999999",
                    "damon_aggregated: ",
                ]
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_corrupted_trace_text(tmp_path, script_lines, edits):
    lines = list(script_lines)
    for where, col, ins in edits:
        i = where % len(lines)
        ln = lines[i]
        c = col % (len(ln) + 1)
        lines[i] = ln[:c] + ins + ln[c + 1 :]
    p = tmp_path / "c.txt"
    p.write_text("".join(lines))
    for skip in (False, True):
        out = tmp_path / f"c{skip}.td"
        try:
            ingest([p], out, format="damon", force=True, skip_bad=skip)
        except TraceFormatError:
            continue
        _consistent(out)


@FUZZ
@given(st.integers(0, 10**9), st.binary(min_size=1, max_size=8))
def test_corrupted_damo_json(tmp_path, where, junk):
    text = zlib.decompress(need_corpus("damo-tests", "damon.data").read_bytes())
    i = where % len(text)
    p = tmp_path / "r.json"
    p.write_bytes(text[:i] + junk + text[i + len(junk) :])
    try:
        out = ingest([p], tmp_path / "r.td", format="damo", force=True)
    except TraceFormatError:
        return
    _consistent(out)


@FUZZ
@example(0, MAGIC[:1], False)  # the byte already there: the file as recorded
@given(st.integers(0, 10**9), st.binary(min_size=1, max_size=4), st.booleans())
def test_corrupted_tracing_data(where, junk, cut):
    """A corrupted tracing-data section is a TraceFormatError, or a parse whose
    damon_aggregated format decodes a payload exactly as its own offsets, sizes and
    signedness say (checked with int.from_bytes); the untouched section gives the
    kernel's layout (spec §14)."""
    blob, _ = tracing_blob(need_corpus("perf", "24_damon_tracepoint.data"))
    i = where % len(blob)
    bad = blob[:i] if cut else blob[:i] + junk + blob[i + len(junk) :]
    try:
        td = parse_tracing_data(bad, path="x")
    except TraceFormatError:
        assert bad != blob, "the recorded section must parse"
        return
    ev = td.event("damon:damon_aggregated")
    if bad == blob:
        assert {
            f.name: (f.offset, f.size) for f in ev.fields if not f.name.startswith("common_")
        } == SPEC_AGGREGATED
    if ev is None:
        return
    assert all(f.offset >= 0 and f.size >= 0 for f in ev.fields)
    scalars = [
        f for f in ev.fields if f.array_len is None and not f.data_loc and f.size in (1, 2, 4, 8)
    ]
    if ev.entry_size > 1 << 16:
        return  # a corrupted offset: no payload that long
    # every byte has its top bit set, so every signed field reads negative
    payload = bytes(0x80 | (7 * k + 3) % 128 for k in range(max(ev.entry_size, 1)))
    order = "big" if td.big_endian else "little"
    dec = decode_raw(
        [payload] * 3, ev, names=[f.name for f in scalars], big_endian=td.big_endian, path="x"
    )
    for f in scalars:
        want = int.from_bytes(payload[f.offset : f.offset + f.size], order, signed=f.signed)
        assert dec[f.name].tolist() == [want] * 3, f.name


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 60), st.integers(0, 255)),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([None, 10, 47, 0]),
)
def test_corrupted_raw_payloads(tmp_path, flips, shorten):
    """Random bytes in the RAW payloads of the live sample (and one payload cut short)."""

    def edit(t):
        raws = t["raw"].to_pylist()
        for i, pos, val in flips:
            i %= len(raws)
            if raws[i] is not None and pos < len(raws[i]):
                b = bytearray(raws[i])
                b[pos] = val
                raws[i] = bytes(b)
        if shorten is not None:
            raws[len(raws) // 2] = raws[len(raws) // 2][:shorten]
        i = t.schema.get_field_index("raw")
        return t.set_column(i, t.schema.field(i), pa.array(raws, t.schema.field(i).type))

    import tempfile

    d = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        _write_from(_Wrapped(LIVE / "live_paddr.perf.data", edit), d, "f")
    except TraceFormatError:
        return
    _consistent(d / "f")
