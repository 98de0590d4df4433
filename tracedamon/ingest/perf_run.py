"""Running the installed perf: ``perf evlist -v`` and ``perf script`` on a perf.data,
its text streamed through the parser of :mod:`tracedamon.ingest.perf_script`
(``tracedamon ingest --via-perf``; AUX-area data such as Arm SPE needs perf's own
decoder).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from ..errors import InputError, InputWarning, TraceFormatError
from .perf_script import _ingest_lines
from .perf_script_line import _FIELD_BITS, _KIND, RECOMMENDED_FIELDS


def perf_binary() -> str:
    exe = shutil.which("perf")
    if exe is None:
        raise InputError(
            "the perf binary is not installed (needed by via_perf=True)",
            cli_message="the perf binary is not installed (needed by --via-perf)",
        )
    return exe


#: fields asked for the samples perf synthesizes from AUX-area data (Arm SPE: ADDR,
#: PHYS_ADDR with pa_enable, DATA_SRC, WEIGHT = total latency)
SYNTH_FIELDS = (
    "comm",
    "pid",
    "tid",
    "cpu",
    "time",
    "period",
    "event",
    "addr",
    "data_src",
    "weight",
    "ip",
    "phys_addr",
)
_AUX_PMU = re.compile(r"^(?:arm_spe|cs_etm|intel_pt|intel_bts)")

_EVLIST = re.compile(r"^(?P<name>.+?): (?P<rest>(?:type|size): .*)$")


def perf_evlist(path, perf: str | None = None) -> list[dict]:
    """``perf evlist -v``: per event its name, type, config, sample_type bits."""
    perf = perf or perf_binary()
    p = subprocess.run(
        [perf, "evlist", "-v", "-i", os.fspath(path)], capture_output=True, text=True
    )
    if p.returncode != 0:
        raise InputError(f"{path}: perf evlist failed: {p.stderr.strip()[:300]}")
    out = []
    for line in p.stdout.splitlines():
        m = _EVLIST.match(line)
        if not m:
            continue
        rest = m["rest"]
        typ = re.search(r"(?:^|, )type: (\d+)", rest)  # perf omits zero values
        st = re.search(r"sample_type: ([A-Z_|]+)", rest)
        cfg = re.search(r"config: (0x[0-9a-f]+|\d+)", rest)
        per = re.search(r"\{ sample_period, sample_freq \}: (\d+)", rest)
        out.append(
            dict(
                name=m["name"],
                type=int(typ[1]) if typ else 0,
                config=int(cfg[1], 0) if cfg else 0,
                bits=set(st[1].split("|")) if st else set(),
                period=int(per[1]) if per else None,
                freq="freq: 1" in rest,
            )
        )
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
    if ev["type"] == 2:  # tracepoints: the fields are text
        out = [f for f in out if f not in ("ip",)]
    return out


def script_command(
    path, events: list[dict], perf: str, drop: frozenset = frozenset()
) -> tuple[list[str], dict]:
    """The perf script command and the field set each event's lines will hold.

    Per perf -F kind (hw, sw, trace, raw, break) the fields common to all events of
    that kind (perf prints one field set per kind and invents values for events that
    did not record a field); events of other types share one list without a prefix.
    """
    by_kind: dict[str, list[dict]] = {}
    for ev in events:
        by_kind.setdefault(_KIND.get(ev["type"], "*"), []).append(ev)
    args = [
        perf,
        "script",
        "-i",
        os.fspath(path),
        "--ns",
        "-G",
        "--show-task-events",
        "--show-mmap-events",
    ]
    per_event: dict[str, frozenset] = {}
    if "*" in by_kind:
        kinds = {"*": events}  # a dynamic PMU: one list for every event
    else:
        kinds = by_kind
    for kind, evs in kinds.items():
        common = [
            f
            for f in fields_for_event(evs[0])
            if all(f in fields_for_event(e) for e in evs[1:]) and f not in drop
        ]
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
        per_event[None] = frozenset(synth)  # names the evlist does not know
    return args, per_event


def ingest_via_perf(
    perf_data_path,
    writer,
    *,
    progress: bool = False,
    strict: bool = False,
    event_names: list[str] | None = None,
) -> None:
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
                msg = (
                    f"{path}: perf script reads nothing from a recording perf record did "
                    "not finish (data size 0 in the header); ingest it without {} to read "
                    "the records it holds"
                )
                raise InputError(msg.format("via_perf=True"), cli_message=msg.format("--via-perf"))
            raise InputError(f"{path}: perf script failed: {_one_line(err)}")
        break  # no output at all: no samples
    else:
        raise InputError(f"{path}: perf script keeps refusing the field list")
    lines = itertools.chain([first], proc.stdout) if first else iter(())
    done = False
    try:
        _ingest_lines(
            lines, writer, source=f"perf script -i {path}", fields=per_event, known_events=events
        )
        done = True
    finally:
        if not done and proc.poll() is None:
            proc.kill()  # our error: stop perf
        proc.stdout.close()
        proc.wait()
        drain.join(timeout=10)
    err = "".join(err_chunks)
    if proc.returncode != 0:
        raise InputError(f"{path}: perf script failed (exit {proc.returncode}): {_one_line(err)}")
    if "unexpected end of event stream" in err:
        # perf read a stream cut inside a record up to its last complete record
        import warnings

        if strict:
            raise TraceFormatError(
                path,
                "the record stream ends inside a record (perf "
                "script: unexpected end of event stream)",
            )

        desc = (
            'the record stream ends inside a record (perf script: "unexpected end of '
            'event stream"); perf read it up to its last complete record'
        )
        writer.meta["truncated"] = True
        writer.meta["truncation"] = {
            "description": desc,
            "message": f"{path}: truncated recording: {desc}",
        }
        warnings.warn(InputWarning(writer.meta["truncation"]["message"]), stacklevel=2)
    writer.meta["perf_script_fields"] = {
        ("(synthesized)" if k is None else k): sorted(v) for k, v in per_event.items()
    }
    writer.meta["perf_script_refused_fields"] = dropped
    # fields an event recorded that perf could not print for it (perf prints one
    # field set per event kind: the fields common to the events of that kind)
    writer.meta["perf_script_unprinted_fields"] = {
        e["name"]: sorted(set(fields_for_event(e)) - per_event.get(e["name"], frozenset()))
        for e in events
    }
    writer.meta["perf_script_command"] = " ".join(args)


def _start(args: list[str]):
    """Start perf with its stderr drained by a thread (so a chatty perf cannot block
    on a full pipe while we read its stdout)."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        bufsize=1 << 16,
    )
    chunks: list[str] = []
    drain = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    return proc, chunks, drain


def _one_line(text: str, limit: int = 300) -> str:
    """perf's stderr as one line (errors are one line), at most ``limit`` characters."""
    return " / ".join(ln.strip() for ln in text.strip().splitlines() if ln.strip())[:limit]
