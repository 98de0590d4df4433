"""Input sniffing: which reader takes a file, from its first bytes or lines."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

from ..errors import InputError

PERF_MAGIC = b"PERFILE2"
PERF_MAGIC_BE = b"2ELIFREP"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

FORMATS = ("perf-data", "perf-script", "damon", "damo", "pagemap")


def head(path: str | os.PathLike, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a file, of its decompressed content when it is gzip
    (a gzip stream cut short gives what it holds: its reader decides about the cut).
    A corrupt gzip stream is an :class:`InputError` naming the file."""
    with open(path, "rb") as f:
        first = f.read(n)
        if first[:2] != GZIP_MAGIC:
            return first
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


def raw_head(path: str | os.PathLike, n: int) -> bytes:
    """The first ``n`` bytes of a file as they are on disk (gzip not undone)."""
    with open(path, "rb") as f:
        return f.read(n)


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file that starts with the gzip magic."""
    return Path(path).is_file() and raw_head(path, 2) == GZIP_MAGIC


#: a DAMON trace line: the event name, then its first field (perf script, ftrace,
#: trace-cmd and damo's perf_script writer all print "<event>: <fields>")
_DAMON_LINE = re.compile(
    rb"(?:damon_aggregated|damos_before_apply|damon_monitor_intervals_tune)"
    rb": +(?:target_id|ctx_idx|sample_us)=\d"
)
#: keys of a damo record's JSON (a list of records, each with its snapshots)
_DAMO_KEYS = re.compile(rb'"(?:snapshots|kdamond_idx|context_idx)"\s*:')
#: damo's sidecar files written beside a record (``damo record`` -o FILE)
_DAMO_SIDECARS = (".kdamonds", ".mem_footprint", ".proc_stats")
#: keys of a pagemap snapshot index (``*.index.json``)
_PAGEMAP_KEYS = (b'"vmas"', b'"t_begin_ns"', b'"pid"')
#: tables a pagemap trace directory (``tracedamon snapshot``) holds
PAGEMAP_TABLES = frozenset({"maps", "pagemap"})


def pagemap_index_of(p: Path) -> Path | None:
    """The ``*.index.json`` a raw pagemap snapshot file belongs to: the file itself,
    or the index beside a ``.pagemap.bin`` / ``.maps`` companion; None otherwise."""
    name = p.name
    for suffix in (".index.json", ".pagemap.bin", ".maps"):
        if name.endswith(suffix) and len(name) > len(suffix):
            idx = p.with_name(name[: -len(suffix)] + ".index.json")
            return idx if idx.is_file() else None
    return None


def trace_dir_tables(p: Path) -> set[str] | None:
    """The tables of a trace directory (a directory with meta.json or .parquet
    tables written by tracedamon), None when ``p`` is not one."""
    if not p.is_dir() or not ((p / "meta.json").is_file() or any(p.glob("*.parquet"))):
        return None
    return {q.stem for q in p.glob("*.parquet")}


def detect_format(path: str | os.PathLike) -> str:
    """Name of the reader for ``path``: one of :data:`FORMATS`.

    Raises :class:`InputError` naming the file when nothing recognises it: files
    that only mention DAMON events or hold some other JSON are not taken for traces
    or damo records.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "data").is_file():
            return "perf-data"  # perf record --threads / --kcore directory
        tables = trace_dir_tables(p)
        if tables is not None:
            if tables and tables <= PAGEMAP_TABLES:
                return "pagemap"  # tracedamon snapshot's output

            def msg(replay):
                return (
                    f"{p}: a trace directory with {', '.join(sorted(tables)) or 'no'} "
                    "tables: as an input only one of pagemap snapshots (tracedamon "
                    "snapshot's output) can be added; ingest the original inputs "
                    f"together, or give it to {replay}"
                )

            raise InputError(msg("replay(pagemap=...)"), cli_message=msg("replay --pagemap"))
        names = [q.name for q in p.iterdir()]
        if any(n.endswith(".index.json") for n in names):
            return "pagemap"
        raise InputError(
            f"{p}: directory holds neither a perf.data directory "
            "(no 'data' file) nor pagemap snapshots"
        )
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    if pagemap_index_of(p) is not None and (
        not p.name.endswith(".index.json") or all(k in head(p, 4096) for k in _PAGEMAP_KEYS)
    ):
        return "pagemap"  # raw snapshot: index, or its .pagemap.bin / .maps
    first = head(p)
    if first[:8] in (PERF_MAGIC, PERF_MAGIC_BE):
        return "perf-data"
    if first[:8] == b"PERFFILE":
        raise InputError(f"{p}: perf.data version 1 (pre-2010 'PERFFILE' magic) is not supported")
    for suffix in _DAMO_SIDECARS:
        if p.name.endswith(suffix):
            raise InputError(
                f"{p}: a damo sidecar file ({suffix[1:]}) written beside the "
                f"record {p.name[: -len(suffix)]}: ingest that record"
            )
    if first[:4] == ZSTD_MAGIC:
        return "damo"  # zstd-compressed damo record? let its reader decide
    json_head = _zlib_text(first)
    if json_head:
        first = json_head  # damo json_compressed: a raw zlib stream of JSON
    stripped = first.lstrip()
    if stripped[:1] in (b"{", b"["):
        if _DAMO_KEYS.search(first):
            return "damo"
        if all(k in first for k in _PAGEMAP_KEYS):
            raise InputError(
                f"{p}: a pagemap snapshot index without its companions "
                "(name it *.index.json, beside its .pagemap.bin and .maps)"
            )
        msg = (
            f'{p}: JSON, but not a damo record (no "snapshots" or "kdamond_idx" key): '
            "use {} to force a reader"
        )
        raise InputError(msg.format("format="), cli_message=msg.format("--format"))
    if json_head:
        raise InputError(f"{p}: a zlib stream that holds no JSON: not a damo record")
    if _DAMON_LINE.search(first):
        return "damon"
    text = first.decode("utf-8", errors="replace")
    if b"\0" in first[:4096]:
        # binary, but not a format we know; damo's json_compressed is zlib/zstd-free JSON
        # compressed with its own scheme, so give it a chance before refusing.
        if p.name.endswith("json_compressed") or p.suffix == ".damo":
            return "damo"
        raise InputError(f"{p}: unrecognised binary file (not perf.data: magic {first[:8]!r})")
    if _looks_like_perf_script(text):
        # `perf script --show-mmap-events` of a system-wide DAMON recording starts with
        # thousands of side-band lines: look further for DAMON events before deciding
        if _DAMON_LINE.search(head(p, 8 << 20)):
            return "damon"
        return "perf-script"
    msg = (
        f"{p}: unrecognised input: not perf.data, perf script text, a DAMON trace, a "
        "damo record or pagemap snapshots (use {} to force a reader)"
    )
    raise InputError(msg.format("format="), cli_message=msg.format("--format"))


def _zlib_text(head: bytes, n: int = 4096) -> bytes | None:
    """The first ``n`` bytes a zlib stream (damo's json_compressed) decompresses to,
    or None when ``head`` does not start a zlib stream."""
    if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] << 8 | head[1]) % 31:
        return None
    try:
        return zlib.decompressobj().decompress(head, n)
    except zlib.error:
        return None


def _looks_like_perf_script(text: str) -> bool:
    # callchain entries sit on their own indented lines under their sample: skip them
    lines = [
        ln
        for ln in text.splitlines()[:400]
        if ln.strip() and not ln.startswith("#") and not ln.startswith("\t")
    ][:50]
    if not lines:
        return False
    # perf script lines carry a "sec.usec:" or "sec.nsec:" time stamp, or start with
    # "comm pid/tid" fields; accept if most of the first lines have one.
    ts = re.compile(r"\b\d+\.\d{6,9}:")
    hits = sum(1 for ln in lines if ts.search(ln))
    return hits >= max(1, len(lines) // 2)
