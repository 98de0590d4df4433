"""Ground truth and attribution from pagemap snapshots, with their files: what
``tracedamon report truth`` and ``report attribute`` run (the command only parses its
options and prints what these return).

* :func:`write_ground_truth` -- the physical frames of a workload's labelled virtual
  areas (:func:`tracedamon.export.truth.ground_truth`), written as the ``start,end,label``
  CSV that ``compare --truth`` scores a paddr history with, and counted per label.
* :func:`write_attribution` -- the bytes of each region of a paddr history that each
  process maps (:func:`tracedamon.export.truth.write_attribution`), optionally written
  as a Parquet table, summed per pid.

Both refuse an output they may not replace before any work (the output rule of
:mod:`tracedamon.store.atomic`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..errors import InputError
from ..export import truth as _truth
from ..export.history import open_history
from ..export.truth_score import load_truth
from ..store.atomic import ATTRIBUTION, TRUTH_CSV, check_output
from ..store.trace import Trace, open_trace
from ..units import PAGE_SIZE

__all__ = ["LabelCount", "TruthResult", "load_areas", "write_attribution", "write_ground_truth"]

PathLike = str | os.PathLike


@dataclass(frozen=True)
class LabelCount:
    """What the truth holds of one labelled area: its present pages and the physical
    ranges they form (both 0 for an area left out: no page of it was present)."""

    label: str
    pages: int
    ranges: int

    @property
    def left_out(self) -> bool:
        return self.pages == 0


@dataclass
class TruthResult:
    """A ground truth written by :func:`write_ground_truth`: the ranges (``start``,
    ``end``, ``label``), the file, and per area label (in the areas' order) what it
    holds."""

    truth: pd.DataFrame
    path: str
    labels: list[LabelCount] = field(default_factory=list)

    @property
    def left_out(self) -> list[str]:
        """The labels with no page present in the snapshot (not in the file)."""
        return [c.label for c in self.labels if c.left_out]


def load_areas(path: PathLike) -> pd.DataFrame:
    """Labelled virtual areas (``label``, ``start``, ``end``) from a CSV/JSON of
    label,start,end (each area labelled by its own name: cold0, cold1 ...) or, failing
    that, from a workload log with ``layout area=NAME start=0x.. end=0x..`` lines."""
    try:
        ar = load_truth(path)
        ar = ar.assign(label=ar["area"])  # the areas' own names (cold0, cold1, ...)
    except Exception:
        ar = _truth.areas_from_workload_log(path)
    return ar[["label", "start", "end"]]


def _pagemap_trace(pagemap: PathLike) -> Trace:
    tr = open_trace(pagemap)
    if not tr.has("pagemap"):
        raise InputError(f"{pagemap}: holds no pagemap table (tracedamon snapshot / ingest)")
    return tr


def write_ground_truth(
    pagemap: PathLike,
    areas: PathLike,
    out: PathLike,
    *,
    snapshot: int | None = None,
    pid: int | None = None,
    force: bool = False,
) -> TruthResult:
    """The physical ranges of the virtual ``areas`` (see :func:`load_areas`) in one
    snapshot of the trace directory ``pagemap``'s pagemap table (default: the last; of
    process ``pid``), written to ``out`` as ``start,end,label`` CSV.

    Raises :class:`~tracedamon.errors.InputError` when ``pagemap`` holds no pagemap
    table or no page of any area is present."""
    check_output(out, TRUTH_CSV, force=force, inputs=[pagemap, areas])  # before any work
    tr = _pagemap_trace(pagemap)
    ar = load_areas(areas)
    truth = _truth.ground_truth(tr.df("pagemap"), ar, snapshot=snapshot, pid=pid)
    if truth.empty:
        raise InputError(f"{areas}: no present page of these areas in {pagemap}")
    dest = _truth.write_truth_csv(truth, out, force=force)
    return TruthResult(truth, dest, _label_counts(truth, ar["label"]))


def _label_counts(truth: pd.DataFrame, labels: pd.Series) -> list[LabelCount]:
    per = truth.assign(bytes=truth["end"] - truth["start"]).groupby("label")["bytes"].sum()
    counts = []
    for label in pd.unique(labels):
        if label in per.index:
            n = int((truth["label"] == label).sum())
            counts.append(LabelCount(label, int(per[label]) // PAGE_SIZE, n))
        else:
            counts.append(LabelCount(label, 0, 0))
    return counts


def write_attribution(
    src: PathLike,
    pagemap: PathLike,
    out: PathLike | None = None,
    *,
    offset_ns: int = 0,
    force: bool = False,
) -> dict:
    """Attribute the bytes of the paddr region history ``src`` to the processes that
    map them in the trace directory ``pagemap``'s pagemap snapshots (the one nearest
    each region's time + ``offset_ns``); the table is written to ``out`` when given.

    Returns ``snapshots`` (how many were attributed) and ``per_pid``: pid -> (bytes,
    bytes in accessed regions), summed over the snapshots."""
    if out is not None:
        check_output(out, ATTRIBUTION, force=force, inputs=[src, pagemap])  # before any work
    pm = _pagemap_trace(pagemap)
    hs = open_history(src)
    return _truth.write_attribution(
        hs,
        pm.df("pagemap"),
        out,
        time_offset_ns=offset_ns,
        metadata={
            "attribution": {"regions": str(src), "pagemap": str(pagemap), "offset_ns": offset_ns}
        },
        force=force,
    )
