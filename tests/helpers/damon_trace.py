"""Shared by the DAMON trace ingest tests: the corpus run and sample trace places, ingest
into a fresh trace directory, damo's raw report text, snapshots of a regions table, and a
perf.data reader whose sample batches a test edits."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa

from tracedamon.ingest import ingest
from tracedamon.ingest.damon_trace import add_regions_from_perf_data
from tracedamon.ingest.perf_data import open_perf_data
from tracedamon.store.trace import open_trace
from tracedamon.store.writer import TraceDirWriter

RUN1 = ("damon-paddr-run1", "paddr_run1")
KEY = ["run", "snapshot", "target", "start", "end", "nr_accesses", "age"]


def _ingest(path, tmp_path, name="t.td", fmt="auto", **opts):
    out = ingest([path], tmp_path / name, format=fmt, **opts)
    tr = open_trace(out)
    return tr.df("regions"), json.loads((out / "meta.json").read_text())


def _lines(path) -> list[str]:
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rt") as f:
        return f.read().splitlines(keepends=True)


def parse_damo_raw_report(path) -> list[list[tuple]]:
    """damo's ``report access --raw_form`` text → [[(start, end, nr_accesses, age)...]...]."""
    snaps, cur = [], None
    reg = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \(.*\)\s+(-?\d+)\s+(-?\d+)$")
    for ln in open(path):
        ln = ln.rstrip("\n")
        if ln.startswith("nr_regions:"):
            cur = []
            snaps.append(cur)
        elif (m := reg.match(ln)) and cur is not None:
            cur.append((int(m[1], 16), int(m[2], 16), int(m[3]), int(m[4])))
    return snaps


def snapshots_of(df, run=0) -> list[list[tuple]]:
    d = df[df["run"] == run].sort_values(["snapshot", "start"])
    age = d["age"].astype("Int64").fillna(-1).astype(int)
    rows = list(
        zip(
            d["snapshot"],
            d["start"].astype(int),
            d["end"].astype(int),
            d["nr_accesses"].astype(int),
            age,
        )
    )
    out: dict[int, list] = {}
    for s, *r in rows:
        out.setdefault(int(s), []).append(tuple(int(x) for x in r))
    return [out[k] for k in sorted(out)]


# --- perf.data: the reader's batches, decoded with the file's own formats -------------

LIVE = Path(__file__).resolve().parent.parent.parent / "sample_traces" / "damon"


class _Wrapped:
    """A perf.data reader whose sample batches a test edits (duplicate / drop rows)."""

    def __init__(self, path, edit):
        self.rd = open_perf_data(path)
        self.events, self.tracing_data, self.path = self.rd.events, self.rd.tracing_data, path
        self.edit = edit

    def iter_sample_batches(self):
        t = pa.Table.from_batches(list(self.rd.iter_sample_batches()))
        yield from self.edit(t).to_batches(max_chunksize=1000)


def _write_from(reader, tmp_path, name, **kw):
    with TraceDirWriter(tmp_path / name) as w:
        add_regions_from_perf_data(reader, w, **kw)
    return open_trace(tmp_path / name).df("regions"), json.loads(
        (tmp_path / name / "meta.json").read_text()
    )
