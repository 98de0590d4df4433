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
"""
from __future__ import annotations

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
                dirs.extend(Path(e.path) for e in it
                            if e.is_dir() and e.name != "__pycache__"
                            and os.path.exists(os.path.join(e.path, "__init__.py")))
        except OSError:
            pass
    return dirs


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
    places = ([f"NUMBA_CACHE_DIR={cache_dir}"] if cache_dir else []) + \
        [str(stuck[0] / "__pycache__"), str(_user_cache_dir())]
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
    why = problem()
    if why is None:
        return
    if _disable_caching():
        print(f"tracedamon: warning: numba cannot cache compiled code ({why}); compiling "
              "without a cache (set NUMBA_CACHE_DIR to a writable directory to keep it)",
              file=sys.stderr)
