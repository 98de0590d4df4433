"""One line of `perf script` text → a dict of sample fields.

The grammar (the fields' fixed order, the ``-F`` list given or inferred) is
described in :mod:`tracedamon.ingest.perf_script`, which batches the rows.
"""

from __future__ import annotations

import functools
import re


from ..units import parse_bytes

RECOMMENDED_FIELDS = (
    "comm",
    "pid",
    "tid",
    "cpu",
    "misc",
    "time",
    "period",
    "event",
    "addr",
    "data_src",
    "weight",
    "ins_lat",
    "ip",
    "phys_addr",
    "data_page_size",
    "code_page_size",
)

# perf's -F kinds by attr.type (PERF_TYPE_*); other types have no -F prefix
_KIND = {0: "hw", 1: "sw", 2: "trace", 4: "raw", 5: "break"}

# field → the PERF_SAMPLE_* bit it needs (perf evlist -v names)
_FIELD_BITS = {
    "cpu": "CPU",
    "time": "TIME",
    "period": None,
    "addr": "ADDR",
    "data_src": "DATA_SRC",
    "weight": ("WEIGHT", "WEIGHT_STRUCT"),
    "ins_lat": ("WEIGHT_STRUCT",),
    "ip": "IP",
    "phys_addr": "PHYS_ADDR",
    "data_page_size": "DATA_PAGE_SIZE",
    "code_page_size": "CODE_PAGE_SIZE",
    "pid": "TID",
    "tid": "TID",
}

# perf's misc field: cpumode letters (K, U, KUH hypervisor, UG, KUHGg), then flags
# such as M (MMAP_DATA) on side-band lines
_MISC = {"": 0, "K": 1, "U": 2, "KUH": 3, "UG": 6, "KUHGg": 7}


def _cpumode(misc: str) -> int:
    return _MISC.get("".join(c for c in misc if c in "KUHGg"), 0)


_HEAD = re.compile(
    r"^\s*(?:(?P<comm>.*?)\s+)??(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?"
    r"(?:\s+\[(?P<cpu>-?\d+)\])?(?:\s+(?P<misc>[A-Za-z]{1,8}))?"
    r"\s+(?P<sec>\d+)\.(?P<frac>\d{1,9}):(?:\s+|$)(?P<rest>.*)$"
)
_EVENT = re.compile(r"^(?:(?P<period>\d+)\s+)?(?P<event>\S+?):(?:\s+|$)")
_HEX = re.compile(r"^[0-9a-f]+$")
_DEC = re.compile(r"^\d+$")
_PGSZ = re.compile(r"^(?:N/A|\d+[BKMG])$")
_REG = re.compile(r"^(?:ABI:\d+|[A-Za-z][A-Za-z0-9_]*:0x[0-9a-f]+)$")
_BR = re.compile(r"^0x[0-9a-f]+(?:\([^)]*\))?/0x[0-9a-f]+(?:\([^)]*\))?/")  # from/to[(dso)]
_DECODE_WIDTH = 82
# perf's BLK part: "BLK " then " N/A" (no bit or the NA bit), else " Data" and/or " Addr"
_DECODE_TEXT = (
    r"\|OP [^|]*\|LVL [^|]*\|SNP [^|]*\|TLB [^|]*\|LCK [^|]*"
    r"\|BLK (?: N/A| Data(?: Addr)?| Addr)"
)
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
        return self.s[self.i :]


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
    return not (
        _HEX.match(tok) or _DEC.match(tok) or _PGSZ.match(tok) or _REG.match(tok) or _BR.match(tok)
    )


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
        t.i = min(cut, len(s))  # perf cut the text before the end of its BLK part
        return
    end = m.end()
    if end < len(s) and not s[end].isspace():
        raise _Bad("unexpected text after the data_src text")
    if cut <= len(s) and _BLK_CUT.fullmatch(s, end, cut) and (cut == len(s) or s[cut].isspace()):
        end = cut  # a BLK value cut inside a word ("BLK  Data Ad")
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
        r["tid"] = int(m["pid"])  # perf's default prints the tid alone
    if m["cpu"] is not None and not m["cpu"].startswith("-"):
        r["cpu"] = int(m["cpu"])  # perf prints [-01] where the cpu is unknown
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
        rest = rest[em.end() :]
    elif F is not None and "event" in F:
        raise _Bad("no event name")
    else:
        pm = re.match(r"^(\d+)\s+", rest) if F is not None and "period" in F else None
        if pm:
            r["period"] = int(pm[1])
            rest = rest[pm.end() :]
    if comm is not None:
        r["comm"] = comm
    t = _Tail(rest)
    if F is not None and "trace" in F:
        _parse_after_trace(t, F, r)
    elif F is not None:
        _parse_known(t, F, r)
    else:
        r["_auto_tail"] = rest  # re-read should a callchain follow
        try:
            _parse_auto(t, r)
        except _Bad:
            if ":" not in r.get("event", ""):
                raise
            t.i = len(t.s)  # a tracepoint's text (sys:name events): not parsed
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


_SIMPLE_AFTER_TRACE = (
    "addr",
    "weight",
    "ins_lat",
    "ip",
    "phys_addr",
    "data_page_size",
    "code_page_size",
)


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
    tail = toks[len(toks) - len(names) :] if names else []
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
    m = re.match(r"\s*[0-9a-f]+\s+(\S+)", t.s[t.i :])
    return bool(m) and (m[1] == "[unknown]" or "+0x" in m[1] or m[1].startswith("("))


_AFTER_IP = frozenset(
    ("iregs", "uregs", "brstack", "phys_addr", "data_page_size", "code_page_size")
)


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
            r["_guess"] = True  # one page size: taken as the data page size
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
    groups, pages = _number_groups(t)
    _page_sizes(pages, r)
    has_ds, after = _split_at_data_src(groups, r)
    if not after:
        return
    if no_ip:
        _numbers_before_callchain(after, has_ds, r)
    elif not has_ds:
        _numbers_without_data_src(after, r)
    else:
        _numbers_after_data_src(after, r)


_AMBIGUOUS = "cannot tell the numbers apart; give the -F field list"


def _number_groups(t: _Tail) -> tuple[list, list]:
    """The tokens of the tail by kind: ``groups`` of (kind, text) where kind is 'h' (a
    hex number a symbol follows), 'n' (a bare number) or 'ds' (a data_src value with its
    decoding; the value as an int), and the page sizes in bytes; register and branch
    blocks are skipped."""
    groups = []
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
    return groups, pages


def _page_sizes(pages: list, r: dict) -> None:
    """data_page_size [code_page_size]."""
    if pages:
        r["data_page_size"] = pages[0]
        if len(pages) == 1:
            r["_guess"] = True  # one page size: taken as the data page size
        if len(pages) > 1:
            r["code_page_size"] = pages[1]
        if len(pages) > 2:
            raise _Bad("more than two page sizes")


def _split_at_data_src(groups: list, r: dict) -> tuple[bool, list]:
    """data_src and the one address (addr) before it, if any: (whether there is a
    data_src, the groups after it)."""
    kinds = [k for k, _ in groups]
    if "ds" not in kinds:
        return False, groups
    k = kinds.index("ds")
    r["data_src"] = groups[k][1]
    before, after = groups[:k], groups[k + 1 :]
    if len(before) > 1:
        raise _Bad("more than one address before the data_src value")
    if before:
        r["addr"] = int(before[0][1], 16)
    return True, after


def _numbers_before_callchain(after: list, has_ds: bool, r: dict) -> None:
    """The numbers of a line a callchain follows (no ip among them): addr without a
    data_src, else weight [ins_lat]."""
    if not has_ds:
        if len(after) > 1:
            raise _Bad("more than one number before a callchain")
        r["addr"] = int(after[0][1], 16)
        return
    if len(after) > 2 or not all(k == "n" and _DEC.match(v) for k, v in after):
        raise _Bad(_AMBIGUOUS)
    r["weight"] = int(after[0][1])
    if len(after) == 2:
        r["weight2"] = int(after[1][1])


def _numbers_without_data_src(after: list, r: dict) -> None:
    """No data_src: [addr] [weight [ins_lat]] ip [phys_addr]; symbols mark ip (and
    addr)."""
    syms = [i for i, (k, _) in enumerate(after) if k == "h"]
    if syms:
        if len(syms) >= 2:
            if syms[0] != 0:
                raise _Bad(_AMBIGUOUS)
            r["addr"] = int(after[0][1], 16)
            ip_at = syms[1]
            mid = after[1:ip_at]  # weight [ins_lat] between addr and ip
            if len(mid) > 2 or not all(k == "n" and _DEC.match(v) for k, v in mid):
                raise _Bad(_AMBIGUOUS)
            if mid:
                r["weight"] = int(mid[0][1])
                if len(mid) == 2:
                    r["weight2"] = int(mid[1][1])
                else:
                    r["_guess"] = True  # one number: weight (or ins_lat alone)
        else:
            ip_at = syms[0]
            if ip_at == 0:
                r["_guess"] = True  # one address: the ip (perf's default) or addr
            if ip_at == 1:
                r["addr"] = int(after[0][1], 16)
                r["_guess"] = True  # a bare number before the ip: addr or weight
            elif ip_at > 1:
                raise _Bad(_AMBIGUOUS)
    else:
        ip_at = len(after) - 1 if len(after) <= 2 else None
        if ip_at is None:
            raise _Bad(_AMBIGUOUS)
        if ip_at == 1:
            r["addr"] = int(after[0][1], 16)
        r["_guess"] = True  # no symbol marks the ip: perf's default shape
    rest = after[ip_at + 1 :]
    r["ip"] = int(after[ip_at][1], 16)
    if len(rest) > 1:
        raise _Bad(_AMBIGUOUS)
    if rest:
        r["phys_addr"] = int(rest[0][1], 16)


def _numbers_after_data_src(after: list, r: dict) -> None:
    """After data_src: [weight] [ins_lat] ip [phys_addr]; a symbol marks the ip, else
    the count of numbers does."""
    syms = [i for i, (k, _) in enumerate(after) if k == "h"]
    if syms:
        ip_at = syms[0]
    else:
        n = len(after)
        if n != 4:
            r["_guess"] = True  # no symbol marks the ip among the numbers
        dec = [bool(_DEC.match(v)) for _, v in after]
        if n == 1:
            ip_at = 0
        elif n == 2:
            ip_at = 1 if dec[0] else 0  # weight ip, else ip phys_addr
        elif n == 3:
            ip_at = 1  # weight ip phys_addr (ins_lat is printed only on request)
        elif n == 4:
            ip_at = 2  # weight ins_lat ip phys_addr: the one reading
        else:
            raise _Bad(_AMBIGUOUS)
    pre = after[:ip_at]
    if len(pre) > 2 or not all(_DEC.match(v) for _, v in pre):
        raise _Bad(_AMBIGUOUS)
    if len(pre) == 1:
        r["_guess"] = True  # one number: weight (or ins_lat alone)
    if pre:
        r["weight"] = int(pre[0][1])
    if len(pre) == 2:
        r["weight2"] = int(pre[1][1])
    r["ip"] = int(after[ip_at][1], 16)
    rest = after[ip_at + 1 :]
    if len(rest) > 1 or any(k != "n" for k, _ in rest):
        raise _Bad(_AMBIGUOUS)
    if rest:
        r["phys_addr"] = int(rest[0][1], 16)
