"""The test suite's perf.data corpus: recorded with the installed perf, with perf's oracles.

Each case is a `perf record` of tests/helpers/pagetouch.c (a program that writes each page
of a region at 0x100000000000 once, so each first write is one page fault at a known
address) or, for 24_damon_tracepoint, of the DAMON tracepoint of whatever kdamond already
runs on the machine (read passively; nothing is written to /sys/kernel/mm/damon).  Beside
``NAME.data`` the oracles perf itself prints:

========================  =================================================================
``NAME.record.log``       the perf record command (first line, ``$ ...``) and its stderr
``NAME.evlist.txt``       ``perf evlist -v``: every attr with its sample_type
``NAME.header.txt``       ``perf report --header-only -I``: the header features
``NAME.script.txt``       ``perf script --ns -F <the fields the file recorded> --show-*-events``
``NAME.dump.txt[.gz]``    ``perf report -D --disable-order``: every record in file order
``NAME.records.csv``      one row per record of that dump (a re-formatting of its text)
``NAME.samples.csv[.gz]`` one row per sample as perf's scripting delivers it
                          (tests/helpers/perf_sample_rows.py)
========================  =================================================================

The names, columns and quirks are those of ../shared/corpus/perf (its MANIFEST.md), so a
test reads either directory the same way.  The files differ from one recording to the next
(pids, times, addresses), so a test compares tracedamon with the oracles of the same
recording, never with numbers written into the test.

The corpus is made once per machine into a cache keyed by the perf version, the kernel
release and the bytes of this generator and its helpers: ``$XDG_CACHE_HOME/tracedamon/
perf-corpus/KEY`` (``~/.cache`` when unset).  A lock file makes concurrent test processes
(pytest-xdist workers) wait for the one that records.  ``TRACEDAMON_PERF_CORPUS=DIR`` uses
an existing directory instead (e.g. ``../shared/corpus/perf``).

By hand: ``python tests/perf_corpus.py OUTDIR [CASE ...]`` records into OUTDIR;
``python tests/perf_corpus.py --cache`` makes the cache if needed and says where it is.
"""

from __future__ import annotations

import csv
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "helpers"
WORKLOAD_SRC = HELPERS / "pagetouch.c"
ROWS_SCRIPT = HELPERS / "perf_sample_rows.py"
W = "./pagetouch"

# name -> (perf record options, the recorded command, how): "pipe" records to stdout;
# "machine" cases record the whole machine and may find nothing to record
CASES: dict[str, tuple[str, str, str]] = {
    "01_pf_c1_addr": ("-e page-faults -c 1 -d", f"{W} -n 64", ""),
    "02_minflt_phys_pgsz": (
        "-e minor-faults -c 1 -d --phys-data --data-page-size",
        f"{W} -n 64",
        "",
    ),
    "04_thp_minflt_pgsz": (
        "-e minor-faults -c 1 -d --phys-data --data-page-size",
        f"{W} -n 1024 -H",
        "",
    ),
    "05_two_events_id": ("-e page-faults -e minor-faults -c 1 -d", f"{W} -n 64 -o stride7", ""),
    "08_callchain_fp": ("-e page-faults -c 1 -d -g", f"{W} -n 64", ""),
    "11_zstd": ("-z -e page-faults -c 1 -d --phys-data", f"{W} -n 2048", ""),
    "12_pipe": ("-e page-faults -c 1 -d", f"{W} -n 64", "pipe"),
    "16_threads": ("-e page-faults -c 1 -d --sample-cpu", f"{W} -n 64 -t 4", ""),
    "18_tracepoint_mmap": (
        "-e syscalls:sys_enter_mmap -e syscalls:sys_exit_mmap -e page-faults -c 1 -d",
        f"{W} -n 16",
        "",
    ),
    # two aggregations of a kdamond with the default 5 s aggregation interval
    "24_damon_tracepoint": ("-e damon:damon_aggregated -a", "sleep 11", "machine"),
}

SHOW = (
    "--show-task-events --show-mmap-events --show-lost-events --show-round-events "
    "--show-switch-events --show-namespace-events --show-cgroup-events"
).split()
GZIP_ABOVE = {
    "dump.txt": 400_000,
    "samples.csv": 1_000_000,
    "records.csv": 1_000_000,
    "script.txt": float("inf"),
}  # the tests open NAME.script.txt by name


# ------------------------------------------------------------------------------ cache
@dataclass
class PerfCorpus:
    """Where the recorded cases are, and why any is missing."""

    dir: Path
    reason: str | None = None  # why nothing could be recorded
    failed: dict[str, str] = field(default_factory=dict)  # case -> why it is missing

    def why_missing(self, name: str) -> str | None:
        """None when case ``name`` is there, else the reason it is not."""
        if self.reason:
            return self.reason
        if name in self.failed:
            return f"perf corpus case {name} could not be recorded here: {self.failed[name]}"
        if not (self.dir / f"{name}.data").exists():
            return f"perf corpus case {name} is not in {self.dir}"
        return None

    def data_files(self) -> list[Path]:
        return [self.dir / f"{n}.data" for n in CASES if self.why_missing(n) is None]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def cache_key() -> str:
    """The perf version, the kernel release and every input of the generator."""
    h = hashlib.sha256()
    h.update(_run(["perf", "--version"]).stdout.encode())
    h.update(os.uname().release.encode())
    for p in (Path(__file__), WORKLOAD_SRC, ROWS_SCRIPT):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tracedamon" / "perf-corpus"


def ensure() -> PerfCorpus:
    """The recorded corpus, made now if this machine has none yet (under a lock)."""
    given = os.environ.get("TRACEDAMON_PERF_CORPUS")
    if given:
        d = Path(given)
        return PerfCorpus(
            d, None if d.is_dir() else f"TRACEDAMON_PERF_CORPUS={given} is not a directory"
        )
    if shutil.which("perf") is None:
        return PerfCorpus(
            cache_root() / "none",
            "perf is not installed: the perf corpus "
            "of the tests (tests/perf_corpus.py) cannot be recorded",
        )
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        return PerfCorpus(
            cache_root() / "none",
            "no C compiler: the workload of the perf "
            "corpus (tests/helpers/pagetouch.c) cannot be built",
        )
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"tracedamon-perf-corpus-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    final = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait for the one recording
        if not (final / "status.json").exists():
            work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
            try:
                status = generate(work)
                (work / "status.json").write_text(json.dumps(status, indent=1, sort_keys=True))
                if final.exists():
                    shutil.rmtree(final)
                work.rename(final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    status = json.loads((final / "status.json").read_text())
    return PerfCorpus(final, status.get("reason"), status.get("failed", {}))


# ------------------------------------------------------------------------------ record
def generate(out: Path, names=None) -> dict:
    """Record every case (or ``names``) into ``out`` with its oracles; returns the status:
    {"reason": why nothing was recorded or None, "failed": {case: why},
     "seconds": {case: wall time}}."""
    out.mkdir(parents=True, exist_ok=True)
    names = list(names or CASES)
    status: dict = {"reason": None, "failed": {}, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="perf-corpus-") as tmp:
        work = Path(tmp)
        cc = shutil.which("gcc") or shutil.which("cc")
        b = _run(
            [
                cc,
                "-O1",
                "-g",
                "-fno-omit-frame-pointer",
                "-pthread",
                "-o",
                str(work / "pagetouch"),
                str(WORKLOAD_SRC),
            ]
        )
        if b.returncode != 0:
            status["reason"] = f"the perf corpus workload does not build: {b.stderr[-300:]}"
            return status
        # the machine-wide case mostly waits: it records while the others are made
        started = {n: _start(n, work) for n in names if CASES[n][2] == "machine"}
        for n in names:
            if n not in started:
                _finish(n, _start(n, work), work, out, status)
        for n, proc in started.items():
            _finish(n, proc, work, out, status)
    return status


def _record_argv(name: str) -> tuple[list[str], str]:
    opts, cmd, how = CASES[name]
    target = "-" if how == "pipe" else f"{name}.data"
    argv = ["perf", "record", "-N", "-o", target, *opts.split(), "--", *cmd.split()]
    return argv, " ".join(argv)


def _start(name: str, work: Path):
    argv, _ = _record_argv(name)
    pipe = CASES[name][2] == "pipe"
    log = open(work / f"{name}.record.log", "w")
    stdout = open(work / f"{name}.data", "wb") if pipe else log
    env = dict(os.environ, LC_ALL="C", HOME=str(work))  # no ~/.debug build-id cache
    proc = subprocess.Popen(
        argv, cwd=work, env=env, stdout=stdout, stderr=log, stdin=subprocess.DEVNULL
    )
    proc.t0 = time.monotonic()
    proc.files = (log, stdout)
    return proc


def _finish(name: str, proc, work: Path, out: Path, status: dict) -> None:
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    for f in set(proc.files):
        f.close()
    log = (work / f"{name}.record.log").read_text(errors="replace")
    data = work / f"{name}.data"
    if rc != 0 or not data.exists() or data.stat().st_size == 0:
        last = log.strip().splitlines()[-1:] or ["no output"]
        status["failed"][name] = f"perf record exited {rc}: {last[0]}"
        return
    shutil.move(str(data), out / data.name)
    argv, line = _record_argv(name)
    (out / f"{name}.record.log").write_text(f"$ {line}\n{log}")
    try:
        nsamples = write_oracles(out, name)
    except Exception as e:  # a perf that cannot print its own file: say so per case
        status["failed"][name] = f"perf could not print the recording: {e}"
        return
    if nsamples == 0:
        status["failed"][name] = (
            "the recording holds no sample (for a machine-wide "
            "tracepoint: nothing on this machine emits it, e.g. no "
            "kdamond is running)"
        )
    status["seconds"][name] = round(time.monotonic() - proc.t0, 2)


# ------------------------------------------------------------------------------ oracles
def _perf(*args, env=None) -> subprocess.CompletedProcess:
    return _run(["perf", *args], env=dict(os.environ, LC_ALL="C", **(env or {})), timeout=300)


def _write(path: Path, text: str, kind: str) -> None:
    if len(text) > GZIP_ABOVE[kind]:
        with gzip.open(path.with_name(path.name + ".gz"), "wt", newline="") as f:
            f.write(text)
    else:
        path.write_text(text)


def write_oracles(out: Path, name: str) -> int:
    """perf's own outputs for ``out/NAME.data``; returns how many samples perf delivered."""
    data = out / f"{name}.data"
    ev = _perf("evlist", "-v", "-i", str(data))
    if ev.returncode != 0:
        raise RuntimeError(ev.stderr.strip()[-300:])
    (out / f"{name}.evlist.txt").write_text(ev.stdout)
    events = evlist_events(ev.stdout)
    hd = _perf("report", "--header-only", "-I", "-i", str(data))
    (out / f"{name}.header.txt").write_text(hd.stdout + hd.stderr)

    sc = _perf("script", "--ns", *script_field_args(events), *SHOW, "-i", str(data))
    text = sc.stdout + (f"\n# stderr:\n{sc.stderr}" if sc.stderr.strip() else "")
    _write(out / f"{name}.script.txt", text, "script.txt")

    rows_csv = out / f"{name}.samples.csv"
    sr = _perf(
        "script", "-s", str(ROWS_SCRIPT), "-i", str(data), env={"SAMPLE_ROWS_OUT": str(rows_csv)}
    )
    if sr.returncode != 0 or not rows_csv.exists():
        raise RuntimeError(f"perf script -s: {sr.stderr.strip()[-300:]}")
    samples_text = rows_csv.read_text()
    if len(samples_text) > GZIP_ABOVE["samples.csv"]:
        rows_csv.unlink()
        _write(rows_csv, samples_text, "samples.csv")
    samples = list(csv.DictReader(io.StringIO(samples_text)))

    dump = _perf("report", "-D", "--disable-order", "-i", str(data))
    if dump.returncode != 0:
        raise RuntimeError(f"perf report -D: {dump.stderr.strip()[-300:]}")
    _write(out / f"{name}.dump.txt", dump.stdout, "dump.txt")
    pipe = data.read_bytes()[8:16] == (16).to_bytes(8, "little")
    records = dump_records(
        dump.stdout,
        has_cpu=any("CPU" in e["bits"] for e in events),
        has_time=any("TIME" in e["bits"] for e in events),
        bias=16 if pipe else 0,
    )
    _write(out / f"{name}.records.csv", records_csv(records, samples), "records.csv")
    return len(samples)


def evlist_events(text: str) -> list[dict]:
    """name, attr type and sample_type bit names of each line of `perf evlist -v`."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(.+?): type: (\d+), ", line)
        if m:
            st = re.search(r"sample_type: ([A-Z_|]+)", line)
            out.append(dict(name=m[1], type=int(m[2]), bits=set(st[1].split("|")) if st else set()))
    return out


# the -F fields a sample_type bit makes printable, in the order they are asked for
_FIELD_OF_BIT = [
    ("ADDR", "addr"),
    ("PHYS_ADDR", "phys_addr"),
    ("DATA_SRC", "data_src"),
    ("WEIGHT", "weight"),
    ("WEIGHT_STRUCT", "weight"),
    ("DATA_PAGE_SIZE", "data_page_size"),
    ("CODE_PAGE_SIZE", "code_page_size"),
    ("REGS_INTR", "iregs"),
    ("REGS_USER", "uregs"),
    ("CPU", "cpu"),
    ("TIME", "time"),
    ("PERIOD", "period"),
]
_KIND = {0: "hw", 1: "sw", 2: "trace", 3: "hw", 4: "raw", 5: "hw"}


def script_field_args(events: list[dict]) -> list[str]:
    """One ``-F kind:fields`` per perf event kind: the fields every event of the kind
    recorded (tracepoints: no ip/symbols, their fields instead)."""
    kinds: dict[str, list[set]] = {}
    for e in events:
        kinds.setdefault(_KIND.get(e["type"], "raw"), []).append(e["bits"])
    args = []
    for kind, bitsets in kinds.items():
        common = set.intersection(*bitsets)
        fields = ["comm", "pid", "tid", "event", "ip", "sym", "symoff", "dso"]
        fields += [f for bit, f in _FIELD_OF_BIT if bit in common and f not in fields]
        if kind == "trace":
            fields = [f for f in fields if f not in ("ip", "sym", "symoff", "dso")] + ["trace"]
        args += ["-F", f"{kind}:{','.join(fields)}"]
    return args


# ------------------------------------------------------------------- perf report -D text
_BLOCK = re.compile(r"^(?:0x)?([0-9a-f]+)@\S* \[0x([0-9a-f]+)\]: event: (\d+)$")
_DECODED = re.compile(
    r"^((?:-?\d+ )*)(?:0x)?([0-9a-f]+) \[0x([0-9a-f]+)\]: "
    r"PERF_RECORD_(\w+)(.*)$"
)
_RAW = re.compile(r"^\.\s+[0-9a-f]{4}:\s+((?:[0-9a-f]{2} )+)")
_SAMPLE = re.compile(
    r"^\(IP, 0x([0-9a-f]+)\): (-?\d+)/(-?\d+): 0x([0-9a-f]+) "
    r"period: (\d+) addr: 0x([0-9a-f]+)"
)
# perf's record names (the pipe header's ATTR is printed without a block line)
TYPE_OF = {
    "MMAP": 1,
    "LOST": 2,
    "COMM": 3,
    "EXIT": 4,
    "THROTTLE": 5,
    "UNTHROTTLE": 6,
    "FORK": 7,
    "READ": 8,
    "SAMPLE": 9,
    "MMAP2": 10,
    "AUX": 11,
    "ITRACE_START": 12,
    "LOST_SAMPLES": 13,
    "SWITCH": 14,
    "SWITCH_CPU_WIDE": 15,
    "NAMESPACES": 16,
    "KSYMBOL": 17,
    "BPF_EVENT": 18,
    "CGROUP": 19,
    "TEXT_POKE": 20,
    "AUX_OUTPUT_HW_ID": 21,
    "ATTR": 64,
    "EVENT_TYPE": 65,
    "TRACING_DATA": 66,
    "BUILD_ID": 67,
    "FINISHED_ROUND": 68,
    "ID_INDEX": 69,
    "AUXTRACE_INFO": 70,
    "AUXTRACE": 71,
    "AUXTRACE_ERROR": 72,
    "THREAD_MAP": 73,
    "CPU_MAP": 74,
    "STAT_CONFIG": 75,
    "STAT": 76,
    "STAT_ROUND": 77,
    "EVENT_UPDATE": 78,
    "TIME_CONV": 79,
    "FEATURE": 80,
    "COMPRESSED": 81,
    "FINISHED_INIT": 82,
}


def dump_records(text: str, *, has_cpu: bool, has_time: bool, bias: int = 0) -> list[dict]:
    """The records of a `perf report -D` text in file order: offset, size, type, the raw
    bytes' misc, the cpu/time perf printed before the offset, a sample's fields, and the
    decoding perf printed for the rest (``extra``)."""
    recs: list[dict] = []
    cur = None
    for line in text.splitlines():
        if line.startswith("Aggregated stats:"):
            break
        m = _BLOCK.match(line)
        if m:
            cur = dict(
                offset=int(m[1], 16), size=int(m[2], 16), type=int(m[3]), raw=bytearray(), extra=[]
            )
            recs.append(cur)
            continue
        m = _RAW.match(line)
        if m and cur is not None and "name" not in cur:
            cur["raw"] += bytes.fromhex(m[1].replace(" ", ""))
            continue
        m = _DECODED.match(line)
        if m:
            prefix, off, size, name, rest = m.groups()
            if cur is None or "name" in cur or int(off, 16) != cur["offset"]:
                cur = dict(
                    offset=int(off, 16),
                    size=int(size, 16),
                    type=TYPE_OF.get(name, -1),
                    raw=bytearray(),
                    extra=[],
                )
                recs.append(cur)
            cur["name"] = name
            pre = prefix.split()
            if len(pre) == 2:
                cur["cpu"], cur["time"] = pre
            elif len(pre) == 1:
                cur["time" if has_time else "cpu" if has_cpu else "time"] = pre[0]
            s = _SAMPLE.match(rest)
            if s:
                cur.update(pid=s[2], tid=s[3], ip="0x" + s[4], period=s[5], addr="0x" + s[6])
            else:
                cur["extra"].append(rest.strip())
            continue
        if cur is None or "name" not in cur or not line.strip():
            continue
        _detail(cur, line.strip())
    for r in recs:
        r["offset"] += bias
    return recs


def _detail(rec: dict, s: str) -> None:
    """One indented line perf printed under a record's decoding."""
    for prefix, key in ((". data_src:", "data_src"), (".. phys_addr:", "phys_addr")):
        if s.startswith(prefix):
            rec[key] = s.split()[-1]
            return
    for prefix, key in (
        (".. data page size:", "data_page_size"),
        (".. code page size:", "code_page_size"),
        ("... weight:", "weight"),
    ):
        if s.startswith(prefix):
            rec[key] = s.split(":", 1)[1].strip()
            return
    if s.startswith("... FP chain: nr:"):
        rec["callchain_nr"] = s.rsplit(":", 1)[1].strip()
        rec["chain"] = []
    elif re.match(r"^\.{5} +\d+: ", s) and "chain" in rec:
        rec["chain"].append(s.split(":", 1)[1].strip())
    elif not (s.startswith(("... thread:", "...... dso:")) or s == ": unhandled!"):
        rec["extra"].append(s)


RECORD_COLUMNS = [
    "seq",
    "file_offset",
    "size",
    "type",
    "type_name",
    "misc",
    "cpu",
    "time",
    "pid",
    "tid",
    "ip",
    "period",
    "addr",
    "phys_addr",
    "data_src",
    "data_page_size",
    "code_page_size",
    "weight",
    "callchain_nr",
    "callchain",
    "event",
    "extra",
]


def records_csv(recs: list[dict], samples: list[dict]) -> str:
    """records.csv text; a SAMPLE's event name comes from the delivered samples with the
    same (time, pid, tid, ip) (``a|b`` when several match)."""
    names: dict[tuple, set] = {}
    for s in samples:
        names.setdefault((str(s["time"]), s["pid"], s["tid"], s["ip"]), set()).add(s["event"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(RECORD_COLUMNS)
    for i, r in enumerate(recs):
        raw = r["raw"]
        misc = "%#x" % int.from_bytes(raw[4:6], "little") if len(raw) >= 6 else ""
        ev = ""
        if r.get("name") == "SAMPLE":
            ev = "|".join(
                sorted(names.get((r.get("time", ""), r.get("pid"), r.get("tid"), r.get("ip")), ()))
            )
        w.writerow(
            [
                i,
                "%#x" % r["offset"],
                r["size"],
                r["type"],
                r.get("name", ""),
                misc,
                r.get("cpu", ""),
                r.get("time", ""),
                r.get("pid", ""),
                r.get("tid", ""),
                r.get("ip", ""),
                r.get("period", ""),
                r.get("addr", ""),
                r.get("phys_addr", ""),
                r.get("data_src", ""),
                r.get("data_page_size", ""),
                r.get("code_page_size", ""),
                r.get("weight", ""),
                r.get("callchain_nr", ""),
                ";".join(r.get("chain", [])),
                ev,
                " | ".join(x for x in r["extra"] if x),
            ]
        )
    return buf.getvalue()


def main(argv: list[str]) -> int:
    if argv == ["--cache"]:
        t0 = time.monotonic()
        pc = ensure()
        took = time.monotonic() - t0
        if pc.reason:
            print(f"perf corpus: not recorded: {pc.reason}")
        else:
            print(
                f"perf corpus: {pc.dir} ({len(pc.data_files())} of {len(CASES)} cases"
                f"{'; made in %.0f s' % took if took > 2 else ''})"
            )
            for name, why in sorted(pc.failed.items()):
                print(f"perf corpus: {name}: {why}")
        return 0
    if not argv:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: python tests/perf_corpus.py OUTDIR [CASE ...] | --cache", file=sys.stderr)
        return 2
    unknown = [n for n in argv[1:] if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; cases: {', '.join(CASES)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    status = generate(Path(argv[0]), argv[1:] or None)
    print(json.dumps(status, indent=1, sort_keys=True))
    print(f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 1 if status["reason"] or status["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
