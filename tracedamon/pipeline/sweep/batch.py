"""Batch ingest: many recordings, one trace directory each, on the sweep's runner.

``tracedamon ingest 'runs/*.data' -o runs/ --parallel`` ingests every input into
its own directory (``OUT/NAME.td``, or ``INPUT.td`` beside it without ``-o``), as
tasks on the same runner as sweeps (:mod:`tracedamon.pipeline.sweep.runner`): in-process, a
local Dask cluster, or ``--scheduler``.  Each directory is written atomically by
``tracedamon.ingest`` itself; an input that fails is reported by name and the others
go on.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Callable

from ...errors import InputError, TracedamonError
from ..ingest import default_output, ingest
from ...store.atomic import TRACE_DIR, check_output
from .runner import run_tasks


def ingest_one(spec: dict) -> dict:
    """Ingest one input into its directory; return {input, output, error}."""
    try:
        out = ingest(spec["input"], spec["output"], force=spec["force"], **spec["options"])
        return {"input": spec["input"], "output": str(out), "error": None}
    except TracedamonError as e:
        return {"input": spec["input"], "output": None, "error": str(e)}
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return {"input": spec["input"], "output": None, "error": f"{where}{e.strerror or e}"}


def plan(inputs, out_dir=None, *, force: bool = False) -> list[tuple[Path, Path]]:
    """(input, output directory) pairs: globs expanded, each input once; two inputs that
    would share an output, or an existing output without ``force``, are refused before
    any work."""
    paths: list[Path] = []
    for s in inputs:
        s = os.fspath(s)
        hits = sorted(glob.glob(s)) if glob.has_magic(s) and not os.path.exists(s) else [s]
        if not hits:
            raise InputError(f"{s}: matches no input")
        for h in hits:
            p = Path(h)
            if not p.exists():
                raise InputError(f"{p}: no such file")
            if p not in paths:
                paths.append(p)
    pairs, seen = [], {}
    for p in paths:
        d = default_output(p)
        if out_dir is not None:
            d = Path(out_dir) / d.name
        if d in seen:
            raise InputError(f"{p} and {seen[d]} would both be ingested into {d}")
        check_output(d, TRACE_DIR, force=force, inputs=[p])
        seen[d] = p
        pairs.append((p, d))
    return pairs


def ingest_many(
    inputs,
    out_dir=None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: Callable | None = None,
    **options,
) -> list[dict]:
    """Ingest each input into its own trace directory; returns one dict per input
    ({input, output, error}) in the order given."""
    pairs = plan(inputs, out_dir, force=force)
    specs = [
        {"input": str(p.resolve()), "output": str(d.resolve()), "force": force, "options": options}
        for p, d in pairs
    ]
    res: dict[str, dict] = {}

    def on_result(spec, r):
        res[spec["input"]] = r
        if progress is not None:
            progress(len(res), len(specs), r)

    run_tasks(ingest_one, specs, on_result, scheduler=scheduler, workers=workers)
    return [res[s["input"]] for s in specs]
