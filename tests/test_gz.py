"""tracedamon.ingest.gz: gzip inputs decompressed to a plain file, cut streams kept.

Oracle: Python's gzip/zlib modules (compression, and decompressing the same bytes)."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from tracedamon.errors import TraceFormatError
from tracedamon.ingest.gz import gunzip_to


def test_whole_stream_and_concatenated_members(tmp_path):
    data = os.urandom(300_000) + bytes(5_000_000)  # incompressible, then very
    src = tmp_path / "a.gz"
    src.write_bytes(gzip.compress(data) + gzip.compress(b"second member"))
    assert gunzip_to(src, tmp_path / "a") is None
    assert (tmp_path / "a").read_bytes() == data + b"second member"


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.99])
def test_cut_stream_gives_what_it_holds(tmp_path, frac):
    data = os.urandom(200_000) + bytes(3_000_000)
    gz = gzip.compress(data)
    n = int(len(gz) * frac)
    src = tmp_path / "c.gz"
    src.write_bytes(gz[:n])
    want = zlib.decompressobj(wbits=31).decompress(gz[:n])
    assert gunzip_to(src, tmp_path / "c") == {"gzip_bytes": n, "bytes_out": len(want)}
    assert (tmp_path / "c").read_bytes() == want and data.startswith(want)
    with pytest.raises(TraceFormatError) as e:
        gunzip_to(src, tmp_path / "s", strict=True)
    assert e.value.offset == n and "ends early" in e.value.problem


def test_corrupt_data_names_the_file(tmp_path):
    gz = bytearray(gzip.compress(os.urandom(100_000)))
    gz[5000:5010] = bytes(10)
    src = tmp_path / "bad.gz"
    src.write_bytes(bytes(gz))
    with pytest.raises(TraceFormatError) as e:
        gunzip_to(src, tmp_path / "b")
    assert str(src) in str(e.value) and "corrupt gzip data" in str(e.value)
