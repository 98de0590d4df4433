"""One-line warnings on stderr for the commands that read region histories."""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from typing import Iterator


@contextlib.contextmanager
def one_line_warnings(*categories: type[Warning]) -> Iterator[None]:
    """Within the block, warnings of ``categories`` (default: the region-history
    reader's and compare's) print as ``tracedamon: warning: MESSAGE``, each once."""
    if not categories:
        from ..export.history import HistoryWarning  # heavy: see tracedamon.cli

        categories = (HistoryWarning,)
    shown: set[str] = set()
    old = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, categories):
            text = str(message)
            if text not in shown:
                shown.add(text)
                print(f"tracedamon: warning: {text}", file=sys.stderr)
        else:
            old(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            for c in categories:
                warnings.simplefilter("always", c)
            warnings.showwarning = show
            yield
    finally:
        warnings.showwarning = old


def with_history_warnings(fn):
    """Run a command with the region-history reader's warnings printed as one line each."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with one_line_warnings():
            return fn(*args, **kwargs)

    return run
