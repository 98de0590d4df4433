"""`perf script` text → the ``samples`` and ``events`` tables.

For what the native reader cannot decode itself (Arm SPE and other AUX-area data
need perf's own decoder, which synthesizes the samples), tracedamon reads the text
``perf script`` prints. Two entry points:

* :func:`ingest_into` (format ``perf-script``): a text file (gzip-compressed or not)
  written by ``perf script``.
* :func:`ingest_via_perf`: runs the installed ``perf script`` on a perf.data file
  and streams its output through the same parser (``tracedamon ingest --via-perf``).

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
events of that kind that did not record them. :func:`ingest_via_perf` therefore asks
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
:func:`ingest_via_perf` does). Side-band lines (``--show-mmap-events``,
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

import functools
import gzip
import io
import itertools
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from ..errors import InputError, TraceFormatError
from ..schema import EVENTS, SAMPLES, TABLES
from ..schema import empty as _empty
from ..units import parse_bytes

BATCH_ROWS = 1 << 16

RECOMMENDED_FIELDS = ("comm", "pid", "tid", "cpu", "misc", "time", "period", "event", "addr",
                      "data_src", "weight", "ins_lat", "ip", "phys_addr", "data_page_size",
                      "code_page_size")

# perf's -F kinds by attr.type (PERF_TYPE_*); other types have no -F prefix
_KIND = {0: "hw", 1: "sw", 2: "trace", 4: "raw", 5: "break"}

# field → the PERF_SAMPLE_* bit it needs (perf evlist -v names)
_FIELD_BITS = {"cpu": "CPU", "time": "TIME", "period": None, "addr": "ADDR",
               "data_src": "DATA_SRC", "weight": ("WEIGHT", "WEIGHT_STRUCT"),
               "ins_lat": ("WEIGHT_STRUCT",), "ip": "IP", "phys_addr": "PHYS_ADDR",
               "data_page_size": "DATA_PAGE_SIZE", "code_page_size": "CODE_PAGE_SIZE",
               "pid": "TID", "tid": "TID"}

# perf's misc field: cpumode letters (K, U, KUH hypervisor, UG, KUHGg), then flags
# such as M (MMAP_DATA) on side-band lines
_MISC = {"": 0, "K": 1, "U": 2, "KUH": 3, "UG": 6, "KUHGg": 7}


def _cpumode(misc: str) -> int:
    return _MISC.get("".join(c for c in misc if c in "KUHGg"), 0)

_HEAD = re.compile(
    r"^\s*(?:(?P<comm>.*?)\s+)??(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?"
    r"(?:\s+\[(?P<cpu>-?\d+)\])?(?:\s+(?P<misc>[A-Za-z]{1,8}))?"
    r"\s+(?P<sec>\d+)\.(?P<frac>\d{1,9}):(?:\s+|$)(?P<rest>.*)$")
_EVENT = re.compile(r"^(?:(?P<period>\d+)\s+)?(?P<event>\S+?):(?:\s+|$)")
_HEX = re.compile(r"^[0-9a-f]+$")
_DEC = re.compile(r"^\d+$")
_PGSZ = re.compile(r"^(?:N/A|\d+[BKMG])$")
_REG = re.compile(r"^(?:ABI:\d+|[A-Za-z][A-Za-z0-9_]*:0x[0-9a-f]+)$")
_BR = re.compile(r"^0x[0-9a-f]+(?:\([^)]*\))?/0x[0-9a-f]+(?:\([^)]*\))?/")   # from/to[(dso)]
_DECODE_WIDTH = 82
# perf's BLK part: "BLK " then " N/A" (no bit or the NA bit), else " Data" and/or " Addr"
_DECODE_TEXT = (r"\|OP [^|]*\|LVL [^|]*\|SNP [^|]*\|TLB [^|]*\|LCK [^|]*"
                r"\|BLK (?: N/A| Data(?: Addr)?| Addr)")
_DECODE = re.compile(_DECODE_TEXT)
_CALLCHAIN = re.compile(r"^\s+([0-9a-f]+)(?:\s.*)?$")
_WS = re.compile(r"\s*")
_TOKEN = re.compile(r"\s*(\S+)")


@functools.lru_cache(maxsize=64)
def page_size_bytes(name: str) -> int:
    """perf's page-size text (``4K``, ``2M``, ``1024M``, ``N/A``) → bytes (0 for N/A)."""
    return 0 if name == "N/A" else parse_bytes(name, "page size")


class _Bad(Exception):
    """A line that does not parse (message = the problem)."""


# ----------------------------------------------------------------------------------------
# one line


class _Tail:
    """A cursor over the text after the event name."""

    def __init__(self, s: str):
        self.s = s
        self.i = 0

    def ws(self):
        self.i = _WS.match(self.s, self.i).end()

    def peek(self) -> str | None:
        m = _TOKEN.match(self.s, self.i)
        if m is None:
            self.i = len(self.s)
            return None
        self.i = m.start(1)
        return m.group(1)

    def take(self) -> str | None:
        t = self.peek()
        if t is not None:
            self.i += len(t)
        return t

    def done(self) -> bool:
        self.ws()
        return self.i >= len(self.s)

    def rest(self) -> str:
        return self.s[self.i:]


def _symdso(t: _Tail, sym: bool | None, dso: bool | None) -> None:
    """Skip the symbol and ``(dso)`` texts perf prints after an address.
    True = printed, None = maybe (infer), False = not printed."""
    if sym is False and dso is False:
        return
    nxt = t.peek()
    if nxt is not None and sym is not False and _looks_sym(nxt):
        t.take()
        # a symbol may hold blanks (C++): it runs on until a (dso) or a value
        while (nxt := t.peek()) is not None and _looks_sym(nxt):
            t.take()
    nxt = t.peek()
    if nxt is not None and nxt.startswith("(") and dso is not False:
        depth = 0
        s = t.s
        i = t.i
        while i < len(s):
            if s[i] == "(":
                depth += 1
            elif s[i] == ")":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            i += 1
        t.i = i


def _looks_sym(tok: str) -> bool:
    """A token that can be (part of) a symbol name, not a printed value."""
    if tok.startswith(("(", "|OP")):
        return False
    if tok == "[unknown]" or "+0x" in tok:
        return True
    return not (_HEX.match(tok) or _DEC.match(tok) or _PGSZ.match(tok) or _REG.match(tok)
                or _BR.match(tok))


_BLK_CUT = re.compile(r" +(?:N(?:/A?)?|D(?:a(?:ta?)?)?|A(?:d(?:dr?)?)?)")


def _decode_span(t: _Tail) -> None:
    """Skip perf's data_src text (``|OP ...|BLK ...``, cut at 82 characters)."""
    t.ws()
    s, i = t.s, t.i
    if not s.startswith("|OP", i):
        raise _Bad("data_src value without its |OP ...|BLK ... text")
    m = _DECODE.match(s, i)
    cut = i + _DECODE_WIDTH
    if m is None or m.end() > cut:
        t.i = min(cut, len(s))          # perf cut the text before the end of its BLK part
        return
    end = m.end()
    if end < len(s) and not s[end].isspace():
        raise _Bad("unexpected text after the data_src text")
    if cut <= len(s) and _BLK_CUT.fullmatch(s, end, cut) and \
            (cut == len(s) or s[cut].isspace()):
        end = cut                       # a BLK value cut inside a word ("BLK  Data Ad")
    t.i = end


def parse_line(line: str, fields: frozenset | None) -> dict:
    """One sample line → column values; raises _Bad. ``fields``: the -F set or None."""
    m = _HEAD.match(line)
    if not m:
        raise _Bad("no 'pid/tid ... sec.frac:' sample header")
    F = fields
    r: dict = {}
    comm = m["comm"]
    if m["tid"] is not None:
        r["pid"], r["tid"] = int(m["pid"]), int(m["tid"])
    elif F is not None and "pid" in F and "tid" not in F:
        r["pid"] = int(m["pid"])
    else:
        r["tid"] = int(m["pid"])              # perf's default prints the tid alone
    if m["cpu"] is not None and not m["cpu"].startswith("-"):
        r["cpu"] = int(m["cpu"])      # perf prints [-01] where the cpu is unknown
    if m["misc"] is not None:
        r["cpumode"] = _cpumode(m["misc"])
    frac = m["frac"]
    r["time_ns"] = int(m["sec"]) * 1_000_000_000 + int(frac.ljust(9, "0"))
    rest = m["rest"]
    em = _EVENT.match(rest)
    if em and (F is None or "event" in F):
        if em["period"] is not None:
            r["period"] = int(em["period"])
        r["event"] = em["event"]
        rest = rest[em.end():]
    elif F is not None and "event" in F:
        raise _Bad("no event name")
    else:
        pm = re.match(r"^(\d+)\s+", rest) if F is not None and "period" in F else None
        if pm:
            r["period"] = int(pm[1])
            rest = rest[pm.end():]
    if comm is not None:
        r["comm"] = comm
    t = _Tail(rest)
    if F is not None and "trace" in F:
        _parse_after_trace(t, F, r)
    elif F is not None:
        _parse_known(t, F, r)
    else:
        r["_auto_tail"] = rest           # re-read should a callchain follow
        try:
            _parse_auto(t, r)
        except _Bad:
            if ":" not in r.get("event", ""):
                raise
            t.i = len(t.s)       # a tracepoint's text (sys:name events): not parsed
    if not t.done():
        raise _Bad(f"unexpected text {t.rest().strip()[:40]!r}")
    return r


def _hex(t: _Tail, what: str) -> int:
    tok = t.take()
    if tok is None or not _HEX.match(tok):
        raise _Bad(f"expected {what} (hex), found {tok!r}")
    return int(tok, 16)


def _dec(t: _Tail, what: str) -> int:
    tok = t.take()
    if tok is None or not _DEC.match(tok):
        raise _Bad(f"expected {what} (decimal), found {tok!r}")
    return int(tok)


def _pgsz(t: _Tail, what: str) -> int:
    tok = t.take()
    if tok is None or not _PGSZ.match(tok):
        raise _Bad(f"expected {what} (page size), found {tok!r}")
    return page_size_bytes(tok)


def _skip_regs(t: _Tail) -> None:
    while (tok := t.peek()) is not None and _REG.match(tok):
        t.take()


def _skip_br(t: _Tail) -> None:
    while (tok := t.peek()) is not None and _BR.match(tok):
        t.take()


_SIMPLE_AFTER_TRACE = ("addr", "weight", "ins_lat", "ip", "phys_addr", "data_page_size",
                       "code_page_size")


def _parse_after_trace(t: _Tail, F: frozenset, r: dict) -> None:
    """A tracepoint line: perf prints the trace text (free form) first, then the other
    fields; they are found from the end of the line (no sym/dso with trace)."""
    if F & {"sym", "dso", "iregs", "uregs", "brstack"}:
        raise _Bad("with 'trace', sym/dso/regs/brstack cannot be told from the trace text")
    s = t.s
    if "data_src" in F:
        k = s.rfind("|OP ")
        if k < 0:
            raise _Bad("no data_src text")
        head = s[:k].split()
        n_before = 2 if "addr" in F else 1
        if len(head) < n_before:
            raise _Bad("missing fields before the data_src text")
        r["data_src"] = int(head[-1], 16) if _HEX.match(head[-1]) else _bad_hex(head[-1])
        if "addr" in F:
            r["addr"] = int(head[-2], 16) if _HEX.match(head[-2]) else _bad_hex(head[-2])
        t.i = k
        _decode_span(t)
        _parse_known(t, F - {"addr", "data_src"}, r)
        return
    names = [f for f in _SIMPLE_AFTER_TRACE if f in F]
    toks = s.split()
    if len(toks) < len(names):
        raise _Bad("missing fields after the trace text")
    tail = toks[len(toks) - len(names):] if names else []
    sub = _Tail(" ".join(tail))
    _parse_known(sub, frozenset(names), r)
    t.i = len(s)


def _bad_hex(tok: str):
    raise _Bad(f"expected a hex value, found {tok!r}")


def _parse_known(t: _Tail, F: frozenset, r: dict) -> None:
    # the symbol and (dso) after an address are optional whatever -F says: perf
    # prints them only where it resolved a map (the data address of a PEBS sample has
    # none), and prints them unasked when it prints callchains
    sym = dso = None
    if "addr" in F:
        r["addr"] = _hex(t, "addr")
        _symdso(t, sym, dso)
    if "data_src" in F:
        r["data_src"] = _hex(t, "data_src")
        _decode_span(t)
    if "weight" in F:
        r["weight"] = _dec(t, "weight")
    if "ins_lat" in F:
        r["weight2"] = _dec(t, "ins_lat")
        if r["weight2"] > 0xFFFF:
            raise _Bad(f"ins_lat {r['weight2']} does not fit 16 bits")
    if "ip" in F and not t.done():
        r["ip"] = _hex(t, "ip")
        _symdso(t, sym, dso)
    elif "ip" not in F and _unasked_ip(t):
        # perf 6.1 prints the ip with its symbol unasked in some cases (branch-stack
        # samples; DWARF-unwound samples when an event has REGS_USER and STACK_USER)
        r["ip"] = _hex(t, "ip")
        _symdso(t, sym, dso)
    if t.done():
        # the line ends here: with a callchain perf prints it in place of the ip (also
        # when ip was not asked for), then the remaining fields on a line of their own
        rest = F & _AFTER_IP
        if rest:
            r["_tail"] = rest
        return
    _parse_after_ip(t, F, r)


def _unasked_ip(t: _Tail) -> bool:
    """Is the text at the cursor an address followed by a symbol (``[unknown]``,
    ``name+0x..``) or a ``(dso)``?"""
    m = re.match(r"\s*[0-9a-f]+\s+(\S+)", t.s[t.i:])
    return bool(m) and (m[1] == "[unknown]" or "+0x" in m[1] or m[1].startswith("("))


_AFTER_IP = frozenset(("iregs", "uregs", "brstack", "phys_addr", "data_page_size",
                       "code_page_size"))


def _parse_after_ip(t: _Tail, F: frozenset | None, r: dict) -> None:
    """The fields perf prints after the ip; ``F`` None = infer (optional regs and
    branch stack, then an optional phys_addr and up to two page sizes)."""
    if F is None:
        _skip_regs(t)
        _skip_br(t)
        tok = t.peek()
        if tok is not None and _HEX.match(tok):
            r["phys_addr"] = _hex(t, "phys_addr")
        for name in ("data_page_size", "code_page_size"):
            tok = t.peek()
            if tok is not None and _PGSZ.match(tok):
                r[name] = _pgsz(t, name)
        if "data_page_size" in r and "code_page_size" not in r:
            r["_guess"] = True         # one page size: taken as the data page size
        return
    if "iregs" in F or "uregs" in F:
        _skip_regs(t)
    if "brstack" in F:
        _skip_br(t)
    if "phys_addr" in F:
        r["phys_addr"] = _hex(t, "phys_addr")
    if "data_page_size" in F:
        r["data_page_size"] = _pgsz(t, "data_page_size")
    if "code_page_size" in F:
        r["code_page_size"] = _pgsz(t, "code_page_size")


def _parse_auto(t: _Tail, r: dict, no_ip: bool = False) -> None:
    """Infer the fields of a line from its shape (module doc). ``no_ip``: a callchain
    follows the line, printed in place of the ip (so no number on it is the ip)."""
    groups = []          # (kind, value) kind: 'h' hex-with-symbol, 'n' bare number, 'ds'
    pages = []
    while not t.done():
        tok = t.peek()
        if tok.startswith("|OP") and groups and groups[-1][0] == "n":
            k, v = groups.pop()
            groups.append(("ds", int(v, 16)))
            _decode_span(t)
            continue
        if _REG.match(tok):
            _skip_regs(t)
            continue
        if _BR.match(tok):
            _skip_br(t)
            continue
        if _PGSZ.match(tok) and not _HEX.match(tok):
            pages.append(page_size_bytes(t.take()))
            continue
        if pages:
            raise _Bad(f"unexpected {tok!r} after the page sizes")
        if _HEX.match(tok):
            t.take()
            t.ws()
            before = t.i
            _symdso(t, None, None)
            t.ws()
            groups.append(("h" if t.i != before else "n", tok))
            continue
        raise _Bad(f"unexpected {tok!r}")
    if pages:
        r["data_page_size"] = pages[0]
        if len(pages) == 1:
            r["_guess"] = True         # one page size: taken as the data page size
        if len(pages) > 1:
            r["code_page_size"] = pages[1]
        if len(pages) > 2:
            raise _Bad("more than two page sizes")
    kinds = [k for k, _ in groups]
    if "ds" in kinds:
        k = kinds.index("ds")
        r["data_src"] = groups[k][1]
        before, after = groups[:k], groups[k + 1:]
        if len(before) > 1:
            raise _Bad("more than one address before the data_src value")
        if before:
            r["addr"] = int(before[0][1], 16)
    else:
        before, after = [], groups
    # after data_src: [weight] [ins_lat] ip [phys_addr]; symbols mark ip (and addr)
    syms = [i for i, (k, _) in enumerate(after) if k == "h"]
    if not after:
        return
    if no_ip:
        if "ds" not in kinds:
            if len(after) > 1:
                raise _Bad("more than one number before a callchain")
            r["addr"] = int(after[0][1], 16)
            return
        if len(after) > 2 or not all(k == "n" and _DEC.match(v) for k, v in after):
            raise _Bad("cannot tell the numbers apart; give the -F field list")
        r["weight"] = int(after[0][1])
        if len(after) == 2:
            r["weight2"] = int(after[1][1])
        return
    if "ds" not in kinds:
        # no data_src: [addr] ip [phys_addr]
        if syms:
            if len(syms) >= 2:
                if syms[0] != 0:
                    raise _Bad("cannot tell the numbers apart; give the -F field list")
                r["addr"] = int(after[0][1], 16)
                ip_at = syms[1]
                mid = after[1:ip_at]         # weight [ins_lat] between addr and ip
                if len(mid) > 2 or not all(k == "n" and _DEC.match(v) for k, v in mid):
                    raise _Bad("cannot tell the numbers apart; give the -F field list")
                if mid:
                    r["weight"] = int(mid[0][1])
                    if len(mid) == 2:
                        r["weight2"] = int(mid[1][1])
                    else:
                        r["_guess"] = True   # one number: weight (or ins_lat alone)
            else:
                ip_at = syms[0]
                if ip_at == 0:
                    r["_guess"] = True     # one address: the ip (perf's default) or addr
                if ip_at == 1:
                    r["addr"] = int(after[0][1], 16)
                    r["_guess"] = True     # a bare number before the ip: addr or weight
                elif ip_at > 1:
                    raise _Bad("cannot tell the numbers apart; give the -F field list")
        else:
            ip_at = len(after) - 1 if len(after) <= 2 else None
            if ip_at is None:
                raise _Bad("cannot tell the numbers apart; give the -F field list")
            if ip_at == 1:
                r["addr"] = int(after[0][1], 16)
            r["_guess"] = True         # no symbol marks the ip: perf's default shape
        rest = after[ip_at + 1:]
        r["ip"] = int(after[ip_at][1], 16)
        if len(rest) > 1:
            raise _Bad("cannot tell the numbers apart; give the -F field list")
        if rest:
            r["phys_addr"] = int(rest[0][1], 16)
        return
    if syms:
        ip_at = syms[0]
    else:
        n = len(after)
        if n != 4:
            r["_guess"] = True         # no symbol marks the ip among the numbers
        dec = [bool(_DEC.match(v)) for _, v in after]
        if n == 1:
            ip_at = 0
        elif n == 2:
            ip_at = 1 if dec[0] else 0          # weight ip, else ip phys_addr
        elif n == 3:
            ip_at = 1          # weight ip phys_addr (ins_lat is printed only on request)
        elif n == 4:
            ip_at = 2          # weight ins_lat ip phys_addr: the one reading
        else:
            raise _Bad("cannot tell the numbers apart; give the -F field list")
    pre = after[:ip_at]
    if len(pre) > 2 or not all(_DEC.match(v) for _, v in pre):
        raise _Bad("cannot tell the numbers apart; give the -F field list")
    if len(pre) == 1:
        r["_guess"] = True             # one number: weight (or ins_lat alone)
    if pre:
        r["weight"] = int(pre[0][1])
    if len(pre) == 2:
        r["weight2"] = int(pre[1][1])
    r["ip"] = int(after[ip_at][1], 16)
    rest = after[ip_at + 1:]
    if len(rest) > 1 or any(k != "n" for k, _ in rest):
        raise _Bad("cannot tell the numbers apart; give the -F field list")
    if rest:
        r["phys_addr"] = int(rest[0][1], 16)


# ----------------------------------------------------------------------------------------
# batches


_INT_COLS = {"time_ns": np.int64, "pid": np.int32, "tid": np.int32, "cpu": np.int32}
_U64_COLS = ("ip", "addr", "phys_addr", "period", "weight", "data_src", "data_page_size",
             "code_page_size")


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
        from .data_src import decode_column
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
        cols["event"] = pa.DictionaryArray.from_arrays(pa.array(ev_ids, pa.int32()),
                                                       pa.array(names, pa.string()))
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


_FAST_ORDER = ("addr", "data_src", "weight", "ins_lat", "ip", "phys_addr", "data_page_size",
               "code_page_size")
_FAST_PIECE = {"addr": r"\s+(?P<addr>[0-9a-f]+)",
               # the whole data_src text, or its first 82 characters where perf cut it
               "data_src": r"\s+(?P<data_src>[0-9a-f]+) (?P<dec>" + _DECODE_TEXT
                           + r"|\|OP .{78})",
               "weight": r"\s+(?P<weight>\d+)", "ins_lat": r"\s+(?P<weight2>\d+)",
               "ip": r"\s+(?P<ip>[0-9a-f]+)", "phys_addr": r"\s+(?P<phys_addr>[0-9a-f]+)",
               "data_page_size": r"\s+(?P<data_page_size>N/A|\d+[BKMG])",
               "code_page_size": r"\s+(?P<code_page_size>N/A|\d+[BKMG])"}
_FAST_OK = frozenset(("comm", "pid", "tid", "cpu", "misc", "time", "period", "event")
                     + _FAST_ORDER)
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
            continue                  # perf prints [-01] where the cpu is unknown
        else:
            r[k] = int(v)
    if r.get("weight2", 0) > 0xFFFF:
        return None
    if "pid" not in d and "tid" not in d:
        pass
    return r


_KEY_FIELD = {"comm": "comm", "cpu": "cpu", "cpumode": "misc", "time_ns": "time",
              "period": "period", "event": "event", "addr": "addr", "data_src": "data_src",
              "weight": "weight", "weight2": "ins_lat", "ip": "ip", "phys_addr": "phys_addr",
              "data_page_size": "data_page_size", "code_page_size": "code_page_size"}


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


def parse_lines(lines: Iterable[str], *, source, fields=None, skip_bad: bool = False,
                stats: dict | None = None) -> Iterator[list[dict]]:
    """Parse perf script text lines; yields lists of row dicts (≤ BATCH_ROWS each).

    ``source`` names the input in errors. ``stats`` (a dict) receives the counts of
    skipped lines and of side-band lines.
    """
    fields = _norm_fields(fields)
    fast_one = _fast_regex(fields) if isinstance(fields, frozenset) else None
    fast_sets = []
    if isinstance(fields, dict):
        for F in dict.fromkeys(fields.values()):
            rx = _fast_regex(F)
            if rx is not None:
                fast_sets.append((F, rx))
    learned: dict[str, frozenset] = {}       # event → field set inferred from its lines
    learned_rx: list = []
    guessed: set[str] = set()                # events learned from guessed lines
    to_learn = None
    stats = stats if stats is not None else {}
    stats.setdefault("skipped", 0)
    stats.setdefault("sideband_lines", 0)
    rows: list[dict] = []
    last: dict | None = None
    in_stderr = False
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            last = None
            continue
        if in_stderr:
            continue
        if line.startswith("#"):
            if line.strip() == "# stderr:":
                in_stderr = True           # the corpus files append perf's stderr
            continue
        if "PERF_RECORD_" in line:
            stats["sideband_lines"] += 1
            last = None
            sb = stats.get("sideband")
            if sb is not None:
                _sideband_line(line, sb)
            continue
        if last is not None and line[:1] == "\t" and _CALLCHAIN.match(line):
            # a callchain entry: perf prints user-space entries relative to their
            # mapping (e.g. 1ab70 for 0x7f27c15a4b70), so they are not kept
            stats["callchain_lines"] = stats.get("callchain_lines", 0) + 1
            tail = last.pop("_auto_tail", None)
            to_learn = None
            if tail is not None:
                # inferred fields: the callchain stands in for the ip, read again
                for k in ("addr", "data_src", "weight", "weight2", "ip", "phys_addr",
                          "data_page_size", "code_page_size"):
                    last.pop(k, None)
                try:
                    _parse_auto(_Tail(tail), last, no_ip=True)
                except _Bad as e:
                    raise TraceFormatError(source, f"malformed perf script line: {e}",
                                           line=lineno - 1) from None
            continue
        if last is not None:
            last.pop("_auto_tail", None)
        if to_learn is not None:
            _learn(to_learn[0], to_learn[1], learned, learned_rx, guessed)
            to_learn = None
        if last is not None and "ip" not in last and line[:1] == " " \
                and not _HEAD.match(line):
            # the fields after a printed callchain (phys_addr, page sizes, ...)
            try:
                t = _Tail(line)
                _parse_after_ip(t, last.pop("_tail", frozenset()) if fields is not None else None,
                                last)
                if not t.done():
                    raise _Bad(f"unexpected text {t.rest().strip()[:40]!r}")
            except _Bad as e:
                if skip_bad:
                    stats["skipped"] += 1
                    continue
                raise TraceFormatError(source, f"malformed perf script line: {e}: "
                                       f"{line.strip()[:120]!r}", line=lineno) from None
            last = None
            continue
        r = None
        if fields is not None:
            # fast path: one regex for the whole line (falls back to the token parser)
            if isinstance(fields, dict):
                for F in fast_sets:
                    m = F[1].match(line)
                    if m and _fields_for(fields, m["event"]) == F[0]:
                        r = _fast_row(m)
                        break
            elif fast_one is not None:
                m = fast_one.match(line)
                r = _fast_row(m) if m else None
        elif learned:
            # inferred fields: the field set learned from an earlier line of the event
            for F, rx in learned_rx:
                m = rx.match(line)
                if m and learned.get(m["event"]) == F:
                    r = _fast_row(m)
                    if r is not None and m["event"] in guessed:
                        r["_guess"] = True
                    break
        if r is not None:
            rows.append(r)
            last = r
            if len(rows) > BATCH_ROWS:
                yield _clean(rows[:-1], stats)
                rows = rows[-1:]        # its callchain lines may follow
            continue
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
                stats["lines_read_by_shape"] = stats.get("lines_read_by_shape", 0) + 1
        except _Bad as e:
            if skip_bad:
                stats["skipped"] += 1
                last = None
                continue
            raise TraceFormatError(source, f"malformed perf script line: {e}: "
                                   f"{line.strip()[:120]!r}", line=lineno) from None
        if fields is None and "event" in r and r["event"] not in learned:
            to_learn = (line, r)         # once no callchain follows it
        rows.append(r)
        last = r
        if len(rows) > BATCH_ROWS:
            yield _clean(rows[:-1], stats)
            rows = rows[-1:]            # its callchain lines may follow
    if rows:
        yield _clean(rows, stats)


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
    r"(?:([0-9a-f]+):([0-9a-f]+) (\d+) (\d+)|<([0-9a-f]*)>)\]: ([r-])([w-])([x-])([sp]) (.*)$")
_SB_MMAP = re.compile(r"PERF_RECORD_MMAP (-?\d+)/(-?\d+): \[(0x[0-9a-f]+|0)\((0x[0-9a-f]+|0)\) @ "
                      r"(0x[0-9a-f]+|0)\]: ([rx]) (.*)$")
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
        sb["mmaps"].append(dict(
            time_ns=t, pid=int(m[1]), tid=int(m[2]), start=int(m[3], 16), length=int(m[4], 16),
            pgoff=int(m[5], 16), prot=(m[11] == "r") | (m[12] == "w") << 1 | (m[13] == "x") << 2,
            flags=1 if m[14] == "s" else 2, filename=m[15], build_id=bid,
            maj=None if bid is not None else int(m[6], 16),
            min=None if bid is not None else int(m[7], 16),
            ino=None if bid is not None else int(m[8]),
            ino_generation=None if bid is not None else int(m[9]), record_type=10,
            data=None if hm["misc"] is None else "M" in hm["misc"],
            cpumode=None if hm["misc"] is None else _cpumode(hm["misc"])))
    elif m := _SB_MMAP.match(rest):
        sb["mmaps"].append(dict(
            time_ns=t, pid=int(m[1]), tid=int(m[2]), start=int(m[3], 16), length=int(m[4], 16),
            pgoff=int(m[5], 16), filename=m[7], data=m[6] == "r", record_type=1,
            cpumode=None if hm["misc"] is None else _cpumode(hm["misc"])))
    elif m := _SB_COMM.match(rest):
        sb["tasks"].append(dict(time_ns=t, kind="COMM", pid=int(m[3]), tid=int(m[4]),
                                comm=m[2], exec=m[1] is not None))
    elif m := _SB_TASK.match(rest):
        sb["tasks"].append(dict(time_ns=t, kind=m[1], pid=int(m[2]), tid=int(m[3]),
                                ppid=int(m[4]), ptid=int(m[5])))


def _ingest_lines(lines: Iterable[str], writer, *, source, fields=None, skip_bad=False,
                  known_events: list[dict] | None = None) -> dict:
    batcher = _Batcher(e["name"] for e in known_events or ())
    stats: dict = {"sideband": {"mmaps": [], "tasks": []}}
    n = 0
    for rows in parse_lines(lines, source=source, fields=fields, skip_bad=skip_bad,
                            stats=stats):
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
            rows.sort(key=lambda r: r["time_ns"])          # stable: file order on ties
            writer.write(name, pa.Table.from_pylist(rows, schema=TABLES[name]))
    writer.meta["skipped"] = writer.meta.get("skipped", 0) + stats["skipped"]
    writer.meta["perf_script_sideband_lines"] = stats["sideband_lines"]
    writer.meta["perf_script_callchain_lines"] = stats.get("callchain_lines", 0)
    writer.meta["perf_script_lines_read_by_shape"] = stats.get("lines_read_by_shape", 0)
    # lines whose numbers admit several readings (no symbol or data_src text to tell
    # ip, addresses and weights apart): read in perf's usual shape, see the module doc
    writer.meta["perf_script_guessed_lines"] = stats.get("guessed_lines", 0)
    writer.meta["events"] = [{"event_id": i, "name": nm}
                             for i, nm in enumerate(ev.column("name").to_pylist())]
    return stats


def ingest_into(path, writer, *, progress: bool = False, skip_bad: bool = False,
                via_perf: bool = False, fields=None, **opts) -> None:
    """Read perf script text at ``path`` (gzip transparent) into ``writer``.

    ``fields``: the -F field list the text was made with (comma string, list, or
    ``{event name: fields}``); None infers it per line (module doc). A perf.data
    file (or ``via_perf=True``) is decoded by running perf (:func:`ingest_via_perf`).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if via_perf or p.is_dir():
        return ingest_via_perf(p, writer, progress=progress)
    with open(p, "rb") as raw:
        head = raw.read(8)
        if head == b"PERFILE2":
            return ingest_via_perf(p, writer, progress=progress)
        raw.seek(0)
        binary = gzip.GzipFile(fileobj=raw) if head[:2] == b"\x1f\x8b" else raw
        fh = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
        try:
            _ingest_lines(_with_progress(fh, raw, p, progress), writer, source=p,
                          fields=fields, skip_bad=skip_bad)
        except (OSError, EOFError) as e:
            raise TraceFormatError(p, f"unreadable: {e}") from None
    writer.meta["perf_script_fields"] = "auto" if fields is None else "given"


def _with_progress(lines: Iterable[str], raw, path: Path, enabled: bool) -> Iterator[str]:
    """The lines, with a progress bar over the bytes of the file on a terminal."""
    if not enabled:
        yield from lines
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, \
        TimeRemainingColumn
    total = path.stat().st_size
    with Progress(TextColumn(f"{path.name}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("read", total=total)
        for i, line in enumerate(lines):
            if not i & 0xFFFF:
                bar.update(task, completed=raw.tell())
            yield line
        bar.update(task, completed=total)


# ----------------------------------------------------------------------------------------
# running perf


def perf_binary() -> str:
    exe = shutil.which("perf")
    if exe is None:
        raise InputError("the perf binary is not installed (needed by via_perf=True)",
                         cli_message="the perf binary is not installed (needed by --via-perf)")
    return exe


#: fields asked for the samples perf synthesizes from AUX-area data (Arm SPE: ADDR,
#: PHYS_ADDR with pa_enable, DATA_SRC, WEIGHT = total latency)
SYNTH_FIELDS = ("comm", "pid", "tid", "cpu", "time", "period", "event", "addr", "data_src",
                "weight", "ip", "phys_addr")
_AUX_PMU = re.compile(r"^(?:arm_spe|cs_etm|intel_pt|intel_bts)")

_EVLIST = re.compile(r"^(?P<name>.+?): (?P<rest>(?:type|size): .*)$")


def perf_evlist(path, perf: str | None = None) -> list[dict]:
    """``perf evlist -v``: per event its name, type, config, sample_type bits."""
    perf = perf or perf_binary()
    p = subprocess.run([perf, "evlist", "-v", "-i", os.fspath(path)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise InputError(f"{path}: perf evlist failed: {p.stderr.strip()[:300]}")
    out = []
    for line in p.stdout.splitlines():
        m = _EVLIST.match(line)
        if not m:
            continue
        rest = m["rest"]
        typ = re.search(r"(?:^|, )type: (\d+)", rest)          # perf omits zero values
        st = re.search(r"sample_type: ([A-Z_|]+)", rest)
        cfg = re.search(r"config: (0x[0-9a-f]+|\d+)", rest)
        per = re.search(r"\{ sample_period, sample_freq \}: (\d+)", rest)
        out.append(dict(name=m["name"], type=int(typ[1]) if typ else 0,
                        config=int(cfg[1], 0) if cfg else 0,
                        bits=set(st[1].split("|")) if st else set(),
                        period=int(per[1]) if per else None,
                        freq="freq: 1" in rest))
    return out


def fields_for_event(ev: dict) -> list[str]:
    """The recommended fields this event recorded, in perf's print order."""
    bits = ev["bits"]
    out = []
    for f in RECOMMENDED_FIELDS:
        need = _FIELD_BITS.get(f)
        if need is None:
            out.append(f)
        elif isinstance(need, tuple):
            if bits & set(need):
                out.append(f)
        elif need in bits:
            out.append(f)
    if ev["type"] == 2:                     # tracepoints: the fields are text
        out = [f for f in out if f not in ("ip",)]
    return out


def script_command(path, events: list[dict], perf: str,
                   drop: frozenset = frozenset()) -> tuple[list[str], dict]:
    """The perf script command and the field set each event's lines will hold.

    Per perf -F kind (hw, sw, trace, raw, break) the fields common to all events of
    that kind (perf prints one field set per kind and invents values for events that
    did not record a field); events of other types share one list without a prefix.
    """
    by_kind: dict[str, list[dict]] = {}
    for ev in events:
        by_kind.setdefault(_KIND.get(ev["type"], "*"), []).append(ev)
    args = [perf, "script", "-i", os.fspath(path), "--ns", "-G", "--show-task-events",
            "--show-mmap-events"]
    per_event: dict[str, frozenset] = {}
    if "*" in by_kind:
        kinds = {"*": events}            # a dynamic PMU: one list for every event
    else:
        kinds = by_kind
    for kind, evs in kinds.items():
        common = [f for f in fields_for_event(evs[0])
                  if all(f in fields_for_event(e) for e in evs[1:]) and f not in drop]
        spec = ",".join(common)
        args += ["-F", spec if kind == "*" else f"{kind}:{spec}"]
        for e in evs:
            per_event[e["name"]] = frozenset(common)
    if any(_AUX_PMU.match(e["name"]) for e in events) and "hw" not in kinds:
        # an AUX-area PMU (Arm SPE, CoreSight, Intel PT): perf synthesizes the samples
        # while decoding, as PERF_TYPE_HARDWARE events named after the sample kind
        # (l1d-miss, llc-access, memory, ...); ask for the memory fields for them
        synth = [f for f in SYNTH_FIELDS if f not in drop]
        args += ["-F", "hw:" + ",".join(synth)]
        per_event[None] = frozenset(synth)      # names the evlist does not know
    return args, per_event


def ingest_via_perf(perf_data_path, writer, *, progress: bool = False,
                    strict: bool = False, event_names: list[str] | None = None) -> None:
    """Run ``perf script`` on a perf.data file and ingest its text (streamed).

    The fields come from ``perf evlist -v``; should perf still refuse a field ("Cannot
    print 'X' field"), it is dropped and perf run again. ``event_names``: the events'
    names as tracedamon's own header reader gives them (``perf evlist`` shows default
    names on a pipe stream that names its events later, in EVENT_UPDATE records), used
    when there is one per event perf lists. A stream perf reads only up
    to a cut ("unexpected end of event stream") is marked truncated in ``meta.json``,
    with an :class:`~tracedamon.errors.InputWarning` (``strict=True``: refused).
    """
    perf = perf_binary()
    path = Path(perf_data_path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    events = perf_evlist(path, perf)
    if event_names is not None and len(event_names) == len(events):
        for e, nm in zip(events, event_names):
            e["name"] = nm
    dropped: list[str] = []
    args, per_event = script_command(path, events, perf)
    for _attempt in range(8):
        proc, err_chunks, drain = _start(args)
        first = proc.stdout.readline()
        if first:
            break
        proc.wait()
        drain.join()
        err = "".join(err_chunks)
        m = re.search(r"Cannot print '([a-z_]+)' field", err)
        if m and proc.returncode != 0:
            dropped.append(m[1])
            args, per_event = script_command(path, events, perf, frozenset(dropped))
            continue
        if proc.returncode != 0:
            if "data size field is 0" in err:
                msg = (f"{path}: perf script reads nothing from a recording perf record did "
                       "not finish (data size 0 in the header); ingest it without {} to read "
                       "the records it holds")
                raise InputError(msg.format("via_perf=True"),
                                 cli_message=msg.format("--via-perf"))
            raise InputError(f"{path}: perf script failed: {_one_line(err)}")
        break                                  # no output at all: no samples
    else:
        raise InputError(f"{path}: perf script keeps refusing the field list")
    lines = itertools.chain([first], proc.stdout) if first else iter(())
    done = False
    try:
        _ingest_lines(lines, writer, source=f"perf script -i {path}", fields=per_event,
                      known_events=events)
        done = True
    finally:
        if not done and proc.poll() is None:
            proc.kill()                        # our error: stop perf
        proc.stdout.close()
        proc.wait()
        drain.join(timeout=10)
    err = "".join(err_chunks)
    if proc.returncode != 0:
        raise InputError(f"{path}: perf script failed (exit {proc.returncode}): "
                         f"{_one_line(err)}")
    if "unexpected end of event stream" in err:
        # perf read a stream cut inside a record up to its last complete record
        import warnings
        if strict:
            raise TraceFormatError(path, "the record stream ends inside a record (perf "
                                   "script: unexpected end of event stream)")

        from ..errors import InputWarning
        desc = ("the record stream ends inside a record (perf script: \"unexpected end of "
                "event stream\"); perf read it up to its last complete record")
        writer.meta["truncated"] = True
        writer.meta["truncation"] = {"description": desc,
                                     "message": f"{path}: truncated recording: {desc}"}
        warnings.warn(InputWarning(writer.meta["truncation"]["message"]), stacklevel=2)
    writer.meta["perf_script_fields"] = {("(synthesized)" if k is None else k): sorted(v)
                                         for k, v in per_event.items()}
    writer.meta["perf_script_refused_fields"] = dropped
    # fields an event recorded that perf could not print for it (perf prints one
    # field set per event kind: the fields common to the events of that kind)
    writer.meta["perf_script_unprinted_fields"] = {
        e["name"]: sorted(set(fields_for_event(e)) - per_event.get(e["name"], frozenset()))
        for e in events}
    writer.meta["perf_script_command"] = " ".join(args)


def _start(args: list[str]):
    """Start perf with its stderr drained by a thread (so a chatty perf cannot block
    on a full pipe while we read its stdout)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", bufsize=1 << 16)
    chunks: list[str] = []
    drain = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    return proc, chunks, drain


def _one_line(text: str, limit: int = 300) -> str:
    """perf's stderr as one line (errors are one line), at most ``limit`` characters."""
    return " / ".join(ln.strip() for ln in text.strip().splitlines() if ln.strip())[:limit]


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
