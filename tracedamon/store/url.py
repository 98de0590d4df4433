"""Trace directories behind fsspec URLs (``file:///abs/run.td``, ``memory://run.td``,
``s3://bucket/run.td`` with s3fs installed, ...): read where pyarrow reads them.

A sweep's workers must see the same sources as the process that plans the sweep; on a
cluster without a shared filesystem, the sources can live in object storage and be named
by URL.  :func:`open_source` opens a local path as :class:`~tracedamon.store.trace.Trace`
does and a URL as :class:`UrlTrace` (the same methods, over the URL's fsspec
filesystem); :func:`sha256` hashes a file either way.  fsspec itself is optional (it
comes with Dask): a URL without it is refused in one line.

``memory://`` is one process's memory: a sweep on worker processes does not see it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath

from ..errors import InputError
from .hashing import BUFFER, sha256_file
from .trace import Trace

__all__ = ["is_url", "UrlTrace", "open_source", "sha256", "file_size", "source_name"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(text) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and bool(_SCHEME.match(text))


def filesystem(url: str):
    """(fsspec filesystem, path in it) of ``url``; one-line errors for a URL fsspec
    cannot open (fsspec missing, unknown protocol, its package missing)."""
    try:
        import fsspec  # optional: installed with tracedamon[dask]
    except ImportError:
        raise InputError(
            f"{url}: reading URLs needs fsspec (pip install 'tracedamon[dask]')"
        ) from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise InputError(f"{url}: fsspec cannot open this URL ({e})") from None


def _join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


class UrlTrace(Trace):
    """A trace directory behind an fsspec URL: :class:`Trace`'s methods, read through
    the URL's filesystem.  ``path`` is the URL; :meth:`file` gives a table's path in
    that filesystem."""

    def __init__(self, url: str):
        fs, root = filesystem(url)
        try:
            isdir = fs.isdir(root)
            exists = isdir or fs.exists(root)
        except OSError as e:
            raise InputError(f"{url}: cannot be read ({e})") from None
        if not exists:
            raise InputError(f"{url}: no such trace directory")
        if not isdir:
            raise InputError(f"{url}: not a trace directory")
        self._fs = fs
        self.path = url
        self.url = url
        names = [PurePosixPath(p).name for p in fs.ls(root, detail=False)]
        self._files = {
            n[: -len(".parquet")]: _join(root, n) for n in names if n.endswith(".parquet")
        }
        self.meta: dict = {}
        if "meta.json" in names:
            try:
                self.meta = json.loads(fs.cat_file(_join(root, "meta.json")))
            except ValueError as e:
                raise InputError(f"{_join(url, 'meta.json')}: not JSON ({e})") from None
        if not self._files and "meta.json" not in names:
            raise InputError(f"{url}: not a trace directory (no meta.json, no .parquet)")

    def file_url(self, name: str) -> str:
        """Table ``name``'s file as a URL (what messages and provenance name)."""
        self.file(name)  # refuses a missing table
        return _join(self.url, name + ".parquet")


def open_source(source) -> Trace:
    """A trace directory by local path or by fsspec URL."""
    if is_url(source):
        return UrlTrace(source)
    return Trace(source)


def _fs_file(tr: Trace, name: str):
    return tr._fs, tr.file(name)


def sha256(tr: Trace, name: str) -> tuple[int, str]:
    """(size, sha256) of table ``name``'s file of ``tr``, local or behind a URL."""
    fs, f = _fs_file(tr, name)
    if fs is None:
        return sha256_file(f)
    h, size = hashlib.sha256(), 0
    with fs.open(f, "rb") as fh:
        while True:
            chunk = fh.read(BUFFER)
            if not chunk:
                break
            size += len(chunk)
            h.update(chunk)
    return size, h.hexdigest()


def file_size(tr: Trace, name: str) -> int:
    fs, f = _fs_file(tr, name)
    return os.stat(f).st_size if fs is None else int(fs.size(f))


def file_label(tr: Trace, name: str) -> str:
    """How a message names table ``name``'s file: its path, or its URL."""
    return tr.file_url(name) if isinstance(tr, UrlTrace) else str(tr.file(name))


def source_name(source) -> str:
    """The last part of a source's path or URL (``run.td``)."""
    text = os.fspath(source)
    return PurePosixPath(text.rstrip("/")).name if is_url(text) else Path(text).name
