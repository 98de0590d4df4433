"""The real perf as the oracle of a written case: the tokens ``perf script`` must print
for each sample, its lines matched against them, and ``perf report -D``'s record dump
parsed and compared with the records written."""

from __future__ import annotations

import re
import subprocess

from helpers.perf_cases import TYPE_KIND, X86_REGS
from perfdata_writer import (
    MISC_MMAP_DATA,
    Comm,
    Event,
    Exit,
    F,
    FinishedRound,
    Fork,
    Lost,
    LostSamples,
    Mmap,
    Mmap2,
    S,
    Sample,
    Throttle,
)


# ----------------------------------------------------------------------------------------
# what perf should print


def page_size_name(n: int) -> str:
    """perf 6.1's page-size text (B/K/M/G with integer division; N/A for 0)."""
    if n == 0:
        return "N/A"
    units = "BKMG"
    i = 0
    while n // 1024 > 1 and i < 3:
        n //= 1024
        i += 1
    return f"{n}{units[i]}"


def script_fields(ev: Event) -> list[str]:
    stype = ev.sample_type
    f = ["comm", "pid", "tid", "time", "event", "ip"]
    for bit, name in [
        (S.CPU, "cpu"),
        (S.PERIOD, "period"),
        (S.ADDR, "addr"),
        (S.DATA_SRC, "data_src"),
        (S.WEIGHT | S.WEIGHT_STRUCT, "weight"),
        (S.WEIGHT_STRUCT, "ins_lat"),
        (S.PHYS_ADDR, "phys_addr"),
        (S.DATA_PAGE_SIZE, "data_page_size"),
        (S.CODE_PAGE_SIZE, "code_page_size"),
        (S.REGS_INTR, "iregs"),
        (S.REGS_USER, "uregs"),
        (S.BRANCH_STACK, "brstack"),
    ]:
        if stype & bit:
            f.append(name)
    return f


def regs_tokens(mask: int, regs) -> list[str]:
    abi, vals = regs
    if abi == 0:
        return []
    names = [X86_REGS[b] for b in range(len(X86_REGS)) if mask >> b & 1]
    return [f"ABI:{abi}"] + [f"{n}:0x{v:x}" for n, v in zip(names, vals)]


def branch_token(frm, to, fl) -> str:
    pred = "P" if fl & 2 else ("M" if fl & 1 else "-")
    return (
        f"0x{frm:x}/0x{to:x}/{pred}/{'X' if fl & 4 else '-'}/{'A' if fl & 8 else '-'}/"
        f"{fl >> 4 & 0xFFFF}/"
    )


def expected_tokens(s: Sample, comm: str, period: int) -> list[str]:
    """perf script's whitespace-separated tokens for sample ``s`` (data_src decode
    replaced by the single token '<DECODE>')."""
    ev = s.event
    stype = ev.sample_type
    t = s["time"]
    tok = [comm, f"{s['pid']}/{s['tid']}"]
    if stype & S.CPU:
        tok.append(f"[{s['cpu']:03d}]")
    tok.append(f"{t // 10**9}.{t % 10**9:09d}:")
    if stype & S.PERIOD:
        tok.append(str(period))
    tok.append(ev.name + ":")
    if stype & S.ADDR:
        tok.append(f"{s['addr']:x}")
    if stype & S.DATA_SRC:
        tok += [f"{s['data_src']:x}", "<DECODE>"]
    if stype & S.WEIGHT:
        tok.append(str(s["weight"]))
    if stype & S.WEIGHT_STRUCT:
        tok += [str(s["weight"] & 0xFFFFFFFF), str(s["weight"] >> 32 & 0xFFFF)]
    tok.append(f"{s['ip']:x}")
    if stype & S.REGS_INTR:
        tok += regs_tokens(ev.sample_regs_intr, s["regs_intr"])
    if stype & S.REGS_USER:
        tok += regs_tokens(ev.sample_regs_user, s["regs_user"])
    if stype & S.BRANCH_STACK:
        tok += [branch_token(*b) for b in s["branch_stack"]]
    if stype & S.PHYS_ADDR:
        tok.append(f"{s['phys_addr']:x}")
    if stype & S.DATA_PAGE_SIZE:
        tok.append(page_size_name(s["data_page_size"]))
    if stype & S.CODE_PAGE_SIZE:
        tok.append(page_size_name(s["code_page_size"]))
    return tok


DECODE_WIDTH = 82  # perf 6.1 cuts the data_src text at 82 characters


def match_line(line: str, want: list[str]) -> str | None:
    """Match a perf script line against the expected tokens; returns the data_src text
    perf printed in place of '<DECODE>' (None without one). Raises AssertionError."""
    if "<DECODE>" not in want:
        assert line.split() == want, f"perf printed {line!r}, expected {want}"
        return None
    k = want.index("<DECODE>")
    pre, post = want[:k], want[k + 1 :]
    rx = r"^\s*" + r"\s+".join(map(re.escape, pre)) + r" (?P<dec>\|OP .*?)"
    rx += (r"\s+" + r"\s+".join(map(re.escape, post)) if post else "") + r"\s*$"
    m = re.match(rx, line)
    assert m, f"perf printed {line!r}, expected {want}"
    dec = m.group("dec")
    assert len(dec) <= DECODE_WIDTH
    return dec


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def perf_script(path: str, events: list[Event]) -> list[str]:
    args = [
        "perf",
        "script",
        "-i",
        path,
        "--ns",
        "-G",
        "--show-task-events",
        "--show-mmap-events",
        "--show-lost-events",
    ]
    for ev in events:
        args += ["-F", f"{TYPE_KIND[ev.type]}:{','.join(script_fields(ev))}"]
    p = run(args)
    assert p.returncode == 0, f"perf script failed: {p.stderr}"
    assert "Cannot print" not in p.stderr, p.stderr
    return p.stdout.splitlines()


# ----------------------------------------------------------------------------------------
# perf report -D: fields perf script cannot print

SAMPLE_HDR = re.compile(
    r"^(?:(\d+) )?(\d+) 0x[0-9a-f]+ \[0x[0-9a-f]+\]: PERF_RECORD_SAMPLE\(IP, "
    r"0x([0-9a-f]+)\): (-?\d+)/(-?\d+): 0x([0-9a-f]+) period: (\d+) "
    r"addr: (?:0x)?([0-9a-f]+)"
)


def parse_dump(text: str) -> list[dict]:
    out = []
    cur = None
    mode = None
    for line in text.splitlines():
        m = SAMPLE_HDR.match(line)
        if m:
            cur = dict(
                cpu=int(m[1]) if m[1] else None,
                time=int(m[2]),
                misc=int(m[3], 16),
                pid=int(m[4]),
                tid=int(m[5]),
                ip=int(m[6], 16),
                period=int(m[7]),
                addr=int(m[8], 16),
                chain=None,
                branches=None,
                read=[],
                lines=[],
            )
            out.append(cur)
            mode = None
            continue
        if cur is None:
            continue
        if not line.strip():
            cur = None
            continue
        cur["lines"].append(line)
        if m := re.match(r"^\.\.\. FP chain: nr:(\d+)", line):
            cur["chain"] = []
            mode = "chain"
        elif m := re.match(r"^\.\.\. branch stack: nr:(\d+)", line):
            cur["branches"] = []
            mode = "branch"
        elif m := re.match(r"^\.\.\.\.\.\s+\d+: ([0-9a-f]+)$", line):
            if mode == "chain":
                cur["chain"].append(int(m[1], 16))
        elif m := re.match(r"^\.\.\.\.\.\s+\d+: ([0-9a-f]+) -> ([0-9a-f]+)", line):
            cur["branches"].append((int(m[1], 16), int(m[2], 16)))
        elif m := re.match(r"^\.\.\. weight: (.*)$", line):
            cur["weight"] = m[1].strip()
        elif m := re.match(r"^\.\.\. transaction: ([0-9a-f]+)", line):
            cur["transaction"] = int(m[1], 16)
        elif m := re.match(r"^\.\.\. ustack: size (\d+)", line):
            cur["ustack"] = int(m[1])
        elif m := re.match(r"^\.+ (?:time enabled|time running) ([0-9a-f]+)", line):
            cur.setdefault("read_times", []).append(int(m[1], 16))
        elif m := re.match(r"^\.+ id ([0-9a-f]+), value ([0-9a-f]+)(?:, lost (\d+))?", line):
            cur["read"].append((int(m[1], 16), int(m[2], 16), int(m[3]) if m[3] else None))
    return out


def perf_dump(path: str) -> tuple[list[dict], list[tuple]]:
    """perf report -D: the samples (parse_dump) and every record line as
    (type name, offset, time or None, rest of the line)."""
    p = run(["perf", "report", "-D", "--disable-order", "-i", path])
    assert p.returncode == 0, p.stderr
    recs = []
    for line in p.stdout.splitlines():
        m = DUMP_REC.match(line)
        if m:
            recs.append(
                (m["type"], int(m["off"], 16), int(m["time"]) if m["time"] else None, m["rest"])
            )
    return parse_dump(p.stdout), recs


DUMP_REC = re.compile(
    r"^(?:(?:-?\d+ )?(?P<time>\d+) )?0x(?P<off>[0-9a-f]+) \[0x[0-9a-f]+\]: "
    r"PERF_RECORD_(?P<type>[A-Z_0-9]+)(?P<rest>.*)$"
)
DUMP_NAMES = {
    Comm: "COMM",
    Mmap: "MMAP",
    Mmap2: "MMAP2",
    Lost: "LOST",
    LostSamples: "LOST_SAMPLES",
    FinishedRound: "FINISHED_ROUND",
    Sample: "SAMPLE",
}


def dump_name(r) -> str:
    if isinstance(r, Exit):
        return "EXIT"
    if isinstance(r, Fork):
        return "FORK"
    if isinstance(r, Throttle):
        return "UNTHROTTLE" if r.unthrottle else "THROTTLE"
    return DUMP_NAMES[type(r)]


def check_dump_records(case: dict, recs: list[tuple]) -> None:
    """Every written record, in file order, at the offset the writer says (pipe: perf
    counts from the end of the 16-byte header; compressed: a containing record)."""
    mine = [(dump_name(r), o, r) for r, o in zip(case["records"], case["offsets"])]
    names = {n for n, _, _ in mine}
    got = [x for x in recs if x[0] in names]
    if case["compress"]:
        # perf dumps a container's records after the outer records that follow it:
        # compare the order within each record type only
        got = sorted(got, key=lambda g: sorted(names).index(g[0]))
        mine = sorted(mine, key=lambda m: sorted(names).index(m[0]))
    assert [g[0] for g in got] == [n for n, _, _ in mine]
    adj = 16 if case["layout"] == "pipe" else 0
    for (name, (first, last), r), (_, off, t, rest) in zip(mine, got):
        assert off + adj in (first, last), f"{name}: perf offset {off + adj}, wrote {first}..{last}"
        if isinstance(r, Lost):
            assert rest.strip() == f": id:{r.event.ids[0] if r.id is None else r.id}: lost:{r.lost}"
        if isinstance(r, LostSamples):
            # the id comes from the trailer: (u64)-1 when the event has no ID bits
            rid = r.event.ids[0] if r.event.sample_type & (S.ID | S.IDENTIFIER) else 2**64 - 1
            assert rest.strip() == f": id:{rid}: lost samples :{r.lost}"
        if isinstance(r, (Throttle, Fork, Comm, Mmap, Mmap2, Lost, LostSamples)):
            assert t == r.sid["time"], f"{name}: time {t}, wrote {r.sid['time']}"


# ----------------------------------------------------------------------------------------


def expected_periods(samples: list[Sample]) -> list[int]:
    """The period perf script prints: the sampled PERIOD, else the attr's; with READ
    the delta of the read value since the event's previous sample (perf's
    per-sample-id accounting)."""
    last: dict[int, int] = {}
    out = []
    for s in samples:
        ev = s.event
        if ev.sample_type & S.READ:
            r = s["read"]
            v, rid = (
                (r["values"][0]["value"], r["values"][0]["id"])
                if ev.read_format & F.GROUP
                else (r["value"], r["id"])
            )
            out.append(v - last.get(rid, 0))
            last[rid] = v
        else:
            out.append(s["period"] if ev.sample_type & S.PERIOD else ev.sample_period)
    return out


def check_against_perf(path: str, case: dict, big_endian: bool = False) -> list[str | None]:
    """Assert perf prints what was written; returns perf's data_src decode per sample.

    ``big_endian``: perf 6.1 leaves MMAP2's prot and flags unswapped in such files, so
    it prints them as the byte-swapped values (checked as such)."""
    events = case["events"]
    samples = [r for r in case["records"] if isinstance(r, Sample)]
    comm_of = case["comms"]
    periods = expected_periods(samples)
    lines = perf_script(path, events)
    sample_lines = [ln for ln in lines if "PERF_RECORD_" not in ln and ln.strip()]
    assert len(sample_lines) == len(samples), "\n".join(lines)
    decodes = []
    for s, ln, per in zip(samples, sample_lines, periods):
        want = expected_tokens(s, comm_of[(s["pid"], s["tid"])], per)
        decodes.append(match_line(ln, want))
    # side-band lines perf shows, in time order
    side = [ln for ln in lines if "PERF_RECORD_" in ln]
    want_side = []
    for r in case["records"]:
        if isinstance(r, Comm):
            want_side.append(
                f"PERF_RECORD_COMM{' exec' if r.exec else ''}: {r.comm}:{r.pid}/{r.tid}"
            )
        elif isinstance(r, Mmap2):
            pg = "0" if r.pgoff == 0 else f"0x{r.pgoff:x}"
            ident = (
                "<" + r.build_id.hex() + ">"
                if r.build_id is not None
                else f"{r.maj:02x}:{r.min:02x} {r.ino} {r.ino_generation}"
            )
            pr, fl = r.prot, r.flags
            if big_endian:
                pr = int.from_bytes(pr.to_bytes(4, "little"), "big")
                fl = int.from_bytes(fl.to_bytes(4, "little"), "big")
            prot = (
                ("r" if pr & 1 else "-")
                + ("w" if pr & 2 else "-")
                + ("x" if pr & 4 else "-")
                + ("s" if fl & 1 else "p")
            )
            want_side.append(
                f"PERF_RECORD_MMAP2 {r.pid}/{r.tid}: [0x{r.start:x}(0x{r.len:x}) @ "
                f"{pg} {ident}]: {prot} {r.filename}"
            )
        elif isinstance(r, Mmap):
            pg = "0" if r.pgoff == 0 else f"0x{r.pgoff:x}"
            want_side.append(
                f"PERF_RECORD_MMAP {r.pid}/{r.tid}: [0x{r.start:x}(0x{r.len:x}) @ "
                f"{pg}]: {'r' if r.misc & MISC_MMAP_DATA else 'x'} {r.filename}"
            )
        elif isinstance(r, Exit):
            want_side.append(f"PERF_RECORD_EXIT({r.pid}:{r.tid}):({r.ppid}:{r.ptid})")
        elif isinstance(r, Fork):
            want_side.append(f"PERF_RECORD_FORK({r.pid}:{r.tid}):({r.ppid}:{r.ptid})")
        elif isinstance(r, Lost):
            want_side.append(f"PERF_RECORD_LOST lost {r.lost}")
    got_side = [ln[ln.index("PERF_RECORD_") :].rstrip() for ln in side]
    assert got_side == want_side
    # fields only perf report -D prints (file order = written order)
    dump, dump_recs = perf_dump(path)
    check_dump_records(case, dump_recs)
    assert len(dump) == len(samples)
    for s, d in zip(samples, dump):
        ev = s.event
        stype = ev.sample_type
        assert (d["pid"], d["tid"], d["ip"], d["time"]) == (s["pid"], s["tid"], s["ip"], s["time"])
        assert d["misc"] == s.misc
        assert d["period"] == (s["period"] if stype & S.PERIOD else ev.sample_period)
        assert d["addr"] == (s["addr"] if stype & S.ADDR else 0)
        if any(e.sample_type & S.CPU for e in events):
            assert d["cpu"] == (s["cpu"] if stype & S.CPU else 2**32 - 1)
        if stype & S.CALLCHAIN:
            assert d["chain"] == s["callchain"]
        if stype & S.BRANCH_STACK:
            assert d["branches"] == [(a, b) for a, b, _ in s["branch_stack"]]
        if stype & S.TRANSACTION:
            assert d["transaction"] == s["transaction"]
        if stype & S.WEIGHT:
            assert d["weight"] == str(s["weight"])
        if stype & S.WEIGHT_STRUCT:
            w = s["weight"]
            assert d["weight"] == f"{w & 0xFFFFFFFF},0x{w >> 32 & 0xFFFF:x},0x0"
        if stype & S.STACK_USER:
            assert d["ustack"] == s["stack_user"][1]
        if stype & S.READ:
            r = s["read"]
            rf = ev.read_format
            vals = r["values"] if rf & F.GROUP else [r]
            assert d["read"] == [
                (v["id"], v["value"], v["lost"] if rf & F.LOST else None) for v in vals
            ]
            times = [
                r[k]
                for bit, k in ((F.TOTAL_TIME_ENABLED, "enabled"), (F.TOTAL_TIME_RUNNING, "running"))
                if rf & bit
            ]
            assert d.get("read_times", []) == times
    return decodes
