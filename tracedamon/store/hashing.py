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
    # Read and hashed BUFFER bytes at a time: each read and each update releases the
    # GIL, and needs it back afterwards; while the main thread runs Python (imports,
    # decoding) each of those waits can last the interpreter's switch interval (5 ms),
    # so few large buffers matter: beside a busy main thread the 480 MB hash took
    # 0.67 s in 4 MiB reads, 0.68 s in 32 MiB ones, 0.64 s in 64 MiB ones (0.32 s
    # alone), 16 MiB: 0.92 s. (A memory mapping would be faster still, but a file
    # truncated while mapped kills the process with SIGBUS.)
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        buf = bytearray(min(BUFFER, max(os.fstat(f.fileno()).st_size, 1)))
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            size += n
            h.update(view[:n])
    return size, h.hexdigest()


#: bytes read per call
BUFFER = 32 << 20


def _run(fut: concurrent.futures.Future, path) -> None:
    if not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(_hash(path))
    except BaseException as e:  # reported to whoever collects it
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
        threading.Thread(target=_run, args=(fut, p), name="tracedamon-sha256", daemon=True).start()


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
