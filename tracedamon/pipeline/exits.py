"""The exit times of a replay's process targets, from the trace's ``tasks`` table.

perf writes a PERF_RECORD_EXIT for every thread that exits (``pid`` = its process,
``tid`` = the thread).  A vaddr/fvaddr target is a process (the kernel holds its pid,
see :mod:`tracedamon.engine.lifetime`):

* ``mm_exit_ns``: the EXIT of its leader thread (``tid == pid``): from then on the
  target's task has no mm, so the kernel neither draws nor checks for it;
* ``exit_ns``: the last EXIT of the process's threads, when every thread the trace knows
  of it (COMM/FORK/EXIT rows, and the leader) has one: the task is released then (its
  parent's wait, which perf does not record, is taken to follow at once) and the target
  is no longer valid.  A thread without an EXIT keeps the process alive to the trace's
  end (None).

Rows after the process ended that start a new process with the same pid (a FORK of
``pid == tid``) belong to that other process and are not used: the kernel's target holds
the old ``struct pid``, which stays dead.
"""

from __future__ import annotations

import numpy as np

from ..engine.lifetime import stop_time
from ..engine.regions import Target
from ..errors import InputError
from .samples import as_table

TASK_COLUMNS = ["time_ns", "kind", "pid", "tid"]  # what the exits are read from


def process_exits(tasks, pid: int) -> tuple[int | None, int | None]:
    """(mm_exit_ns, exit_ns) of process ``pid`` from a tasks table (pandas), None where
    the trace shows no such exit."""
    if tasks is None or not len(tasks) or pid is None:
        return None, None
    rows = tasks[(tasks["pid"] == pid) & tasks["tid"].notna()]
    if not len(rows):
        return None, None
    rows = rows.sort_values("time_ns", kind="stable")
    kind = rows["kind"].astype(str).to_numpy()
    tid = rows["tid"].to_numpy(np.int64)
    time = rows["time_ns"].to_numpy(np.int64)
    leader = np.flatnonzero((kind == "EXIT") & (tid == pid))
    if leader.size == 0:
        return None, None
    mm_exit = int(time[leader[0]])
    # a new process reusing the pid starts with its own FORK (pid == tid): stop there
    reuse = np.flatnonzero((kind == "FORK") & (tid == pid) & (time > mm_exit))
    if reuse.size:
        kind, tid, time = kind[: reuse[0]], tid[: reuse[0]], time[: reuse[0]]
    exited = set(tid[kind == "EXIT"].tolist())
    if not (set(tid.tolist()) | {pid}) <= exited:
        return mm_exit, None
    return mm_exit, int(time[kind == "EXIT"].max())


def with_exits(targets: list[Target], target_meta: list[dict], tasks) -> list[Target]:
    """The targets with the exit times of their processes (targets without a pid are
    returned as they are); each exiting target's metadata gets ``mm_exit_ns`` and
    ``exit_ns``."""
    out = []
    for tg, meta in zip(targets, target_meta):
        mm_exit, gone = process_exits(tasks, tg.pid)
        if mm_exit is not None:
            tg = Target(tg.ranges_at, pid=tg.pid, name=tg.name, exit_ns=gone, mm_exit_ns=mm_exit)
            meta["mm_exit_ns"] = mm_exit
            meta["exit_ns"] = gone
        out.append(tg)
    return out


def trace_tasks(src, tasks=None):
    """The tasks table (pandas) given with a samples table, else the one of the replay's
    trace directory, or None."""
    if tasks is not None:
        tb = as_table(tasks)
        missing = [c for c in TASK_COLUMNS if c not in tb.column_names]
        if missing:
            raise InputError(f"the tasks table given lacks the column(s) {', '.join(missing)}")
        return tb.select(TASK_COLUMNS).to_pandas()
    tr = getattr(src, "trace", None)
    if tr is None or not tr.has("tasks"):
        return None
    return tr.df("tasks", columns=TASK_COLUMNS)


def ended_early(targets: list[Target], ops, t0: int, config) -> None:
    """Raise InputError when the targets' exits end the replay before its first
    aggregation completes (``kdamond_need_stop``), naming the exits."""
    stop = stop_time(ops, targets)
    # the first aggregation completes when some target is valid at the start of each of
    # its sample intervals
    if stop is None or stop > t0 + (config.aggr_samples - 1) * config.sample_us * 1000:
        return
    gone = ", ".join(f"pid {tg.pid} at {tg.exit_ns} ns" for tg in targets)
    raise InputError(
        f"every target's process exited ({gone}) before the first aggregation from t0 = "
        f"{t0} ns completed ({config.aggr_us / 1000:g} ms): the kernel stops monitoring "
        "then, so there is no snapshot"
    )
