"""Input sniffing: which reader takes a file, from its first bytes or lines."""
from __future__ import annotations

import os
import zlib
from pathlib import Path

from ..errors import InputError

PERF_MAGIC = b"PERFILE2"
PERF_MAGIC_BE = b"2ELIFREP"
GZIP_MAGIC = b"\x1f\x8b"

_DAMON_EVENTS = ("damon_aggregated", "damon:damon_", "damos_before_apply",
                 "damon_monitor_intervals_tune")

FORMATS = ("perf-data", "perf-script", "damon", "damo", "pagemap")


def _head(path: Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a file, of its decompressed content when it is gzip
    (a gzip stream cut short gives what it holds: its reader decides about the cut)."""
    with open(path, "rb") as f:
        head = f.read(n)
        if head[:2] != GZIP_MAGIC:
            return head
        f.seek(0)
        d = zlib.decompressobj(wbits=31)
        out = b""
        try:
            while len(out) < n and not d.eof:
                block = f.read(1 << 16)
                if not block:
                    break
                out += d.decompress(block, n - len(out))
                while d.unconsumed_tail and len(out) < n:
                    out += d.decompress(d.unconsumed_tail, n - len(out))
        except zlib.error as e:
            raise InputError(f"{path}: gzip stream unreadable: {e}") from None
    return out


def detect_format(path: str | os.PathLike) -> str:
    """Name of the reader for ``path``: one of :data:`FORMATS`.

    Raises :class:`InputError` naming the file when nothing recognises it.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "data").is_file():
            return "perf-data"            # perf record --threads / --kcore directory
        names = [q.name for q in p.iterdir()]
        if any(n.endswith(".pagemap.bin") or n.endswith(".index.json") for n in names):
            return "pagemap"
        raise InputError(f"{p}: directory holds neither a perf.data directory "
                         "(no 'data' file) nor pagemap snapshots")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    head = _head(p)
    if head[:8] in (PERF_MAGIC, PERF_MAGIC_BE):
        return "perf-data"
    if head[:8] == b"PERFFILE":
        raise InputError(f"{p}: perf.data version 1 (pre-2010 'PERFFILE' magic) is not supported")
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "damo"                     # zstd-compressed damo record? let its reader decide
    if _is_zlib_json(head):
        return "damo"                     # damo json_compressed: a raw zlib stream of JSON
    text = head.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        return "damo"
    if any(k in text for k in _DAMON_EVENTS):
        return "damon"
    if b"\0" in head[:4096]:
        # binary, but not a format we know; damo's json_compressed is zlib/zstd-free JSON
        # compressed with its own scheme, so give it a chance before refusing.
        if p.name.endswith("json_compressed") or p.suffix == ".damo":
            return "damo"
        raise InputError(f"{p}: unrecognised binary file (not perf.data: magic "
                         f"{head[:8]!r})")
    if _looks_like_perf_script(text):
        # `perf script --show-mmap-events` of a system-wide DAMON recording starts with
        # thousands of side-band lines: look further for DAMON events before deciding
        if any(k.encode() in _head(p, 8 << 20) for k in _DAMON_EVENTS):
            return "damon"
        return "perf-script"
    raise InputError(f"{p}: unrecognised input: not perf.data, perf script text, a DAMON "
                     "trace or a damo record (use --format to force a reader)")


def _is_zlib_json(head: bytes) -> bool:
    """A zlib stream (damo's json_compressed) whose text starts like JSON."""
    if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] << 8 | head[1]) % 31:
        return False
    import zlib
    try:
        text = zlib.decompressobj().decompress(head, 64)
    except zlib.error:
        return False
    return text.lstrip()[:1] in (b"[", b"{")


def _looks_like_perf_script(text: str) -> bool:
    # callchain entries sit on their own indented lines under their sample: skip them
    lines = [ln for ln in text.splitlines()[:400]
             if ln.strip() and not ln.startswith("#") and not ln.startswith("\t")][:50]
    if not lines:
        return False
    import re
    # perf script lines carry a "sec.usec:" or "sec.nsec:" time stamp, or start with
    # "comm pid/tid" fields; accept if most of the first lines have one.
    ts = re.compile(r"\b\d+\.\d{6,9}:")
    hits = sum(1 for ln in lines if ts.search(ln))
    return hits >= max(1, len(lines) // 2)
