"""DAMON trace text (perf script, damo's perf_script writer, ftrace / trace-cmd) →
event columns: the line layouts and :class:`TextTrace`, which parses whole chunks of
lines with pyarrow. Assembling the events into snapshots and writing them is
:mod:`tracedamon.ingest.damon_trace`'s.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import TraceFormatError
from .detect import GZIP_MAGIC
from .progress import callback

AGGREGATED = "damon_aggregated"
BEFORE_APPLY = "damos_before_apply"
INTERVALS_TUNE_EV = "damon_monitor_intervals_tune"
KNOWN_EVENTS = (AGGREGATED, BEFORE_APPLY, INTERVALS_TUNE_EV)

# ---------------------------------------------------------------------------------------
# text line layouts (RE2 syntax: evaluated by pyarrow over whole chunks of lines)

# perf script: "<comm> <pid>[/<tid>] [<cpu>] <secs.frac>: [<period>] damon:<event>: <fields>"
# damo's writer: "kdamond.x xxxx xxxx <secs.frac>: damon:<event>: <fields>"
# ftrace / trace-cmd: "<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs.frac>: <event>: <fields>"
_AGG_RE = (
    r"^target_id=(?P<target_id>\d+) nr_regions=(?P<nr_regions>\d+) "
    r"(?P<start>\d+)-(?P<end>\d+): (?P<nr_accesses>\d+)(?: (?P<age>\d+))?$"
)
_BEFORE_RE = (
    r"^ctx_idx=(?P<ctx>\d+) scheme_idx=(?P<scheme>\d+) target_idx=(?P<target_id>\d+) "
    r"nr_regions=(?P<nr_regions>\d+) (?P<start>\d+)-(?P<end>\d+): "
    r"(?P<nr_accesses>\d+) (?P<age>\d+)$"
)
_TUNE_RE = r"^sample_us=(?P<sample_us>\d+)$"
_FIELD_RE = {AGGREGATED: _AGG_RE, BEFORE_APPLY: _BEFORE_RE, INTERVALS_TUNE_EV: _TUNE_RE}
_FIELD_CHECK = {k: re.sub(r"\(\?P<\w+>", "(?:", v) for k, v in _FIELD_RE.items()}
_FIELD_LABELS = {
    AGGREGATED: ("target_id=", "nr_regions="),
    BEFORE_APPLY: ("ctx_idx=", "scheme_idx=", "target_idx=", "nr_regions="),
    INTERVALS_TUNE_EV: ("sample_us=",),
}
# the part of a line before "<event>: ", read from its end
# (digit counts bounded: a pid fits 32 bits, a timestamp's seconds 12 digits)
_PERF_HEAD_RE = (
    r"(?:^|\s)(?P<pid>\d{1,9}|x+)(?:/\d{1,9})?\s+"
    r"(?:(?:\[(?P<cpu>\d{1,6})\]|x+)\s+)?"
    r"(?P<sec>\d{1,12})\.(?P<frac>\d{1,9}):\s+(?:\d+\s+)?damon:$"
)
_FTRACE_HEAD_RE = (
    r"-(?P<pid>\d{1,9})\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(?P<cpu>\d{1,6})\]\s+"
    r"(?:[^\s\[\]:]{4,6}\s+)?(?P<sec>\d{1,12})\.(?P<frac>\d{1,9}):\s+"
    r"(?:damon:)?$"
)
_OTHER_EVENT_RE = r"(?:\s|damon:)(?P<ev>dam(?:on|os)_\w+): "

_CHUNK_BYTES = 16 << 20
_U64_MAX = (1 << 64) - 1


class _Truncated(Exception):
    pass


def _byte_chunks(path: Path, pos: list | None = None):
    """The bytes of ``path``, gunzipped when it is gzip (several members allowed), in
    pieces. A gzip stream that ends early yields everything before the cut, then
    raises :class:`_Truncated`."""
    with open(path, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            f.seek(0)
            while piece := f.read(_CHUNK_BYTES):
                if pos is not None:
                    pos[0] = f.tell()
                yield piece
            return
        f.seek(0)
        d, fed = zlib.decompressobj(wbits=31), False
        while comp := f.read(1 << 20):
            if pos is not None:
                pos[0] = f.tell()
            while comp:
                try:
                    out = d.decompress(comp)
                except zlib.error as e:
                    raise _Truncated(f"corrupt gzip stream: {e}") from None
                fed = True
                if out:
                    yield out
                comp = b""
                if d.eof:  # next gzip member, if any
                    comp = d.unused_data
                    if comp[:2] != GZIP_MAGIC:
                        return  # end (or trailing bytes after the last)
                    d, fed = zlib.decompressobj(wbits=31), False
        if fed and not d.eof:
            raise _Truncated("the gzip stream ends early (truncated file)")


def _line_chunks(path: Path, pos: list | None = None):
    """Lists of text lines (at least about ``_CHUNK_BYTES`` each), plain or gzip."""
    pending: list[bytes] = []
    size = 0
    tail = b""
    pieces = _byte_chunks(path, pos)
    while True:
        try:
            piece = next(pieces)
        except StopIteration:
            break
        except _Truncated:
            if pending or tail:  # hand over the complete lines read so far
                buf = tail + b"".join(pending)
                cut = buf.rfind(b"\n")
                if cut >= 0:
                    yield buf[:cut].decode("utf-8", errors="replace").split("\n")
            raise
        pending.append(piece)
        size += len(piece)
        if size >= _CHUNK_BYTES:
            buf = tail + b"".join(pending)
            pending, size = [], 0
            cut = buf.rfind(b"\n")
            if cut < 0:
                tail = buf
                continue
            tail = buf[cut + 1 :]
            yield buf[:cut].decode("utf-8", errors="replace").split("\n")
    buf = tail + b"".join(pending)
    if buf:
        if buf.endswith(b"\n"):
            buf = buf[:-1]
        yield buf.decode("utf-8", errors="replace").split("\n")


# ---------------------------------------------------------------------------------------
# text parsing


class _Events:
    """Columns of decoded events, appended chunk by chunk."""

    def __init__(self):
        self.cols: dict[str, list[np.ndarray]] = {}

    def add(self, **cols):
        for k, v in cols.items():
            self.cols.setdefault(k, []).append(np.asarray(v))

    def get(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}

    def __len__(self):
        v = next(iter(self.cols.values()), [])
        return int(sum(len(a) for a in v))


def _ns(sec: pa.Array, frac: pa.Array) -> np.ndarray:
    s = pc.cast(sec, pa.int64()).to_numpy(zero_copy_only=False)
    f = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(frac, 9, "0"), 0, 9), pa.int64()).to_numpy(
        zero_copy_only=False
    )
    return s * 1_000_000_000 + f


def _num(arr: pa.Array, typ, fill=None) -> np.ndarray:
    if pa.types.is_string(arr.type):
        # RE2 gives "" (not null) for an optional group that did not take part
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    a = pc.cast(arr, typ)
    if fill is not None:
        a = pc.fill_null(a, fill)
    return a.to_numpy(zero_copy_only=False)


class TextTrace:
    """Parse DAMON trace text into event columns (``aggregated``, ``before``, ``tune``)."""

    def __init__(self, path, *, skip_bad: bool = False, progress=None):
        self.path = Path(path)
        self.skip_bad = skip_bad
        self.progress = callback(progress)  # (bytes of the file read, its size, name)
        self.skipped_lines = 0
        self.other_events: dict[str, int] = {}
        self.layouts: dict[str, int] = {}
        self.agg, self.before, self.tune = _Events(), _Events(), _Events()
        self.nr_lines = 0
        self.truncated = False

    def _bad(self, line_no: int, text: str, why: str):
        if self.skip_bad:
            self.skipped_lines += 1
            return
        raise TraceFormatError(self.path, f"{why}: {text.strip()[:200]!r}", line=line_no)

    def parse(self) -> "TextTrace":
        base = 0
        pos = [0]
        chunks = _line_chunks(self.path, pos)
        total = self.path.stat().st_size if self.progress is not None else None
        while True:
            try:
                lines = next(chunks)
            except StopIteration:
                break
            except _Truncated as e:
                # everything before the cut has been parsed; a snapshot it cut short
                # is dropped as a partial one at the end of the recording
                if not self.skip_bad:
                    raise TraceFormatError(
                        self.path,
                        f"{e} after {base} lines (use skip_bad=True to keep what is there)",
                        line=base + 1,
                        cli_problem=f"{e} after {base} lines (use --skip-bad to keep "
                        "what is there)",
                    ) from None
                self.truncated = True
                break
            except OSError as e:
                raise TraceFormatError(self.path, f"unreadable input: {e}", line=base + 1) from None
            self._chunk(lines, base)
            base += len(lines)
            if self.progress is not None:
                self.progress(pos[0], total, self.path.name)
        self.nr_lines = base
        return self

    def _chunk(self, lines: list[str], base: int) -> None:
        """Parse one chunk of lines. Each event line is split at ``<event>: `` into a
        head (task, pid, cpu, time) and its fields; heads are read with a regex
        anchored at their end, the fields of ``damon_aggregated`` (the bulk) by
        validating them with a capture-free regex and splitting them into numbers."""
        arr = pa.array(lines, type=pa.string())
        cand = pc.and_(
            pc.match_substring(arr, "dam"),
            pc.invert(pc.starts_with(pc.utf8_ltrim_whitespace(arr), "#")),
        )
        idx = np.flatnonzero(cand.to_numpy(zero_copy_only=False))
        if not idx.size:
            return
        sub = arr.take(pa.array(idx))
        claimed = np.zeros(len(sub), bool)
        for name, store in (
            (AGGREGATED, self.agg),
            (BEFORE_APPLY, self.before),
            (INTERVALS_TUNE_EV, self.tune),
        ):
            has = pc.match_substring(sub, name + ": ").to_numpy(zero_copy_only=False)
            k = np.flatnonzero(has & ~claimed)
            if not k.size:
                continue
            claimed[k] = True
            texts = sub.take(pa.array(k))
            line_no = idx[k] + base + 1
            parts = pc.split_pattern(texts, name + ": ", max_splits=1)
            head, rest = (
                pc.list_element(parts, 0),
                pc.utf8_rtrim_whitespace(pc.list_element(parts, 1)),
            )
            hp = pc.extract_regex(head, _PERF_HEAD_RE)
            ok_p = pc.is_valid(hp).to_numpy(zero_copy_only=False)
            hf = pc.extract_regex(head, _FTRACE_HEAD_RE)
            ok_f = pc.is_valid(hf).to_numpy(zero_copy_only=False) & ~ok_p
            ok_r = pc.match_substring_regex(rest, _FIELD_CHECK[name]).to_numpy(zero_copy_only=False)
            good = (ok_p | ok_f) & ok_r
            for j in np.flatnonzero(~good):
                why = (
                    f"malformed {name} event"
                    if (ok_p[j] or ok_f[j])
                    else "unrecognised trace line layout"
                )
                self._bad(int(line_no[j]), texts[int(j)].as_py(), why)
            if not good.any():
                continue
            sel = pa.array(np.flatnonzero(good))
            n_p, n_f = int((ok_p & good).sum()), int((ok_f & good).sum())
            if n_p:
                pid_txt = hp.field("pid")
                xs = (
                    pc.fill_null(pc.starts_with(pid_txt, "x"), False).to_numpy(zero_copy_only=False)
                    & ok_p
                    & good
                )
                if xs.any():
                    self.layouts["damo-perf-script"] = self.layouts.get(
                        "damo-perf-script", 0
                    ) + int(xs.sum())
                if n_p - xs.sum():
                    self.layouts["perf-script"] = self.layouts.get("perf-script", 0) + int(
                        n_p - xs.sum()
                    )
            if n_f:
                self.layouts["ftrace"] = self.layouts.get("ftrace", 0) + n_f
            use_p = pa.array(ok_p)
            pick = lambda f: pc.if_else(use_p, hp.field(f), hf.field(f)).take(sel)  # noqa
            pid = pick("pid")
            pid = pc.if_else(
                pc.fill_null(pc.starts_with(pid, "x"), False), pa.scalar(None, pa.string()), pid
            )
            common = {
                "time_ns": _ns(pick("sec"), pick("frac")),
                "pid": _num(pid, pa.int64(), -1),
                "cpu": _num(pick("cpu"), pa.int32(), -1),
                "loc": line_no[good].astype(np.int64),
            }
            rest = rest.take(sel)
            try:
                cols = dict(common, **self._fields_fast(name, rest))
            except (pa.ArrowInvalid, OverflowError):
                # a number too large for its field: find the line, the slow way
                f = pc.extract_regex(rest, _FIELD_RE[name])
                cols = self._fields_slow(name, f, line_no[good], texts.take(sel), common)
                if cols is None:
                    continue
            store.add(**cols)
        # other damon events (damos_esz, ...) are counted; unknown layouts are errors
        rest_i = np.flatnonzero(~claimed)
        if rest_i.size:
            texts = sub.take(pa.array(rest_i))
            other = pc.extract_regex(texts, _OTHER_EVENT_RE)
            ok = pc.is_valid(other).to_numpy(zero_copy_only=False)
            if ok.any():
                for d in pc.value_counts(other.field("ev").filter(pa.array(ok))).to_pylist():
                    self.other_events[d["values"]] = (
                        self.other_events.get(d["values"], 0) + d["counts"]
                    )

    @staticmethod
    def _fields_fast(name: str, rest: pa.Array) -> dict[str, np.ndarray]:
        """Numbers of validated field texts: drop the ``key=`` labels and punctuation,
        split on whitespace; rows have a fixed token count (``damon_aggregated``: 5
        without age, 6 with)."""
        t = rest
        for lab in _FIELD_LABELS[name]:
            t = pc.replace_substring(t, lab, "")
        t = pc.replace_substring(pc.replace_substring(t, "-", " "), ":", "")
        toks = pc.utf8_split_whitespace(t)
        offs = np.asarray(toks.offsets)
        nums = pc.cast(toks.values, pa.uint64()).to_numpy(zero_copy_only=False)
        cnt = np.diff(offs)
        starts = offs[:-1]

        def col(i, dtype, missing=None):
            if missing is None:
                return nums[starts + i].astype(dtype)
            have = cnt > i
            out = np.full(len(cnt), missing, dtype)
            out[have] = nums[starts[have] + i].astype(dtype)
            return out

        lim32 = 2**32 - 1
        if name == INTERVALS_TUNE_EV:
            return {"sample_us": col(0, np.uint64)}
        if name == AGGREGATED:
            if len(nums) and (
                nums[starts + 1].max(initial=0) > lim32
                or nums[starts + 4].max(initial=0) > lim32
                or (cnt == 6).any()
                and nums[starts[cnt == 6] + 5].max() > lim32
            ):
                raise OverflowError("a 32-bit field is out of range")
            return {
                "target_id": col(0, np.uint64),
                "nr_regions": col(1, np.uint32),
                "start": col(2, np.uint64),
                "end": col(3, np.uint64),
                "nr_accesses": col(4, np.uint32),
                "age": col(5, np.int64, -1),
            }
        # damos_before_apply: ctx scheme target nr_regions start end nr_accesses age
        if (
            len(nums)
            and max(nums[starts + i].max(initial=0) for i in (0, 1)) > 2**31 - 1
            or len(nums)
            and max(nums[starts + i].max(initial=0) for i in (3, 6, 7)) > lim32
        ):
            raise OverflowError("a 32-bit field is out of range")
        return {
            "ctx": col(0, np.int32),
            "scheme": col(1, np.int32),
            "target_id": col(2, np.uint64),
            "nr_regions": col(3, np.uint32),
            "start": col(4, np.uint64),
            "end": col(5, np.uint64),
            "nr_accesses": col(6, np.uint32),
            "age": col(7, np.int64),
        }

    @staticmethod
    def _fields(name: str, f: pa.StructArray) -> dict[str, np.ndarray]:
        if name == INTERVALS_TUNE_EV:
            return {"sample_us": _num(f.field("sample_us"), pa.uint64())}
        out = {
            "target_id": _num(f.field("target_id"), pa.uint64()),
            "nr_regions": _num(f.field("nr_regions"), pa.uint32()),
            "start": _num(f.field("start"), pa.uint64()),
            "end": _num(f.field("end"), pa.uint64()),
            "nr_accesses": _num(f.field("nr_accesses"), pa.uint32()),
            "age": _num(f.field("age"), pa.int64(), -1),
        }
        if name == BEFORE_APPLY:
            out["ctx"] = _num(f.field("ctx"), pa.int32())
            out["scheme"] = _num(f.field("scheme"), pa.int32())
        return out

    def _fields_slow(self, name, f, line_no, texts, cols):
        limits = {
            "target_id": _U64_MAX,
            "start": _U64_MAX,
            "end": _U64_MAX,
            "nr_regions": 2**32 - 1,
            "nr_accesses": 2**32 - 1,
            "age": 2**32 - 1,
            "sample_us": _U64_MAX,
            "ctx": 2**31 - 1,
            "scheme": 2**31 - 1,
        }
        rows = f.to_pylist()
        keep = []
        for j, row in enumerate(rows):
            bad = [k for k, v in row.items() if v not in (None, "") and int(v) > limits[k]]
            if bad:
                self._bad(int(line_no[j]), texts[j].as_py(), f"{bad[0]} out of range")
            else:
                keep.append(j)
        if not keep:
            return None
        keep = np.asarray(keep)
        cols = {c: v[keep] for c, v in cols.items()}
        cols.update(self._fields(name, f.take(pa.array(keep))))
        return cols
