"""Comparing big tables in tests: say where they differ, quickly.

``assert got == want`` on lists of hundreds of thousands of rows makes pytest's
assertion rewriting build a full diff, which takes minutes to report one wrong value.
These helpers check equality at C speed and, only on a difference, describe the first
few differing rows (with their neighbours) and the counts, in a message of bounded size.
They raise ``AssertionError`` themselves, so they work the same from any module.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["assert_rows_equal", "assert_arrays_equal", "describe_row_differences"]


def _show(row) -> str:
    s = repr(tuple(row) if isinstance(row, (list, np.ndarray)) else row)
    return s if len(s) <= 200 else s[:197] + "..."


def describe_row_differences(
    got: Sequence, want: Sequence, what: str = "rows", limit: int = 5, context: int = 1
) -> str | None:
    """None if ``got == want``, else a short description of where they differ."""
    if got == want:
        return None
    ng, nw = len(got), len(want)
    n = min(ng, nw)
    diff = []
    count = 0
    for i in range(n):
        if got[i] != want[i]:
            count += 1
            if len(diff) < limit:
                diff.append(i)
    lines = [
        f"{what} differ: got {ng:,}, want {nw:,}"
        + (f"; {count:,} of the first {n:,} differ" if count else f"; the first {n:,} are equal")
    ]
    shown = set()
    for i in diff:
        for j in range(max(0, i - context), min(n, i + context + 1)):
            if j in shown:
                continue
            shown.add(j)
            if got[j] == want[j]:
                lines.append(f"  [{j}] both {_show(got[j])}")
            else:
                lines.append(f"  [{j}] got  {_show(got[j])}")
                lines.append(f"  {' ' * len(str(j))}   want {_show(want[j])}")
    for name, rows in (("got", got), ("want", want)):
        if len(rows) > n:
            extra = ", ".join(
                f"[{j}] {_show(rows[j])}" for j in range(n, min(len(rows), n + limit))
            )
            lines.append(
                f"  only in {name} ({len(rows) - n:,}): {extra}"
                + (" ..." if len(rows) - n > limit else "")
            )
    return "\n".join(lines)


def assert_rows_equal(got: Sequence, want: Sequence, what: str = "rows", limit: int = 5) -> None:
    """Assert two sequences of rows (tuples, lists, scalars) are equal."""
    msg = describe_row_differences(got, want, what, limit)
    if msg is not None:
        raise AssertionError(msg)


def assert_arrays_equal(got, want, what: str = "arrays", limit: int = 5) -> None:
    """Assert two numpy arrays (1-D, or 2-D rows) have equal shapes and values."""
    g, w = np.asarray(got), np.asarray(want)
    if g.shape == w.shape and np.array_equal(g, w):
        return
    if g.ndim == w.ndim and g.shape[1:] == w.shape[1:]:
        n = min(len(g), len(w))
        ne = g[:n] != w[:n]
        bad = np.flatnonzero(ne.reshape(n, -1).any(axis=1) if ne.ndim > 1 else ne)
        lines = [
            f"{what} differ: got shape {g.shape}, want {w.shape}; {bad.size:,} of the "
            f"first {n:,} rows differ"
        ]
        for i in bad[:limit]:
            lines.append(f"  [{i}] got  {_show(g[i].tolist())}")
            lines.append(f"  {' ' * len(str(i))}   want {_show(w[i].tolist())}")
        if len(g) != len(w):
            longer, name = (g, "got") if len(g) > len(w) else (w, "want")
            lines.append(
                f"  only in {name}: {len(longer) - n:,} rows, first {_show(longer[n].tolist())}"
            )
        raise AssertionError("\n".join(lines))
    raise AssertionError(f"{what} differ: got shape {g.shape}, want {w.shape}")
