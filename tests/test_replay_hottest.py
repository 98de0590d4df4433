"""The "hottest regions" of `tracedamon replay`: hot spots, not coarse regions.

A region counts as accessed in a sample interval when one sample hits any page of it,
whatever its size, so a region of a gigabyte or more reaches high counts from a few
scattered samples.  hottest() ranks regions under 1 GiB by nr_accesses summed over the
snapshots; coarse ones are left out of the ranking and summarised on one line.
Oracles: a pandas group-by over the rows, on a hand-made history and on real replays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SAMPLES

from tracedamon.pipeline.region_history import COARSE_BYTES, RegionHistory
from tracedamon.pipeline.replay import replay
from tracedamon.ingest import ingest
from tracedamon.schema import REGIONS

G = 1 << 30


def history(rows, access="perf"):
    df = pd.DataFrame(rows, columns=["snapshot", "start", "end", "nr_accesses"])
    n = len(df)
    t = pa.table(
        {
            "run": np.zeros(n, np.int32),
            "snapshot": df.snapshot.astype(np.int64),
            "time_ns": (df.snapshot + 1).astype(np.int64) * 100_000_000,
            "target": np.zeros(n, np.int32),
            "pid": pa.nulls(n, pa.int32()),
            "start": df.start.astype(np.uint64),
            "end": df.end.astype(np.uint64),
            "nr_accesses": df.nr_accesses.astype(np.uint32),
            "age": np.zeros(n, np.uint32),
            "nr_accesses_bp": np.zeros(n, np.uint32),
        },
        schema=REGIONS,
    )
    meta = {
        "ops": "vaddr",
        "access": access,
        "targets": [{}],
        "config": {"seed": 0, "aggr_us": 100_000, "sample_us": 5000},
        "samples_used": 1,
        "snapshots": int(df.snapshot.max()) + 1,
        "warnings": [],
    }
    return RegionHistory(t, meta)


BIG = (0x7F0000000000, 0x7F0000000000 + 47 * G)  # a 47 GiB region
SMALL = (0x200000000000, 0x200000001000)  # one page
MID = (0x200000100000, 0x200000200000)  # 1 MiB
EDGE = (0x300000000000, 0x300000000000 + G)  # exactly 1 GiB: coarse


def rows():
    out = []
    for s in range(10):
        out += [(s, *BIG, 20), (s, *SMALL, 15), (s, *MID, 5 if s % 2 else 0), (s, *EDGE, 19)]
    return out


@pytest.mark.parametrize("access", ["perf", "abit"])
def test_coarse_regions_are_not_ranked_as_hot_spots(access):
    h = history(rows(), access)
    hot = h.hottest(5)
    assert [(int(r.start), int(r.end)) for r in hot.itertuples()] == [SMALL, MID]
    assert hot.total_accesses.tolist() == [150, 25]
    assert hot["size"].tolist() == [4096, 1 << 20] and not hot.coarse.any()
    every = h.hottest(5, coarse=True)
    assert [(int(r.start), int(r.end)) for r in every.itertuples()] == [BIG, EDGE, SMALL, MID]
    assert every.coarse.tolist() == [True, True, False, False]
    c = h.coarse_accessed()
    assert c == {"regions": 2, "largest": 47 * G, "max_mean_accesses": 20.0}
    text = h.summary()
    assert f"{BIG[0]:#x}" not in text and f"{SMALL[0]:#x}-{SMALL[1]:#x} (4 KiB)" in text
    assert "coarse: 2 region(s) of 1 GiB or more had accesses (the largest 47 GiB" in text
    rule = "the one page it samples" if access == "abit" else "one sample hits any of its pages"
    assert rule in text


def test_hottest_equals_a_pandas_groupby_on_real_replays(tmp_path):
    """hotcold, vaddr --start auto: the three regions span about 208 GiB, so the first
    snapshots hold regions of tens of GiB that the hot pages make 'accessed'."""
    td = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "hc.td")
    for i, kw in enumerate((dict(start_ns="auto"), dict(start_ns="auto", access="abit", seed=2))):
        h = replay(td, output=tmp_path / f"h{i}.parquet", **kw)
        df = h.df.copy()
        df["size"] = df.end.astype(np.int64) - df.start.astype(np.int64)
        g = (
            df.groupby(["target", "start", "end"])
            .agg(
                snapshots=("snapshot", "size"), total=("nr_accesses", "sum"), size=("size", "first")
            )
            .reset_index()
        )
        coarse = g[(g["size"] >= COARSE_BYTES) & (g.total > 0)]
        c = h.coarse_accessed()
        assert c["regions"] == len(coarse) and c["largest"] == int(
            coarse["size"].max() if len(coarse) else 0
        )
        fine = g[g["size"] < COARSE_BYTES].sort_values(
            ["total", "target", "start", "end"], ascending=[False, True, True, True]
        )
        hot = h.hottest(6)
        assert (
            hot[["start", "end"]].astype(np.int64).values.tolist()
            == fine[["start", "end"]].astype(np.int64).head(6).values.tolist()
        )
        assert hot.total_accesses.tolist() == fine.total.head(6).tolist()
        if "access" not in kw:
            # the perf check counts regions of tens of GiB accessed: said, not ranked
            assert len(coarse) > 0 and "coarse:" in h.summary()
