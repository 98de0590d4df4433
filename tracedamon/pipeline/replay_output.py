"""The replay's output: the Parquet file the snapshots stream to (``output=``) and the
metadata the history carries (what the engine ran, with which configuration; what it
read, from where, and what it chose on the way)."""

from __future__ import annotations

import os

from .. import __version__
from ..engine.prng import GENERATOR as PRNG_GENERATOR
from ..engine.rng import GENERATOR
from ..store.history import HistoryWriter
from . import region_history
from .replay_state import ReplayState


def open_writer(output, force: bool, source, pagemap) -> HistoryWriter | None:
    """The writer of ``output`` (None: the history stays in memory); the input paths it
    names must not be replaced by the output."""
    if output is None:
        return None
    return HistoryWriter(
        output,
        force=force,
        row_group_rows=region_history.ROW_GROUP_ROWS,
        inputs=[
            source if isinstance(source, (str, os.PathLike)) else None,
            pagemap if isinstance(pagemap, (str, os.PathLike)) else None,
        ],
    )


def input_metadata(r: ReplayState, t0: int, t0_source: str, t0_auto, used: int, prov: dict) -> dict:
    """The metadata of what the replay read and chose: ops, access, events, targets, the
    start of the time grid and why, the samples used, the input files, the warnings."""
    return {
        "ops": r.ops.name,
        "access": r.access,
        "events": r.chosen,
        "targets": r.target_meta,
        "t0_ns": t0,
        "t0_source": t0_source,
        "address_source": r.address_source,
        "t0_auto": t0_auto,
        "t_last_ns": r.scan["t_last"],
        "samples_used": used,
        "input": prov,
        "warnings": r.warnings,
    }


def engine_metadata(config, hist, accessed_only, reason, max_rows, use_fixed, folios) -> dict:
    """The engine's part of the metadata: its path, configuration, generator and seed, the
    snapshots and what their rows hold (every region, or only accessed ones and why)."""
    metadata = {
        "engine": f"tracedamon {__version__}",
        "engine_path": "fixed-granularity (sparse)" if use_fixed else "adaptive",
        "config": config.to_dict(),
        "generator": GENERATOR if config.profile.prng == "pcg32" else PRNG_GENERATOR,
        "seed": config.seed,
        "snapshots": hist.n_snapshots,
        "accessed_only": bool(accessed_only),
        # the sparse-history contract: rows with nr_accesses 0 left out; coverage says
        # what was monitored (see RegionHistory)
        "sparse": bool(accessed_only),
        "coverage": [list(map(int, e)) for e in hist.coverage],
        "rows": "regions with nr_accesses > 0 only" if accessed_only else "every region",
        "accessed_only_reason": (
            reason if reason is not None else "asked for" if accessed_only else None
        ),
        "max_rows": max_rows,
        "folio_model": "4 KiB pages" if folios is None else folios.description,
        "tune_events": [list(map(int, e)) for e in hist.tune_events],
    }
    if folios is not None:  # (4 KiB pages: no key, as before)
        metadata["folios"] = folios.metadata()
    if config.kernel != "released":  # (the default profile: no key, as before)
        metadata["kernel"] = config.kernel
    return metadata
