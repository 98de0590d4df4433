"""Shared by the native perf.data reader's tests on synthetic and live files: a file
ingested into a fresh trace directory (replacing an older one of the same name), and
one ``samples`` row checked against the sample fields written."""

from __future__ import annotations

import shutil

from tracedamon.ingest.data_src import decode
from tracedamon.ingest.perf_data import ingest_into
from tracedamon.store.trace import open_trace
from tracedamon.store.writer import TraceDirWriter

import perfdata_writer as W
from perfdata_writer import S


def _ingest(path, tmp_path, name="t.td"):
    out = tmp_path / name
    if out.exists():
        shutil.rmtree(out)
    with TraceDirWriter(out) as w:
        ingest_into(path, w)
    return open_trace(out)


def _check_row(o: dict, ev: W.Event, f: dict, name: str):
    stt = ev.sample_type
    assert o["event"] == name
    for bit, col, nm in (
        (S.IP, "ip", "ip"),
        (S.ADDR, "addr", "addr"),
        (S.STREAM_ID, "stream_id", "stream_id"),
        (S.DATA_SRC, "data_src", "data_src"),
        (S.TRANSACTION, "transaction", "transaction"),
        (S.PHYS_ADDR, "phys_addr", "phys_addr"),
        (S.CGROUP, "cgroup", "cgroup"),
        (S.DATA_PAGE_SIZE, "data_page_size", "data_page_size"),
        (S.CODE_PAGE_SIZE, "code_page_size", "code_page_size"),
        (S.TIME, "time_ns", "time"),
    ):
        assert o[col] == (f[nm] if stt & bit else None), col
    if stt & S.TID:
        assert (o["pid"], o["tid"]) == (f["pid"], f["tid"])
    else:
        assert o["pid"] is None and o["tid"] is None
    assert o["cpu"] == (f["cpu"] if stt & S.CPU else None)
    assert o["period"] == (f["period"] if stt & S.PERIOD else ev.sample_period)
    assert o["sample_id"] == (ev.id() if stt & (S.ID | S.IDENTIFIER) else None)
    if stt & S.WEIGHT:
        assert (o["weight"], o["weight2"], o["weight3"]) == (f["weight"], None, None)
    elif stt & S.WEIGHT_STRUCT:
        w = f["weight"]
        assert (o["weight"], o["weight2"], o["weight3"]) == (
            w & 0xFFFFFFFF,
            w >> 32 & 0xFFFF,
            w >> 48,
        )
    else:
        assert o["weight"] is None
    assert o["callchain"] == (f["callchain"] if stt & S.CALLCHAIN else None)
    if stt & S.RAW:
        raw = f["raw"] + b"\0" * (-(4 + len(f["raw"])) % 8)
        assert o["raw"] == raw
    else:
        assert o["raw"] is None
    if stt & S.DATA_SRC:
        d = decode(f["data_src"])
        for k in (
            "mem_op",
            "mem_level",
            "mem_snoop",
            "mem_tlb",
            "mem_lock",
            "mem_blk",
            "mem_remote",
            "mem_hops",
            "mem_lvl_num",
        ):
            assert o[k] == d[k], k
    else:
        assert o["mem_op"] is None and o["mem_hops"] is None
