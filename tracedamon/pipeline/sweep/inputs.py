"""A sweep's inputs, each checked (and hashed) before any work starts: the sources, the
reference histories, the ground truth, the pagemap directory and the DAMOS schemes.

Sources are trace directories by local path (globs expand) or by fsspec URL
(``file:///abs/run.td``, ``s3://bucket/run.td`` with s3fs, ...: read through
:mod:`tracedamon.store.url`); a source a replay could not read stops the sweep here,
naming it.  The other inputs are local files.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ...errors import ConfigError, InputError
from ...export.compare import load_truth
from ...export.grid import load_history
from ...store.hashing import sha256_file
from ...store.trace import open_trace
from ...store.url import file_label, filesystem, is_url, open_source, sha256
from ..schemes import load_schemes
from .grid import option


def _expand_url(url: str) -> list[str]:
    """A URL with glob characters → the URLs it matches, sorted (fsspec's glob)."""
    if not glob.has_magic(url):
        return [url]
    fs, path = filesystem(url)
    return [fs.unstrip_protocol(h) for h in sorted(fs.glob(path))]


def expand_sources(sources) -> list:
    """Paths, globs and URLs → trace directories, in the order given (globs sorted),
    each once: local ones as absolute Paths, URLs as given (str)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list = []
    for s in sources:
        s = os.fspath(s)
        if is_url(s):
            hits = _expand_url(s)
        else:
            hits = sorted(glob.glob(s)) if glob.has_magic(s) and not os.path.exists(s) else [s]
        if not hits:
            raise InputError(f"{s}: matches no trace directory")
        for h in hits:
            p = h if is_url(h) else Path(h).resolve()
            if p not in out:
                out.append(p)
    if not out:
        raise InputError("no source to sweep")
    return out


def check_source(p) -> str:
    """Refuse a source a replay could not read, naming it; return its samples
    file's sha256 (the provenance of every row of the source)."""
    if not is_url(p):
        p = Path(p)
        if not p.is_dir():
            raise InputError(
                f"{p}: not a trace directory" if p.exists() else f"{p}: no such trace directory"
            )
    tr = open_source(p)
    if not tr.has("samples"):
        raise InputError(f"{p}: has no samples table (ingest a perf.data first)")
    f = file_label(tr, "samples")
    try:
        names = tr.columns("samples")
    except Exception as e:  # pyarrow's and fsspec's errors on a damaged or unreadable file
        raise InputError(f"{f}: not a readable Parquet file ({e})") from None
    for c in ("time_ns", "event"):
        if c not in names:
            raise InputError(f"{f}: lacks the {c} column a replay needs")
    try:
        return sha256(tr, "samples")[1]
    except OSError as e:
        raise InputError(f"{f}: cannot be read ({e.strerror or e})") from None


def fixed_values(fixed: dict | None) -> dict:
    """The options held fixed ({command-line name: value}), parsed as grid values."""
    out = {}
    for k, v in (fixed or {}).items():
        if v is None or v == [] or v == ():
            continue
        o = option(k)
        if isinstance(v, (list, tuple)):
            v = "+".join(str(x) for x in v)
        out[o.name] = o.parse(str(v) if not isinstance(v, str) else v, o.name)
    return out


def reference_path(reference, src) -> str | None:
    """Source ``src``'s reference history (``{src}`` in ``reference`` stands for its
    path), checked: an absolute local path."""
    if reference is None:
        return None
    text = os.fspath(reference)
    if "{src}" in text:
        text = text.replace("{src}", str(src))
    if is_url(text):
        raise InputError(
            f"reference {text}: a URL; a reference history is read from a local path",
            cli_message=f"--reference {text}: a URL; a reference history is read from a local path",
        )
    p = Path(text)
    if not p.exists():
        raise InputError(
            f"reference {p}: no such region history or trace directory",
            cli_message=f"--reference {p}: no such region history or trace directory",
        )
    if p.is_dir() and not open_trace(p).has("regions"):
        why = "holds no regions table (replay it, or ingest a DAMON trace)"
        raise InputError(f"reference {p}: {why}", cli_message=f"--reference {p}: {why}")
    return str(p.resolve())


def content_sha(path: str) -> str:
    """sha256 of a region history file, or of a trace directory's regions table."""
    p = Path(path)
    return sha256_file(p if p.is_file() else open_trace(p).file("regions"))[1]


def schemes(scheme) -> dict | None:
    """The sweep's schemes, checked before any work: each ``scheme`` argument (a file
    by its absolute path), and the sha256 of the files (in the run key: a changed file
    is a new run)."""
    if scheme is None:
        return None
    items = [scheme] if isinstance(scheme, (str, os.PathLike)) else list(scheme)
    if not items:
        return None
    specs, shas = [], []
    for it in items:
        text = os.fspath(it)
        f = load_schemes(text)  # a bad scheme fails here, naming it
        for j, s in enumerate(f.schemes):
            if s.wmarks.metric != "none":
                why = (
                    f"scheme {j} has {s.wmarks.metric} watermarks, which read the machine's "
                    "free memory: a sweep has no series of it; drop them (a preset: "
                    "PRESET:wmarks=none)"
                )
                raise ConfigError(f"scheme {text}: {why}", cli_message=f"--scheme {text}: {why}")
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


def checked_inputs(sources, reference, truth, pagemap) -> dict:
    """The sources (expanded, checked, hashed), each one's reference, the truth file and
    the pagemap directory, each refused here when it is unreadable."""
    srcs = expand_sources(sources)
    shas = [check_source(p) for p in srcs]
    refs = [reference_path(reference, p) for p in srcs]
    ref_sha = {}
    for ref in dict.fromkeys(r for r in refs if r is not None):
        load_history(ref)  # a bad reference fails here, naming it
        ref_sha[ref] = content_sha(ref)
    truth_path = truth_sha = None
    if truth is not None:
        load_truth(truth)  # a bad file fails here, naming it
        truth_path = str(Path(truth).resolve())
        truth_sha = sha256_file(truth_path)[1]
    if pagemap is not None:
        if not open_trace(pagemap).has("pagemap"):
            raise InputError(
                f"pagemap {pagemap}: has no pagemap table",
                cli_message=f"--pagemap {pagemap}: has no pagemap table",
            )
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
