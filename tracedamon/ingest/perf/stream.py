"""Chunked record streams: the record-boundary scan, chunks of ``CHUNK_BYTES``,
zstd-compressed records (COMPRESSED/COMPRESSED2), a stream cut short, and the
progress of the pass."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ...errors import TraceFormatError
from ..progress import callback
from .header import RECORD_NAMES
from . import layout as L
from .scan import scan_records, scan_records_be
from .words import as_u64_view

if TYPE_CHECKING:  # annotations only (at run time these modules would import each other)
    from .reader import PerfData, _Source
    from .sideband import _PassState

#: bytes of records decoded at a time (and the logical size of decompressed chunks);
#: 2 MiB rather than 4 takes ~45 MB off the peak RSS of a 10 M-sample ingest at the
#: same speed (the per-chunk scratch arrays scale with it)
CHUNK_BYTES = 2 << 20


# ----------------------------------------------------------------------------------------
# chunked record streams (with zstd)
# ----------------------------------------------------------------------------------------
class _Chunk:
    """Complete records in logical (decompressed) order."""

    def __init__(self, path, buf, offs, types, sizes, fileoff, rounds_before, consumed):
        self.path = path
        self.buf = buf
        self.buf64 = as_u64_view(buf)
        self.offs = offs
        self.types = types
        self.sizes = sizes
        #: each record's file offset: an array, or an int when the chunk is a plain
        #: piece of the file starting at that offset (then computed only where needed)
        self._fileoff = fileoff
        self.rounds_before = rounds_before
        #: positions of the records that are not samples (usually few)
        self.other = np.flatnonzero(types != L.R_SAMPLE)
        self._round_pos = self.other[types[self.other] == L.R_FINISHED_ROUND]
        self.rounds_end = rounds_before + len(self._round_pos)
        self.consumed = consumed

    @property
    def fileoff(self) -> np.ndarray:
        if isinstance(self._fileoff, int):
            self._fileoff = self._fileoff + self.offs.astype(np.uint64)
        return self._fileoff

    def fileoff_of(self, sel: np.ndarray, offs: np.ndarray) -> np.ndarray:
        """File offsets of the records ``sel`` (``offs`` = ``self.offs[sel]``)."""
        if isinstance(self._fileoff, int):
            return (offs + self._fileoff).astype(np.uint64)
        return self._fileoff[sel]

    def round_idx(self, sel):
        """FINISHED_ROUNDs before each record of ``sel`` (counted from the stream start)."""
        return self.rounds_before + np.searchsorted(self._round_pos, sel).astype(np.int64)


def _aligned(n: int) -> np.ndarray:
    return np.empty(max(n, 8), dtype=np.uint8)


def _scan(path, buf, start, end, base_fileoff, be: bool = False):
    """Record boundaries in buf[start:end]; ``be``: a big-endian stream, whose complete
    records are rewritten little-endian in place (scan.scan_records_be)."""
    cap = (end - start) // 8 + 1
    offs = np.empty(cap, np.int64)
    types = np.empty(cap, np.uint32)
    sizes = np.empty(cap, np.int64)
    scan = scan_records_be if be else scan_records
    n, stop, err = scan(buf, start, end, offs, types, sizes)
    if err == 1:
        size = int(buf[stop + 6]) | int(buf[stop + 7]) << 8
        if be:
            size = int(buf[stop + 6]) << 8 | int(buf[stop + 7])
        raise TraceFormatError(
            path,
            f"record header size {size} is below 8 (corrupt record stream)",
            offset=base_fileoff + stop,
        )
    if err == 2:
        raise TraceFormatError(
            path, "AUXTRACE record announces an impossible payload size", offset=base_fileoff + stop
        )
    # views of arrays sized for the worst case (8-byte records): they live as long as
    # their chunk, a few MB
    return offs[:n], types[:n], sizes[:n], stop


def _chunk_source(rd: PerfData, src: _Source, st: _PassState) -> Iterator[_Chunk]:
    path = src.path
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror}") from None
    with f:
        fsize = os.fstat(f.fileno()).st_size
        end = src.end if src.end is not None else fsize
        if end > fsize:
            raise TraceFormatError(
                path,
                f"data section ends at {end}, past the end of the file ({fsize} bytes)",
                offset=fsize,
            )
        f.seek(src.start)
        pos = src.start  # file offset of carry[0]
        carry = np.zeros(0, np.uint8)
        rounds = 0
        z = _Zstd(path)
        want = CHUNK_BYTES
        while True:
            remaining = end - pos - len(carry)
            nread = min(want, remaining)
            buf = _aligned(len(carry) + nread)
            buf[: len(carry)] = carry
            got = f.readinto(memoryview(buf)[len(carry) : len(carry) + nread]) if nread > 0 else 0
            filled = len(carry) + got
            eof = got < nread or end - pos - filled == 0
            offs, types, sizes, stop = _scan(path, buf, 0, filled, pos, rd.big_endian)
            if len(offs) == 0 and not eof:
                # a record larger than the buffer (tracing data / AUXTRACE payload)
                order = "big" if rd.big_endian else "little"
                hdr_size = int.from_bytes(buf[6:8].tobytes(), order) if filled >= 8 else 0
                need = hdr_size
                typ = int.from_bytes(buf[0:4].tobytes(), order) if filled >= 8 else 0
                if typ == L.R_HEADER_TRACING_DATA and filled >= 12:
                    need += int.from_bytes(buf[8:12].tobytes(), order)
                elif typ == L.R_AUXTRACE and filled >= 16:
                    need += int.from_bytes(buf[8:16].tobytes(), order)
                if pos + need > end:
                    if src.end is not None or rd.strict:
                        raise TraceFormatError(
                            path,
                            f"{RECORD_NAMES.get(typ, 'record')} of "
                            f"{need} bytes runs past the end of the data",
                            offset=pos,
                        )
                    # the file ends inside this record: a truncated recording
                    rd._note_truncation(partial=_partial_record(src, pos, end - pos, typ, need))
                    _finish_truncated(rd, src, z, pos)
                    return
                if typ == L.R_AUXTRACE:
                    # skip the AUX payload without loading it
                    st.count(np.array([71], np.uint32))
                    pos += need
                    f.seek(pos)
                    carry = np.zeros(0, np.uint8)
                    continue
                want = max(want, need + 8)
                carry = buf[:filled].copy()
                continue
            want = CHUNK_BYTES
            if eof and stop < filled:
                order = "big" if rd.big_endian else "little"
                typ = (
                    int.from_bytes(buf[stop : stop + 4].tobytes(), order)
                    if filled - stop >= 4
                    else None
                )
                if src.end is not None or rd.strict:
                    raise TraceFormatError(
                        path,
                        "truncated record at the end of the data ("
                        f"{filled - stop} bytes left, "
                        f"type {typ if typ is not None else '?'})",
                        offset=pos + stop,
                    )
                # the records run to the end of the file (module doc: truncated
                # recordings): the complete ones are read, this one is reported
                size = (
                    int.from_bytes(buf[stop + 6 : stop + 8].tobytes(), order)
                    if filled - stop >= 8
                    else None
                )
                rd._note_truncation(
                    partial=_partial_record(src, pos + stop, filled - stop, typ, size)
                )
                filled = stop
            carry = buf[stop:filled].copy()
            consumed = stop
            comp = (types == L.R_COMPRESSED) | (types == L.R_COMPRESSED2)
            st.count(types)
            if not comp.any():
                ch = _Chunk(path, buf, offs, types, sizes, int(pos), rounds, consumed)
                rounds = ch.rounds_end
                yield ch
                del ch
            else:
                for ch in _decompress_chunks(
                    path, z, buf, offs, types, sizes, pos, rounds, consumed, st, rd.big_endian
                ):
                    rounds = ch.rounds_end
                    yield ch
            pos += stop
            del buf, offs, types, sizes
            if eof:
                _finish_truncated(rd, src, z, pos)
                return


def _partial_record(src: _Source, offset: int, have: int, typ, size) -> dict:
    """What a truncated recording lost at its end: the record at ``offset`` of which
    ``have`` bytes were written (``typ``/``size`` from its header, None if cut)."""
    return {
        "file": src.label,
        "offset": int(offset),
        "bytes": int(have),
        "type": RECORD_NAMES.get(typ, f"type {typ}") if typ is not None else None,
        "size": int(size) if size is not None else None,
    }


def _finish_truncated(rd: PerfData, src: _Source, z: "_Zstd", end_of_records: int) -> None:
    """End of one record stream: remember where its complete records end, and what is
    left of a record that a compressed stream had only begun (the rest of it was never
    written: an open-ended stream was cut; in a closed section it is corruption)."""
    rd.stream_ends[src.label] = (src.start, int(end_of_records))
    if z.carry_len():
        if src.end is not None or rd.strict:
            raise TraceFormatError(
                src.path,
                f"compressed stream ends inside a record ({z.carry_len()} bytes left over)",
                offset=z.last_offset,
            )
        typ = (
            int.from_bytes(z.carry[:4], "big" if rd.big_endian else "little")
            if z.carry_len() >= 4
            else None
        )
        size = (
            int.from_bytes(z.carry[6:8], "big" if rd.big_endian else "little")
            if z.carry_len() >= 8
            else None
        )
        rd._note_truncation(
            compressed={
                "file": src.label,
                "offset": int(z.last_offset),
                "bytes": z.carry_len(),
                "type": RECORD_NAMES.get(typ, f"type {typ}") if typ is not None else None,
                "size": size,
            }
        )


class _Zstd:
    """One long-lived zstd stream (perf's COMPRESSED records of one file)."""

    def __init__(self, path):
        self.path = path
        self.d = None
        self.carry = b""
        self.last_offset = 0

    def carry_len(self):
        return len(self.carry)

    def feed(self, payload: bytes, fileoff: int) -> bytes:
        import zstandard  # here: only compressed recordings need it (start-up of the others)

        self.last_offset = fileoff
        out = []
        data = payload
        try:
            while data:
                if self.d is None:
                    self.d = zstandard.ZstdDecompressor().decompressobj()
                out.append(self.d.decompress(data))
                if getattr(self.d, "eof", False):
                    data = getattr(self.d, "unused_data", b"")
                    self.d = None
                else:
                    data = b""
        except zstandard.ZstdError as e:
            raise TraceFormatError(
                self.path, f"corrupt zstd data in COMPRESSED record: {e}", offset=fileoff
            ) from None
        return b"".join(out)


def _decompress_chunks(
    path, z: _Zstd, buf, offs, types, sizes, pos, rounds, consumed, st, be: bool = False
):
    """Logical chunks for an outer chunk that holds COMPRESSED records: inner records
    take the position (and file offset) of their container."""
    pieces: list[tuple[np.ndarray, np.ndarray]] = []  # (bytes, per-record fileoff)
    piece_bytes = 0
    n = len(offs)
    i = 0

    def flush():
        nonlocal pieces, piece_bytes, rounds
        if not pieces:
            return None
        total = sum(len(p[0]) for p in pieces)
        lb = _aligned(total)
        fo_parts = []
        k = 0
        for data, fo in pieces:
            lb[k : k + len(data)] = data
            k += len(data)
            fo_parts.append(fo)
        o, t, s, stop = _scan(path, lb, 0, total, 0)
        if stop != total:
            raise TraceFormatError(
                path,
                "record boundary lost in compressed data",
                offset=int(fo_parts[0][0]) if len(fo_parts[0]) else pos,
            )
        fileoff = np.concatenate(fo_parts) if fo_parts else np.zeros(0, np.uint64)
        ch = _Chunk(path, lb, o, t, s, fileoff, rounds, 0)
        rounds = ch.rounds_end
        pieces = []
        piece_bytes = 0
        return ch

    while i < n:
        typ = int(types[i])
        if typ not in (L.R_COMPRESSED, L.R_COMPRESSED2):
            j = i
            while j < n and int(types[j]) not in (L.R_COMPRESSED, L.R_COMPRESSED2):
                j += 1
            a, b = int(offs[i]), int(offs[j - 1] + sizes[j - 1])
            pieces.append((buf[a:b], pos + offs[i:j].astype(np.uint64)))
            piece_bytes += b - a
            i = j
        else:
            off = int(offs[i])
            size = int(sizes[i])
            fo = pos + off
            if typ == L.R_COMPRESSED:
                payload = buf[off + 8 : off + size].tobytes()
            else:
                if size < 16:
                    raise TraceFormatError(path, "COMPRESSED2 record too short", offset=fo)
                dsz = int.from_bytes(buf[off + 8 : off + 16].tobytes(), "little")
                if 16 + dsz > size:
                    raise TraceFormatError(
                        path, "COMPRESSED2 data size exceeds the record", offset=fo
                    )
                payload = buf[off + 16 : off + 16 + dsz].tobytes()
            data = z.carry + z.feed(payload, fo)
            arr = np.frombuffer(data, dtype=np.uint8)
            ab = _aligned(len(arr))
            ab[: len(arr)] = arr
            # the records of a big-endian stream are made little-endian here, once; the
            # pieces are then scanned again as little-endian (flush)
            o, t, s, stop = _scan(path, ab, 0, len(arr), 0, be)
            z.carry = data[stop:]
            if stop:
                st.count(t)
                pieces.append((ab[:stop], np.full(len(o), fo, dtype=np.uint64)))
                piece_bytes += stop
            i += 1
        if piece_bytes >= CHUNK_BYTES:
            ch = flush()
            if ch is not None:
                yield ch
    ch = flush()
    if ch is not None:
        ch.consumed = consumed
        yield ch


# ----------------------------------------------------------------------------------------
# progress
# ----------------------------------------------------------------------------------------
class _Progress:
    """The bytes of the record sections read so far, reported to the reader's
    ``progress(done, total, what)`` callback (:mod:`tracedamon.ingest.progress`)."""

    def __init__(self, rd: PerfData, progress):
        self.cb = callback(progress)
        self.done = 0
        self.total = 0
        for s in rd.sources:
            try:
                self.total += (s.end if s.end is not None else s.path.stat().st_size) - s.start
            except OSError:
                self.total = None
                break
        self.what = rd.path.name

    def advance(self, src, n):
        if self.cb is not None:
            self.done += n
            self.cb(self.done, self.total, self.what)
