"""The replay's time grid starts at t0: the ``start_ns`` option read, the start chosen
(``auto``: from the vaddr targets' mappings, over the streamed samples) and checked
against the trace's span (see the time grid in :mod:`tracedamon.pipeline.replay`)."""

from __future__ import annotations

import inspect

import numpy as np

from ..engine.config import MonitorConfig
from ..engine.ops.vaddr import auto_start, samples_covered
from ..errors import ConfigError, InputError
from .replay_state import ReplayState
from .replay_stream import shared_key


def start_option(start_ns):
    """(start_ns as an int or None, auto) from the ``start_ns`` option."""
    if start_ns is None:
        return None, None  # the default: see choose_start
    if isinstance(start_ns, str) and start_ns.strip().lower() == "first":
        return "first", False
    auto = isinstance(start_ns, str) and start_ns.strip().lower() == "auto"
    if isinstance(start_ns, str) and not auto:
        try:
            start_ns = int(start_ns.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(
                f"start_ns: {start_ns!r} is not a time in ns, 'auto' or 'first'",
                cli_message=f"--start: {start_ns!r} is not a time in ns, 'auto' or 'first'",
            ) from None
    return start_ns, auto


def choose_start(r: ReplayState, access_batches, start_ns, auto: bool | None):
    """(t0, t0_auto, t0_source): the given start (``start_ns``, ``auto`` as
    :func:`start_option` reads them), the start the targets' mappings call for with
    ``auto`` (vaddr), and the vaddr targets' initial ranges in their metadata (warnings
    when they have none).  ``auto`` None (no start given): vaddr starts as ``auto`` does
    when the first sample gives a target no regions (a kdamond started at exec would see
    nothing until its first ops update; users start DAMON once the workload has mapped its
    memory), else at the first sample; ``start_ns='first'`` keeps the first sample."""
    t_first, t_last = r.scan["t_first"], r.scan["t_last"]
    t0 = t_first if (start_ns in (None, "first") or auto) else int(start_ns)
    source = (
        "auto"
        if auto
        else "--start"
        if start_ns is not None and start_ns != "first"
        else "first sample"
    )
    t0_auto = None
    if not r.timelines:
        if auto:
            t0_auto = {
                "time_ns": t0,
                "reason": f"--ops {r.ops.name} has fixed ranges: the first sample",
            }
        return t0, t0_auto, source
    if auto or any(tl.ranges_at(t0) is None for tl in r.timelines):
        t0_auto = _shared_auto_start(r, access_batches, t_first, t_last)
    if auto is None and t0_auto is not None and t0_auto["time_ns"] is not None:
        auto, source = True, "auto (default: no regions at the first sample)"
        r.warnings.append(
            f"pid(s) {', '.join(str(p) for p in r.tpids)}: no three regions at the first "
            f"sample ({t_first} ns); starting at {t0_auto['time_ns']} ns as --start auto "
            "does (--start first keeps the first sample)"
        )
    if auto:
        if t0_auto["time_ns"] is None:

            def msg(start, fixed):
                return (
                    f"{start}: the mappings of pid(s) "
                    f"{', '.join(str(p) for p in r.tpids)} never give three regions in "
                    f"this trace, so vaddr has nothing to monitor (use {fixed})"
                )

            raise InputError(
                msg("start_ns='auto'", "ops='fvaddr' with ranges"),
                cli_message=msg("--start auto", "--ops fvaddr --range"),
            )
        t0 = t0_auto["time_ns"]
        t0_auto["reason"] = (
            "the first time from which the targets' mappings give three regions that "
            f"cover the most samples until the first ops update: {t0_auto['covered']} of "
            f"the {t0_auto['samples_in_window']} samples from then until "
            f"{r.config.update_us} us later; the first sample is at {t_first} ns"
        )
    for i, (tl, p) in enumerate(zip(r.timelines, r.tpids)):
        r0 = tl.ranges_at(t0)
        r.target_meta[i]["initial_ranges"] = None if r0 is None else r0.tolist()
        if r0 is None:
            hint = ""
            if t0_auto is not None and t0_auto["time_ns"] is not None:
                f3 = t0_auto["first_three_regions_ns"]
                hint = (
                    (f"; its mappings give three regions from {f3} ns on" if f3 is not None else "")
                    + f"; try --start {t0_auto['time_ns']} (what --start auto picks: "
                    f"the three regions then cover {t0_auto['covered']} of the "
                    f"{t0_auto['samples_in_window']} samples until the first ops "
                    "update)"
                )
            r.warnings.append(
                f"pid {p}: no three regions at replay start (mappings "
                f"known then: {len(tl.vmas_at(t0))}); the target has no "
                f"regions until an ops update finds them{hint}"
            )
    return t0, t0_auto, source


def check_span(
    config: MonitorConfig, t0: int, t_last: int, t0_source: str, always: bool = False
) -> None:
    """Refuse a replay that cannot complete one aggregation (it would write no snapshot):
    the last sample must fall in the last sample interval of the first aggregation."""
    S = config.sample_us * 1000
    if not always and t_last >= t0 + (config.aggr_samples - 1) * S:
        return
    # t0_source names the option where the user gave t0 ("--start"): start_ns in the API
    api_source = "start_ns" if t0_source == "--start" else t0_source

    def late(source):
        return (
            f"the replay starts after the trace's last sample (t0 = {t0} ns ({source}), "
            f"last sample at {t_last} ns): no snapshot"
        )

    def short(source, aggr):
        return (
            f"the trace spans {(t_last - t0) / 1e6:.6g} ms from t0 = {t0} ns ({source}) "
            f"to its last sample, shorter than one aggregation interval "
            f"({config.aggr_us / 1000:g} ms, {aggr}): no snapshot"
        )

    if t_last < t0:
        raise InputError(late(api_source), cli_message=late(t0_source))
    raise InputError(
        short(api_source, f"aggr_us={config.aggr_us}"),
        cli_message=short(t0_source, f"--aggr-us {config.aggr_us}"),
    )


def every_stride(batches, stride: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per target ``i``: (time_ns, addr) of its samples number 0, ``stride[i]``,
    ``2*stride[i]``, ... (counted over all ``batches`` of (time_ns, target, addr))."""
    ntgt = len(stride)
    seen = np.zeros(ntgt, np.int64)
    thin: list[list] = [[] for _ in range(ntgt)]
    for t, g, a in batches:
        for i in range(ntgt):
            sel = np.nonzero(g == i)[0]
            k = (-seen[i]) % stride[i]  # the first index here that is a multiple
            thin[i].append((t[sel[k :: stride[i]]], a[sel[k :: stride[i]]]))
            seen[i] += sel.size
    return [
        (
            np.concatenate([x[0] for x in th]) if th else np.zeros(0, np.int64),
            np.concatenate([x[1] for x in th]) if th else np.zeros(0, np.int64),
        )
        for th in thin
    ]


def _shared_auto_start(r: ReplayState, access_batches, t_first: int, t_last: int) -> dict:
    """:func:`_auto_start` for the replay's targets.  Its choice depends on the samples
    the targets see, their mappings and the ops update interval alone: replays of one
    in-memory source with the same ones share it (a sweep's configurations)."""
    window = r.config.update_us * 1000

    def pick():
        return _auto_start(r.timelines, access_batches, t_first, t_last, window)

    key = shared_key(r)
    if key is None:
        return pick()
    maps = tuple(tl.fingerprint() for tl in r.timelines)
    return dict(r.src.remember(("start", key, maps, window), pick))


def _auto_start(timelines, access_batches, t_first: int, t_last: int, window_ns: int) -> dict:
    """:func:`tracedamon.engine.ops.vaddr.auto_start` over streamed samples.

    ``auto_start`` scores the candidates on every ``stride``-th sample of each target
    (``stride = count // max_samples``) and counts the chosen candidate's coverage
    exactly over the samples of its window.  Here: one pass counts each target's
    samples, a second keeps the same every-``stride``-th samples (scored by
    ``auto_start`` itself, with nothing left to thin), and a third reads only the
    chosen window for the exact counts -- the same result without holding all samples.
    """
    max_samples = inspect.signature(auto_start).parameters["max_samples"].default
    ntgt = len(timelines)
    count = np.zeros(ntgt, np.int64)
    for _, g, _ in access_batches():
        count += np.bincount(g, minlength=ntgt)[:ntgt]
    per_tgt = every_stride(access_batches(), np.maximum(1, count // max_samples))
    res = auto_start(
        timelines, per_tgt, t_first, t_last, window_ns, max_samples=np.iinfo(np.int64).max
    )
    del per_tgt
    c = res["time_ns"]
    if c is None:
        return res
    regs = [tl.ranges_at(c) for tl in timelines]
    covered = within = 0
    for t, g, a in access_batches():
        if t.size == 0 or t[-1] < c:
            continue
        if t[0] >= c + window_ns:
            break
        for i in range(ntgt):
            sel = g == i
            ti, ai = t[sel], a[sel]
            covered += samples_covered(regs[i], ti, ai, c, c + window_ns)
            within += int(np.searchsorted(ti, c + window_ns) - np.searchsorted(ti, c))
    res["covered"], res["samples_in_window"] = covered, within
    return res
