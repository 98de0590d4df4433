"""Sweeps on Dask distributed: an embedded LocalCluster, and a real external cluster
(`dask scheduler` + two `dask worker` processes on 127.0.0.1, random free ports)
give the table the serial run gives; a worker killed mid-sweep loses nothing.

"The same table" means every column but those that describe the run itself
(``worker``, ``replay_s``, ``score_s``: RUN_COLUMNS).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tracedamon
from tracedamon.cli import main
from tracedamon.pipeline.sweep.runner import start_method
from tracedamon.pipeline.sweep.task import RUN_COLUMNS

from conftest import SAMPLES

distributed = pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")
GRID = ["sample-us=5000,10000", "min-nr-regions=10,20", "access=perf,abit"]
FIXED = {"start": "auto"}
LIFETIME_S = 600  # every process started here ends by itself after this


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    td = d / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", td)
    ref = d / "ref.parquet"
    assert (
        main(["replay", str(td), "--start", "auto", "--sample-us", "1000", "-o", str(ref), "-q"])
        == 0
    )
    return td, ref


@pytest.fixture(scope="module")
def serial(hotcold):
    td, ref = hotcold
    return tracedamon.sweep([td], GRID, fixed=FIXED, reference=ref, workers=1)


def _same_table(a, b):
    cols = [c for c in a.columns if c not in RUN_COLUMNS]
    assert list(b.columns) == list(a.columns)
    assert a[cols].equals(b[cols])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(cond, what: str, tries: int = 600, pause: float = 0.1):
    """Poll ``cond`` a bounded number of times; fail naming ``what`` if it never holds."""
    for _ in range(tries):
        if cond():
            return
        time.sleep(pause)
    pytest.fail(f"gave up waiting for {what}")


def _start(args, log: Path) -> subprocess.Popen:
    # own process group: stopped as a whole; `timeout` bounds its life should the
    # test process itself die without cleaning up
    return subprocess.Popen(
        ["timeout", "-s", "KILL", str(LIFETIME_S), str(DASK), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real external Dask cluster: a scheduler and two single-threaded workers (no
    nanny: a killed worker stays dead), all on 127.0.0.1."""
    yield from _cluster(tmp_path_factory.mktemp("dask-logs"))


def _cluster(logs: Path):
    if not DASK.exists():
        pytest.skip(f"the dask command is not installed beside {sys.executable}")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [
        _start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                "--idle-timeout",
                str(LIFETIME_S),
            ],
            logs / "scheduler.log",
        )
    ]
    try:

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _until(listening, "the scheduler's port")
        for i in range(2):
            procs.append(
                _start(
                    [
                        "worker",
                        addr,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--death-timeout",
                        "60",
                        "--name",
                        f"w{i}",
                    ],
                    logs / f"worker{i}.log",
                )
            )
        with distributed.Client(addr, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
            pids = c.run(os.getpid)  # worker address -> its process id
        yield {"address": addr, "pids": pids, "procs": procs}
    finally:
        for p in reversed(procs):
            _stop(p)


def test_local_cluster_gives_the_serial_table(hotcold, serial, tmp_path):
    td, ref = hotcold
    out = tmp_path / "local.parquet"
    assert (
        main(
            [
                "sweep",
                str(td),
                *sum((["--grid", g] for g in GRID), []),
                "--start",
                "auto",
                "--reference",
                str(ref),
                "--workers",
                "2",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    local = pq.read_table(out).to_pandas()
    _same_table(serial, local)
    meta = json.loads(pq.read_metadata(out).metadata[b"tracedamon"])
    assert meta["ran"] == "local cluster of 2 workers"
    if start_method() == "fork":
        # the first task ran in this process, before the workers were forked from it
        assert local.worker[0].endswith(f":{os.getpid()}")
        assert local.worker[1:].nunique() == 2 and local.worker[0] not in set(local.worker[1:])
    else:
        assert local.worker.nunique() == 2  # both worker processes ran tasks


def test_external_cluster_gives_the_serial_table(hotcold, serial, cluster, tmp_path):
    td, ref = hotcold
    out = tmp_path / "ext.parquet"
    assert (
        main(
            [
                "sweep",
                str(td),
                *sum((["--grid", g] for g in GRID), []),
                "--start",
                "auto",
                "--reference",
                str(ref),
                "--scheduler",
                cluster["address"],
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    ext = pq.read_table(out).to_pandas()
    _same_table(serial, ext)
    pids = {str(p) for p in cluster["pids"].values()}
    assert {w.rsplit(":", 1)[1] for w in ext.worker} <= pids


def _kill_at_first_row(pid: int):
    """(a sweep progress callback that SIGKILLs ``pid`` when the first row arrives, the
    dict where it notes at which row it did)"""
    killed: dict = {}

    def progress(done, total, row):
        if not killed:
            os.kill(pid, signal.SIGKILL)
            killed["at"] = done

    return progress, killed


def test_worker_killed_mid_sweep_loses_nothing(hotcold, serial, cluster, tmp_path):
    """Kill one of the two workers (SIGKILL, no nanny to restart it) as soon as the first
    of the 8 rows arrives: Dask re-runs its tasks on the other worker; the table is
    complete and the serial one."""
    td, ref = hotcold
    _, victim_pid = sorted(cluster["pids"].items())[0]
    progress, killed = _kill_at_first_row(victim_pid)
    got = tracedamon.sweep(
        [td],
        GRID,
        fixed=FIXED,
        reference=ref,
        scheduler=cluster["address"],
        progress=progress,
        output=tmp_path / "k.parquet",
    )
    assert killed["at"] == 1
    worker_procs = [p for p in cluster["procs"][1:]]
    assert sum(p.poll() is not None for p in worker_procs) == 1  # one worker is gone
    _same_table(serial, got)
    assert len(got) == 8 and got.error.isna().all()
    by_victim = int(got.worker.str.endswith(f":{victim_pid}").sum())
    # the killed worker finished only what it had sent before it died; the rest (at
    # least the 7 tasks left at the kill, less what it still sent) ran on the other one
    assert by_victim <= 2 and len(got) - by_victim >= 6


def test_external_workers_let_go_of_the_sources(hotcold, cluster):
    """An external cluster's workers outlive a sweep: they keep no source after it."""
    td, _ = hotcold
    tracedamon.sweep([td], ["sample-us=5000,10000"], fixed=FIXED, scheduler=cluster["address"])
    with distributed.Client(cluster["address"], timeout="30s") as c:
        held = c.run(lambda: len(__import__("tracedamon.sweep.task").sweep.task.CACHE))
    assert held and all(n == 0 for n in held.values())


def test_external_cluster_runs_the_schemes_as_in_process(hotcold, cluster, tmp_path):
    # --scheme on the real cluster: the damos_* columns the workers compute from the
    # histories they replay in memory are the in-process sweep's
    td, _ = hotcold
    args = [
        str(td),
        "--grid",
        "sample-us=5000,10000",
        "--grid",
        "min-region=4096",
        "--grid",
        "max-region=4096,none",
        "--ops",
        "fvaddr",
        "--range",
        "0x200000000000-0x200000120000",
        "--scheme",
        "reclaim:wmarks=none,min_age=300ms",
    ]
    one, ext = tmp_path / "one.parquet", tmp_path / "ext.parquet"
    assert main(["sweep", *args, "--workers", "1", "-o", str(one), "-q"]) == 0
    assert main(["sweep", *args, "--scheduler", cluster["address"], "-o", str(ext), "-q"]) == 0
    a, b = pq.read_table(one).to_pandas(), pq.read_table(ext).to_pandas()
    _same_table(a, b)
    assert any(c.startswith("damos_pageout_") for c in b.columns)
    assert (b.damos_applications > 0).all() and b.error.isna().all()


def test_sources_prefer_one_worker_each():
    """With at least as many sources as workers, each source's tasks prefer one worker
    (round robin over the sorted addresses); with fewer, no preference at all."""
    from tracedamon.pipeline.sweep.runner import _homes

    class Client:
        def __init__(self, workers):
            self.workers = workers

        def scheduler_info(self):
            return {"workers": {w: {} for w in self.workers}}

    two = Client(["tcp://b:2", "tcp://a:1"])
    assert _homes(two, {"s0": 0, "s1": 1, "s2": 2}) == {
        "s0": "tcp://a:1",
        "s1": "tcp://b:2",
        "s2": "tcp://a:1",
    }
    assert _homes(two, {"s0": 0}) == {}  # one source: both workers take its tasks
    assert _homes(Client(["tcp://a:1"]), {"s0": 0, "s1": 1}) == {}


def test_fleet_loses_nothing_when_a_source_home_worker_dies(hotcold, tmp_path_factory):
    """Two sources on a fresh external cluster of two workers: each source's tasks prefer
    one worker. Kill one worker at the first row: its source's tasks must run on the
    other (the preference is loose), and the table equals the serial one."""
    td, ref = hotcold
    d = tmp_path_factory.mktemp("fleet")
    other = d / "other.td"
    shutil.copytree(td, other)
    srcs = [td, other]
    want = tracedamon.sweep(srcs, GRID, fixed=FIXED, reference=ref, workers=1)
    gen = _cluster(d)
    cl = next(gen)
    try:
        _, victim_pid = sorted(cl["pids"].items())[1]
        progress, killed = _kill_at_first_row(victim_pid)
        got = {}

        def run():
            got["df"] = tracedamon.sweep(
                srcs,
                GRID,
                fixed=FIXED,
                reference=ref,
                scheduler=cl["address"],
                progress=progress,
            )

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(LIFETIME_S / 2)
        assert not t.is_alive(), "the sweep waited for the dead worker's tasks"
        assert killed["at"] == 1
        _same_table(want, got["df"])
        assert len(got["df"]) == 16 and got["df"].error.isna().all()
    finally:
        gen.close()


def test_each_source_tasks_are_sent_to_its_worker(hotcold, tmp_path):
    """On a local cluster of two workers, the tasks of two sources are submitted with a
    loose preference for one worker each, a different one per source."""
    td, ref = hotcold
    other = tmp_path / "other.td"
    shutil.copytree(td, other)
    sent = []

    def spy(client):
        submit = client.submit

        def recording(fn, spec, **kw):
            sent.append((spec["source"], kw.get("workers"), kw.get("allow_other_workers")))
            return submit(fn, spec, **kw)

        client.submit = recording

    df = tracedamon.sweep([td, other], GRID, fixed=FIXED, workers=2, in_process=False, on_start=spy)
    assert len(df) == 16 and df.error.isna().all()
    homes = {}
    for src, workers, loose in sent:
        assert loose is True and workers is not None and len(workers) == 1
        homes.setdefault(src, set()).update(workers)
    assert set(homes) == {str(td), str(other)}
    assert all(len(h) == 1 for h in homes.values())
    assert homes[str(td)] != homes[str(other)]
