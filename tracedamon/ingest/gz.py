"""gzip-compressed binary inputs (``perf.data.gz``): decompressed, streaming, into a
plain file for the readers that map their input.

A gzip stream that ends before its end-of-stream marker (a copy or download cut
short) gives the bytes it holds, and says so: the reader of the plain file then
decides, as for a plain file cut at the same place, whether what it holds can be
read (a truncated recording) or not.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from ..errors import TraceFormatError
from .detect import GZIP_MAGIC, is_gzip  # noqa: F401  (is_gzip: the old place)

_BLOCK = 1 << 22


def gunzip_to(src: str | Path, dst: str | Path, *, strict: bool = False) -> dict | None:
    """Decompress gzip file ``src`` (one or more members) into ``dst``.

    Returns None when the stream is whole, else ``{"gzip_bytes": n, "bytes_out": m}``:
    the stream ended after ``n`` compressed bytes without its end-of-stream marker
    and ``m`` bytes came out of it (all of them are in ``dst``). ``strict=True``
    refuses such a stream. Corrupt data (a bad block, a wrong checksum) is a
    :class:`TraceFormatError` naming the file and the compressed byte offset.
    """
    src, dst = Path(src), Path(dst)
    d = zlib.decompressobj(wbits=31)
    started = False  # inside a member (some of its bytes were fed)
    pos = 0  # compressed bytes read
    out_n = 0
    with open(src, "rb") as f, open(dst, "wb") as o:
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            data = block
            while data:
                try:
                    # at most _BLOCK bytes out per call: memory stays bounded whatever
                    # the compression ratio (a run of zeros compresses 1000 to 1)
                    got = d.decompress(data, _BLOCK)
                except zlib.error as e:
                    raise TraceFormatError(
                        src,
                        f"corrupt gzip data: {e} (in the block of compressed bytes starting here)",
                        offset=pos,
                    ) from None
                started = True
                o.write(got)
                out_n += len(got)
                if d.eof:
                    # the member ended; another may follow (concatenated gzip files)
                    data = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    started = False
                else:
                    data = d.unconsumed_tail
            pos += len(block)
        if started:
            tail = d.flush()
            o.write(tail)
            out_n += len(tail)
            if strict:
                raise TraceFormatError(
                    src,
                    "gzip stream ends early (no end-of-stream marker): the file was cut short",
                    offset=pos,
                )
            return {"gzip_bytes": pos, "bytes_out": out_n}
    if out_n == 0 and pos:
        raise TraceFormatError(src, "gzip stream holds no data", offset=0)
    return None
