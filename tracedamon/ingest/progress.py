"""Progress reporting for the readers.

A reader takes ``progress``, a callable ``progress(done, total, what)`` or None, and
calls it as it goes: ``done`` and ``total`` count what the reader knows best (bytes of
its input, or snapshots), ``total`` is None when unknown, ``what`` names the input.
Readers draw nothing: the command line turns the calls into a bar.
"""

from __future__ import annotations

from typing import Callable, Optional

Progress = Callable[[int, Optional[int], str], None]


def callback(progress) -> Progress | None:
    """``progress`` when it is a callable, else None (``False``/``None``; ``True``,
    which before the callbacks asked the reader to draw a bar, now draws nothing)."""
    return progress if callable(progress) else None
