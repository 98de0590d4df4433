"""Replays that share one in-memory source (what a sweep's worker does) give what each
gives alone.

A source built once by ``table_source`` keeps what replays derive from the samples
alone (the scan, the (time, target, addr) arrays of a selection, the ``--start auto``
choice); the sweep hands one such source to every configuration of a recording.  The
oracle of every replay here is the same replay on a source of its own (nothing
shared), and the trace directory itself where the replay reads one: the histories and
their metadata must be equal whatever ran before on the shared source -- other pids,
other events, other address spaces, other intervals, a pagemap translation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracedamon
from tracedamon.engine.config import MonitorConfig
from tracedamon.pipeline.replay import SAMPLE_COLUMNS
from tracedamon.pipeline.samples import MEMO_ARRAYS, table_source

from conftest import SAMPLES, need_corpus

# the second process of the two-process recording: hotcold's samples again, one GiB up
SHIFT = 1 << 30


def _config(kw: dict) -> tuple[dict, MonitorConfig]:
    kw = dict(kw)
    fields = set(MonitorConfig.__dataclass_fields__)
    return kw, MonitorConfig(**{k: kw.pop(k) for k in list(kw) if k in fields})


def _two_processes(td):
    """hotcold's real samples and mappings as pid P, and the same shifted by SHIFT as
    pid P + 1 (its samples 1 ms later, every other one dropped: the two differ)."""
    tr = tracedamon.open_trace(td)
    s = tr.table("samples", columns=SAMPLE_COLUMNS)
    mm = tr.df("mmaps")
    pid = int(np.bincount(s.column("pid").to_numpy()).argmax())
    other = s.filter(pa.compute.equal(s.column("pid"), pid)).take(
        np.arange(0, int(pa.compute.sum(pa.compute.equal(s.column("pid"), pid)).as_py()), 2)
    )
    other = other.set_column(
        SAMPLE_COLUMNS.index("pid"), "pid", pa.array(np.full(other.num_rows, pid + 1, np.int32))
    )
    other = other.set_column(
        SAMPLE_COLUMNS.index("time_ns"),
        "time_ns",
        pa.array(other.column("time_ns").to_numpy() + 1_000_000),
    )
    other = other.set_column(
        SAMPLE_COLUMNS.index("addr"),
        "addr",
        pa.array(other.column("addr").to_numpy() + SHIFT),
    )
    both = pa.concat_tables([s, other.cast(s.schema)]).sort_by("time_ns")
    m2 = mm[mm["pid"] == pid].copy()
    m2["pid"] = pid + 1
    m2["start"] = m2["start"] + SHIFT
    m2["time_ns"] = m2["time_ns"] + 1_000_000
    return both, pd.concat([mm, m2], ignore_index=True), tr.meta, pid


@pytest.fixture(scope="module")
def hotcold2(tmp_path_factory):
    td = tmp_path_factory.mktemp("shared") / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", td)
    return _two_processes(td)


def _same(a, b, what):
    assert a.table.equals(b.table), f"{what}: history rows differ"
    ma, mb = dict(a.metadata), dict(b.metadata)
    assert ma == mb, f"{what}: metadata differ"


def _check_all(table, extra: dict, configs: list[dict], order: list[int]):
    """Every config replayed on a source of its own, then all of them (in ``order``,
    with repeats) on one shared source: equal histories and metadata."""
    alone = []
    for kw in configs:
        kw, cfg = _config({**extra, **kw})
        alone.append(tracedamon.replay(table_source(table), config=cfg, **kw))
    shared = table_source(table)
    for i in order:
        kw, cfg = _config({**extra, **configs[i]})
        got = tracedamon.replay(shared, config=cfg, **kw)
        _same(got, alone[i], f"config {i}")
    return shared, alone


def test_two_processes_pids_starts_intervals(hotcold2):
    """vaddr/fvaddr over two processes: which pids, where the replay starts (auto, the
    default), the ops update interval (the window ``auto`` scores),
    perf or accessed-bit checks -- one shared source, every replay as alone."""
    table, mmaps, meta, pid = hotcold2
    base = dict(sample_us=5000, aggr_us=100000, min_nr_regions=10, max_nr_regions=200)
    configs = [
        dict(base, pids=[pid], start_ns="auto"),
        dict(base, pids=[pid + 1], start_ns="auto"),
        dict(base, pids=[pid, pid + 1], start_ns="auto"),
        dict(base, pids=[pid + 1, pid], start_ns="auto", access="abit"),
        dict(base, start_ns="auto"),  # no pid: the process with the most samples
        dict(base, pids=[pid], start_ns="auto", update_us=200000),
        dict(base, pids=[pid + 1], start_ns="auto", update_us=20000),
        dict(base, pids=[pid], aggr_us=50000),
        dict(base, pids=[pid + 1]),
        dict(base, pids=[pid], access="abit", sample_us=10000, aggr_us=200000),
        dict(
            base,
            ops="fvaddr",
            pids=[pid + 1],
            ranges=[(0x200000000000 + SHIFT, 0x200000000000 + SHIFT + (288 << 12))],
        ),
    ]
    # the same process with its mappings made 300 ms later: another --start auto
    later = mmaps.copy()
    later.loc[later["pid"] == pid, "time_ns"] += 300_000_000
    configs.append(dict(base, pids=[pid], start_ns="auto", mmaps=later))
    order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 6, 5, 1, 0, 10, 3, 2, 9, 4, 8, 7, 11, 0]
    shared, alone = _check_all(table, {"mmaps": mmaps, "trace_meta": meta}, configs, order)
    t0 = [h.metadata["t0_ns"] for h in alone]
    assert t0[11] > t0[0]  # the later mappings moved the start
    # bounded: at most MEMO_ARRAYS selections' arrays kept
    kept = [v for v in shared._memo.values() if isinstance(v, tuple)]
    assert 0 < len(kept) <= MEMO_ARRAYS
    for arrays in kept:
        assert all(not a.flags.writeable for a in arrays)


def test_two_events(tmp_path):
    """Event selection (one event, the other, both) on the real two-event recording."""
    data = need_corpus("perf", "05_two_events_id.data")
    td = tmp_path / "two.td"
    tracedamon.ingest(data, td)
    tr = tracedamon.open_trace(td)
    table = tr.table("samples", columns=SAMPLE_COLUMNS)
    names = sorted(set(table.column("event").to_pylist()))
    assert len(names) == 2
    # memtouch's 64 pages at its fixed address (the corpus's MANIFEST)
    area = [(0x100000000000, 0x100000000000 + (64 << 12))]
    base = dict(
        ops="fvaddr", ranges=area, sample_us=20, aggr_us=200, min_nr_regions=3, max_nr_regions=10
    )
    configs = [
        dict(base, events=[names[0]], start_ns="first"),
        dict(base, events=[names[1]], start_ns="first"),
        dict(base, start_ns="first"),
        dict(base, events=[names[0]], start_ns="first", access="abit"),
    ]
    # each histories differ from the others': the selection matters
    extra = {"mmaps": tr.table("mmaps"), "trace_meta": tr.meta}
    shared, _ = _check_all(table, extra, configs, [0, 1, 2, 3, 1, 0, 2])
    # the shared replays equal the trace directory's own (streamed) replays too
    for kw in configs[:3]:
        kw, cfg = _config(kw)
        a = tracedamon.replay(td, config=cfg, **kw)
        b = tracedamon.replay(shared, config=cfg, **extra, **kw)
        assert a.table.equals(b.table)


def test_pagemap_translation_and_paddr(tmp_path):
    """With pagemap snapshots: paddr over the virtual addresses translated by them (not
    shared: a translation takes part), with perf and accessed-bit checks, and vaddr
    between them."""
    d = need_corpus("damon-paddr-run1", "paddr_run1")
    td = tmp_path / "run1.td"
    tracedamon.ingest([d / "perf_pagefaults.data", d], td)
    tr = tracedamon.open_trace(td)
    table = tr.table("samples", columns=SAMPLE_COLUMNS)
    extra = {
        "mmaps": tr.table("mmaps"),
        "maps": tr.table("maps") if tr.has("maps") else None,
        "pagemap": tr.table("pagemap"),
        "trace_meta": tr.meta,
    }
    base = dict(sample_us=5000, aggr_us=100000, min_nr_regions=10, max_nr_regions=200)
    configs = [
        dict(base, start_ns="auto"),
        dict(base, ops="paddr"),
        dict(base, ops="paddr", access="abit"),
        dict(base, start_ns="auto", access="abit"),
    ]
    _check_all(table, extra, configs, [0, 1, 2, 3, 1, 0, 3, 2])

    # the same samples with a recorded physical address (their translation, 2 MiB up):
    # paddr on the recorded addresses (nothing to translate: shared) and paddr on the
    # virtual ones translated (not shared) select the same targets and events
    from tracedamon.engine.translate import Translator

    tb = table.filter(pa.compute.is_valid(table.column("addr")))
    ph = Translator.from_tables(tr.df("pagemap")).virt_to_phys_present(
        tb.column("pid").to_numpy().astype(np.int64),
        tb.column("addr").to_numpy().astype(np.uint64),
        tb.column("time_ns").to_numpy().astype(np.int64),
    )
    ph = np.where(ph != 0, ph.astype(np.uint64) + np.uint64(2 << 20), 0)
    tb = tb.set_column(
        SAMPLE_COLUMNS.index("phys_addr"), "phys_addr", pa.array(ph, mask=ph == 0)
    ).cast(table.schema)
    configs = [
        dict(base, ops="paddr", access="perf-phys"),
        dict(base, ops="paddr"),
        dict(base, ops="fvaddr", ranges=[(0x7F89FA000000, 0x7F8A1A000000)]),
        dict(base, ops="paddr", access="perf-phys", sample_us=10000),
    ]
    _, alone = _check_all(tb, extra, configs, [0, 1, 2, 3, 2, 1, 0])
    assert not alone[0].table.equals(alone[1].table)


def test_threads_share_one_source(hotcold2):
    """A Dask worker of several threads runs tasks side by side on one source: replays
    of three selections (more than the memo keeps arrays of, so entries are dropped
    while others are read) from four threads at once give what each gives alone."""
    table, mmaps, meta, pid = hotcold2
    base = dict(sample_us=5000, aggr_us=100000, min_nr_regions=10, max_nr_regions=200)
    configs = [
        dict(base, pids=[pid], start_ns="auto"),
        dict(base, pids=[pid + 1], start_ns="auto", access="abit"),
        dict(base, pids=[pid, pid + 1], start_ns="auto"),
    ]
    extra = {"mmaps": mmaps, "trace_meta": meta}
    alone = []
    for kw in configs:
        kw, cfg = _config({**extra, **kw})
        alone.append(tracedamon.replay(table_source(table), config=cfg, **kw))
    shared = table_source(table)

    def run(i):
        kw, cfg = _config({**extra, **configs[i]})
        return i, tracedamon.replay(shared, config=cfg, **kw)

    with ThreadPoolExecutor(4) as ex:
        for i, got in ex.map(run, [0, 1, 2, 2, 1, 0, 1, 2, 0, 0, 2, 1]):
            _same(got, alone[i], f"config {i} (threads)")
    assert len([v for v in shared._memo.values() if isinstance(v, tuple)]) <= MEMO_ARRAYS
