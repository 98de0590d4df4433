"""Parameter sweeps: which DAMON settings would have served best?

``tracedamon.sweep(sources, grid, ...)`` replays every source with every
configuration of ``grid`` (× seeds), scores each run against a reference region
history or a ground truth and by what the monitoring costs, and returns one tidy
table (a pandas DataFrame; ``output=`` also writes it as Parquet), one row per
(source, configuration, seed).  ``tracedamon sweep`` is a thin layer over it.

Modules: :mod:`.grid` (options, cross product), :mod:`.task` (one task, the
worker-side source cache), :mod:`.runner` (in-process or Dask distributed),
:mod:`.summary` (best configurations, Pareto front, PNG), :mod:`.inputs` (sources by
path or fsspec URL, references, truth, schemes: checked before any work), :mod:`.rows`
(side file, resume, the table), :mod:`.batch` (`ingest --parallel`).  Their imports
are at module top, but for the optional dependencies, imported where they are used:
Dask (``distributed``, ``dask``: :mod:`.runner`; without it sweeps run in-process) and
matplotlib (:func:`.summary.draw_pareto`, only for a PNG).

Columns, in order: provenance (``source``, ``source_name``, ``source_sha256``: the
sha256 of the samples file replayed, ``config_id``, ``seed``, ``seed_dependent``,
``run_key``, ``tracedamon_version``, ``worker``, ``worker_peak_rss_mb``: the peak
resident memory so far of the process that ran the task), one column per grid key
(named like the option, ``-`` → ``_``), ``error`` (null, or why the run was refused),
timings (``replay_s`` wall and ``replay_cpu_s`` CPU of the replay, ``score_s``), cost
figures (``snapshots``, ``samples_used``, ``history_rows``, ``accessed_only``,
``regions_mean``, ``regions_max``, ``checks_per_s``), then the scores (``ref_*`` from
``compare``, ``truth_*`` from the ground-truth scoring).  ``worker``, its memory and
the timings describe the run, not its result: they are the only columns that differ
between two runs of one sweep (``RUN_COLUMNS``).

Interrupted sweeps: with a side file (``partial``, by default ``OUTPUT.partial.jsonl``)
each row is appended as soon as it arrives; ``resume=True`` takes the rows found
there (and in an existing output) whose ``run_key`` (source path and sha256, every
replay argument, seed, reference and truth with their sha256) matches a task, and runs
only the rest.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from ...errors import ConfigError, InputError
from ...store.atomic import PNG_PLOT, SWEEP_TABLE, check_output
from ...store.url import source_name
from ...store.writer import write_table_atomic
from . import task as _task
from .grid import OPTIONS, Configuration, configurations, digest, parse_grid
from .inputs import check_source, checked_inputs, expand_sources, fixed_values, schemes
from .rows import COST, PROVENANCE, TEXT_COLUMNS, build_table, reused_rows
from .runner import run_tasks
from .summary import write_pareto


def sweep(
    sources,
    grid,
    *,
    seeds: int = 1,
    fixed: dict | None = None,
    reference=None,
    truth=None,
    scheme=None,
    scheduler: str | None = None,
    workers: int | None = None,
    output=None,
    partial=None,
    resume: bool = False,
    force: bool = False,
    keep_histories=None,
    png=None,
    accuracy: str | None = None,
    progress: Callable | None = None,
    on_start: Callable | None = None,
    in_process: bool | None = None,
):
    """Sweep ``grid`` over ``sources``; returns a pandas DataFrame (one row per source ×
    configuration × seed, in that order).

    sources : trace directories (paths, globs, or fsspec URLs such as
        ``file:///abs/run.td`` or ``s3://bucket/run.td`` where pyarrow reads them)
    grid : ``["sample-us=5000,10000", ...]`` or {option: [values]} (see :mod:`.grid`)
    seeds : seeds 0..N-1 (from the fixed ``seed``) for configurations whose result
        depends on the seed
    fixed : options held fixed, by command-line name: {"ops": "vaddr", "pid": 1234,
        "start": "auto", "range": [...], "pagemap": DIR, "kernel": "mainline-2026", ...}
    reference : a region history (trace directory or .parquet) each run is compared
        with (``tracedamon.compare(reference, run)``); ``{src}`` in it stands for each
        source's path (``"{src}/regions.parquet"``: each recording's own DAMON trace)
    truth : ground-truth ranges (CSV/JSON of start,end,label) each run is scored against
    scheme : DAMOS schemes (a ``--scheme`` argument of ``tracedamon damos``: preset,
        damo JSON or sysfs dump; or a list of them) run over every replayed history
        (``tracedamon.damos`` on the history in memory, the source's samples for the
        outcome); their figures become ``damos_*`` columns
    scheduler : ``tcp://HOST:PORT`` of a Dask scheduler; else ``workers`` local worker
        processes (default: see :func:`.runner.default_workers`; 1 = in this process)
    output : write the table as Parquet (atomically, at the end); ``partial`` the side
        file of finished rows (default ``OUTPUT.partial.jsonl``); ``resume`` reuses the
        finished rows found there and in ``output``
    keep_histories : a directory to keep every run's region history in
        (``SOURCE_NAME/CONFIG_ID-sSEED.parquet``; the ``history`` column names it)
    png : draw the Pareto front of ``accuracy`` (default: see
        :func:`.summary.default_accuracy`) against access checks per second there
    progress : ``progress(done, total, row)`` after each finished task
    on_start : ``on_start(client)`` once a Dask cluster is up
    in_process : run here rather than on Dask (default: when ``workers`` is 1)
    """
    plan = _plan(
        sources,
        grid,
        seeds=seeds,
        fixed=fixed,
        reference=reference,
        truth=truth,
        scheme=scheme,
        output=output,
        partial=partial,
        resume=resume,
        force=force,
        keep_histories=keep_histories,
        png=png,
        accuracy=accuracy,
    )
    done = reused_rows(resume, plan["tasks"], plan["out"], plan["side"])
    results, how = _run_tasks(
        plan["tasks"],
        done,
        plan["side"],
        progress,
        dict(scheduler=scheduler, workers=workers, on_start=on_start, in_process=in_process),
    )
    meta = {**plan["meta"], "ran": how, "reused_rows": len(done)}
    rows = [results[t["run_key"]] for t in plan["tasks"]]
    table = build_table(rows, meta["grid_columns"])
    out, side = plan["out"], plan["side"]
    if out is not None:
        write_table_atomic(table, out, metadata=meta, kind=SWEEP_TABLE, force=force or resume)
        if side is not None and side.exists():
            side.unlink()
    df = table.to_pandas()
    df.attrs["tracedamon_sweep"] = meta
    if png is not None:
        write_pareto(df, png, accuracy, force=force or resume)
    return df


def _plan(
    sources,
    grid,
    *,
    seeds,
    fixed,
    reference,
    truth,
    scheme,
    output,
    partial,
    resume,
    force,
    keep_histories,
    png,
    accuracy,
) -> dict:
    """Everything checked before any work: options, grid, outputs, inputs; the tasks
    and the table's metadata."""
    schemes_ = schemes(scheme)
    if reference is not None and truth is not None:
        raise ConfigError(
            "give reference or truth, not both", cli_message="give --reference or --truth, not both"
        )
    fixed = dict(fixed or {})
    pagemap = fixed.pop("pagemap", None)
    g = parse_grid(grid)
    if not g:
        raise ConfigError(
            "give a grid of at least one option (grid=['KEY=V1,V2,...'])",
            cli_message="give at least one --grid KEY=V1,V2,...",
        )
    fx = fixed_values(fixed)
    cfgs: list[Configuration] = configurations(g, fx, seeds)
    out, side = _outputs(
        output, partial, png, accuracy, reference, truth, force=force, resume=resume
    )
    # every source checked (and hashed) before any work starts
    chk = checked_inputs(sources, reference, truth, pagemap)
    meta = {
        "table": "sweep",
        "grid": {k: [str(v) for v in vs] for k, vs in g.items()},
        "grid_columns": [OPTIONS[k].column for k in g],
        "fixed": {k: str(v) for k, v in fx.items()},
        "pagemap": chk["pagemap"],
        "seeds": seeds,
        "reference": reference and os.fspath(reference),
        "truth": chk["truth"],
        "scheme": schemes_["specs"] if schemes_ else None,
        "sources": [str(p) for p in chk["srcs"]],
    }
    tasks = _task_specs(chk, cfgs, schemes_, keep_histories)
    return {"tasks": tasks, "out": out, "side": side, "meta": meta}


def _outputs(output, partial, png, accuracy, reference, truth, *, force, resume):
    """The output table and the side file, refused before any work: anything but a
    sweep table (a PNG) tracedamon wrote, and an existing one unless it is extended
    (resume) or replaced (force)."""
    out = Path(output) if output is not None else None
    side = (
        Path(partial)
        if partial is not None
        else (Path(str(out) + ".partial.jsonl") if out is not None else None)
    )
    inputs = [x for x in (reference, truth) if isinstance(x, (str, os.PathLike))]
    if out is not None:
        check_output(out, SWEEP_TABLE, force=force or resume, inputs=inputs)
    if png is not None:
        if reference is None and truth is None and accuracy is None:
            raise ConfigError(
                "png: no accuracy column to draw (give reference or truth, or name one with "
                "accuracy)",
                cli_message="--png: no accuracy column to draw (give --reference or --truth, "
                "or name one with --accuracy)",
            )
        check_output(png, PNG_PLOT, force=force or resume, inputs=inputs + [out] * bool(out))
    if side is not None and side.exists() and not (force or resume):
        why = "partial results of an interrupted sweep exist"
        raise InputError(
            f"{side}: {why} (use resume=True to continue it, force=True to start over)",
            cli_message=f"{side}: {why} (use --resume to continue it, --force to start over)",
        )
    return out, side


def _keep_folders(srcs) -> list[str]:
    """The folder of ``--keep-histories`` each source's histories go to: its name, and where
    two sources share a name (a/run.td, b/run.td) the name and a digest of its path."""
    names = [source_name(p) for p in srcs]
    return [n if names.count(n) == 1 else f"{n}-{digest(str(p))[:8]}" for n, p in zip(names, srcs)]


def _task_specs(chk: dict, cfgs, schemes_, keep_histories) -> list[dict]:
    """One task per source x configuration, with the key that identifies its row."""
    tasks: list[dict] = []
    folders = _keep_folders(chk["srcs"])
    for si, (p, sha, ref) in enumerate(zip(chk["srcs"], chk["shas"], chk["refs"])):
        for c in cfgs:
            spec = {
                "source": str(p),
                "source_sha256": sha,
                "pagemap": chk["pagemap"],
                "reference": ref,
                "reference_sha256": chk["ref_sha"].get(ref),
                "truth": chk["truth"],
                "truth_sha256": chk["truth_sha"],
                "scheme": schemes_["specs"] if schemes_ else None,
                "scheme_sha256": schemes_["sha256"] if schemes_ else None,
                "replay": c.replay,
                "seed": c.seed,
                "seed_dependent": c.seed_dependent,
                "config_id": c.config_id,
                "keep": str(Path(keep_histories).resolve()) if keep_histories else None,
                "keep_folder": folders[si],
            }
            # what makes a row: a resumed sweep reuses it only when all of this is equal
            spec["run_key"] = digest(
                {
                    k: spec[k]
                    for k in (
                        "source",
                        "source_sha256",
                        "pagemap",
                        "replay",
                        "reference",
                        "reference_sha256",
                        "truth",
                        "truth_sha256",
                    )
                    + (("scheme", "scheme_sha256") if schemes_ else ())
                },
                24,
            )
            spec["values"] = {OPTIONS[k].column: v for k, v in c.values.items()}
            spec["order"] = (si, len(tasks))
            tasks.append(spec)
    return tasks


def _run_tasks(tasks: list[dict], done: dict, side, progress, run_kw: dict):
    """Run the tasks not done yet; each finished row goes to the side file and to
    ``progress``.  Returns (rows by run_key, how they ran)."""
    todo = [t for t in tasks if t["run_key"] not in done]
    results: dict[str, dict] = dict(done)
    sink = None
    if side is not None and todo:
        side.parent.mkdir(parents=True, exist_ok=True)
        sink = open(side, "a")
    n_total, n_done = len(tasks), len(done)

    def on_result(spec, row):
        nonlocal n_done
        row = {**row, **spec["values"]}
        results[spec["run_key"]] = row
        if sink is not None:
            sink.write(json.dumps(row, allow_nan=False) + "\n")
            sink.flush()
        n_done += 1
        if progress is not None:
            progress(n_done, n_total, row)

    if progress is not None and n_done:
        progress(n_done, n_total, None)
    try:
        how = (
            run_tasks(
                _task.run_task,
                todo,
                on_result,
                groups=[t["order"][0] for t in todo],
                cleanup=_task.clear_cache,
                **run_kw,
            )
            if todo
            else "nothing to run"
        )
    finally:
        if sink is not None:
            sink.close()
        # the sources this process read (in-process tasks, the first task before the
        # workers fork) go with the sweep: a library call holds no samples afterwards
        _task.clear_cache()
    return results, how


class _CallableModule(type(os)):
    """Lets ``tracedamon.sweep(...)`` work although ``tracedamon.sweep`` is this package
    (importing ``tracedamon.sweep.*`` binds the package to that name)."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "sweep",
    "expand_sources",
    "check_source",
    "build_table",
    "parse_grid",
    "configurations",
    "PROVENANCE",
    "COST",
    "TEXT_COLUMNS",
]
