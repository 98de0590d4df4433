# Run by perf's embedded Python: `perf script -s perf_sample_rows.py -i FILE`, with the
# output path in $SAMPLE_ROWS_OUT.  Writes one CSV row per sample in the order perf
# delivers them (time order; a group leader's sample becomes one row per member): the
# samples.csv oracle of tests/perf_corpus.py.  Standard library only (perf's Python).
#
# Columns whose PERF_SAMPLE_* bit the event did not record are left blank (perf's binding
# hands out 0 for them); the bits are read from the event's raw perf_event_attr, where
# sample_type is the u64 at byte 24.  Tracepoint samples arrive in trace_unhandled: their
# row carries the event fields perf gives (common_*) and, in tp_fields, the whole sample
# dictionary as JSON (bytes as hex).
import csv
import json
import os
import struct

COLUMNS = [
    "seq",
    "event",
    "pid",
    "tid",
    "cpu",
    "time",
    "ip",
    "period",
    "addr",
    "phys_addr",
    "data_src",
    "data_src_decode",
    "weight",
    "transaction",
    "cpumode",
    "comm",
    "dso",
    "symbol",
    "callchain",
    "raw_len",
    "read_values",
    "iregs",
    "uregs",
    "tp_fields",
]

# column -> the PERF_SAMPLE_* bits of which one must be set for perf to have recorded it
NEEDS = {
    "cpu": 1 << 7,
    "time": 1 << 2,
    "addr": 1 << 3,
    "phys_addr": 1 << 19,
    "data_src": 1 << 15,
    "data_src_decode": 1 << 15,
    "weight": (1 << 14) | (1 << 24),
    "transaction": 1 << 17,
    "read_values": 1 << 4,
    "iregs": 1 << 18,
    "uregs": 1 << 12,
    "callchain": 1 << 5,
}
NO_CPU = (4294967295, -1)

_file = open(os.environ.get("SAMPLE_ROWS_OUT", "samples.csv"), "w", newline="")
_out = csv.DictWriter(_file, fieldnames=COLUMNS)
_out.writeheader()
_count = [0]


def _hexnum(v):
    return "" if v is None else "%#x" % v


def _sample_type(attr):
    if not attr or len(attr) < 32:
        return 0
    return struct.unpack_from("<Q", bytes(attr), 24)[0]


def _emit(row, sample_type=None):
    if sample_type is not None:
        for col, bits in NEEDS.items():
            if not sample_type & bits:
                row[col] = ""
    row["seq"] = _count[0]
    _count[0] += 1
    _out.writerow(row)


def process_event(d):
    s = d.get("sample", {})
    values = s.get("values")
    chain = d.get("callchain") or []
    _emit(
        {
            "event": d.get("ev_name", ""),
            "pid": "" if s.get("pid") in NO_CPU else s.get("pid", ""),
            "tid": "" if s.get("tid") in NO_CPU else s.get("tid", ""),
            "cpu": "" if s.get("cpu") in NO_CPU else s.get("cpu", ""),
            "time": s.get("time", ""),
            "ip": _hexnum(s.get("ip")),
            "period": s.get("period", ""),
            "addr": _hexnum(s.get("addr")),
            "phys_addr": _hexnum(s.get("phys_addr")),
            "data_src": _hexnum(s.get("datasrc")),
            "data_src_decode": s.get("datasrc_decode", ""),
            "weight": s.get("weight", ""),
            "transaction": _hexnum(s.get("transaction")),
            "cpumode": s.get("cpumode", ""),
            "comm": d.get("comm", ""),
            "dso": d.get("dso", ""),
            "symbol": d.get("symbol", ""),
            "callchain": ";".join("%#x" % frame.get("ip", 0) for frame in chain),
            "raw_len": len(d.get("raw_buf") or b""),
            "read_values": json.dumps(values) if values else "",
            "iregs": d.get("iregs", ""),
            "uregs": d.get("uregs", ""),
            "tp_fields": "",
        },
        _sample_type(d.get("attr")),
    )


def _plain(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def trace_unhandled(event_name, context, event_fields, sample_dict=None):
    ns = event_fields.get("common_s", 0) * 1000000000 + event_fields.get("common_ns", 0)
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        event=event_name,
        pid=event_fields.get("common_pid", ""),
        cpu=event_fields.get("common_cpu", ""),
        time=ns,
        comm=event_fields.get("common_comm", ""),
        tp_fields=json.dumps(_plain(sample_dict or {}), sort_keys=True, default=str),
    )
    _emit(row)


def trace_end():
    _file.close()
