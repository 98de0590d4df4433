"""`perf script` text → the ``samples`` and ``events`` tables.

For what the native reader cannot decode itself (Arm SPE and other AUX-area data
need perf's own decoder, which synthesizes the samples), tracedamon reads the text
``perf script`` prints. Two entry points:

* :func:`ingest_into` (format ``perf-script``): a text file (gzip-compressed or not)
  written by ``perf script``.
* :func:`tracedamon.ingest.perf_run.ingest_via_perf`: runs the installed ``perf
  script`` on a perf.data file and streams its output through the same parser
  (``tracedamon ingest --via-perf``).

The field set
-------------
perf prints the fields of a sample in a fixed order whatever the order of ``-F``,
with variable spacing. The parser expects this order (fields in brackets are
optional; each present only if requested and recorded)::

    [comm] [pid/]tid [[cpu]] [misc] sec.frac: [period] [event:] [addr [sym] [(dso)]]
    [data_src |OP ..|LVL ..|SNP ..|TLB ..|LCK ..|BLK ..] [weight] [ins_lat]
    [ip [sym] [(dso)]] [iregs] [uregs] [brstack] [phys_addr] [data_page_size]
    [code_page_size]

The set tracedamon asks for (and recommends to users producing the text
themselves) is :data:`RECOMMENDED_FIELDS`::

    perf script --ns -F comm,pid,tid,cpu,misc,time,period,event,addr,data_src,weight,\
ins_lat,ip,phys_addr,data_page_size,code_page_size

(leave out the fields your recording lacks; perf refuses fields an event did not
record). ``--ns`` gives nanosecond times; without it perf prints microseconds and
the times are scaled. Which fields a line holds is taken from ``fields=`` when
given (a comma list for every event, or ``{event name: list}``); otherwise it is
inferred from the line itself: the data_src text marks data_src, the ``(dso)``
and symbol texts mark addresses, page sizes are names (``4K``, ``2M``, ``N/A``),
and the remaining numbers are assigned in perf's order (addr before data_src;
weight, ins_lat, ip, phys_addr after it). The default ``perf script`` output
(comm, tid, time, period, event, ip, sym, dso) and the corpus files are read this
way. Where a line's numbers admit several readings (no symbol or data_src text to
tell the ip, addresses and weights apart; one page size) the usual perf shape is
taken and the line is counted in ``meta["perf_script_guessed_lines"]``; give
``fields=`` (``tracedamon ingest --script-fields``) for such texts. Once a line of an event
has been read this way, the event's further lines are read with one regular
expression for that field set (the line-by-line inference is the fallback).

``--via-perf``
--------------
perf prints one field set per event *kind* (``-F hw:``, ``sw:``, ``trace:``, ``raw:``;
one list for all when an event has a dynamic PMU type): the fields of the first
event of a kind, with invented values (cpu -1, data_src "none", weight 0) for later
events of that kind that did not record them. :func:`~tracedamon.ingest.perf_run.ingest_via_perf` therefore asks
``perf evlist -v`` what each event recorded and requests, per kind, the fields
common to its events (``meta["perf_script_unprinted_fields"]`` lists what that
leaves out); a field perf still refuses is dropped and perf run again
(``meta["perf_script_refused_fields"]``). For AUX-area PMUs (Arm SPE, CoreSight,
Intel PT) it also asks memory fields for the samples perf synthesizes while decoding
(PERF_TYPE_HARDWARE events named after the sample kind); that path is untested on
real SPE data here.

Callchains printed on the lines under a sample (perf script without ``-G``) are
skipped and counted (``meta["perf_script_callchain_lines"]``): perf prints user-space
entries relative to their mapping, not as addresses, and prints them *instead of*
the ``ip`` field, so such samples have a null ``ip`` (use ``-G``, as
:func:`~tracedamon.ingest.perf_run.ingest_via_perf` does). Side-band lines (``--show-mmap-events``,
``--show-task-events``: PERF_RECORD_MMAP/MMAP2/COMM/FORK/EXIT) fill the ``mmaps`` and
``tasks`` tables with what they show; other ``PERF_RECORD_*`` lines, comments and the
``# stderr`` tail are skipped. The data_src text perf prints is cut at 82
characters, so the decoded ``mem_*`` columns are computed from the raw value (the
same decoder as the native reader). Text carries no file offsets, stream ids,
transactions or raw payloads: those columns are null; ``cpumode``/``misc`` come from
perf's ``misc`` field when printed (else 0 = unknown).

Malformed lines raise :class:`~tracedamon.errors.TraceFormatError` naming the file and
line; with ``skip_bad=True`` they are skipped and counted in
``writer.meta["skipped"]``. Rows are written in batches of :data:`BATCH_ROWS`, each
sorted by time (stable; perf script's own output is ordered per flush round only),
so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from ..errors import InputError, TraceFormatError
from ..schema import EVENTS, SAMPLES, TABLES
from ..schema import empty as _empty
from .detect import GZIP_MAGIC, raw_head
from .perf_script_line import (
    _CALLCHAIN,
    _DECODE_TEXT,
    _DECODE_WIDTH,
    _EVENT,
    _HEAD,
    _Bad,
    _cpumode,
    _parse_after_ip,
    _parse_auto,
    _Tail,
    page_size_bytes,
    parse_line,
)
from .perf_script_line import RECOMMENDED_FIELDS  # noqa: F401  (documented here)
from .progress import callback
from .data_src import decode_column

BATCH_ROWS = 1 << 16


# ----------------------------------------------------------------------------------------
# batches


_INT_COLS = {"time_ns": np.int64, "pid": np.int32, "tid": np.int32, "cpu": np.int32}
_U64_COLS = (
    "ip",
    "addr",
    "phys_addr",
    "period",
    "weight",
    "data_src",
    "data_page_size",
    "code_page_size",
)


class _Batcher:
    def __init__(self, names: Iterable[str] = ()):
        self.events: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        for nm in names:
            if nm not in self.events:
                self.events[nm] = len(self.events)
                self.counts[nm] = 0

    def event_id(self, name: str) -> int:
        i = self.events.get(name)
        if i is None:
            i = self.events[name] = len(self.events)
            self.counts[name] = 0
        self.counts[name] += 1
        return i

    def table(self, rows: list[dict]) -> pa.Table:
        n = len(rows)
        cols: dict[str, pa.Array] = {}

        def col(name, typ):
            vals = [r.get(name) for r in rows]
            return pa.array(vals, type=typ)

        for name, dt in _INT_COLS.items():
            cols[name] = col(name, pa.from_numpy_dtype(dt))
        for name in _U64_COLS:
            cols[name] = col(name, pa.uint64())
        cols["weight2"] = col("weight2", pa.uint16())
        ev_ids = [r["event_id"] for r in rows]
        cols["event_id"] = pa.array(ev_ids, pa.int32())
        names = sorted(self.events, key=self.events.get)
        cols["event"] = pa.DictionaryArray.from_arrays(
            pa.array(ev_ids, pa.int32()), pa.array(names, pa.string())
        )
        ds = cols["data_src"]
        valid = np.asarray(ds.is_valid())
        raw = np.asarray(ds.fill_null(0), dtype=np.uint64)
        if valid.any():
            cols.update(decode_column(raw, valid))
        cm = [r.get("cpumode", 0) for r in rows]
        cols["cpumode"] = pa.array(cm, pa.uint8())
        cols["misc"] = pa.array(cm, pa.uint16())
        cols["callchain"] = pa.array([r.get("callchain") for r in rows], pa.list_(pa.uint64()))
        out = []
        for f in SAMPLES:
            if f.name in cols:
                a = cols[f.name]
                if not a.type.equals(f.type):
                    a = a.cast(f.type)
                out.append(a)
            else:
                out.append(pa.nulls(n, f.type))
        return pa.Table.from_arrays(out, schema=SAMPLES)

    def events_table(self) -> pa.Table:
        names = sorted(self.events, key=self.events.get)
        d = {f.name: pa.nulls(len(names), f.type) for f in EVENTS}
        d["event_id"] = pa.array(range(len(names)), pa.int32())
        d["name"] = pa.array(names, pa.string())
        d["nr_samples"] = pa.array([self.counts[n] for n in names], pa.int64())
        return pa.Table.from_arrays([d[f.name] for f in EVENTS], schema=EVENTS)


def _fields_for(fields, event: str | None) -> frozenset | None:
    """The field set of ``event``'s lines: ``fields`` may map names to sets, with
    the key None for events it does not name; None = infer from the line."""
    if isinstance(fields, dict):
        return fields.get(event, fields.get(None))
    return fields


def _norm_fields(fields):
    if fields is None:
        return None
    if isinstance(fields, dict):
        return {k: _norm_fields(v) for k, v in fields.items() if v is not None}
    if isinstance(fields, str):
        fields = fields.split(",")
    return frozenset(f.strip().lstrip("+") for f in fields if f.strip())


_FAST_ORDER = (
    "addr",
    "data_src",
    "weight",
    "ins_lat",
    "ip",
    "phys_addr",
    "data_page_size",
    "code_page_size",
)
_FAST_PIECE = {
    "addr": r"\s+(?P<addr>[0-9a-f]+)",
    # the whole data_src text, or its first 82 characters where perf cut it
    "data_src": r"\s+(?P<data_src>[0-9a-f]+) (?P<dec>" + _DECODE_TEXT + r"|\|OP .{78})",
    "weight": r"\s+(?P<weight>\d+)",
    "ins_lat": r"\s+(?P<weight2>\d+)",
    "ip": r"\s+(?P<ip>[0-9a-f]+)",
    "phys_addr": r"\s+(?P<phys_addr>[0-9a-f]+)",
    "data_page_size": r"\s+(?P<data_page_size>N/A|\d+[BKMG])",
    "code_page_size": r"\s+(?P<code_page_size>N/A|\d+[BKMG])",
}
_FAST_OK = frozenset(("comm", "pid", "tid", "cpu", "misc", "time", "period", "event") + _FAST_ORDER)
_fast_cache: dict = {}


def _fast_regex(F: frozenset):
    """One regex for a whole line of field set F (None when F needs the token parser:
    symbols, dsos, registers, branch stacks, trace text, no time/event)."""
    if F in _fast_cache:
        return _fast_cache[F]
    rx = None
    if F <= _FAST_OK and {"time", "event"} <= F:
        p = r"^\s*"
        if "comm" in F:
            p += r"(?P<comm>.*?)\s+"
        if "pid" in F and "tid" in F:
            p += r"(?P<pid>-?\d+)/(?P<tid>-?\d+)"
        elif "pid" in F:
            p += r"(?P<pid>-?\d+)"
        elif "tid" in F:
            p += r"(?P<tid>-?\d+)"
        if "cpu" in F:
            p += r"\s+\[(?P<cpu>-?\d+)\]"
        if "misc" in F:
            p += r"(?:\s+(?P<misc>[A-Za-z]{1,8}))?"
        p += r"\s+(?P<sec>\d+)\.(?P<frac>\d{1,9}):"
        if "period" in F:
            p += r"\s+(?P<period>\d+)"
        p += r"\s+(?P<event>\S+?):"
        for f in _FAST_ORDER:
            if f in F:
                p += _FAST_PIECE[f]
        p += r"\s*$"
        rx = re.compile(p)
    _fast_cache[F] = rx
    return rx


def _fast_row(m) -> dict | None:
    d = m.groupdict()
    dec = d.pop("dec", None)
    if dec is not None and len(dec) > _DECODE_WIDTH:
        return None
    if d["sec"] is not None:
        d["time_ns"] = int(d.pop("sec")) * 1_000_000_000 + int(d.pop("frac").ljust(9, "0"))
    r = {}
    for k, v in d.items():
        if v is None:
            continue
        if k in ("addr", "data_src", "ip", "phys_addr"):
            r[k] = int(v, 16)
        elif k in ("data_page_size", "code_page_size"):
            r[k] = page_size_bytes(v)
        elif k == "misc":
            r["cpumode"] = _cpumode(v)
        elif k in ("comm", "event"):
            r[k] = v
        elif k == "cpu" and v.startswith("-"):
            continue  # perf prints [-01] where the cpu is unknown
        else:
            r[k] = int(v)
    if r.get("weight2", 0) > 0xFFFF:
        return None
    if "pid" not in d and "tid" not in d:
        pass
    return r


_KEY_FIELD = {
    "comm": "comm",
    "cpu": "cpu",
    "cpumode": "misc",
    "time_ns": "time",
    "period": "period",
    "event": "event",
    "addr": "addr",
    "data_src": "data_src",
    "weight": "weight",
    "weight2": "ins_lat",
    "ip": "ip",
    "phys_addr": "phys_addr",
    "data_page_size": "data_page_size",
    "code_page_size": "code_page_size",
}


def _learn(line: str, r: dict, learned: dict, learned_rx: list, guessed: set) -> None:
    """Remember the field set an inferred line of an event had, if the one-regex parser
    reads that line to the same values (no symbols, dsos or registers on it)."""
    vals = {k: v for k, v in r.items() if not k.startswith("_")}
    F = {_KEY_FIELD[k] for k in vals if k in _KEY_FIELD}
    F |= {"pid", "tid"} if "pid" in r and "tid" in r else {"pid"} if "pid" in r else {"tid"}
    F = frozenset(F)
    rx = _fast_regex(F)
    if rx is None:
        return
    m = rx.match(line)
    if m is None or _fast_row(m) != vals:
        return
    learned[r["event"]] = F
    if r.get("_guess"):
        guessed.add(r["event"])
    if all(F != f for f, _ in learned_rx):
        learned_rx.append((F, rx))


def parse_lines(
    lines: Iterable[str], *, source, fields=None, skip_bad: bool = False, stats: dict | None = None
) -> Iterator[list[dict]]:
    """Parse perf script text lines; yields lists of row dicts (≤ BATCH_ROWS each).

    ``source`` names the input in errors. ``stats`` (a dict) receives the counts of
    skipped lines and of side-band lines.
    """
    stats = stats if stats is not None else {}
    stats.setdefault("skipped", 0)
    stats.setdefault("sideband_lines", 0)
    row = _LineReader(fields, source, skip_bad, stats).row
    rows: list[dict] = []
    for lineno, line in enumerate(lines, 1):
        r = row(line, lineno)
        if r is not None:
            rows.append(r)
            if len(rows) > BATCH_ROWS:
                yield _clean(rows[:-1], stats)
                rows = rows[-1:]  # its callchain lines may follow
    if rows:
        yield _clean(rows, stats)


#: the fields read from a sample line's tail by its shape, read again when a callchain
#: follows it (the callchain stands in for the ip)
_AUTO_FIELDS = (
    "addr",
    "data_src",
    "weight",
    "weight2",
    "ip",
    "phys_addr",
    "data_page_size",
    "code_page_size",
)


class _LineReader:
    """The line grammar of perf script's output: a sample line starts a row; callchain
    lines and the fields printed after a callchain continue the last row; comments,
    perf's appended stderr and side-band (PERF_RECORD_*) lines make no row.

    ``fields``: the -F field list (see :func:`_norm_fields`), or None to infer each
    event's fields from the shape of its lines (learned once a line of the event has
    been read, for the one-regex fast path)."""

    def __init__(self, fields, source, skip_bad: bool, stats: dict):
        self.fields = fields = _norm_fields(fields)
        self.source = source
        self.skip_bad = skip_bad
        self.stats = stats
        self.fast_one = _fast_regex(fields) if isinstance(fields, frozenset) else None
        self.fast_sets = []
        if isinstance(fields, dict):
            for F in dict.fromkeys(fields.values()):
                rx = _fast_regex(F)
                if rx is not None:
                    self.fast_sets.append((F, rx))
        self.learned: dict[str, frozenset] = {}  # event → field set inferred from its lines
        self.learned_rx: list = []
        self.guessed: set[str] = set()  # events learned from guessed lines
        self.to_learn = None  # (line, row) learned from once no callchain follows it
        self.last: dict | None = None  # the row later lines may continue
        self.in_stderr = False

    def row(self, line: str, lineno: int) -> dict | None:
        """The row a sample line starts, else None (the line continues the last row,
        makes none, or is skipped)."""
        line = line.rstrip("\n")
        if not line.strip():
            self.last = None
            return None
        if self.in_stderr:
            return None
        if line[:1] == "#" or "PERF_RECORD_" in line:
            self._no_row(line)
            return None
        last = self.last
        if last is not None and line[:1] == "\t" and _CALLCHAIN.match(line):
            self._callchain_line(last, lineno)
            return None
        if last is not None:
            last.pop("_auto_tail", None)
        if self.to_learn is not None:
            _learn(*self.to_learn, self.learned, self.learned_rx, self.guessed)
            self.to_learn = None
        if last is not None and "ip" not in last and line[:1] == " " and not _HEAD.match(line):
            self._after_callchain(last, line, lineno)
            return None
        r = self._matched_row(line)
        if r is None:
            r = self._parsed_row(line, lineno)
            if r is None:
                return None
        self.last = r
        return r

    def _no_row(self, line: str) -> None:
        """A comment (or the start of perf's stderr) or a side-band line."""
        if line.startswith("#"):
            if line.strip() == "# stderr:":
                self.in_stderr = True  # the corpus files append perf's stderr
            return
        self.stats["sideband_lines"] += 1
        self.last = None
        sb = self.stats.get("sideband")
        if sb is not None:
            _sideband_line(line, sb)

    def _callchain_line(self, last: dict, lineno: int) -> None:
        """A callchain entry: perf prints user-space entries relative to their mapping
        (e.g. 1ab70 for 0x7f27c15a4b70), so they are not kept."""
        self.stats["callchain_lines"] = self.stats.get("callchain_lines", 0) + 1
        tail = last.pop("_auto_tail", None)
        self.to_learn = None
        if tail is not None:
            # inferred fields: the callchain stands in for the ip, read again
            for k in _AUTO_FIELDS:
                last.pop(k, None)
            try:
                _parse_auto(_Tail(tail), last, no_ip=True)
            except _Bad as e:
                raise TraceFormatError(
                    self.source, f"malformed perf script line: {e}", line=lineno - 1
                ) from None

    def _after_callchain(self, last: dict, line: str, lineno: int) -> None:
        """The fields printed after a callchain (phys_addr, page sizes, ...)."""
        try:
            t = _Tail(line)
            _parse_after_ip(
                t, last.pop("_tail", frozenset()) if self.fields is not None else None, last
            )
            if not t.done():
                raise _Bad(f"unexpected text {t.rest().strip()[:40]!r}")
        except _Bad as e:
            if self.skip_bad:
                self.stats["skipped"] += 1
                return
            raise TraceFormatError(
                self.source,
                f"malformed perf script line: {e}: {line.strip()[:120]!r}",
                line=lineno,
            ) from None
        self.last = None

    def _matched_row(self, line: str) -> dict | None:
        """The fast path: one regex for the whole line (of the -F field set, or of the
        set learned from the event's earlier lines); None when it does not match."""
        fields = self.fields
        if fields is not None:
            if isinstance(fields, dict):
                for F in self.fast_sets:
                    m = F[1].match(line)
                    if m and _fields_for(fields, m["event"]) == F[0]:
                        return _fast_row(m)
            elif self.fast_one is not None:
                m = self.fast_one.match(line)
                return _fast_row(m) if m else None
        elif self.learned:
            for F, rx in self.learned_rx:
                m = rx.match(line)
                if m and self.learned.get(m["event"]) == F:
                    r = _fast_row(m)
                    if r is not None and m["event"] in self.guessed:
                        r["_guess"] = True
                    return r
        return None

    def _parsed_row(self, line: str, lineno: int) -> dict | None:
        """The token parser (:func:`parse_line`); None for a bad line skipped."""
        fields = self.fields
        try:
            ev = None
            if isinstance(fields, dict):
                hm = _HEAD.match(line)
                em = _EVENT.match(hm["rest"]) if hm else None
                ev = em["event"] if em else None
            F = _fields_for(fields, ev)
            try:
                r = parse_line(line, F)
            except _Bad:
                if F is None:
                    raise
                # perf sometimes prints more than -F asked (e.g. the ip and symbol of
                # branch-stack samples): read such a line by its shape instead
                r = parse_line(line, None)
                self.stats["lines_read_by_shape"] = self.stats.get("lines_read_by_shape", 0) + 1
        except _Bad as e:
            if self.skip_bad:
                self.stats["skipped"] += 1
                self.last = None
                return None
            raise TraceFormatError(
                self.source,
                f"malformed perf script line: {e}: {line.strip()[:120]!r}",
                line=lineno,
            ) from None
        if fields is None and "event" in r and r["event"] not in self.learned:
            self.to_learn = (line, r)  # once no callchain follows it
        return r


def _clean(rows: list[dict], stats: dict) -> list[dict]:
    """Drop the parser's private keys (pending re-reads) from finished rows; count the
    rows whose fields were guessed among several readings."""
    for r in rows:
        r.pop("_tail", None)
        r.pop("_auto_tail", None)
        if r.pop("_guess", False):
            stats["guessed_lines"] = stats.get("guessed_lines", 0) + 1
    return rows


def _write_rows(writer, batcher: _Batcher, rows: list[dict]) -> None:
    # perf script's output is time-ordered per round only: sort each batch (stable)
    rows.sort(key=lambda r: r["time_ns"])
    for r in rows:
        r["event_id"] = batcher.event_id(r.get("event") or "unknown")
    writer.write("samples", batcher.table(rows))


_SB_MMAP2 = re.compile(
    r"PERF_RECORD_MMAP2 (-?\d+)/(-?\d+): \[(0x[0-9a-f]+|0)\((0x[0-9a-f]+|0)\) @ (0x[0-9a-f]+|0) "
    r"(?:([0-9a-f]+):([0-9a-f]+) (\d+) (\d+)|<([0-9a-f]*)>)\]: ([r-])([w-])([x-])([sp]) (.*)$"
)
_SB_MMAP = re.compile(
    r"PERF_RECORD_MMAP (-?\d+)/(-?\d+): \[(0x[0-9a-f]+|0)\((0x[0-9a-f]+|0)\) @ "
    r"(0x[0-9a-f]+|0)\]: ([rx]) (.*)$"
)
_SB_COMM = re.compile(r"PERF_RECORD_COMM( exec)?: (.*):(-?\d+)/(-?\d+)$")
_SB_TASK = re.compile(r"PERF_RECORD_(FORK|EXIT)\((-?\d+):(-?\d+)\):\((-?\d+):(-?\d+)\)$")


def _sideband_line(line: str, sb: dict) -> None:
    """PERF_RECORD_MMAP/MMAP2/COMM/FORK/EXIT lines (--show-mmap-events,
    --show-task-events) → ``mmaps`` / ``tasks`` rows. What the text does not show is
    null (MMAP2's ``data`` and ``cpumode`` without perf's misc field); of the mapping
    flags only shared (1, MAP_SHARED) or private (2, MAP_PRIVATE) is known."""
    hm = _HEAD.match(line)
    if not hm:
        return
    t = int(hm["sec"]) * 1_000_000_000 + int(hm["frac"].ljust(9, "0"))
    rest = hm["rest"].rstrip()
    if m := _SB_MMAP2.match(rest):
        bid = m[10]
        sb["mmaps"].append(
            dict(
                time_ns=t,
                pid=int(m[1]),
                tid=int(m[2]),
                start=int(m[3], 16),
                length=int(m[4], 16),
                pgoff=int(m[5], 16),
                prot=(m[11] == "r") | (m[12] == "w") << 1 | (m[13] == "x") << 2,
                flags=1 if m[14] == "s" else 2,
                filename=m[15],
                build_id=bid,
                maj=None if bid is not None else int(m[6], 16),
                min=None if bid is not None else int(m[7], 16),
                ino=None if bid is not None else int(m[8]),
                ino_generation=None if bid is not None else int(m[9]),
                record_type=10,
                data=None if hm["misc"] is None else "M" in hm["misc"],
                cpumode=None if hm["misc"] is None else _cpumode(hm["misc"]),
            )
        )
    elif m := _SB_MMAP.match(rest):
        sb["mmaps"].append(
            dict(
                time_ns=t,
                pid=int(m[1]),
                tid=int(m[2]),
                start=int(m[3], 16),
                length=int(m[4], 16),
                pgoff=int(m[5], 16),
                filename=m[7],
                data=m[6] == "r",
                record_type=1,
                cpumode=None if hm["misc"] is None else _cpumode(hm["misc"]),
            )
        )
    elif m := _SB_COMM.match(rest):
        sb["tasks"].append(
            dict(
                time_ns=t,
                kind="COMM",
                pid=int(m[3]),
                tid=int(m[4]),
                comm=m[2],
                exec=m[1] is not None,
            )
        )
    elif m := _SB_TASK.match(rest):
        sb["tasks"].append(
            dict(time_ns=t, kind=m[1], pid=int(m[2]), tid=int(m[3]), ppid=int(m[4]), ptid=int(m[5]))
        )


def _ingest_lines(
    lines: Iterable[str],
    writer,
    *,
    source,
    fields=None,
    skip_bad=False,
    known_events: list[dict] | None = None,
) -> dict:
    batcher = _Batcher(e["name"] for e in known_events or ())
    stats: dict = {"sideband": {"mmaps": [], "tasks": []}}
    n = 0
    for rows in parse_lines(lines, source=source, fields=fields, skip_bad=skip_bad, stats=stats):
        _write_rows(writer, batcher, rows)
        n += len(rows)
    if n == 0:
        writer.write("samples", _empty(SAMPLES))
    ev = batcher.events_table()
    if known_events:
        ev = _with_evlist(ev, known_events)
    writer.write("events", ev)
    for name, rows in stats.pop("sideband").items():
        if rows:
            rows.sort(key=lambda r: r["time_ns"])  # stable: file order on ties
            writer.write(name, pa.Table.from_pylist(rows, schema=TABLES[name]))
    writer.meta["skipped"] = writer.meta.get("skipped", 0) + stats["skipped"]
    writer.meta["perf_script_sideband_lines"] = stats["sideband_lines"]
    writer.meta["perf_script_callchain_lines"] = stats.get("callchain_lines", 0)
    writer.meta["perf_script_lines_read_by_shape"] = stats.get("lines_read_by_shape", 0)
    # lines whose numbers admit several readings (no symbol or data_src text to tell
    # ip, addresses and weights apart): read in perf's usual shape, see the module doc
    writer.meta["perf_script_guessed_lines"] = stats.get("guessed_lines", 0)
    writer.meta["events"] = [
        {"event_id": i, "name": nm} for i, nm in enumerate(ev.column("name").to_pylist())
    ]
    return stats


def ingest_into(
    path, writer, *, progress=None, skip_bad: bool = False, fields=None, **opts
) -> None:
    """Read perf script text at ``path`` (gzip transparent) into ``writer``.

    ``fields``: the -F field list the text was made with (comma string, list, or
    ``{event name: fields}``); None infers it per line (module doc). A perf.data is
    not text: :mod:`tracedamon.ingest.perf_run` runs perf on it (the caller, the
    pipeline, picks that reader). ``progress(done, total, what)``: bytes of the file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    with open(p, "rb") as raw:
        binary = gzip.GzipFile(fileobj=raw) if raw_head(p, 2) == GZIP_MAGIC else raw
        fh = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
        try:
            _ingest_lines(
                _with_progress(fh, raw, p, callback(progress)),
                writer,
                source=p,
                fields=fields,
                skip_bad=skip_bad,
            )
        except (OSError, EOFError, zlib.error) as e:  # zlib: a corrupt gzip stream
            raise TraceFormatError(p, f"unreadable: {e}") from None
    writer.meta["perf_script_fields"] = "auto" if fields is None else "given"


def _with_progress(lines: Iterable[str], raw, path: Path, progress) -> Iterator[str]:
    """The lines, reporting the bytes of the file read to ``progress`` now and then."""
    if progress is None:
        yield from lines
        return
    total = path.stat().st_size
    for i, line in enumerate(lines):
        if not i & 0xFFFF:
            progress(raw.tell(), total, path.name)
        yield line
    progress(total, total, path.name)


def _with_evlist(seen: pa.Table, events: list[dict]) -> pa.Table:
    """The events table of a --via-perf run: perf evlist's facts for the recorded
    events (the first rows, ids in evlist order), names only for events the text
    alone showed (synthesized ones, e.g. Arm SPE's)."""
    rows = seen.to_pylist()
    for r, e in zip(rows, events):
        r.update(type=e["type"], config=e["config"], freq=e["freq"])
        if e["period"] is not None:
            r["sample_freq" if e["freq"] else "sample_period"] = e["period"]
    return pa.Table.from_pylist(rows, schema=EVENTS)
