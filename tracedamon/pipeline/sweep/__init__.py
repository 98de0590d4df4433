"""Parameter sweeps: which DAMON settings would have served best?

``tracedamon.sweep(sources, grid, ...)`` replays every source with every
configuration of ``grid`` (× seeds), scores each run against a reference region
history or a ground truth and by what the monitoring costs, and returns one tidy
table (a pandas DataFrame; ``output=`` also writes it as Parquet), one row per
(source, configuration, seed).  ``tracedamon sweep`` is a thin layer over it.

Modules: :mod:`.grid` (options, cross product), :mod:`.task` (one task, the
worker-side source cache), :mod:`.runner` (in-process or Dask distributed),
:mod:`.summary` (best configurations, Pareto front, PNG), :mod:`.batch` (`ingest --parallel`).

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

import glob
import json
import os
from pathlib import Path
from typing import Callable

from ...errors import ConfigError, InputError
from .grid import OPTIONS, Configuration, configurations, digest, option, parse_grid

PROVENANCE = [
    "source",
    "source_name",
    "source_sha256",
    "config_id",
    "seed",
    "seed_dependent",
    "run_key",
    "tracedamon_version",
    "worker",
    "worker_peak_rss_mb",
]
COST = [
    "replay_s",
    "replay_cpu_s",
    "score_s",
    "snapshots",
    "samples_used",
    "history_rows",
    "accessed_only",
    "regions_mean",
    "regions_max",
    "checks_per_s",
]
TEXT_COLUMNS = ("error", "history")


def expand_sources(sources) -> list[Path]:
    """Paths and globs → trace directories, in the order given (globs sorted),
    each once."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list[Path] = []
    for s in sources:
        s = os.fspath(s)
        hits = sorted(glob.glob(s)) if glob.has_magic(s) and not os.path.exists(s) else [s]
        if not hits:
            raise InputError(f"{s}: matches no trace directory")
        for h in hits:
            p = Path(h).resolve()
            if p not in out:
                out.append(p)
    if not out:
        raise InputError("no source to sweep")
    return out


def check_source(p: Path) -> str:
    """Refuse a source a replay could not read, naming it; return its samples
    file's sha256 (the provenance of every row of the source)."""
    from ...store.hashing import sha256_file
    from ...store.parquet import read_schema
    from ...store.trace import open_trace

    if not p.is_dir():
        raise InputError(
            f"{p}: not a trace directory" if p.exists() else f"{p}: no such trace directory"
        )
    tr = open_trace(p)
    if not tr.has("samples"):
        raise InputError(f"{p}: has no samples table (ingest a perf.data first)")
    f = tr.file("samples")
    try:
        names = read_schema(f).names
    except Exception as e:  # pyarrow's errors on a damaged file
        raise InputError(f"{f}: not a readable Parquet file ({e})") from None
    for c in ("time_ns", "event"):
        if c not in names:
            raise InputError(f"{f}: lacks the {c} column a replay needs")
    try:
        return sha256_file(f)[1]
    except OSError as e:
        raise InputError(f"{f}: cannot be read ({e.strerror or e})") from None


def _fixed_values(fixed: dict | None) -> dict:
    out = {}
    for k, v in (fixed or {}).items():
        if v is None or v == [] or v == ():
            continue
        o = option(k)
        if isinstance(v, (list, tuple)):
            v = "+".join(str(x) for x in v)
        out[o.name] = o.parse(str(v) if not isinstance(v, str) else v, o.name)
    return out


def _reference_path(reference, src: Path) -> str | None:
    if reference is None:
        return None
    text = os.fspath(reference)
    if "{src}" in text:
        text = text.replace("{src}", str(src))
    p = Path(text)
    if not p.exists():
        raise InputError(f"--reference {p}: no such region history or trace directory")
    if p.is_dir():
        from ...store.trace import open_trace

        if not open_trace(p).has("regions"):
            raise InputError(
                f"--reference {p}: holds no regions table (replay it, or ingest a DAMON trace)"
            )
    return str(p.resolve())


def _content_sha(path: str) -> str:
    """sha256 of a region history file, or of a trace directory's regions table."""
    from ...store.hashing import sha256_file
    from ...store.trace import open_trace

    p = Path(path)
    return sha256_file(p if p.is_file() else open_trace(p).file("regions"))[1]


def _read_rows(path: Path) -> list[dict]:
    """Rows of a side file (JSON lines); a line cut short by an interruption is
    ignored."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if isinstance(r, dict) and "run_key" in r:
                    rows.append(r)
    except FileNotFoundError:
        pass
    return rows


def _output_rows(path: Path) -> list[dict]:
    from ...store.parquet import read_table

    try:
        t = read_table(path)
    except Exception:
        return []
    if "run_key" not in t.column_names:
        return []
    return t.to_pylist()


def build_table(rows: list[dict], grid_columns: list[str]):
    """The sweep's Arrow table: fixed column order (provenance, grid keys, error, cost,
    then the scores in their first appearance), types inferred per column."""
    import pyarrow as pa

    cols = [c for c in PROVENANCE] + list(grid_columns) + ["error"] + COST
    seen = set(cols)
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    arrays = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        a = pa.array(vals)
        if pa.types.is_null(a.type):
            a = pa.array(
                vals, pa.string() if c in TEXT_COLUMNS or c in grid_columns else pa.float64()
            )
        arrays[c] = a
    return pa.table(arrays)


def _schemes(scheme) -> dict | None:
    """The sweep's schemes, checked before any work: each ``--scheme`` argument (a file
    by its absolute path), and the sha256 of the files (in the run key: a changed file
    is a new run)."""
    if scheme is None:
        return None
    from ...hashing import sha256_file
    from ..schemes import load_schemes

    items = [scheme] if isinstance(scheme, (str, os.PathLike)) else list(scheme)
    if not items:
        return None
    specs, shas = [], []
    for it in items:
        text = os.fspath(it)
        f = load_schemes(text)  # a bad scheme fails here, naming it
        for j, s in enumerate(f.schemes):
            if s.wmarks.metric != "none":
                raise ConfigError(
                    f"--scheme {text}: scheme {j} has {s.wmarks.metric} watermarks, which "
                    "read the machine's free memory: a sweep has no series of it; drop "
                    "them (a preset: PRESET:wmarks=none)"
                )
        if f.path is not None:
            path = str(Path(f.path).resolve())
            specs.append(
                text.replace(os.fspath(f.path), path, 1) if os.fspath(f.path) in text else path
            )
            shas.append(sha256_file(path)[1])
        else:
            specs.append(text)
            shas.append(None)
    return {"specs": specs, "sha256": shas}


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
    progress: Callable | None = None,
    on_start: Callable | None = None,
    in_process: bool | None = None,
):
    """Sweep ``grid`` over ``sources``; returns a pandas DataFrame (one row per source ×
    configuration × seed, in that order).

    sources : trace directories (paths or globs)
    grid : ``["sample-us=5000,10000", ...]`` or {option: [values]} (see :mod:`.grid`)
    seeds : seeds 0..N-1 (from the fixed ``seed``) for configurations whose result
        depends on the seed
    fixed : options held fixed, by command-line name: {"ops": "vaddr", "pid": 1234,
        "start": "auto", "range": [...], "pagemap": DIR, ...}
    reference : a region history (trace directory or .parquet) each run is compared
        with (``tracedamon.compare(reference, run)``); ``{src}`` in it stands for each
        source's path (``"{src}/regions.parquet"``: each recording's own DAMON trace)
    truth : ground-truth ranges (CSV/JSON of start,end,label) each run is scored against
    scheme : DAMOS schemes (a ``--scheme`` argument of ``tracedamon damos``: preset,
        damo JSON or sysfs dump; or a list of them) run over every replayed history
        (``tracedamon.damos`` on the history in memory, the source's samples for the
        outcome); their figures become ``damos_*`` columns
    scheduler : ``tcp://HOST:PORT`` of a Dask scheduler; else ``workers`` local worker
        processes (default: the CPUs; 1 = in this process)
    output : write the table as Parquet (atomically, at the end); ``partial`` the side
        file of finished rows (default ``OUTPUT.partial.jsonl``); ``resume`` reuses the
        finished rows found there and in ``output``
    keep_histories : a directory to keep every run's region history in
        (``SOURCE_NAME/CONFIG_ID-sSEED.parquet``; the ``history`` column names it)
    progress : ``progress(done, total, row)`` after each finished task
    on_start : ``on_start(client)`` once a Dask cluster is up
    in_process : run here rather than on Dask (default: when ``workers`` is 1)
    """
    schemes = _schemes(scheme)
    if reference is not None and truth is not None:
        raise ConfigError("give --reference or --truth, not both")
    fixed = dict(fixed or {})
    pagemap = fixed.pop("pagemap", None)
    g = parse_grid(grid)
    if not g:
        raise ConfigError("give at least one --grid KEY=V1,V2,...")
    fx = _fixed_values(fixed)
    cfgs: list[Configuration] = configurations(g, fx, seeds)
    grid_columns = [OPTIONS[k].column for k in g]

    out = Path(output) if output is not None else None
    side = (
        Path(partial)
        if partial is not None
        else (Path(str(out) + ".partial.jsonl") if out is not None else None)
    )
    if out is not None:
        # refused before any work: anything but a sweep table tracedamon wrote, and an
        # existing one unless it is extended (resume) or replaced (force)
        from ...store.atomic import SWEEP_TABLE, check_output

        check_output(
            out,
            SWEEP_TABLE,
            force=force or resume,
            inputs=[x for x in (reference, truth) if isinstance(x, (str, os.PathLike))],
        )
    if side is not None and side.exists() and not (force or resume):
        raise InputError(
            f"{side}: partial results of an interrupted sweep exist (use "
            "--resume to continue it, --force to start over)"
        )

    # every source checked (and hashed) before any work starts
    chk = _checked_inputs(sources, reference, truth, pagemap)
    srcs, pagemap, truth_path = chk["srcs"], chk["pagemap"], chk["truth"]
    tasks = _task_specs(chk, cfgs, schemes, keep_histories)
    done = _reused_rows(resume, tasks, out, side)
    results, how = _run_tasks(
        tasks,
        done,
        side,
        progress,
        dict(scheduler=scheduler, workers=workers, on_start=on_start, in_process=in_process),
    )

    rows = [results[t["run_key"]] for t in tasks]
    table = build_table(rows, grid_columns)
    meta = {
        "table": "sweep",
        "grid": {k: [str(v) for v in vs] for k, vs in g.items()},
        "grid_columns": grid_columns,
        "fixed": {k: str(v) for k, v in fx.items()},
        "pagemap": pagemap,
        "seeds": seeds,
        "reference": reference and os.fspath(reference),
        "truth": truth_path,
        "scheme": schemes["specs"] if schemes else None,
        "sources": [str(p) for p in srcs],
        "ran": how,
        "reused_rows": len(done),
    }
    if out is not None:
        from ...store.atomic import SWEEP_TABLE
        from ...store.writer import write_table_atomic

        write_table_atomic(table, out, metadata=meta, kind=SWEEP_TABLE, force=force or resume)
        if side is not None and side.exists():
            side.unlink()
    df = table.to_pandas()
    df.attrs["tracedamon_sweep"] = meta
    return df


def _checked_inputs(sources, reference, truth, pagemap) -> dict:
    """The sources (expanded, checked, hashed), each one's reference, the truth file and
    the pagemap directory, each refused here when it is unreadable."""
    from ...export.compare import load_truth
    from ...export.grid import load_history
    from ...store.hashing import sha256_file
    from ...store.trace import open_trace

    srcs = expand_sources(sources)
    shas = [check_source(p) for p in srcs]
    refs = [_reference_path(reference, p) for p in srcs]
    ref_sha = {}
    for ref in dict.fromkeys(r for r in refs if r is not None):
        load_history(ref)  # a bad reference fails here, naming it
        ref_sha[ref] = _content_sha(ref)
    truth_path = truth_sha = None
    if truth is not None:
        load_truth(truth)  # a bad file fails here, naming it
        truth_path = str(Path(truth).resolve())
        truth_sha = sha256_file(truth_path)[1]
    if pagemap is not None:
        if not open_trace(pagemap).has("pagemap"):
            raise InputError(f"--pagemap {pagemap}: has no pagemap table")
        pagemap = str(Path(pagemap).resolve())
    return {
        "srcs": srcs,
        "shas": shas,
        "refs": refs,
        "ref_sha": ref_sha,
        "truth": truth_path,
        "truth_sha": truth_sha,
        "pagemap": pagemap,
    }


def _task_specs(chk: dict, cfgs, schemes, keep_histories) -> list[dict]:
    """One task per source x configuration, with the key that identifies its row."""
    tasks: list[dict] = []
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
                "scheme": schemes["specs"] if schemes else None,
                "scheme_sha256": schemes["sha256"] if schemes else None,
                "replay": c.replay,
                "seed": c.seed,
                "seed_dependent": c.seed_dependent,
                "config_id": c.config_id,
                "keep": str(Path(keep_histories).resolve()) if keep_histories else None,
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
                    + (("scheme", "scheme_sha256") if schemes else ())
                },
                24,
            )
            spec["values"] = {OPTIONS[k].column: v for k, v in c.values.items()}
            spec["order"] = (si, len(tasks))
            tasks.append(spec)
    return tasks


def _reused_rows(resume: bool, tasks: list[dict], out, side) -> dict[str, dict]:
    """The finished rows a resumed sweep reuses (by run_key); without resume, the side
    file of an earlier run is removed."""
    done: dict[str, dict] = {}
    if resume:
        wanted = {t["run_key"] for t in tasks}
        for r in (_output_rows(out) if out is not None and out.exists() else []) + (
            _read_rows(side) if side is not None else []
        ):
            if r["run_key"] in wanted:
                done[r["run_key"]] = r
    elif side is not None and side.exists():
        side.unlink()
    return done


def _run_tasks(tasks: list[dict], done: dict, side, progress, run_kw: dict):
    """Run the tasks not done yet; each finished row goes to the side file and to
    ``progress``.  Returns (rows by run_key, how they ran)."""
    from . import task as _task
    from .runner import run_tasks

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
    return results, how


class _CallableModule(type(os)):
    """Lets ``tracedamon.sweep(...)`` work although ``tracedamon.sweep`` is this package
    (importing ``tracedamon.sweep.*`` binds the package to that name)."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule

__all__ = ["sweep", "expand_sources", "check_source", "build_table", "parse_grid", "configurations"]
