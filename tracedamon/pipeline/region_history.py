"""RegionHistory: the result of a replay, the region snapshots DAMON would have produced.

A history lives in memory (an Arrow table in the REGIONS schema) or in the Parquet file
a replay streamed it to; either way it reads the same: ``.df``, ``.table``,
``.tables()`` row group by row group, ``.hottest()``, ``.summary()``, and writes itself
out as Parquet (:meth:`RegionHistory.to_parquet`) or as a DAMON trace text
(:meth:`RegionHistory.to_damon_trace`).  :func:`history_table` turns the engine's
column arrays (:class:`tracedamon.engine.core.HistoryArrays`) into such a table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..engine.address import to_unsigned
from ..engine.core import HistoryArrays
from ..errors import ConfigError
from ..schema import REGIONS
from ..store.atomic import DAMON_TRACE_TEXT, atomic_path, text_marker
from ..store.history import ROW_GROUP_ROWS as HISTORY_ROW_GROUP_ROWS
from ..store.history import HistoryWriter
from ..store.parquet import ParquetReader, read_table
from ..units import format_bytes

ROW_GROUP_ROWS = HISTORY_ROW_GROUP_ROWS  # rows per row group of a written history
COARSE_BYTES = 1 << 30  # "hottest regions": regions this large are coarse, not hot spots


def _snapshot_slices(table: pa.Table):
    """Zero-copy slices of a history table (rows in snapshot order), one per snapshot."""
    if table.num_rows == 0:
        return
    snap = table.column("snapshot").to_numpy()
    cut = np.concatenate([[0], np.flatnonzero(snap[1:] != snap[:-1]) + 1, [snap.size]])
    for lo, hi in zip(cut[:-1], cut[1:]):
        yield table.slice(int(lo), int(hi - lo))


class RegionHistory:
    """The region snapshots of one replay (REGIONS schema) and how they were made.

    ``.df`` / ``.to_pandas()`` give a pandas DataFrame, ``.table`` the Arrow table,
    ``.to_parquet(path)`` writes it atomically with the metadata (config, seed,
    input provenance) in the file's key-value metadata, ``.metadata`` is that dict.
    A history replayed with ``output=`` lives in its file (``.path``): ``.table`` reads
    it on demand, and the summary, :meth:`hottest` and the DAMON-trace text read it row
    group by row group.

    Sparse histories.  The metadata's ``sparse`` is true when rows with nr_accesses 0
    were left out (``accessed_only``, asked for or past ``max_rows``), and ``coverage``
    (written for every replay) lists what the monitor covered: ``[snapshot_from, target,
    start, end]`` entries, the union of the target's regions (adjacent ranges merged) in
    effect from snapshot ``snapshot_from`` until the target's next entry, sorted by
    (snapshot_from, target, start), emitted only when it changes (vaddr: at ops updates;
    fvaddr and paddr: once); ``[snapshot_from, target, 0, 0]`` when the target has no
    region.  In a sparse history a byte inside the coverage that no row of a snapshot
    covers had nr_accesses 0 then; a byte outside it was not monitored.
    """

    def __init__(self, table: pa.Table | None, metadata: dict, path=None, damos=None):
        self._table = table
        self.metadata = metadata
        self.path = Path(path) if path is not None else None
        self.damos = damos  # a DamosResult when the replay ran schemes
        self._df = None
        self._totals = None

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            self._table = read_table(self.path).replace_schema_metadata(None)
        return self._table

    @property
    def df(self):
        if self._df is None:
            self._df = self.table.to_pandas()
        return self._df

    def to_pandas(self):
        return self.table.to_pandas()

    def tables(self, columns: list[str] | None = None):
        """The rows as a sequence of tables in snapshot order (the file's row groups, or
        slices of the table in memory): bounded memory for a history in a file."""
        if self._table is None and self.path is not None:
            pf = ParquetReader(self.path)
            for g in range(pf.num_row_groups):
                yield pf.read_row_group(g, columns=columns).replace_schema_metadata(None)
            return
        t = self.table if columns is None else self.table.select(columns)
        for off in range(0, max(t.num_rows, 1), ROW_GROUP_ROWS):
            yield t.slice(off, ROW_GROUP_ROWS)

    def to_parquet(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the history atomically (row groups of whole snapshots, see
        :class:`HistoryWriter`); an existing ``path`` is replaced only with
        ``force=True`` and only if it is a region history tracedamon wrote."""
        if (
            self.path is not None
            and self._table is None
            and Path(path).resolve() == self.path.resolve()
        ):
            return self.path
        w = HistoryWriter(path, force=force, row_group_rows=ROW_GROUP_ROWS)
        try:
            for tb in self.tables():
                for one in _snapshot_slices(tb):
                    w.add(one)
        except BaseException as e:
            raise w.abort(e) from None
        return w.close(self.metadata)

    def damon_trace_lines(self, comm: str = "kdamond.0", pid: int = 0):
        """The history as ``perf script`` lines of ``damon:damon_aggregated`` events
        (spec §14), one per region, stamped with the snapshot's time: the text form
        real DAMON traces have, so DAMON-trace tools (and tracedamon's own ingest) read
        a replay like a recording."""
        if self.metadata.get("accessed_only"):
            raise ConfigError(
                "a DAMON trace lists every region (nr_regions), but this "
                "history holds only regions with accesses ("
                f"{self.metadata.get('accessed_only_reason') or 'accessed_only'}"
                "); replay without accessed_only (and a larger max_rows) to "
                "write one"
            )
        # pass 1: regions per (snapshot, target); pass 2: the lines
        nreg: dict[tuple[int, int], int] = {}
        for t in self.tables(["snapshot", "target"]):
            if t.num_rows == 0:
                continue
            g = t.group_by(["snapshot", "target"], use_threads=False).aggregate(
                [("target", "count")]
            )
            for k1, k2, c in zip(
                *(g.column(x).to_pylist() for x in ("snapshot", "target", "target_count"))
            ):
                nreg[(k1, k2)] = nreg.get((k1, k2), 0) + c
        for t in self.tables(
            ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age"]
        ):
            cols = [t.column(c).to_pylist() for c in t.column_names]
            for snap, ns, tgt, st, en, nr, age in zip(*cols):
                yield (
                    f"{comm} {pid} [000] {ns // 1_000_000_000}.{ns % 1_000_000_000:09d}: "
                    f"damon:damon_aggregated: target_id={tgt} "
                    f"nr_regions={nreg[(snap, tgt)]} {st}-{en}: {nr} {age}"
                )

    def to_damon_trace(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write :meth:`damon_trace_lines` to a text file (atomically), then a comment
        line by which tracedamon recognises the file as its own (``force=True``
        replaces only such a file, never a recorded trace)."""
        with atomic_path(path, kind=DAMON_TRACE_TEXT, force=force) as tmp, open(tmp, "w") as f:
            for line in self.damon_trace_lines():
                f.write(line + "\n")
            f.write(text_marker(DAMON_TRACE_TEXT))
        return Path(path)

    @property
    def n_snapshots(self) -> int:
        return int(self.metadata.get("snapshots", 0))

    def __len__(self) -> int:
        if self._table is None and self.path is not None:
            return ParquetReader(self.path).num_rows
        return self.table.num_rows

    def __repr__(self) -> str:
        return (
            f"<RegionHistory {self.n_snapshots} snapshots, {len(self)} region rows, "
            f"ops={self.metadata.get('ops')} access={self.metadata.get('access')}>"
        )

    def _region_totals(self):
        """Per region (target, start, end) over all snapshots: snapshots, total and max
        age; aggregated row group by row group, partial results merged as they grow."""
        if self._totals is not None:
            return self._totals
        keys = ["target", "start", "end"]
        aggs = [("nr_accesses", "count"), ("nr_accesses", "sum"), ("age", "max")]
        parts: list[pa.Table] = []
        held = 0

        def combine(ts):
            t = pa.concat_tables(ts)
            return (
                t.group_by(keys, use_threads=False)
                .aggregate([("n", "sum"), ("total", "sum"), ("max_age", "max")])
                .rename_columns(keys + ["n", "total", "max_age"])
            )

        for t in self.tables(keys + ["nr_accesses", "age"]):
            if t.num_rows == 0:
                continue
            g = (
                t.group_by(keys, use_threads=False)
                .aggregate(aggs)
                .rename_columns(keys + ["n", "total", "max_age"])
            )
            parts.append(g)
            held += g.num_rows
            if held > 2 * ROW_GROUP_ROWS and len(parts) > 1:
                parts = [combine(parts)]
                held = parts[0].num_rows
        if not parts:
            self._totals = pa.table(
                {k: pa.array([], pa.int64()) for k in keys + ["n", "total", "max_age"]}
            ).to_pandas()
        else:
            self._totals = (combine(parts) if len(parts) > 1 else parts[0]).to_pandas()
        return self._totals

    def hottest(self, n: int = 5, coarse: bool = False):
        """The ``n`` regions (target, start, end) with the most accesses summed over all
        snapshots, most first: columns target, start, end, size, snapshots (in which the
        region existed with these bounds), total_accesses, mean_accesses, max_age and
        ``coarse`` (``size >= COARSE_BYTES``, 1 GiB).

        A region counts as accessed in a sample interval when one sample hits any page of
        it (perf checks) or its one sampled page (abit), whatever its size: a region of a
        gigabyte or more with a high count is an artefact of coarse regions, not a hot
        spot.  Coarse regions are left out unless ``coarse=True``;
        :meth:`coarse_accessed` summarises them."""
        g = self._region_totals()
        cols = [
            "target",
            "start",
            "end",
            "size",
            "snapshots",
            "total_accesses",
            "mean_accesses",
            "max_age",
            "coarse",
        ]
        if len(g) == 0:
            return pd.DataFrame({c: [] for c in cols})
        g = g.rename(columns={"n": "snapshots", "total": "total_accesses"})
        g["size"] = (g["end"].astype(np.uint64) - g["start"].astype(np.uint64)).astype(np.uint64)
        g["mean_accesses"] = g["total_accesses"] / g["snapshots"]
        g["coarse"] = g["size"] >= COARSE_BYTES
        if not coarse:
            g = g[~g["coarse"]]
        g = g.sort_values(
            ["total_accesses", "target", "start", "end"],
            ascending=[False, True, True, True],
            kind="stable",
        )
        return g[cols].head(n).reset_index(drop=True)

    def coarse_accessed(self) -> dict:
        """Regions of 1 GiB or more that had accesses: how many, the largest, and the
        highest mean nr_accesses among them."""
        g = self._region_totals()
        if len(g) == 0:
            return {"regions": 0, "largest": 0, "max_mean_accesses": 0.0}
        size = g["end"].astype(np.uint64) - g["start"].astype(np.uint64)
        sel = (size >= COARSE_BYTES) & (g["total"] > 0)
        if not sel.any():
            return {"regions": 0, "largest": 0, "max_mean_accesses": 0.0}
        return {
            "regions": int(sel.sum()),
            "largest": int(size[sel].max()),
            "max_mean_accesses": float((g["total"][sel] / g["n"][sel]).max()),
        }

    def summary(self, n: int = 5) -> str:
        m = self.metadata
        lines = [
            f"replay: ops={m['ops']} access={m['access']} targets={len(m['targets'])} "
            f"seed={m['config']['seed']}" + (f" kernel={m['kernel']}" if m.get("kernel") else ""),
            f"snapshots: {self.n_snapshots}   region rows: {len(self)}"
            + ("   (only regions with accesses)" if m.get("accessed_only") else ""),
            f"samples used: {m['samples_used']}   max nr_accesses per aggregation: "
            f"{m['config']['aggr_us'] // m['config']['sample_us']}",
        ]
        for w in m.get("warnings", []):
            lines.append(f"warning: {w}")
        hot = self.hottest(n)
        hot = hot[hot.total_accesses > 0]
        if len(hot):
            lines.append(
                "hottest regions (most nr_accesses summed over all snapshots; regions under 1 GiB):"
            )
            for r in hot.itertuples():
                lines.append(
                    f"  target {r.target}  {int(r.start):#x}-{int(r.end):#x} "
                    f"({_size(int(r.size))})  mean nr_accesses "
                    f"{r.mean_accesses:.1f} in {r.snapshots} snapshots"
                )
        c = self.coarse_accessed()
        if c["regions"]:
            rule = (
                "the one page it samples was accessed"
                if m["access"] == "abit"
                else "one sample hits any of its pages"
            )
            lines.append(
                f"coarse: {c['regions']} region(s) of 1 GiB or more had accesses (the "
                f"largest {_size(c['largest'])}, mean nr_accesses up to "
                f"{c['max_mean_accesses']:.1f}); a region counts as accessed when {rule}, "
                "whatever its size, so these are no hot spots and are not ranked (a "
                "smaller --max-region or more --min-nr-regions splits them)"
            )
        return "\n".join(lines)


def _size(b: int) -> str:
    return format_bytes(b, 1, exact=True, largest="GiB")


def history_table(h: HistoryArrays, pids: list[int | None]) -> pa.Table:
    """A REGIONS Arrow table from the engine's column arrays."""
    n = h.start.size
    pid_by_target = np.array([-1 if p is None else p for p in pids] or [-1], np.int64)
    pid = pid_by_target[h.target] if n else np.zeros(0, np.int64)
    cols = {
        "run": pa.array(np.zeros(n, np.int32)),
        "snapshot": pa.array(h.snapshot.astype(np.int64)),
        "time_ns": pa.array(h.time_ns.astype(np.int64)),
        "target": pa.array(h.target.astype(np.int32)),
        "pid": pa.array(pid.astype(np.int32), mask=pid < 0),
        "start": pa.array(to_unsigned(h.start, "region start")),
        "end": pa.array(to_unsigned(h.end, "region end")),
        "nr_accesses": pa.array(h.nr_accesses.astype(np.uint32)),
        "age": pa.array(h.age.astype(np.uint32)),
        "nr_accesses_bp": pa.array(h.nr_accesses_bp.astype(np.uint32)),
    }
    return pa.table(cols, schema=REGIONS)
