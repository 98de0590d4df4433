"""Synthetic perf.data files (tests/perfdata_writer.py) checked against the real perf.

perf is the independent oracle: for hypothesis-drawn sample_type combinations,
field values (real data_src bit patterns, weights, physical addresses, page sizes,
branch stacks, transactions, read groups, ...), several events, file and pipe
layouts, attr sizes and zstd compression, `perf script` and `perf report -D` must
print exactly the values the writer wrote (the cases: tests/helpers/perf_cases.py;
the oracle: tests/helpers/perf_oracle.py). tracedamon's native reader on the same
files is in test_writer_vs_perf_native.py.
"""

from __future__ import annotations

import struct as _st
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import need_corpus, requires_perf  # noqa: E402
from helpers.native_truth import check_native  # noqa: E402
from helpers.perf_cases import SETTINGS, scenario, write_case  # noqa: E402
from helpers.perf_oracle import check_against_perf, page_size_name, run  # noqa: E402
from perfdata_writer import (  # noqa: E402
    Comm,
    Event,
    S,
    Sample,
    write_perf_data,
)

pytestmark = [requires_perf, pytest.mark.perf]


@SETTINGS
@given(case=scenario())
def test_perf_reads_what_the_writer_wrote(tmp_path_factory, case):
    tmp = tmp_path_factory.mktemp("w")
    path = write_case(tmp, case)
    check_against_perf(path, case)


def test_page_size_names_match_perf(tmp_path):
    """The page-size texts used above, on the edge cases, as perf prints them."""
    ev = Event("sw", type=1, sample_type=S.IP | S.TID | S.TIME | S.DATA_PAGE_SIZE)
    sizes = [0, 1024, 2048, 3000, 4096, 2 << 20, 1 << 30, 1 << 40]
    recs = [
        Sample(ev, ip=0x400000 + i, pid=5, tid=5, time=10**9 + i, data_page_size=z)
        for i, z in enumerate(sizes)
    ]
    path = write_perf_data(tmp_path / "ps.data", [ev], recs)
    p = run(["perf", "script", "-i", path, "--ns", "-F", "ip,data_page_size"])
    assert p.returncode == 0, p.stderr
    got = [ln.split()[-1] for ln in p.stdout.splitlines() if ln.strip()]
    assert got == [page_size_name(z) for z in sizes]
    assert got == ["N/A", "1024B", "2K", "2K", "4K", "2M", "1024M", "1024G"]


def test_compressed_records_straddle_payloads(tmp_path):
    """Tiny compression pieces: every record is split across COMPRESSED payloads, and
    perf still reads every sample."""
    ev = Event("sw", type=1, sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.DATA_SRC | S.WEIGHT)
    recs = [Comm(ev, pid=9, tid=9, comm="cz", sid=dict(pid=9, tid=9, time=10**9))]
    recs += [
        Sample(
            ev,
            ip=0x400000 + i,
            pid=9,
            tid=9,
            time=10**9 + 10 + i,
            addr=0x1000 * i,
            data_src=0x68100142,
            weight=i,
        )
        for i in range(50)
    ]
    for layout in ("file", "pipe"):
        path = write_perf_data(
            tmp_path / f"c_{layout}.data",
            [ev],
            recs,
            layout=layout,
            compress=True,
            chunks=[3, 5, 7, 11] * 200,
        )
        raw = Path(path).read_bytes()
        assert raw.count(b"\x28\xb5\x2f\xfd") == 1  # one zstd frame header: one stream
        p = run(["perf", "script", "-i", path, "--ns", "-F", "time,addr,weight"])
        assert p.returncode == 0, p.stderr
        rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip()]
        assert [(int(r[1], 16), int(r[2])) for r in rows] == [(0x1000 * i, i) for i in range(50)]


def test_file_layout_matches_perf_record(tmp_path):
    """The writer lays a one-event, two-id file out as perf record 6.1 does (corpus 01:
    header, id array, attrs at 120, data at 264, 128-byte attrs, features after data)."""
    real = need_corpus("perf", "01_pf_c1_addr.data").read_bytes()
    # perf gives the event one id per CPU (two on a 2-CPU machine): as many here; the
    # attr's ids section (offset, size) ends its entry in the attrs section
    attr_size, a_off = _st.unpack_from("<Q", real, 16)[0], _st.unpack_from("<Q", real, 24)[0]
    nids = _st.unpack_from("<Q", real, a_off + attr_size - 8)[0] // 8
    ev = Event(
        "page-faults",
        type=1,
        config=2,
        sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.DATA_SRC,
        ids=list(range(1, nids + 1)),
    )
    path = write_perf_data(
        tmp_path / "l.data", [ev], [Sample(ev, ip=1, pid=1, tid=1, time=1, addr=1, data_src=1)]
    )
    ours = Path(path).read_bytes()

    def header(b):
        magic, size, attr_size, a_off, a_size, d_off = _st.unpack_from("<8sQQQQQ", b)
        return magic, size, attr_size, a_off, a_size, d_off

    assert header(ours) == header(real)
    # the attr's identity and layout fields as perf wrote them
    a_off = header(real)[3]
    t, size, config, period, stype = _st.unpack_from("<IIQQQ", real, a_off)
    assert (t, size, config, period, stype) == _st.unpack_from("<IIQQQ", ours, a_off)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=scenario())
def test_big_endian_files_read_like_perf(tmp_path_factory, case):
    """The drawn files written as a big-endian machine writes them (s390x, ppc64): the
    real perf (which swaps them) prints what was written, and the native reader's
    tables equal the written truth. Pipe streams are left out: perf 6.1 cannot read a
    big-endian pipe stream (tracedamon refuses them, see test below); precise_ip is 0
    or 3 because perf's bit swap turns a big-endian 1 into 2 and back."""
    case["layout"] = "file"
    for e in case["events"]:
        e.precise_ip = 3 if e.precise_ip else 0
    tmp = tmp_path_factory.mktemp("be")
    # the native reader against the written truth, registers included
    path = write_case(tmp, case, byte_order="big")
    with open(path, "rb") as f:
        assert f.read(8) == b"2ELIFREP"
    check_native(path, case, [None] * 10**4, tmp, decodes_known=False)
    # perf against the written truth: perf 6.1 does not swap the attr's register masks
    # (it prints AX as XMM12), so the registers are left out of the file perf reads
    for e in case["events"]:
        e.sample_type &= ~(S.REGS_USER | S.REGS_INTR)
        e.sample_regs_user = e.sample_regs_intr = 0
    for r in case["records"]:
        if isinstance(r, Sample):
            r.fields.pop("regs_user", None)
            r.fields.pop("regs_intr", None)
    tmp2 = tmp_path_factory.mktemp("be-perf")
    path = write_case(tmp2, case, byte_order="big")
    decodes = check_against_perf(path, case, big_endian=True)
    check_native(path, case, decodes, tmp2)
