"""sha256 of input files for the provenance, started as early as possible.

Ingest records each input's sha256 (DESIGN §2). Hashing a 480 MB perf.data takes
about 0.33 s of one core; hashlib releases the GIL, so it can run beside other work.
The command line calls :func:`prehash` on its inputs before it imports the heavy
modules (numba, pyarrow: about 0.3 s on one core), which leaves the second core idle
otherwise; :func:`sha256_file` then collects the result. A file that changed in
between (size or modification time) is hashed again.

This module imports nothing heavy, on purpose.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import mmap
import os
import threading

_lock = threading.Lock()
_started: dict[tuple, concurrent.futures.Future] = {}


def _key(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _hash(path) -> tuple[int, str]:
    # The file is hashed through a read-only mapping, WINDOW bytes per call: hashlib
    # releases the GIL for the whole window, whereas a read/update loop needs the GIL
    # back twice per buffer, and while the main thread runs Python (imports, decoding)
    # each of those waits up to the interpreter's switch interval (5 ms): with 4 MiB
    # reads the hash of 480 MB took 0.67 s instead of 0.32 s; with 64 MiB windows, 0.47 s.
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        off = 0
        while off < size:
            n = min(WINDOW, size - off)
            try:
                with mmap.mmap(f.fileno(), n, offset=off, access=mmap.ACCESS_READ) as m:
                    h.update(m)
            except (OSError, ValueError):       # not mappable: read it
                f.seek(off)
                h.update(f.read(n))
            off += n
    return size, h.hexdigest()


#: bytes hashed per call (a multiple of the page size)
WINDOW = 64 << 20


def _run(fut: concurrent.futures.Future, path) -> None:
    if not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(_hash(path))
    except BaseException as e:             # reported to whoever collects it
        fut.set_exception(e)


def prehash(paths) -> None:
    """Start hashing each regular file of ``paths`` in a background thread."""
    for p in paths:
        key = _key(p)
        if key is None:
            continue
        with _lock:
            if key in _started:
                continue
            fut: concurrent.futures.Future = concurrent.futures.Future()
            _started[key] = fut
        threading.Thread(target=_run, args=(fut, p), name="tracedamon-sha256",
                         daemon=True).start()


def sha256_file(path) -> tuple[int, str]:
    """(size in bytes, sha256 hex digest) of a file, from :func:`prehash` when it was
    started on the same unchanged file, else computed now."""
    key = _key(path)
    with _lock:
        fut = _started.pop(key, None) if key is not None else None
    if fut is not None:
        try:
            return fut.result()
        except OSError:
            pass
    return _hash(path)
