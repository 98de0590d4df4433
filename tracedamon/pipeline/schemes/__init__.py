"""Scheme files: damo JSON, DAMON sysfs dumps and the kernel modules' presets.

:func:`load_schemes` reads one ``--scheme`` argument and returns the schemes it
describes (:class:`tracedamon.engine.damos.Scheme`) plus the monitoring attributes
that came with them, if any:

* **a preset**: ``reclaim`` (DAMON_RECLAIM) or ``lru_sort`` (DAMON_LRU_SORT) with the
  kernel modules' defaults (``damos-spec.md`` §8), overridable with their module
  parameter names: ``reclaim:min_age=30s,quota_sz=256M``.  Time thresholds become
  aggregation intervals of the history the schemes run on (the module divides by its
  ``aggr_interval``); ``wmarks=none`` replaces the free-memory watermarks (which need a
  free-memory series offline).
* **damo JSON**: the kdamonds/contexts/schemes layout damo writes and reads (a list of
  kdamonds, ``{"kdamonds": [...]}``, one context, or the ``.kdamonds`` sidecar of a
  damo record) and damo's scheme JSON (one scheme object or a list of them), in damo's
  human units ("128.000 MiB", "5 s", "50 %", "12 aggr_intervals") or plain numbers in
  each field's own unit.  ``nr_accesses`` in percent and ages in time units need the
  sampling and aggregation intervals: the file's context gives them, else the caller.
* **a sysfs dump**: the ``path:value`` lines of ``grep -r .
  /sys/kernel/mm/damon/admin/kdamonds/N`` (values exactly as the kernel holds them).

Several contexts with schemes in one file: choose one with ``FILE#K/C`` (kdamond K,
context C).  Anything else -- an unknown format, a malformed value, a missing entry --
is a :class:`~tracedamon.errors.ConfigError` or
:class:`~tracedamon.errors.TraceFormatError` naming the file and the line or key.

One module per input format: :mod:`.preset`, :mod:`.damo_json`, :mod:`.sysfs`; damo's
human units in :mod:`.units`, what an argument gave in :mod:`.file`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ...engine.damos.scheme import Scheme
from ...errors import ConfigError, InputError, TraceFormatError
from .damo_json import damo_json
from .file import SchemeFile
from .preset import LRU_SORT_DEFAULTS, PRESETS, RECLAIM_DEFAULTS, preset
from .sysfs import SYSFS_PREFIX, sysfs
from .units import ratio_in, size_bytes, time_ns

__all__ = [
    "LRU_SORT_DEFAULTS",
    "PRESETS",
    "RECLAIM_DEFAULTS",
    "SYSFS_PREFIX",
    "SchemeFile",
    "load_schemes",
    "preset",
    "ratio_in",
    "schemes_of",
    "size_bytes",
    "time_ns",
]


def load_schemes(
    arg: str | os.PathLike, *, sample_us: int | None = None, aggr_us: int | None = None
) -> SchemeFile:
    """Read one ``--scheme`` argument: a preset (``reclaim``, ``lru_sort``, with
    ``:KEY=VALUE,...`` overrides), or a file (``FILE`` or ``FILE#K/C``) in damo JSON or
    sysfs-dump form.  ``sample_us``/``aggr_us``: the intervals of the history the
    schemes will run on (for presets' thresholds and for damo values in percent or
    time units when the file gives no intervals)."""
    text_arg = os.fspath(arg)
    name = text_arg.partition(":")[0]
    if name in PRESETS and not Path(text_arg).exists():
        return preset(text_arg, sample_us=sample_us, aggr_us=aggr_us)
    select = None
    path_s = text_arg
    m = re.fullmatch(r"(.*)#(\d+)/(\d+)", text_arg)
    if m and not Path(text_arg).exists():
        path_s, select = m[1], (int(m[2]), int(m[3]))
    p = Path(path_s)
    if not p.exists():
        raise InputError(
            f"scheme {text_arg}: no such file, and not a preset ({', '.join(PRESETS)})"
        )
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceFormatError(
            p, "not a text file (neither damo JSON nor a sysfs dump)", offset=e.start
        ) from None
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(p, f"invalid JSON: {e.msg}", line=e.lineno) from None
        f = damo_json(doc, str(p), select, sample_us, aggr_us)
        f.path = p
        return f
    if text.lstrip().startswith(SYSFS_PREFIX):
        f = sysfs(text, str(p), select)
        f.path = p
        return f
    first = text.lstrip().splitlines()[0][:60] if text.strip() else "(empty)"
    raise TraceFormatError(
        p,
        "unknown scheme file format: neither damo JSON nor a DAMON "
        f"sysfs dump (`grep -r . {SYSFS_PREFIX}N`); it starts with "
        f"{first!r}",
        line=1,
    )


def schemes_of(files: list[SchemeFile], free_mem) -> list[Scheme]:
    """Every scheme of the scheme files, for a run with the free-memory series
    ``free_mem`` (or None); refuses no scheme at all, and watermarks without a series."""
    all_schemes = [s for f in files for s in f.schemes]
    if not all_schemes:
        raise ConfigError("no schemes")
    for j, s in enumerate(all_schemes):
        if s.wmarks.metric != "none" and free_mem is None:

            def msg(series):
                return (
                    f"scheme {j}{f' ({s.name})' if s.name else ''} has "
                    f"{s.wmarks.metric} watermarks, which read the machine's free "
                    f"memory: give its series ({series}), or drop them (a preset: "
                    "PRESET:wmarks=none)"
                )

            raise ConfigError(
                msg("free_mem: a CSV file of time_ns,permil lines"),
                cli_message=msg("--free-mem FILE of time_ns,permil lines"),
            )
    return all_schemes
