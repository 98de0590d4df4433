"""A constructed perf.data for sub-page monitoring: what 4 KiB regions cannot see.

No machine here has a memory PMU, and page-fault samples (``perf record -e
page-faults -d``) see one access per page, never a cache line, so this trace is
synthetic: written with the test-only perf.data writer (``perfdata_writer.py``), with
the exact addresses ``perf mem record`` would give.  One process (pid 4242) with two
4 KiB pages at ``BASE``:

* page 0, **false sharing**: threads 4243 and 4244 each increment their own counter,
  in adjacent cache lines (``BASE + 0x00`` and ``BASE + 0x40``) of one page; the other
  62 lines are written once, at start.
* page 1, **a struct whose hot field shares a page with cold ones**: 16 structs of
  256 bytes (four cache lines each); the main thread reads the first field (the
  struct's first line) of each, all the time; the other three lines were written once,
  at start.

Samples (events ``cpu/mem-stores/P`` for the counters and ``cpu/mem-loads/P`` for the
rest): every byte of both pages' lines once in the first 5 ms (initialisation, main
thread), then every 250 us one store of each counter thread and one load of a hot
field (struct ``k % 16`` at step ``k``), for ``seconds`` seconds.

``python tests/subpage_trace.py OUT.data [--seconds S] [--picture PNG]`` writes it
(and README's picture: the trace replayed at fixed 4 KiB and fixed 64 B, side by
side); tests import :func:`write_trace` and :data:`TRUTH`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfdata_writer import (
    S,
    Comm,
    Event,
    Mmap2,
    Sample,
    assign_ids,  # noqa: E402
    write_perf_data,
)

PID = 4242
COUNTER_TIDS = (4243, 4244)
BASE = 0x7F3A_5C00_0000
PAGE = 4096
LINE = 64
T0 = 1_000_000_000  # ns
INIT_NS = 5_000_000
STEP_NS = 250_000
N_STRUCTS = 16
STRUCT = 256
# data_src: op (bits 0-4), level (5-18), snoop (19-23), tlb (26-32): L1 hit, NA elsewhere
DS_LOAD = 0x2 | (0xA << 5) | (1 << 19) | (1 << 26)
DS_STORE = 0x4 | (0xA << 5) | (1 << 19) | (1 << 26)

# the lines each part of the trace keeps busy after initialisation
TRUTH = {
    "false_sharing": [BASE, BASE + LINE],
    "hot_fields": [BASE + PAGE + STRUCT * i for i in range(N_STRUCTS)],
}


def events() -> tuple[Event, Event]:
    st = S.IP | S.TID | S.TIME | S.ADDR | S.ID | S.CPU | S.PERIOD | S.DATA_SRC | S.WEIGHT
    loads = Event(
        "cpu/mem-loads/P", type=4, config=0x1CD, sample_type=st, precise_ip=3, sample_period=1000
    )
    stores = Event(
        "cpu/mem-stores/P", type=4, config=0x2CD, sample_type=st, precise_ip=3, sample_period=1000
    )
    assign_ids([loads, stores])
    return loads, stores


def records(seconds: float, loads: Event, stores: Event) -> list:
    sid = dict(pid=PID, tid=PID, time=T0 - 1000)
    recs: list = [
        Comm(loads, pid=PID, tid=PID, comm="counters", exec=True, sid=sid),
        Mmap2(
            loads,
            pid=PID,
            tid=PID,
            start=BASE,
            len=2 * PAGE,
            pgoff=0,
            prot=3,
            flags=0x22,
            filename="//anon",
            sid=sid,
        ),
    ]
    for tid in COUNTER_TIDS:
        recs.append(
            Comm(
                loads, pid=PID, tid=tid, comm="counters", sid=dict(pid=PID, tid=tid, time=T0 - 500)
            )
        )

    def sample(ev, tid, t, addr, cpu, ds):
        return Sample(
            ev,
            ip=0x401000 + (addr & 0xFF),
            pid=PID,
            tid=tid,
            time=t,
            addr=addr,
            id=ev.ids[0],
            cpu=cpu,
            period=1000,
            data_src=ds,
            weight=30,
        )

    init = [BASE + i * LINE for i in range(2 * PAGE // LINE)]
    for i, a in enumerate(init):
        recs.append(sample(stores, PID, T0 + i * (INIT_NS // len(init)), a + 8, 0, DS_STORE))
    t = T0 + INIT_NS
    end = T0 + int(seconds * 1e9)
    k = 0
    while t < end:
        for j, tid in enumerate(COUNTER_TIDS):
            recs.append(sample(stores, tid, t + j, TRUTH["false_sharing"][j], 1 + j, DS_STORE))
        recs.append(sample(loads, PID, t + 2, TRUTH["hot_fields"][k % N_STRUCTS] + 8, 0, DS_LOAD))
        t += STEP_NS
        k += 1
    return recs


def write_trace(path, seconds: float = 1.0) -> str:
    loads, stores = events()
    return write_perf_data(
        path,
        [loads, stores],
        records(seconds, loads, stores),
        meta={"cmdline": ["/usr/bin/perf", "mem", "record", "--", "./counters"]},
    )


def picture(data, png, work) -> None:
    """README's picture: the trace replayed at fixed 4 KiB and fixed 64 B, side by side."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import Normalize

    from tracedamon import replay
    from tracedamon.export.heatmap import region_heatmap
    from tracedamon.ingest import ingest

    td = ingest(data, Path(work) / "subpage.td", force=True)
    rng = [f"{BASE:#x}-{BASE + 2 * PAGE:#x}"]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), dpi=100, sharey=True)
    for ax, size in zip(axes, (4096, 64)):
        out = Path(work) / f"r{size}.parquet"
        replay(
            td, ops="fvaddr", ranges=rng, min_region=size, max_region=size, output=out, force=True
        )
        hm = region_heatmap(out, addr_bins=2 * PAGE // 64, collapse="none")
        t = (hm.t_edges - hm.t_edges[0]) / 1e9
        im = ax.imshow(
            np.ma.masked_invalid(hm.level(hm.matrix).T),
            origin="lower",
            aspect="auto",
            cmap=hm._cmap(),
            norm=Normalize(0.0, 1.0),
            interpolation="nearest",
            extent=(t[0], t[-1], 0, 2 * PAGE),
        )
        ax.set_title(
            f"{'4 KiB pages' if size == 4096 else '64 B cache lines'}: {2 * PAGE // size} regions",
            fontsize=9,
        )
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_xticks([0, 0.25, 0.5, 0.75])
        ax.tick_params(labelsize=7)
    axes[0].set_yticks([64, PAGE // 2, PAGE, PAGE + PAGE // 2, 2 * PAGE])
    axes[0].set_yticklabels(
        [
            "page 0: counters of tids\n4243 and 4244 (lines 0, 1)",
            "page 0: rest written once",
            "page 1 (0x1000)",
            "page 1: 16 structs of 256 B,\nhot field = 1st line of each",
            "0x2000",
        ],
        fontsize=7,
    )
    axes[0].set_ylabel(f"address - {BASE:#x}", fontsize=8)
    cb = fig.colorbar(im, ax=axes, fraction=0.04, pad=0.02)
    cb.set_ticks(np.sqrt(np.array([1, 5, 20]) / 20))
    cb.set_ticklabels(["1", "5", "20"])
    cb.set_label("nr_accesses per 100 ms (of 20); black: 0", fontsize=8)
    fig.suptitle(
        "constructed perf mem trace: false sharing (page 0) and a hot struct field (page 1)",
        fontsize=9,
    )
    fig.subplots_adjust(left=0.2, right=0.86, bottom=0.12, top=0.86, wspace=0.06)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--picture", metavar="PNG", help="also draw README's picture")
    a = ap.parse_args(argv)
    write_trace(a.out, a.seconds)
    if a.picture:
        import tempfile

        with tempfile.TemporaryDirectory() as work:
            picture(a.out, a.picture, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
