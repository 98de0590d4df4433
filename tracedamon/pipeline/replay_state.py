"""What one replay finds out about its input, step by step
(:func:`tracedamon.pipeline.replay.replay`).

:class:`ReplayState` is filled in the order the replay runs: the samples source and its
first scan (:func:`open_input`), the chosen events, the samples per pid and which address
of a sample the targets see (:func:`survey`), then the targets
(:mod:`tracedamon.pipeline.replay_targets`) and the warnings gathered on the way.  Its
methods turn a table of samples into what the targets see.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc

from ..engine import ops as ops_sets
from ..engine.address import engine_addresses
from ..engine.config import MonitorConfig
from ..engine.ops.base import Operations
from ..engine.translate import Translator
from ..errors import ConfigError, InputError
from ..store.trace import open_trace
from .samples import (
    SAMPLE_COLUMNS,
    SampleSource,
    as_table,
    choose_events,
    filter_events,
    load_source,
    physical_samples,
    scan_samples,
    translated_samples,
    virtual_samples,
)


@dataclass
class ReplayState:
    """What one replay found out about its input, step by step (see
    :func:`tracedamon.pipeline.replay.replay`)."""

    config: MonitorConfig
    ops: Operations
    access: str
    src: SampleSource
    meta: dict
    scan: dict
    chosen: list = field(default_factory=list)
    mm: object = None
    mp: object = None
    pm: object = None
    warnings: list = field(default_factory=list)
    per_pid: dict = field(default_factory=dict)
    translator: Translator | None = None
    address_source: str = ""
    use_pid: int = 1
    n_untrans: int = 0
    tpids: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    target_meta: list = field(default_factory=list)
    timelines: list = field(default_factory=list)

    @property
    def physical(self) -> bool:
        """The targets see physical addresses (paddr)."""
        return self.ops.space == "physical"

    @property
    def what(self) -> str:
        n_all = sum(q[0] for q in self.per_pid.values())
        return f"{n_all:,} samples" + (
            f" (events: {', '.join(self.chosen)})" if self.chosen else ""
        )

    def selected(self, columns=SAMPLE_COLUMNS):
        """The samples' ``columns`` of the chosen events, table by table."""
        for tb in self.src.tables(columns):
            yield filter_events(tb, self.chosen, self.scan["names"])

    def physical_of(self, tb):
        """(time_ns, phys_addr) of the samples: recorded, or translated by the pagemap."""
        if self.translator is None:
            return physical_samples(tb)
        s_ = tb.filter(pc.and_(pc.is_valid(tb.column("addr")), pc.is_valid(tb.column("pid"))))
        t_ = s_.column("time_ns").to_numpy(zero_copy_only=False).astype(np.int64)
        v_ = s_.column("addr").to_numpy(zero_copy_only=False).astype(np.uint64)
        p_ = s_.column("pid").to_numpy(zero_copy_only=False).astype(np.int64)
        ph = self.translator.virt_to_phys_present(p_, v_, t_)
        ok = ph != 0
        self.n_untrans += int((~ok).sum())
        a_, keep = engine_addresses(ph[ok])
        t_ = t_[ok]
        return (t_ if keep is None else t_[keep]), a_

    def convert(self, tb):
        """(time_ns, target, addr) of a table of samples, as the targets see them."""
        if self.physical:
            pt, pa_ = self.physical_of(tb)
            return pt, np.zeros(pt.size, np.int64), pa_
        if self.access == "perf-phys":
            t_, g_, a_, _ = translated_samples(tb, self.tpids, self.translator)
            return t_, g_, a_
        return virtual_samples(tb, self.tpids)


def open_input(
    source, ops: str, access: str, config: MonitorConfig, pids, mmaps, maps, pagemap, trace_meta
) -> tuple[ReplayState, dict]:
    """(the replay's state, the input's provenance): the samples source opened and scanned
    once over its narrow columns (time span, event names, samples with addresses per pid).
    Refuses pids with a physical ops set and a trace without timed samples."""
    src, mm, mp, pm, meta, prov = _open(source, mmaps, maps, pagemap, trace_meta)
    opset = ops_sets.get(ops)
    if opset.space == "physical" and pids:
        why = f"does not apply to {ops} (physical memory has no process)"
        raise ConfigError(f"pids={pids} {why}", cli_message=f"--pid {why}")
    # which address of a sample the targets see: the virtual one (vaddr/fvaddr with perf
    # or abit), the physical one (paddr with perf-phys), or the other one translated
    # through pagemap snapshots (vaddr/fvaddr with perf-phys; paddr with perf, and paddr
    # with abit when the samples carry no physical address)
    want_phys = access == "perf-phys" or (opset.space == "physical" and access == "abit")
    # pass 1, narrow columns: time span, event names, samples (with addresses) per pid
    scan = scan_samples(src, phys=want_phys)
    if scan["t_first"] is None:
        raise InputError("the trace has no timed samples to replay")
    r = ReplayState(config, opset, access, src, meta, scan, mm=mm, mp=mp, pm=pm)
    return r, prov


def _open(source, mmaps, maps, pagemap, trace_meta):
    """(samples source, mmaps df, maps df, pagemap df|None, trace meta, provenance)."""
    pm_in = None
    if pagemap is not None and not isinstance(pagemap, (str, os.PathLike)):
        pm_in = as_table(pagemap).to_pandas()
    src, mm, mp, pm, meta, prov = load_source(source, mmaps, maps, pm_in, trace_meta)
    if pagemap is not None and isinstance(pagemap, (str, os.PathLike)):
        ptr = open_trace(pagemap)
        if not ptr.has("pagemap"):
            raise InputError(f"{pagemap}: has no pagemap table")
        pm = ptr.df("pagemap")
    return src, mm, mp, pm, meta, prov


def survey(r: ReplayState, pids: list[int], events) -> None:
    """The chosen events, the samples per pid, the address the targets see (refusing a
    trace whose samples lack it) and the given pids checked; the samples read whole when
    streaming cannot work."""
    r.chosen = choose_events(r.scan["names"], list(events or []))
    _count_per_pid(r)
    _choose_address_source(r)
    _check_pids(r, pids)
    if not r.scan["ordered"] or (r.access == "perf-phys" and not r.physical):
        # streaming needs time order; the pagemap translation works on the whole table
        r.src.materialize()


def _count_per_pid(r: ReplayState) -> None:
    """Samples per pid of the chosen events: all, with a virtual, with a physical address
    (and the warning about samples whose pid is a thread id)."""
    nulls = r.src.null_count("pid")[0] if r.src.pid_from_tid else 0
    if nulls:
        r.warnings.append(
            f"{nulls} samples carry a thread id but no pid (perf script text printed "
            "without the pid field shows the tid alone): "
            + (
                "the trace's COMM/FORK records give the pid of the threads they know, "
                if r.src.knows_threads
                else ""
            )
            + "a thread id stands for its pid otherwise (exact for single-threaded "
            "processes; print the pid field with perf script -F pid,tid,... to be sure)"
        )
    names = r.scan["names"]
    for (e, p_), c in r.scan["counts"].items():
        if r.chosen == names or e in r.chosen:
            q = r.per_pid.setdefault(p_, [0, 0, 0])
            for k in range(3):
                q[k] += c[k]


def _choose_address_source(r: ReplayState) -> None:
    """Which address of the samples the targets see, and the pagemap translator when
    that address must be translated; refuses a trace whose samples lack it."""
    physical, access, pm = r.physical, r.access, r.pm
    n_virt = sum(q[1] for q in r.per_pid.values())
    n_phys = sum(q[2] for q in r.per_pid.values())
    regions_hint = (
        "; its regions table is a DAMON trace (DAMON's own result), not samples to replay"
        if r.meta.get("tables", {}).get("regions")
        else ""
    )

    def no_addresses(kind: str, how: str, cli_how: str | None = None):
        def msg(h):
            return (
                f"none of the trace's {r.what} carries a {kind} address, so the replay "
                f"has nothing to count; {h}{regions_hint}"
            )

        return InputError(msg(how), cli_message=msg(cli_how or how))

    if (
        (physical and access == "perf")
        or (not physical and access == "perf-phys")
        or (physical and access == "abit" and n_phys == 0 and pm is not None and len(pm))
    ):
        if pm is None or len(pm) == 0:
            if physical:
                msg = (
                    "paddr with {perf} counts the samples' virtual addresses at the "
                    "physical frames they map to, which needs pagemap snapshots: give "
                    "{pagemap} or ingest them into the trace directory; for samples "
                    "with physical addresses use {phys}"
                )
                raise ConfigError(
                    msg.format(
                        perf="access='perf'", pagemap="pagemap=DIR", phys="access='perf-phys'"
                    ),
                    cli_message=msg.format(
                        perf="--access perf", pagemap="--pagemap DIR", phys="--access perf-phys"
                    ),
                )
            msg = (
                "perf-phys with vaddr/fvaddr needs pagemap snapshots: give {} or ingest "
                "them into the trace directory"
            )
            raise InputError(msg.format("pagemap=DIR"), cli_message=msg.format("--pagemap DIR"))
        r.translator = Translator.from_tables(pm)
    r.address_source = (
        "virtual"
        if not physical and access != "perf-phys"
        else "physical"
        if r.translator is None
        else "physical, translated to virtual through pagemap snapshots"
        if not physical
        else "virtual, translated to physical through pagemap snapshots"
    )
    if r.address_source.startswith("virtual") and n_virt == 0:
        raise no_addresses(
            "data (virtual)",
            "record with `perf mem record`, or `perf record -d` (software events: page faults)",
        )
    if r.address_source.startswith("physical") and n_phys == 0:
        how = "record with `perf mem record --phys-data` (or `perf record --phys-data`)"
        alt = ", or replay the virtual addresses with {} and pagemap snapshots ({})"
        raise no_addresses(
            "physical",
            how + (alt.format("access='perf'", "pagemap=DIR") if physical else ""),
            how + (alt.format("--access perf", "--pagemap DIR") if physical else ""),
        )
    r.use_pid = 1 if r.address_source.startswith("virtual") else 2


def _pid_list(r: ReplayState) -> str:
    """The processes with the most samples with addresses, for messages."""
    top = sorted(
        ((q[r.use_pid], p_) for p_, q in r.per_pid.items() if p_ is not None and q[r.use_pid]),
        reverse=True,
    )[:5]
    return ", ".join(f"{p_} ({n:,})" for n, p_ in top) or "none"


def _check_pids(r: ReplayState, pids: list[int]) -> None:
    """Refuse ``pids`` none of which has a sample with an address; warn for some."""
    if not pids or (not r.physical and r.access == "perf-phys"):
        # (perf-phys finds the process of a frame in the pagemap, not in the sample)
        return

    def samples_of(p) -> str:
        q = r.per_pid.get(p)
        return (
            f"the trace has no sample of pid {p}"
            if q is None
            else f"pid {p} has {q[0]:,} samples, none with an address"
        )

    missing = [p for p in pids if not r.per_pid.get(p, [0, 0, 0])[r.use_pid]]
    if len(missing) == len(pids):

        def msg(given):
            return (
                f"{'; '.join(samples_of(p) for p in missing)} ({given}); the "
                f"processes with the most samples with addresses: {_pid_list(r)}"
            )

        raise InputError(msg(f"pids={pids}"), cli_message=msg(" ".join(f"--pid {p}" for p in pids)))
    for p in missing:
        r.warnings.append(f"pid {p}: no sample with an address (its target stays idle)")
