"""Where numba keeps tracedamon's compiled kernels, and what to do when it cannot.

tracedamon's numba kernels are compiled with ``cache=True``: the machine code is kept
on disk so that later runs skip the compilation. numba looks for a writable place in
this order: ``NUMBA_CACHE_DIR`` (when set), the ``__pycache__`` beside each source
file, then the user's cache directory (``~/.cache/numba``). When none is writable (a
read-only install run by a user without a writable home, a read-only container), numba
refuses to even define the kernels: every command would stop with a traceback.

:func:`setup` runs when ``tracedamon`` is imported, before any kernel is defined. It
checks those places the way numba does, without importing numba; only when none is
writable does it print one warning line on stderr and switch caching off (the kernels
are compiled in memory at each run: correct, only slower to start).

Stale kernels.  numba keys a kernel's cache entry by its own source file only, but a
kernel that calls a kernel of another module (the core calling the generators of
``rng.py`` / ``prng.py``) compiles the callee into its own machine code: after a change to
the callee's file alone, the caller's cached copy would still run the old callee.  So,
unless the user set ``NUMBA_CACHE_DIR``, :func:`setup` points numba at a directory named
after a hash of the sources of every module that holds numba kernels
(:func:`kernel_sources_key`): ``__pycache__/numba-KEY`` in the package when it is
writable, else ``~/.cache/tracedamon/numba-KEY``.  A change to any of those files starts
a fresh cache; an unchanged tree keeps using its compiled kernels.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_done = False


def _writable(d: Path) -> bool:
    """Whether directory ``d`` could be created (if missing) and written to."""
    q = d
    while not q.exists():
        if q.parent == q:
            return False
        q = q.parent
    return q.is_dir() and os.access(q, os.W_OK | os.X_OK)


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba"


def _source_dirs() -> list[Path]:
    """The package's directories (numba caches a kernel in the ``__pycache__`` beside
    its source file)."""
    dirs = [_PACKAGE]
    for d in dirs:
        try:
            with os.scandir(d) as it:
                dirs.extend(
                    Path(e.path)
                    for e in it
                    if e.is_dir()
                    and e.name != "__pycache__"
                    and os.path.exists(os.path.join(e.path, "__init__.py"))
                )
        except OSError:
            pass
    return dirs


def kernel_sources() -> list[Path]:
    """The package's modules that use numba (the kernels and what they call), sorted."""
    out = []
    for d in _source_dirs():
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if n.endswith(".py"):
                f = d / n
                try:
                    if b"numba" in f.read_bytes():
                        out.append(f)
                except OSError:
                    pass
    return sorted(out)


def kernel_sources_key() -> str:
    """A hash of the paths (relative to the package) and contents of
    :func:`kernel_sources`: it changes whenever one of those modules changes."""
    h = hashlib.sha256()
    for f in kernel_sources():
        h.update(str(f.relative_to(_PACKAGE)).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir_candidates(key: str) -> list[Path]:
    """Where a cache for kernel sources ``key`` goes, in order of preference."""
    return [
        _PACKAGE / "__pycache__" / f"numba-{key}",
        Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))
        / "tracedamon"
        / f"numba-{key}",
    ]


def _use_cache_dir(d: Path) -> None:
    """Make numba cache in ``d`` (also when numba was imported before tracedamon)."""
    os.environ["NUMBA_CACHE_DIR"] = str(d)
    if "numba" in sys.modules:
        try:
            from numba.core import config

            config.CACHE_DIR = str(d)
        except ImportError:
            pass


def problem() -> str | None:
    """Why numba could not cache tracedamon's kernels anywhere, or None when it can."""
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir and _writable(Path(cache_dir)):
        return None
    if _writable(_user_cache_dir()):
        return None
    stuck = [d for d in _source_dirs() if not _writable(d / "__pycache__")]
    if not stuck:
        return None
    places = ([f"NUMBA_CACHE_DIR={cache_dir}"] if cache_dir else []) + [
        str(stuck[0] / "__pycache__"),
        str(_user_cache_dir()),
    ]
    return f"{', '.join(places)} not writable"


def _disable_caching() -> bool:
    """Make ``cache=True`` a no-op: each kernel keeps numba's in-memory null cache."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return False
    if not hasattr(Dispatcher, "enable_caching"):
        return False
    Dispatcher.enable_caching = lambda self: None
    return True


def setup() -> None:
    """Check once per process that numba can cache the kernels; if it cannot, warn in
    one line and compile without a cache."""
    global _done
    if _done:
        return
    _done = True
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return
    if not os.environ.get("NUMBA_CACHE_DIR"):
        for d in cache_dir_candidates(kernel_sources_key()):
            if _writable(d):
                _use_cache_dir(d)
                return
    why = problem()
    if why is None:
        return
    if _disable_caching():
        print(
            f"tracedamon: warning: numba cannot cache compiled code ({why}); compiling "
            "without a cache (set NUMBA_CACHE_DIR to a writable directory to keep it)",
            file=sys.stderr,
        )
