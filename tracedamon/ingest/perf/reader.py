"""The perf.data reader: opening a file, pipe stream or directory (header, features,
event names) and the record pass that decodes samples and collects side-band."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from ...errors import TraceFormatError
from .. import data_src as _ds
from ..binparse import Cursor
from .header import (
    Attr,
    FEATURE_NAMES,
    MAGIC_BE,
    MAGIC_LE,
    FileHeader,
    parse_file_header,
    _BUILTIN_PMU,
    _feature_index_plausible,
    _id_pos_sample,
    _id_pos_trailer,
)
from .ordering import _Orderer, _merge_streams
from .samples import _Block, _expand_read, _sample_block, finish_samples
from .sideband import _PassState
from .stream import _Chunk, _Progress, _chunk_source
from . import layout as L
from .byteswap import be_fix_samples
from .sample_kernels import (
    decode_samples,
    fixed_layouts,
    gather_fixed_attrs,
    gather_u16,
    sample_attrs,
)


# ----------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------
@dataclass
class _Source:
    path: Path
    start: int
    #: None: the records run to the end of the file (a pipe stream, a ``data.N`` of a
    #: directory, a recording perf did not finish); a record cut by the end of such a
    #: file is the end of a truncated recording, not corruption
    end: int | None
    label: str


class PerfData:
    """An opened perf.data (file, pipe stream or directory). See the module doc."""

    def __init__(self, path: str | os.PathLike, *, strict: bool = False):
        self.path = Path(path)
        #: refuse a recording that was cut short instead of reading what it holds
        self.strict = strict
        #: what a truncated recording lost (see :meth:`_note_truncation`), else None
        self.truncation: dict | None = None
        #: per record stream (source label): (first byte, end of its last complete
        #: record), filled as each stream is read to its end
        self.stream_ends: dict[str, tuple[int, int]] = {}
        self.meta: dict = {}
        self.attrs: list[Attr] = []
        self.tracing_data: bytes | None = None
        self.features: dict[int, bytes] = {}
        self._id2attr: dict[int, int] = {}
        self._attr_offsets: set = set()
        self._params = None
        self.sources: list[_Source] = []
        #: a file written on a big-endian machine: records are turned little-endian
        #: chunk by chunk (scan.scan_records_be and byteswap's be_fix_* kernels)
        self.big_endian = False
        self._e = "<"
        #: filled by ingest_into: seconds the Parquet thread was busy (wall, CPU)
        self.timings: dict[str, float] = {}
        if self.path.is_dir():
            self._open_directory(self.path)
        else:
            self._open_file(self.path)
            if (
                self.layout == "file"
                and (self.meta.get("dir_format", 0) >= 1 or self.meta.get("unfinished_recording"))
                and self.path.name == "data"
                and any(self.path.parent.glob("data.[0-9]*"))
            ):
                # (an unfinished --threads recording never wrote its DIR_FORMAT feature)
                # the 'data' file of a --threads directory: read the whole directory
                self._open_directory(self.path.parent, opened=True)
        if self.layout == "pipe":
            self._prologue()
        self._finish_open()

    # -- opening ---------------------------------------------------------------------
    def _open_directory(self, d: Path, opened: bool = False):
        data = d / "data"
        if not data.is_file():
            raise TraceFormatError(d, "directory has no 'data' file (not a perf.data directory)")
        if not opened:
            self._open_file(data)
        if self.layout == "pipe":
            raise TraceFormatError(data, "a perf.data directory's 'data' is a pipe stream")
        self.layout = "directory"
        extra = []
        for q in d.iterdir():
            if q.name.startswith("data.") and q.name[5:].isdigit() and q.is_file():
                extra.append((int(q.name[5:]), q))
        for _, q in sorted(extra):
            self.sources.append(_Source(q, 0, None, q.name))

    def _open_file(self, p: Path):
        try:
            f = open(p, "rb")
        except OSError as e:
            raise TraceFormatError(p, f"cannot read: {e.strerror}") from None
        with f:
            fsize = os.fstat(f.fileno()).st_size
            head = f.read(104)
            hsize = self._byte_order(p, head)
            self.file_size = fsize
            if hsize == 16 and self.big_endian:
                # perf 6.1 cannot read one either ("Can't parse sample"), so there is no
                # oracle to check a reader against
                raise TraceFormatError(
                    p,
                    "big-endian pipe streams are not supported: "
                    "record to a file (perf record -o FILE), or run "
                    "perf inject -i - -o FILE on the recording machine",
                    offset=0,
                )
            if hsize == 16:
                self.layout = "pipe"
                self.sources = [_Source(p, 16, None, p.name)]
                return
            h = parse_file_header(head, hsize, p, fsize, self.big_endian)
            self.layout = "file"
            self._header = dict(attr_size=h.attr_size, attrs=h.attrs, data=h.data)
            self._read_attrs(f, p, *h.attrs, h.attr_size, fsize)
            self.sources = [_Source(p, h.data[0], self._read_features(f, p, h, fsize), p.name)]

    def _byte_order(self, p: Path, head: bytes) -> int:
        """Check the magic (noting a big-endian file) and return the header size."""
        if len(head) < 16:
            raise TraceFormatError(
                p, f"file too short for a perf.data header ({len(head)} bytes)", offset=0
            )
        magic, hsize = struct.unpack_from("<QQ", head, 0)
        if magic == MAGIC_BE:
            self.big_endian = True
            self._e = ">"
            self.meta["byte_order"] = "big"
            hsize = struct.unpack_from(">Q", head, 8)[0]
        elif magic != MAGIC_LE:
            if head[:8] == b"PERFFILE":
                raise TraceFormatError(
                    p, "perf.data version 1 ('PERFFILE') is not supported", offset=0
                )
            raise TraceFormatError(p, f"not a perf.data file (magic {head[:8]!r})", offset=0)
        return hsize

    def _read_features(self, f, p: Path, h: FileHeader, fsize: int) -> int | None:
        """The feature sections after the data section; returns where the records end
        (None: at the end of the file, for a recording perf did not finish).

        perf record writes the header twice, at the start with data.size 0 (and the
        feature bits it means to write) and at the end with the data size, right before
        the feature sections. data.size 0 without a feature index behind it is a
        recording perf did not finish (killed, or still running): its records run to
        the end of the file."""
        d_off, d_size = h.data
        bits = [b for b in range(256) if h.bitmap >> b & 1]
        feat_off = d_off + d_size
        index = None
        if bits and feat_off + 16 * len(bits) <= fsize:
            f.seek(feat_off)
            raw = f.read(16 * len(bits))
            index = [struct.unpack_from(f"{self._e}QQ", raw, 16 * k) for k in range(len(bits))]
        if not d_size and not _feature_index_plausible(index, feat_off + 16 * len(bits), fsize):
            self.meta["unfinished_recording"] = True
            if self.strict:
                why = (
                    "data size 0 in the header: perf record did not finish (killed, "
                    "or still running); without {} the records it wrote are read"
                )
                raise TraceFormatError(
                    p, why.format("strict=True"), offset=48, cli_problem=why.format("--strict")
                )
            self._note_truncation(
                unfinished=True, features_lost=[FEATURE_NAMES.get(b, str(b)) for b in bits]
            )
            return None
        lost = []
        if bits and index is None:
            # the file ends before the feature index (cut after the data section)
            if self.strict:
                raise TraceFormatError(
                    p,
                    f"the file ({fsize} bytes) ends before its "
                    f"feature index [{feat_off}, "
                    f"{feat_off + 16 * len(bits)})",
                    offset=feat_off,
                )
            lost = [FEATURE_NAMES.get(b, str(b)) for b in bits]
        for k, b in enumerate(bits if index is not None else ()):
            off, size = index[k]
            if size == 0:
                continue
            if off + size > fsize:
                # perf skips a feature it cannot read and goes on with the data
                if self.strict:
                    raise TraceFormatError(
                        p,
                        f"feature {FEATURE_NAMES.get(b, b)} "
                        f"section [{off}, {off + size}) lies outside "
                        f"the file",
                        offset=feat_off + 16 * k,
                    )
                lost.append(FEATURE_NAMES.get(b, str(b)))
                continue
            f.seek(off)
            self._feature(b, f.read(size), p, off)
        if lost:
            self._note_truncation(features_lost=lost)
        return d_off + d_size

    def _read_attrs(self, f, p: Path, a_off: int, a_size: int, attr_size: int, fsize: int) -> None:
        """The attrs section of a regular file, with each attr's ids."""
        e = self._e
        f.seek(a_off)
        blob = f.read(a_size)
        for i in range(a_size // attr_size):
            ent = blob[i * attr_size : (i + 1) * attr_size]
            a = Attr.parse(
                i, ent[: attr_size - 16], path=p, offset=a_off + i * attr_size, be=self.big_endian
            )
            ids_off, ids_size = struct.unpack_from(f"{e}QQ", ent, attr_size - 16)
            if ids_off + ids_size > fsize or ids_size % 8:
                raise TraceFormatError(
                    p,
                    f"attr {i}: ids section [{ids_off}, {ids_off + ids_size}) invalid",
                    offset=a_off + (i + 1) * attr_size - 16,
                )
            f.seek(ids_off)
            a.ids = list(struct.unpack(f"{e}{ids_size // 8}Q", f.read(ids_size)))
            self.attrs.append(a)

    # -- truncated recordings --------------------------------------------------------
    def _note_truncation(
        self,
        *,
        unfinished: bool = False,
        features_lost=(),
        partial: dict | None = None,
        compressed: dict | None = None,
        gzip: dict | None = None,
    ):
        """Remember what a recording cut short lost (idempotent: a file may be read in
        more than one pass). ``partial``: a record cut by the end of a file;
        ``compressed``: the decompressed start of a record whose rest was never
        written; ``gzip``: the gzip file this one came from ended early
        (:func:`tracedamon.ingest.gz.gunzip_to`)."""
        t = self.truncation
        if t is None:
            t = self.truncation = {
                "unfinished": False,
                "features_lost": [],
                "partial_records": [],
                "compressed_tails": [],
                "gzip_cut": None,
            }
        t["unfinished"] |= unfinished
        if gzip is not None:
            t["gzip_cut"] = gzip
        t["features_lost"] += [n for n in features_lost if n not in t["features_lost"]]
        for key, item in (("partial_records", partial), ("compressed_tails", compressed)):
            if item is not None and item not in t[key]:
                t[key].append(item)

    # -- features --------------------------------------------------------------------
    def _feature(self, fid: int, data: bytes, path, base: int):
        name = FEATURE_NAMES.get(fid)
        if name is None:
            self.meta.setdefault("unknown_features", []).append(fid)
            return
        self.features[fid] = data
        c = Cursor(data, path, base, f"feature {name}", big=self.big_endian)
        m = self.meta
        if fid == 1:
            self.tracing_data = bytes(data)
        elif fid in (3, 4, 5, 6, 8, 9):
            key = {
                3: "hostname",
                4: "os_release",
                5: "perf_version",
                6: "arch",
                8: "cpu_desc",
                9: "cpuid",
            }[fid]
            m[key] = c.string()
        elif fid == 7:
            avail = c.u32()
            online = c.u32()
            m["nrcpus"] = {"avail": avail, "online": online}
        elif fid == 10:
            m["total_mem_kb"] = c.u64()
        elif fid == 11:
            m["cmdline"] = c.strings()
        elif fid == 12:
            nr = c.u32()
            asz = c.u32()
            descs = []
            for _ in range(nr):
                c.take(asz)
                nids = c.u32()
                nm = c.string()
                if nids > c.left // 8:
                    raise TraceFormatError(
                        path, "feature EVENT_DESC: id count past the end", offset=base + c.pos
                    )
                ids = [c.u64() for _ in range(nids)]
                descs.append({"name": nm, "ids": ids})
            m["event_desc"] = descs
            self._apply_names(descs)
        elif fid == 13:
            m["cpu_topology"] = {"sockets": c.strings(), "threads": c.strings()}
        elif fid == 14:
            nodes = []
            for _ in range(min(c.u32(), 1 << 16)):
                nodes.append(
                    {
                        "node": c.u32(),
                        "mem_total_kb": c.u64(),
                        "mem_free_kb": c.u64(),
                        "cpus": c.string(),
                    }
                )
            m["numa_topology"] = nodes
        elif fid == 16:
            pm = {}
            for _ in range(min(c.u32(), 1 << 16)):
                t = c.u32()
                pm[c.string()] = t
            m["pmu_mappings"] = pm
        elif fid == 17:
            groups = []
            for _ in range(min(c.u32(), 1 << 16)):
                groups.append({"name": c.string(), "leader_idx": c.u32(), "nr_members": c.u32()})
            m["group_desc"] = groups
        elif fid == 21:
            m["sample_time"] = {"first_ns": c.u64(), "last_ns": c.u64()}
        elif fid == 22:
            ver, bs, nn = c.u64(), c.u64(), c.u64()
            nodes = []
            for _ in range(min(nn, 1 << 16)):
                # per node: u64 node, u64 size (bits in the node's bitmap), then the
                # bitmap as perf writes every bitmap: u64 nr_bits, ceil(nr_bits/64) words
                node, _size, nbits = c.u64(), c.u64(), c.u64()
                words = [c.u64() for _ in range((nbits + 63) // 64)]
                blocks = [w * 64 + b for w, x in enumerate(words) for b in range(64) if x >> b & 1]
                nodes.append({"node": node, "blocks": blocks})
            m["mem_topology"] = {"version": ver, "block_size": bs, "nodes": nodes}
        elif fid == 23:
            m["clock_resolution_ns"] = c.u64()
        elif fid == 24:
            m["dir_format"] = c.u64()
        elif fid == 27:
            ver, typ, lvl, ratio, mlen = (c.u32() for _ in range(5))
            m["compression"] = {
                "version": ver,
                "type": "zstd" if typ == 1 else typ,
                "level": lvl,
                "ratio": ratio,
                "mmap_len": mlen,
            }
        elif fid == 29:
            ver, clk = c.u32(), c.u32()
            m["clock_data"] = {
                "version": ver,
                "clockid": clk,
                "tod_ns": c.u64(),
                "clockid_ns": c.u64(),
            }
            m["clock_id"] = clk
        elif fid == 20:
            ver, nr = c.u32(), c.u32()
            levels = []
            for _ in range(min(nr, 1 << 10)):
                lv = {"level": c.u32(), "line_size": c.u32(), "sets": c.u32(), "ways": c.u32()}
                lv.update(type=c.string(), size=c.string(), map=c.string())
                levels.append(lv)
            m["cache"] = levels

    def _apply_names(self, descs):
        for d in descs:
            for i in d["ids"]:
                a = self._id2attr.get(i)
                if a is None:
                    a = next((x.index for x in self.attrs if i in x.ids), None)
                if a is not None and d["name"]:
                    self.attrs[a].name = d["name"]
                    break
        else:
            # EVENT_DESC lists events in attr order; use it when ids do not tell
            for k, d in enumerate(descs):
                if k < len(self.attrs) and self.attrs[k].name is None and d["name"]:
                    self.attrs[k].name = d["name"]

    def _finish_open(self):
        self._rebuild_ids()
        self.meta["layout"] = self.layout
        self.meta["events"] = [
            {"event_id": a.index, "name": self.event_name(a.index), "ids": list(a.ids)}
            for a in self.attrs
        ]

    def _rebuild_ids(self):
        self._id2attr = {}
        for a in self.attrs:
            for i in a.ids:
                self._id2attr.setdefault(i, a.index)
        self._params = None

    def event_name(self, idx: int) -> str:
        a = self.attrs[idx]
        return a.name or a.default_name()

    def event_names_array(self) -> pa.Array:
        """The event names as an Arrow string array (the samples' event dictionary),
        rebuilt only when the attrs or their names change."""
        names = tuple(self.event_name(i) for i in range(len(self.attrs)))
        cached = getattr(self, "_names_array", None)
        if cached is None or cached[0] != names:
            cached = (names, _ds.str_array(list(names)))
            self._names_array = cached
        return cached[1]

    # -- pipe prologue ---------------------------------------------------------------
    def _prologue(self):
        """Pipe streams: read the records before the first sample (attrs, features,
        event names, tracing data) so that ``events`` is known before iterating."""
        st = _PassState(self, sideband=False)
        for ch in self._chunks(self.sources[0], st):
            self._header_records(ch, st)
            if (ch.types == L.R_SAMPLE).any() or (ch.types == L.R_FINISHED_INIT).any():
                break

    # -- public ----------------------------------------------------------------------
    @property
    def events(self) -> list[dict]:
        out = []
        for a in self.attrs:
            out.append(
                {
                    "event_id": a.index,
                    "name": self.event_name(a.index),
                    "pmu": self._pmu(a),
                    "type": a.type,
                    "config": a.config,
                    "config1": a.config1,
                    "config2": a.config2,
                    "config3": a.config3,
                    "sample_type": a.sample_type,
                    "read_format": a.read_format,
                    "flags": a.flags,
                    "freq": a.freq,
                    "sample_period": None if a.freq else a.sample_period_or_freq,
                    "sample_freq": a.sample_period_or_freq if a.freq else None,
                    "precise_ip": a.precise_ip,
                    "sample_id_all": a.sample_id_all,
                    "branch_sample_type": a.branch_sample_type,
                    "sample_regs_user": a.sample_regs_user,
                    "sample_regs_intr": a.sample_regs_intr,
                    "sample_stack_user": a.sample_stack_user,
                    "clockid": a.clockid if a.use_clockid else None,
                    "attr_size": a.size,
                    "ids": list(a.ids),
                }
            )
        return out

    def _pmu(self, a: Attr) -> str:
        for name, t in (self.meta.get("pmu_mappings") or {}).items():
            if t == a.type and a.type >= 4:
                return name
        return _BUILTIN_PMU.get(a.type, f"type{a.type}")

    def iter_sample_batches(self, *, progress=None) -> Iterator[pa.RecordBatch]:
        """Every sample as RecordBatches in the SAMPLES schema, in the order the module
        doc describes."""
        st = _PassState(self, sideband=False)
        for blk in self._sample_tables(st, progress=progress):
            yield from finish_samples(self, blk).to_batches()

    # -- the record pass -------------------------------------------------------------
    def _sample_tables(self, st: "_PassState", progress=None) -> Iterator["_Block"]:
        bar = _Progress(self, progress)
        streams = [self._source_tables(src, st, bar, k) for k, src in enumerate(self.sources)]
        yield from streams[0] if len(streams) == 1 else _merge_streams(streams)
        st.finish_meta()

    def _source_tables(self, src: _Source, st: "_PassState", bar, k: int):
        order = _Orderer(st)
        for ch in self._chunks(src, st):
            bar.advance(src, ch.consumed)
            self._header_records(ch, st)
            d = self._decode_chunk(ch, st, k)
            if st.sideband:
                st.collect_sideband(ch, k)
                st._compact()
            yield from order.add(d[0] if d is not None else None, ch.rounds_end)
        yield from order.finish()

    # -- chunking --------------------------------------------------------------------
    def _chunks(self, src: _Source, st: "_PassState") -> Iterator["_Chunk"]:
        yield from _chunk_source(self, src, st)

    # -- header-ish records (pipe mode, ID_INDEX, EVENT_UPDATE) ---------------------
    def _header_records(self, ch: "_Chunk", st: "_PassState"):
        ot = ch.types[ch.other]
        sel = ch.other[
            np.isin(
                ot,
                (
                    L.R_HEADER_ATTR,
                    L.R_HEADER_TRACING_DATA,
                    L.R_ID_INDEX,
                    L.R_EVENT_UPDATE,
                    L.R_HEADER_FEATURE,
                ),
            )
        ]
        if not sel.size:
            return
        changed = False
        buf = ch.buf
        for i in sel:
            off = int(ch.offs[i])
            typ = int(ch.types[i])
            fo = int(ch.fileoff[i])
            size = int.from_bytes(buf[off + 6 : off + 8].tobytes(), "little")
            body = buf[off + 8 : off + size].tobytes()
            if typ == L.R_HEADER_ATTR:
                # a second pass over a pipe stream sees the same records again (records
                # inside one COMPRESSED container share its offset: key on the bytes too)
                key = (fo, body)
                if key in self._attr_offsets:
                    continue
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "HEADER_ATTR record too short", offset=fo)
                asz = struct.unpack_from(f"{self._e}I", body, 4)[0] or 64
                if asz > len(body):
                    raise TraceFormatError(
                        ch.path, "HEADER_ATTR attr larger than the record", offset=fo
                    )
                a = Attr.parse(
                    len(self.attrs), body[:asz], path=ch.path, offset=fo, be=self.big_endian
                )
                nids = (len(body) - asz) // 8
                a.ids = list(struct.unpack_from(f"{self._e}{nids}Q", body, asz))
                self.attrs.append(a)
                self._attr_offsets.add(key)
                self._rebuild_ids()
                changed = True
            elif typ == L.R_HEADER_TRACING_DATA:
                if len(body) < 4:
                    raise TraceFormatError(
                        ch.path, "HEADER_TRACING_DATA record too short", offset=fo
                    )
                n = struct.unpack_from("<I", body, 0)[0]
                self.tracing_data = buf[off + size : off + size + n].tobytes()
            elif typ == L.R_ID_INDEX:
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "ID_INDEX record too short", offset=fo)
                nr = struct.unpack_from("<Q", body, 0)[0]
                if 8 + 32 * nr > len(body):
                    raise TraceFormatError(
                        ch.path, f"ID_INDEX with {nr} entries larger than the record", offset=fo
                    )
                entries = []
                for k in range(nr):
                    i_id, idx, cpu, tid = struct.unpack_from("<QQQQ", body, 8 + 32 * k)
                    entries.append((i_id, idx, cpu, tid))
                    if idx < len(self.attrs) and i_id not in self._id2attr:
                        self.attrs[idx].ids.append(i_id)
                        self._id2attr[i_id] = idx
                        changed = True
                st.id_index = entries
            elif typ == L.R_EVENT_UPDATE:
                if len(body) < 16:
                    raise TraceFormatError(ch.path, "EVENT_UPDATE record too short", offset=fo)
                utype, uid = struct.unpack_from(f"{self._e}QQ", body, 0)
                if utype == 2:
                    nm = body[16:].split(b"\0", 1)[0].decode("utf-8", "replace")
                    a = self._id2attr.get(uid)
                    if a is None:
                        a = next((x.index for x in self.attrs if uid in x.ids), None)
                    if a is not None:
                        self.attrs[a].name = nm
                        changed = True
            elif typ == L.R_HEADER_FEATURE:
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "HEADER_FEATURE record too short", offset=fo)
                fid = struct.unpack_from(f"{self._e}Q", body, 0)[0]
                if len(body) > 8:
                    self._feature(int(fid), body[8:], ch.path, fo + 16)
        if changed:
            self._finish_open()

    # -- per-attr kernel parameters --------------------------------------------------
    def params(self):
        if self._params is None:
            at = self.attrs
            ids = np.array(sorted(self._id2attr), dtype=np.uint64)
            ida = np.array([self._id2attr[int(i)] for i in ids], dtype=np.int32)
            id_poss = {_id_pos_sample(a.sample_type) for a in at}
            self._params = dict(
                st=np.array([a.sample_type for a in at], dtype=np.int64),
                rf=np.array([a.read_format & 0x1F for a in at], dtype=np.int64),
                bhw=np.array([bool(a.branch_sample_type & (1 << 17)) for a in at], np.int64),
                bcnt=np.array([bool(a.branch_sample_type & (1 << 19)) for a in at], np.int64),
                nru=np.array([bin(a.sample_regs_user).count("1") for a in at], np.int64),
                nri=np.array([bin(a.sample_regs_intr).count("1") for a in at], np.int64),
                ids=ids,
                ida=ida,
                id_pos=(id_poss.pop() if len(id_poss) == 1 else None),
                period=np.array(
                    [0 if a.freq else a.sample_period_or_freq for a in at], dtype=np.uint64
                ),
                freq=np.array([a.freq for a in at], dtype=bool),
                fixed=fixed_layouts([a.sample_type for a in at]),
            )
        return self._params

    def attr_of_record(self, buf, off: int, size: int) -> int | None:
        """perf's evlist__event2evsel for a non-SAMPLE record (None: unknown id)."""
        if not self.attrs:
            return None
        if len(self.attrs) == 1:
            return 0
        first = self.attrs[0]
        if not first.sample_id_all:
            return 0
        pos = _id_pos_trailer(first.sample_type)
        if pos < 0:
            return 0
        if pos > size - 8:
            return None
        v = int.from_bytes(buf[off + size - pos : off + size - pos + 8].tobytes(), "little")
        return self._id2attr.get(v)

    # -- sample decoding -------------------------------------------------------------
    def _decode_matrix(self, n: int) -> np.ndarray:
        """An n × NCOLS column-major scratch matrix, reused from chunk to chunk (the
        sample columns are copied out of it)."""
        m = getattr(self, "_scratch", None)
        if m is None or m.shape[0] < n:
            m = np.empty((max(n, 1024), L.NCOLS), dtype=np.uint64, order="F")
            self._scratch = m
        return m[:n]

    def _decode_chunk(self, ch: "_Chunk", st: "_PassState", stream: int):
        sel = np.flatnonzero(ch.types == L.R_SAMPLE)
        if not sel.size:
            return None
        if not self.attrs:
            raise TraceFormatError(
                ch.path, "sample record before any attr", offset=int(ch.fileoff[sel[0]])
            )
        P = self.params()
        offs = ch.offs[sel]
        sizes = ch.sizes[sel]
        n = len(sel)
        if len(self.attrs) == 1:
            attr = np.zeros(n, dtype=np.int32)
        else:
            if P["id_pos"] is None or P["id_pos"] < 0:
                raise TraceFormatError(
                    ch.path,
                    "several events but their samples carry no common ID/IDENTIFIER position",
                    offset=int(ch.fileoff[sel[0]]),
                )
            attr = np.empty(n, dtype=np.int32)
            sample_attrs(ch.buf, ch.buf64, offs, sizes, P["id_pos"], P["ids"], P["ida"], attr)
            bad = np.flatnonzero(attr == -2)
            if bad.size:
                raise TraceFormatError(
                    ch.path,
                    "sample record too short to hold its id",
                    offset=int(ch.fileoff[sel[bad[0]]]),
                )
            unk = attr < 0
            nunk = int(unk.sum())
            if nunk:
                st.unknown_sample_ids += nunk
                keep = ~unk
                sel, offs, sizes, attr = sel[keep], offs[keep], sizes[keep], attr[keep]
                n = len(sel)
                if not n:
                    return None
        if self.big_endian:
            be_fix_samples(
                ch.buf, offs, sizes, attr, P["st"], P["rf"], P["bhw"], P["bcnt"], P["nru"], P["nri"]
            )
        out = self._decode_matrix(n)
        err = np.zeros(n, dtype=np.int8)
        nslot, cols, deltas, need = P["fixed"]
        if (nslot >= 0).any():
            gather_fixed_attrs(
                ch.buf, ch.buf64, offs, sizes, attr, nslot, cols, deltas, need, out, err
            )
        if (nslot < 0).any():
            var_attr = np.where(nslot[attr] < 0, attr, -1).astype(np.int32)
            decode_samples(
                ch.buf,
                ch.buf64,
                offs,
                sizes,
                var_attr,
                P["st"],
                P["rf"],
                P["bhw"],
                P["bcnt"],
                P["nru"],
                P["nri"],
                out,
                err,
            )
        if err.any():
            i = int(np.flatnonzero(err)[0])
            raise TraceFormatError(ch.path, L.ERR_TEXT[int(err[i])], offset=int(ch.fileoff[sel[i]]))
        misc = np.empty(n, dtype=np.uint16)
        gather_u16(ch.buf, offs, 4, misc)
        blk = _sample_block(P, ch, out, attr, misc, ch.fileoff_of(sel, offs), ch.round_idx(sel))
        if any(a.sample_type & L.S_READ for a in self.attrs):
            blk = _expand_read(self, ch, out, attr, blk, st)
        st.add_samples(blk.cols["event_id"][0], len(self.attrs))
        return blk, ch.rounds_end
