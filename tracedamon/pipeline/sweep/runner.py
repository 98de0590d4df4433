"""Running sweep tasks: in-process, or on Dask distributed.

:func:`run_tasks` calls ``fn(task)`` for every task and hands each result to
``on_result`` as soon as it is ready (in completion order).  Three ways, one code
path for the task itself:

* ``workers=1`` (or Dask not installed, or no worker count given on a machine of at
  most :data:`IN_PROCESS_CPUS` CPUs): in this process, in order;
* otherwise an embedded ``distributed.LocalCluster`` of ``workers`` worker
  processes with one thread each (numba releases nothing to share: processes run
  the replays in parallel), closed when the run ends; on Linux the workers are forked
  from this process (:func:`start_method`) after it has run the first task itself;
* ``scheduler="tcp://HOST:PORT"``: an existing Dask cluster (``dask scheduler`` /
  ``dask worker``, Kubernetes, SLURM through dask-jobqueue, ...) whose workers have
  tracedamon installed and see the same paths.

Tasks carry a ``group`` (their source): the tasks of the first group get the
highest Dask priority, so workers finish one source before starting the next; with
at least as many sources as workers, each source's tasks also prefer one worker
(:func:`_homes`, a loose restriction), so that each source is read and prepared by
one worker, not by all of them.  A worker that dies mid-run loses its tasks to the
scheduler, which runs them again on the other workers (Dask's own recovery); a task
that raises anything but a user error stops the run (after cancelling the rest).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import uuid
from contextlib import contextmanager
from typing import Callable, Iterable

from ...errors import ConfigError, InputError, TracedamonError

# Dask (``distributed``) is optional (tracedamon[dask]): it is imported in the functions
# that run on it, never at module top, so that sweeps run in-process without it.


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401  (optional)
    except ImportError:
        return False
    return True


#: with no worker count asked for, a machine of this many CPUs or fewer runs the tasks
#: in-process: a single CPU. On the 2-core development machine, with both cores free, a
#: local cluster of two forked workers ran 48 configurations 1.44x-1.55x faster than
#: in-process (1.70x-1.71x its one-worker cluster; bench_sweep.py, README "Speed");
#: with the machine shared by other work, two processes gained little (0.91x-1.32x
#: without Dask at all), which `--workers 1` is there for
IN_PROCESS_CPUS = 1


def default_workers() -> int:
    """Worker processes for a local cluster: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextmanager
def _quiet_dask():
    """Dask logs a warning per lost worker and per cancelled future; the sweep reports
    what matters itself."""
    names = (
        "distributed",
        "distributed.scheduler",
        "distributed.worker",
        "distributed.nanny",
        "distributed.core",
        "distributed.client",
    )
    old = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for lg, _ in old:
        lg.setLevel(logging.CRITICAL + 10)
    try:
        yield
    finally:
        for lg, lvl in old:
            lg.setLevel(lvl)


def start_method() -> str | None:
    """How a local cluster starts its worker processes: ``fork`` on Linux, else Dask's
    default (``spawn``).

    A spawned worker imports Dask, pandas, pyarrow and tracedamon anew and loads numba's
    cached kernels at its first replay; a forked one inherits what this process has
    already imported.  Measured on a 2-core machine (bench/bench_sweep.py's notes): a
    one-worker cluster up in 0.43 s instead of 2.84 s, its worker process using 1.8 s
    of CPU for three tasks instead of 3.9 s.  Not on macOS, where forking a process
    that has threads is unsafe."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return None


def _local_cluster(LocalCluster, n: int):
    """A LocalCluster of ``n`` single-threaded worker processes (threads_per_worker=1:
    the replays hold the GIL, processes run them in parallel), started by
    :func:`start_method`.

    Without Dask's profiler (see below), and without Dask's
    ``MALLOC_TRIM_THRESHOLD_=65536`` in the workers' environment: it makes
    glibc hand every large numpy array back to the kernel when it is freed, so each
    replay faults its arrays in anew (3.5x the page faults of a 2 M-sample replay, about
    15 % more CPU per replay); a replay's memory is bounded without it."""
    import dask  # optional, with distributed

    env = {
        k: v
        for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
        if k != "MALLOC_TRIM_THRESHOLD_"
    }
    # nor Dask's statistical profiler: it samples the running task's stack every 10 ms
    # while a replay holds the GIL (48 configurations of 2 M samples, one worker: 64.1 ms
    # a task with it, 60.6 ms without, 56.9 ms in-process; medians of 4 alternated rounds)
    cfg = {"distributed.nanny.pre-spawn-environ": env, "distributed.worker.profile.enabled": False}
    method = start_method()
    if method is not None:
        cfg["distributed.worker.multiprocessing-method"] = method
    with dask.config.set(cfg):
        return LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL + 10,
        )


def _homes(client, order: dict) -> dict:
    """{group: worker address} when there are at least as many groups (sources) as
    workers: each source's tasks prefer one worker, so that a source is read and prepared
    by one worker rather than by every one (the preference is loose: a worker that runs
    dry takes tasks of another's sources, and a lost worker's tasks run elsewhere).  With
    fewer sources than workers, every worker takes every source's tasks."""
    addrs = sorted(client.scheduler_info().get("workers", {}))
    if len(addrs) < 2 or len(order) < len(addrs):
        return {}
    return {g: addrs[k % len(addrs)] for g, k in order.items()}


def run_serial(fn: Callable, tasks: Iterable, on_result: Callable) -> None:
    for t in tasks:
        on_result(t, fn(t))


def run_dask(
    fn: Callable,
    tasks: list,
    on_result: Callable,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    groups: list | None = None,
    on_start: Callable | None = None,
    cleanup: Callable | None = None,
) -> None:
    """Run ``fn`` over ``tasks`` on Dask (see the module docstring); ``groups[i]`` is
    task ``i``'s group (its priority: lower groups first); ``on_start(client)`` is
    called once the cluster is up; ``cleanup()`` runs on every worker at the end (an
    external cluster's workers outlive the run)."""
    from distributed import Client, KilledWorker, LocalCluster, as_completed  # optional

    with _quiet_dask():
        cluster = None
        try:
            if scheduler:
                try:
                    client = Client(scheduler, timeout="20s", set_as_default=False)
                except (OSError, TimeoutError) as e:
                    why = f"{scheduler}: cannot reach a Dask scheduler there ({e})"
                    raise InputError(f"scheduler {why}", cli_message=f"--scheduler {why}") from None
            else:
                cluster = _local_cluster(LocalCluster, workers or default_workers())
                client = Client(cluster, set_as_default=False)
            try:
                if on_start is not None:
                    on_start(client)
                token = uuid.uuid4().hex[:12]
                order = {}
                if groups is not None:
                    for g in groups:
                        order.setdefault(g, len(order))
                home = _homes(client, order)
                futures = {}
                for i, t in enumerate(tasks):
                    pr = -order[groups[i]] if groups is not None else 0
                    where = {}
                    if home:
                        where = {"workers": [home[groups[i]]], "allow_other_workers": True}
                    f = client.submit(
                        fn,
                        t,
                        key=f"tracedamon-sweep-{token}-{i}",
                        pure=False,
                        priority=pr,
                        **where,
                    )
                    futures[f] = t
                try:
                    for f in as_completed(list(futures), loop=client.loop):
                        try:
                            r = f.result()
                        except KilledWorker:
                            raise TracedamonError(
                                f"{futures[f].get('source', 'a task')}: Dask gave up on a task "
                                "after every worker that ran it died (out of memory?); "
                                "finished rows are kept"
                            ) from None
                        on_result(futures[f], r)
                except BaseException:
                    client.cancel(list(futures))
                    raise
            finally:
                if cleanup is not None and scheduler:
                    try:
                        client.run(cleanup)
                    except Exception:
                        pass  # a worker that is gone holds nothing
                client.close()
        finally:
            if cluster is not None:
                cluster.close()


def run_tasks(
    fn: Callable,
    tasks: list,
    on_result: Callable,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    groups: list | None = None,
    on_start: Callable | None = None,
    in_process: bool | None = None,
    cleanup: Callable | None = None,
) -> str:
    """Run the tasks the way the options ask; returns how ("in-process", "local
    cluster of N workers", "scheduler ADDR").  ``in_process`` (default: when
    ``workers`` is 1, or not given on a machine of at most :data:`IN_PROCESS_CPUS`
    CPUs) runs them here; False asks for a local cluster even of one worker."""
    if scheduler:
        if not have_dask():
            why = "needs Dask distributed: pip install 'tracedamon[dask]'"
            raise ConfigError(f"scheduler {why}", cli_message=f"--scheduler {why}")
        run_dask(
            fn,
            tasks,
            on_result,
            scheduler=scheduler,
            groups=groups,
            on_start=on_start,
            cleanup=cleanup,
        )
        return f"scheduler {scheduler}"
    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"workers must be a positive integer, not {workers!r}",
            cli_message=f"--workers must be a positive integer, not {workers!r}",
        )
    if in_process is None:
        in_process = n == 1 or (workers is None and n <= IN_PROCESS_CPUS)
    if in_process or not have_dask() or not tasks:
        run_serial(fn, tasks, on_result)
        return "in-process"
    if start_method() == "fork":
        # the first task runs here, before the workers are forked: what it loads (numba's
        # compiled kernels, the first source's columns) they inherit instead of each
        # loading it again
        on_result(tasks[0], fn(tasks[0]))
        tasks, groups = tasks[1:], None if groups is None else groups[1:]
    if tasks:
        run_dask(fn, tasks, on_result, workers=n, groups=groups, on_start=on_start)
    return f"local cluster of {n} worker{'s' if n > 1 else ''}"
