"""One-line warnings on stderr for the commands that read region histories."""
from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator


@contextlib.contextmanager
def one_line_warnings(*categories: type[Warning]) -> Iterator[None]:
    """Within the block, warnings of ``categories`` (default: the region-history
    reader's and compare's) print as ``tracedamon: warning: MESSAGE``, each once."""
    if not categories:
        from ..export.history import HistoryWarning

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
