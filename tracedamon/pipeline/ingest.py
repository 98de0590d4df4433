"""Ingest inputs of every kind into a trace directory: the public :func:`ingest`.

This plans the reading (formats detected, gzip-compressed perf.data decompressed
once, every pagemap input read together), runs each :mod:`tracedamon.ingest` reader
into one :class:`~tracedamon.store.writer.TraceDirWriter`, and hands the ``damon:``
tracepoints a perf.data holds to the DAMON trace reader.

``tracedamon.ingest`` names both this function (the public API, what
``tracedamon.ingest(...)`` and ``from tracedamon import ingest`` give) and the package
of readers (``from tracedamon.ingest import perf_data``): :mod:`tracedamon` loads
the package first and binds the name to the function after, so which one the
attribute is never depends on what was imported before.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import InputError, TraceFormatError, TracedamonError, shown_as
from ..ingest.detect import FORMATS, PERF_MAGIC, PERF_MAGIC_BE, detect_format, head, raw_head
from ..ingest.gz import gunzip_to, is_gzip
from ..ingest.progress import callback
from ..store.atomic import TRACE_DIR, check_output, make_parents, remove_made
from ..store.writer import TraceDirWriter, file_provenance

# A reader's module is imported when its format is read, not before: the readers load
# different heavy modules (the DAMON trace reader pandas, 0.19 s of a 1.4 s perf.data
# ingest; tests/test_arrays.py checks that a perf.data ingest loads neither pandas nor
# pyarrow.compute).
_READERS = {
    "perf-data": "tracedamon.ingest.perf_data",
    "perf-script": "tracedamon.ingest.perf_script",
    "perf-run": "tracedamon.ingest.perf_run",
    "damon": "tracedamon.ingest.damon_trace",
    "damo": "tracedamon.ingest.damo_record",
    "pagemap": "tracedamon.ingest.pagemap",
}


def reader_for(fmt: str):
    """The function that reads format ``fmt`` into a trace directory's writer:
    ``read(path, writer, *, progress=None, **options)``."""
    if fmt not in _READERS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "perf-data":
        return _read_perf_data
    if fmt == "perf-script":
        return _read_perf_script
    return importlib.import_module(_READERS[fmt]).ingest_into


def _read_perf_data(path, writer, *, via_perf: bool = False, progress=None, **options):
    """A perf.data, decoded by tracedamon's own reader, with the DAMON tracepoints it
    holds handed to the DAMON reader; or (``via_perf``) by the installed ``perf
    script``, with the event names of tracedamon's header reader."""
    perf_data = importlib.import_module(_READERS["perf-data"])
    if via_perf:
        perf_run = importlib.import_module(_READERS["perf-run"])
        return perf_run.ingest_via_perf(
            path,
            writer,
            progress=progress,
            strict=bool(options.get("strict")),
            event_names=_header_names(perf_data, path),
        )
    return perf_data.ingest_into(
        path, writer, progress=progress, on_damon_events=_damon_regions, **options
    )


def _read_perf_script(path, writer, *, via_perf: bool = False, progress=None, **options):
    """perf script text; or, for a perf.data (a file with perf's magic, a perf.data
    directory) or with ``via_perf``, the text the installed ``perf script`` prints."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if via_perf or p.is_dir() or raw_head(p, 8) == PERF_MAGIC:
        perf_run = importlib.import_module(_READERS["perf-run"])
        return perf_run.ingest_via_perf(p, writer, progress=progress)
    perf_script = importlib.import_module(_READERS["perf-script"])
    return perf_script.ingest_into(p, writer, progress=progress, **options)


def _header_names(perf_data, path) -> list[str] | None:
    """The event names a perf.data's header gives (None when tracedamon's reader cannot
    read the header: perf may still read the file)."""
    try:
        rd = perf_data.open_perf_data(path)
    except TracedamonError:
        return None
    return [rd.event_name(i) for i in range(len(rd.attrs))]


def _damon_regions(reader, writer) -> None:
    """The ``regions`` (and DAMOS) tables of the ``damon:`` tracepoints of a perf.data."""
    damon_trace = importlib.import_module(_READERS["damon"])
    damon_trace.add_regions_from_perf_data(reader, writer)


def default_output(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name.rstrip("/") + ".td")


def ingest(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    format: str = "auto",
    force: bool = False,
    progress=None,
    _stdin: Path | None = None,
    **options,
) -> Path:
    """Ingest one or more inputs into one trace directory and return its path.

    Several inputs of one recorded run (a perf.data, a DAMON trace, pagemap
    snapshots) may go into one directory; two inputs that would fill the same
    table are refused, except pagemap snapshots: every pagemap input (raw snapshot
    files or directories, ``tracedamon snapshot`` output directories) is read into
    one set of ``maps``/``pagemap`` tables. ``out`` defaults to ``INPUT.td`` beside
    the first input. ``progress``: called as ``progress(done, total, what)`` while
    each input is read (:mod:`tracedamon.ingest.progress`).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise InputError("no input given")
    progress = callback(progress)
    if Path("-") in inputs:
        return _ingest_stdin(inputs, out, format=format, force=force, progress=progress, **options)
    out = Path(out) if out is not None else default_output(inputs[0])
    read = [p for p in inputs if p != _stdin]
    check_output(out, TRACE_DIR, force=force, inputs=read, outside=[p for p in read if p.is_dir()])
    plan = []
    for p in inputs:
        fmt = detect_format(p) if format == "auto" else format
        if format != "auto" and not p.exists():
            raise InputError(f"{p}: no such file or directory")
        plan.append((p, fmt))
    # Hash the inputs (sha256 for the provenance) in a thread while they are decoded:
    # hashlib releases the GIL, so on a large perf.data this costs no wall time.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    prov = pool.submit(
        lambda: {
            "inputs": [
                dict(file_provenance(p), format=fmt, **({"name": "-"} if p == _stdin else {}))
                for p, fmt in plan
            ]
        }
    )
    try:
        with TraceDirWriter(
            out, provenance=prov, force=force, inputs=[p for p, _ in plan if p != _stdin]
        ) as w:
            _run_readers(_grouped(plan), w, progress, options)
            w.meta["inputs"] = w.provenance["inputs"]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _ingest_stdin(
    inputs: list[Path], out, *, format: str, force: bool, progress, **options
) -> Path:
    """``perf record -o - ... | tracedamon ingest - -o run.td``: the stream is kept in
    a hidden file beside the output while it is read (the native reader maps files)."""
    if out is None:
        raise InputError(
            "reading standard input (-) needs an output directory (out=)",
            cli_message="reading standard input (-) needs an output directory (-o DIR)",
        )
    if inputs.count(Path("-")) > 1:
        raise InputError("standard input (-) can be given once")
    # refuse before reading the stream
    read = [p for p in inputs if p != Path("-")]
    check_output(out, TRACE_DIR, force=force, inputs=read, outside=[p for p in read if p.is_dir()])
    made = make_parents(Path(os.path.abspath(out)).parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(out).name}.stdin.", dir=Path(out).parent)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 22)
        return ingest(
            [Path(tmp) if p == Path("-") else p for p in inputs],
            out,
            format=format,
            force=force,
            progress=progress,
            _stdin=Path(tmp),
            **options,
        )
    except BaseException as e:
        raise shown_as(e, {tmp: "-"})  # errors name standard input, not the file
    finally:
        os.unlink(tmp)
        remove_made(made)  # those left empty: a failed run leaves nothing


def _gunzipped(path: Path, tmpdir: Path, strict: bool = False):
    """(plain file, cut) for a gzip-compressed perf.data decompressed (streaming) into
    ``tmpdir``: ``cut`` says whether the gzip stream ended early
    (:func:`tracedamon.ingest.gz.gunzip_to`). (None, None) when ``path`` is not gzip.
    The native reader maps its file, so it needs the plain bytes."""
    if not is_gzip(path):
        return None, None
    out = tmpdir / (path.name[:-3] if path.name.endswith(".gz") else path.name + ".raw")
    try:
        cut = gunzip_to(path, out, strict=strict)
    except OSError as e:
        out.unlink(missing_ok=True)
        raise InputError(f"{path}: gzip stream unreadable: {e.strerror or e}") from None
    except TraceFormatError:
        out.unlink(missing_ok=True)
        raise
    return out, cut


def _grouped(plan: list[tuple[Path, str]]) -> list[tuple[Path | list[Path], str]]:
    """The reading plan with every pagemap input read together, where the first one
    stands: snapshots given as several files or directories (snap*.index.json,
    several capture directories) fill one ``maps`` and one ``pagemap`` table."""
    pm = [p for p, fmt in plan if fmt == "pagemap"]
    if len(pm) < 2:
        return plan
    out: list = []
    for p, fmt in plan:
        if fmt != "pagemap":
            out.append((p, fmt))
        elif pm:
            out.append((pm, "pagemap"))
            pm = []
    return out


def _run_readers(plan, w: TraceDirWriter, progress, options: dict) -> None:
    for p, fmt in plan:
        before = w.row_counts()
        read = reader_for(fmt)
        damon_in_perf = fmt in ("damon", "damo") and _is_perf_data(p)
        if damon_in_perf:
            # damo's perf_data record type, or a DAMON trace recorded with perf record
            read = functools.partial(_read_damon_perf_data, origin=p)
        plain, cut = (None, None)
        if fmt == "perf-data" or damon_in_perf:
            plain, cut = _gunzipped(p, w.tmpdir, bool(options.get("strict")))
        extra = {}
        if plain is not None:
            extra = {"source_name": f"{p} (decompressed)", "gzip_cut": cut}
        try:
            read(plain or p, w, progress=progress, **options, **extra)
        except BaseException as e:
            if plain is None:
                raise
            # name the user's file, not the hidden decompressed copy
            raise shown_as(e, {plain: f"{p} (decompressed)"})
        finally:
            if plain is not None:
                plain.unlink(missing_ok=True)
        _check_mixing(p, plan, before, w)


def _is_perf_data(p) -> bool:
    """Whether input ``p`` (a file; gzip undone) is a perf.data."""
    return (
        not isinstance(p, list) and Path(p).is_file() and head(p, 8) in (PERF_MAGIC, PERF_MAGIC_BE)
    )


def _read_damon_perf_data(
    path,
    writer,
    *,
    origin,
    strict: bool = False,
    skip_bad: bool = False,
    run_gap_factor: float = 3.0,
    source_name: str | None = None,
    gzip_cut: dict | None = None,
    progress=None,
    **options,
) -> None:
    """The DAMON tracepoints of a perf.data given as a DAMON trace (or damo record):
    the native perf.data reader opens it, the DAMON reader turns the tracepoints into
    regions (errors name ``origin``, the user's file), and a cut-short recording is
    reported as the perf.data reader does."""
    perf_data = importlib.import_module(_READERS["perf-data"])
    damon_trace = importlib.import_module(_READERS["damon"])
    reader = perf_data.open_perf_data(path, strict=strict)
    if gzip_cut:
        reader._note_truncation(gzip=gzip_cut)
    try:
        damon_trace.perf_data_regions(
            reader, writer, path=Path(origin), skip_bad=skip_bad, run_gap_factor=run_gap_factor
        )
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()
    perf_data.report_truncation(reader, writer, source_name or str(path))


def _check_mixing(p, plan, before, w) -> None:
    for name, n in w.row_counts().items():
        if name in before and len(plan) > 1 and n != before[name]:
            what = ", ".join(map(str, p)) if isinstance(p, list) else p
            raise InputError(
                f"{what}: its {name} table would be mixed with that of "
                "an earlier input; ingest them into separate directories"
            )
