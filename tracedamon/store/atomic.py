"""Outputs: written whole or not at all, and replacing only what tracedamon wrote.

Every command and every API function that writes a file or a directory goes through
this module, so they all follow one rule (:func:`check_output`):

- a path that does not exist is written;
- an existing path is replaced only with ``force`` (``--force``) and only when it is
  tracedamon's own output of the kind the command writes (see "Recognition" below);
- never replaced, force or not: anything else (an ordinary file or directory, a
  symbolic link), an input of the command, the current directory or one holding it,
  the home directory, ``/``, and a table's name inside a trace directory (a file
  there named ``samples.parquet`` would become the trace's samples).

A refused output is one line naming the path and the reason; nothing is created or
deleted. A written output appears whole: a file is written beside its destination
under a hidden name and renamed into place (:func:`atomic_path`), a directory is
built beside it and swapped into place (:class:`AtomicDir`; on Linux an atomic
exchange, so the old output stays whole until the new one is complete). A failure
removes the hidden file or directory (and the parent directories the write created)
and leaves an old output as it was. Files and directories get the modes the umask
gives (0644 and 0755 under umask 022), as with any other tool.

Recognition, per kind of output (:data:`KINDS`):

========================  ==========================================================
trace directory           a directory holding tracedamon's ``meta.json`` and nothing
                          but files that carry tracedamon's marker (its tables, and
                          outputs such as a replay or a plot written there)
region history            a Parquet file of tracedamon's written by ``replay``
                          (metadata ``replay``), or a standalone regions table of
                          tracedamon's (never a table of a trace directory)
compare cells, heatmap    a Parquet file whose tracedamon metadata names that table
cells, attribution
compare metrics (JSON)    a JSON object with a ``"tracedamon"`` member naming it
damo record               zlib-compressed or plain JSON whose first record starts
                          with a ``"tracedamon"`` member (damo ignores it; a record
                          written by damo itself has none, so it is never replaced)
DAMON trace text          a text file whose last line is tracedamon's comment
                          ``# written by tracedamon VERSION (DAMON trace text)``
                          (perf-script readers, tracedamon's and damo's, skip ``#``
                          lines)
ground truth (CSV)        no room for a marker that CSV readers skip: exactly what
                          ``report truth`` writes, the header ``start,end,label``
                          and rows ``0xSTART,0xEND,LABEL``, and nothing else
PNG plot                  a PNG with a ``tracedamon`` text chunk (any of its plots)
========================  ==========================================================

Messages come in two wordings: the Python API's name the argument (``force=True``),
the command line's name the flag (``--force``; :attr:`TracedamonError.cli_message`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from .. import __version__
from ..errors import OutputError, shown_as
from ..schema import METADATA_KEY, TABLES
from .parquet import read_metadata, read_schema

#: the key of tracedamon's marker in every format that has room for one (the key of
#: the Parquet metadata, :data:`tracedamon.schema.METADATA_KEY`)
MARK = METADATA_KEY.decode()

#: table names a trace directory may hold
TRACE_TABLES = tuple(TABLES)

_TEXT_MARK = re.compile(r"^# written by tracedamon (\S+) \(([^()]*)\)\s*$")


# ----------------------------------------------------------------------------------
# what is tracedamon's: recognisers return None when ``path`` is tracedamon's output of
# the kind, else what ``path`` is instead (a phrase: "a directory without ...")
# ----------------------------------------------------------------------------------
def parquet_info(path: str | os.PathLike) -> tuple[Optional[dict], list]:
    """(tracedamon's JSON metadata or None, column names) of a Parquet file; (None, [])
    when ``path`` is not a readable Parquet file."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PAR1":
                return None, []
            f.seek(-4, os.SEEK_END)
            if f.read(4) != b"PAR1":
                return None, []
    except OSError:
        return None, []
    try:
        names = read_schema(path).names
        meta = read_metadata(path)
    except Exception:  # not readable as Parquet (or its metadata as JSON): not ours
        return None, []
    return (meta if isinstance(meta, dict) else None), names


def parquet_marker(path: str | os.PathLike) -> Optional[dict]:
    """tracedamon's JSON metadata of a Parquet file, or None when ``path`` is not a
    Parquet file or carries none (file or schema key-value metadata)."""
    return parquet_info(path)[0]


def parquet_what(meta: Optional[dict]) -> str:
    if meta is None:
        return "a file that is not a Parquet table of tracedamon's"
    if "replay" in meta:
        return "a region history written by replay"
    if "attribution" in meta:
        return "an attribution table written by report attribute"
    table = meta.get("table")
    if table in TRACE_TABLES:
        return f"the {table} table of a trace directory"
    if table:
        return f"a {str(table).replace('_', ' ')} table of tracedamon's"
    return "a Parquet table of tracedamon's"


def _parquet_kind(test: Callable[[dict, list], bool]):
    def recognise(path: Path) -> Optional[str]:
        if not path.is_file():
            return "a directory" if path.is_dir() else "not a regular file"
        meta, names = parquet_info(path)
        if meta is not None and test(meta, names):
            return None
        return parquet_what(meta)

    return recognise


#: the columns every region history has (tracedamon.schema.REGIONS)
HISTORY_COLUMNS = {"snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age"}


def _region_history(meta: dict, names: list) -> bool:
    """A replay's output, or a standalone regions table of tracedamon's (not one of a
    trace directory's tables: those name their table)."""
    return "replay" in meta or (
        not {"table", "attribution"} & set(meta) and HISTORY_COLUMNS <= set(names)
    )


def _trace_dir(path: Path) -> Optional[str]:
    if not path.is_dir():
        return "a file"
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        meta = None
    if not (isinstance(meta, dict) and "tracedamon_version" in meta):
        return "a directory without tracedamon's meta.json"
    with os.scandir(path) as it:
        for e in it:
            if e.name == "meta.json" and e.is_file(follow_symlinks=False):
                continue
            if e.is_file(follow_symlinks=False) and _marked_file(Path(e.path)):
                continue
            if e.is_dir(follow_symlinks=False) and _trace_dir(Path(e.path)) is None:
                continue  # an output directory of tracedamon's (damos results)
            return f"a trace directory that also holds {e.name!r}, which tracedamon did not write"
    return None


def _marked_file(path: Path) -> bool:
    """Whether ``path`` carries one of tracedamon's markers (the outputs a trace
    directory may also hold: a replay, metrics, plots; a ground-truth CSV, recognised
    by its shape only, is not taken for one)."""
    if path.name.endswith(".parquet"):
        return parquet_marker(path) is not None
    return any(
        k.recognise(path) is None
        for k in (COMPARE_METRICS, DAMO_RECORD, DAMON_TRACE_TEXT, PNG_PLOT, HTML_REPORT)
    )


def _last_line(path: Path, limit: int = 4096) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - limit))
        tail = f.read()
    lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    return lines[-1].decode("utf-8", "replace") if lines else ""


def text_marker(kind: "Kind") -> str:
    """The comment line tracedamon writes last in a text output of ``kind`` (its
    readers, and perf-script readers such as damo's, skip ``#`` lines), by which
    :func:`check_output` recognises the file later."""
    return f"# written by tracedamon {__version__} ({kind.name})\n"


def _marked_text(name: str):
    def recognise(path: Path) -> Optional[str]:
        if not path.is_file():
            return "a directory" if path.is_dir() else "not a regular file"
        try:
            m = _TEXT_MARK.match(_last_line(path))
        except OSError as e:
            return f"unreadable ({e.strerror})"
        if m is None:
            return "a file tracedamon did not write (its last line is not tracedamon's comment)"
        if m.group(2) != name:
            return f"tracedamon's {m.group(2)}"
        return None

    return recognise


_TRUTH_ROW = re.compile(rb"^0x[0-9a-f]+,0x[0-9a-f]+,[^,\r\n]*\r?\n?$")


def _truth_csv(path: Path) -> Optional[str]:
    """A CSV has no room for a marker that plain CSV readers skip: a file is taken for
    tracedamon's ground truth when it is exactly what ``report truth`` writes: the
    header ``start,end,label`` and rows ``0xSTART,0xEND,LABEL``, nothing else."""
    if not path.is_file():
        return "a directory" if path.is_dir() else "not a regular file"
    not_ours = "a file that is not a ground-truth CSV as tracedamon writes it"
    try:
        with open(path, "rb") as f:
            if f.readline().rstrip(b"\r\n") != b"start,end,label":
                return not_ours
            for line in f:
                if not _TRUTH_ROW.match(line):
                    return not_ours
    except OSError as e:
        return f"unreadable ({e.strerror})"
    return None


def marker(kind: "Kind") -> dict:
    """The ``"tracedamon"`` member tracedamon puts in a JSON output of ``kind``."""
    return {"output": kind.name, "version": __version__}


def marked(kind: "Kind", obj: dict) -> dict:
    """``obj`` (a JSON object) with tracedamon's marker for ``kind`` as first member."""
    return {MARK: marker(kind), **{k: v for k, v in obj.items() if k != MARK}}


def _marked_json(name: str):
    def recognise(path: Path) -> Optional[str]:
        if not path.is_file():
            return "a directory" if path.is_dir() else "not a regular file"
        try:
            with open(path, "rb") as f:
                head = f.read(64).lstrip()
                size = os.fstat(f.fileno()).st_size
                if not head.startswith(b"{") or size > (64 << 20):  # metrics are small
                    return "a file that is not tracedamon's JSON"
                f.seek(0)
                data = json.loads(f.read())
        except (OSError, ValueError, UnicodeDecodeError):
            return "a file that is not JSON"
        m = data.get(MARK) if isinstance(data, dict) else None
        if not isinstance(m, dict):
            return "a JSON file tracedamon did not write"
        if m.get("output") != name:
            return f"tracedamon's {m.get('output')}"
        return None

    return recognise


_DAMO_MARK = re.compile(rb'^\s*\[\s*\{\s*"tracedamon"\s*:\s*\{\s*"output"\s*:\s*"([^"]*)"')


def _damo_record(path: Path) -> Optional[str]:
    if not path.is_file():
        return "a directory" if path.is_dir() else "not a regular file"
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    try:
        text = zlib.decompressobj().decompress(head, 4096)
    except zlib.error:
        text = head[:4096]
    m = _DAMO_MARK.match(text)
    if m is None:
        return "a file tracedamon did not write (not a damo record exported by tracedamon)"
    if m.group(1).decode(errors="replace") != "damo record":
        return f"tracedamon's {m.group(1).decode(errors='replace')}"
    return None


def png_metadata() -> dict:
    """The PNG text chunks tracedamon adds to its plots (matplotlib's ``metadata=``)."""
    return {MARK: __version__, "Software": f"tracedamon {__version__} (matplotlib)"}


def _png(path: Path) -> Optional[str]:
    if not path.is_file():
        return "a directory" if path.is_dir() else "not a regular file"
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return "a file that is not a PNG image"
            for _ in range(4096):  # chunks: length, type, data, crc
                head = f.read(8)
                if len(head) < 8:
                    break
                n, ctype = int.from_bytes(head[:4], "big"), head[4:]
                if ctype in (b"tEXt", b"iTXt", b"zTXt") and n < (1 << 20):
                    key = f.read(n).split(b"\0", 1)[0]
                    if key == MARK.encode():
                        return None
                    f.seek(4, os.SEEK_CUR)
                    continue
                if ctype == b"IEND":
                    break
                f.seek(n + 4, os.SEEK_CUR)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    return "a PNG image tracedamon did not write (no tracedamon text chunk)"


_HTML_MARK = re.compile(rb'<meta name="generator" content="tracedamon [^"<>]*">')


def _html(path: Path) -> Optional[str]:
    """An HTML report tracedamon wrote: its head names tracedamon as generator."""
    if not path.is_file():
        return "a directory" if path.is_dir() else "not a regular file"
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if _HTML_MARK.search(head.split(b"</head>", 1)[0]):
        return None
    return "a file that is not an HTML report of tracedamon's"


@dataclass(frozen=True)
class Kind:
    """A kind of output: its name, whether it is a directory, and how tracedamon
    recognises one it wrote."""

    name: str
    noun: str  # "a trace directory": the name with its article
    directory: bool
    recognise: Callable[[Path], Optional[str]]

    def __repr__(self) -> str:
        return f"<output kind {self.name}>"


TRACE_DIR = Kind("trace directory", "a trace directory", True, _trace_dir)
REGION_HISTORY = Kind("region history", "a region history", False, _parquet_kind(_region_history))
COMPARE_CELLS = Kind(
    "compare cells table",
    "a compare cells table",
    False,
    _parquet_kind(lambda m, _: m.get("table") == "compare_cells"),
)
HEATMAP_CELLS = Kind(
    "heatmap cells table",
    "a heatmap cells table",
    False,
    _parquet_kind(lambda m, _: m.get("table") == "heatmap"),
)
ATTRIBUTION = Kind(
    "attribution table",
    "an attribution table",
    False,
    _parquet_kind(lambda m, _: "attribution" in m),
)
COMPARE_METRICS = Kind("compare metrics", "compare metrics", False, _marked_json("compare metrics"))
DAMO_RECORD = Kind("damo record", "a damo record", False, _damo_record)
TRUTH_CSV = Kind("ground truth ranges", "ground truth ranges", False, _truth_csv)
DAMON_TRACE_TEXT = Kind(
    "DAMON trace text", "DAMON trace text", False, _marked_text("DAMON trace text")
)
PNG_PLOT = Kind("PNG plot", "a PNG plot", False, _png)
HTML_REPORT = Kind("HTML report", "an HTML report", False, _html)
SWEEP_TABLE = Kind(
    "sweep table", "a sweep table", False, _parquet_kind(lambda m, _: m.get("table") == "sweep")
)

KINDS = {
    k.name: k
    for k in (
        TRACE_DIR,
        REGION_HISTORY,
        COMPARE_CELLS,
        HEATMAP_CELLS,
        ATTRIBUTION,
        COMPARE_METRICS,
        DAMO_RECORD,
        TRUTH_CSV,
        DAMON_TRACE_TEXT,
        PNG_PLOT,
        HTML_REPORT,
        SWEEP_TABLE,
    )
}


# ----------------------------------------------------------------------------------
# the rule
# ----------------------------------------------------------------------------------
def _refuse(path, api: str, cli: str | None = None) -> OutputError:
    return OutputError(f"{path}: {api}", cli_message=f"{path}: {cli if cli is not None else api}")


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(p))


def _forbidden_place(ap: Path) -> Optional[str]:
    """Why an output may never be at ``ap`` (absolute), or None."""
    real = _resolved(ap)
    if real == Path(real.anchor):
        return "the root directory"
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        cwd = None
    if cwd is not None and (real == cwd or real in cwd.parents):
        return (
            "the current directory" if real == cwd else "a directory holding the current directory"
        )
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError, KeyError):
        home = None
    if home is not None and real == home:
        return "the home directory"
    return None


def check_output(
    path: str | os.PathLike,
    kind: Kind,
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    outside: Iterable[str | os.PathLike] = (),
) -> Path:
    """Check that an output of ``kind`` may be written at ``path`` (the module's rule)
    and return it as a Path; raise :class:`OutputError` (one line naming the path and
    the reason) when it may not. Nothing is created or deleted.

    ``inputs``: the command's inputs (the output may be neither one of them nor hold
    one); ``outside``: directories the output may not be written into (an input
    directory that is read whole, such as a ``perf record --threads`` directory)."""
    p = Path(path)
    if os.fspath(path) == "":
        raise _refuse("''", "an empty path is not an output")
    ap = Path(os.path.abspath(p))
    why = _forbidden_place(ap)
    if why:
        raise _refuse(
            path,
            f"{why}: an output cannot go there; name a new "
            f"{'directory' if kind.directory else 'file'}",
        )
    real = _resolved(ap)
    for inp in inputs:
        if inp is None or os.fspath(inp) in ("", "-"):
            continue
        ri = _resolved(Path(inp))
        if ri == real:
            raise _refuse(path, "an input of this command: not replaced")
        if real in ri.parents:
            raise _refuse(path, f"holds {os.fspath(inp)}, an input of this command: not replaced")
    for d in outside:
        if d is not None and _resolved(Path(d)) in real.parents:
            raise _refuse(
                path,
                f"inside {os.fspath(d)}, an input directory of this "
                "command: choose a place outside it",
            )
    parent = ap.parent
    if (parent / "meta.json").is_file() and (
        ap.name == "meta.json" or ap.name in {f"{t}.parquet" for t in TRACE_TABLES}
    ):
        raise _refuse(
            path, f"the name of a table of the trace directory {parent.name}; choose another name"
        )
    if not os.path.lexists(ap):
        return p
    if ap.is_symlink():
        what = "a symbolic link"
    else:
        what = kind.recognise(ap)
    if what is not None:
        raise _refuse(
            path,
            f"{what}: not replaced (force=True replaces only {kind.noun} that tracedamon wrote)",
            f"{what}: not replaced (--force replaces only {kind.noun} that tracedamon wrote)",
        )
    if not force:
        raise _refuse(
            path,
            "output exists (pass force=True to replace it)",
            "output exists (use --force to replace it)",
        )
    return p


# ----------------------------------------------------------------------------------
# modes, temporary names, replacement
# ----------------------------------------------------------------------------------
def umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux;
    elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def make_parents(d: Path) -> list[Path]:
    """Create ``d`` and its missing parents; the ones created, deepest first."""
    made = []
    q = d
    while not q.exists():
        made.append(q)
        if q.parent == q:
            break
        q = q.parent
    d.mkdir(parents=True, exist_ok=True)
    return made


def remove_made(made: list[Path]) -> None:
    for q in made:
        try:
            q.rmdir()
        except OSError:
            break


def _temp_beside(dest: Path, *, directory: bool, suffix: str = ".tmp") -> Path:
    """A new hidden file or directory beside ``dest`` with the mode the umask gives."""
    mask = umask()
    if directory:
        tmp = tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
        os.chmod(tmp, 0o777 & ~mask)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
        try:
            os.fchmod(fd, 0o666 & ~mask)
        finally:
            os.close(fd)
    return Path(tmp)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically (Linux renameat2 RENAME_EXCHANGE); False when the
    system or the file system cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not supported here
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def _install(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` in the place of ``dest``; an existing ``dest`` (already checked) is
    replaced whole: a file by rename, a directory by an atomic exchange (or, where
    the system has none, two renames that put the old directory back on failure)."""
    if not dest.is_dir() or dest.is_symlink():
        os.replace(tmp, dest)
        return
    if _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old output
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    os.rmdir(old)
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


#: errors of writing (not of reading): one without a file name is the output's
_WRITE_ERRNOS = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _naming_output(exc: BaseException, tmp: Optional[Path], user: Path) -> BaseException:
    """``exc`` naming the user's output: the hidden temporary path replaced by it, and a
    write error that names no file (pyarrow's "Error writing bytes to file") given it."""
    if tmp is not None:
        shown_as(exc, {tmp: user})
    if isinstance(exc, OSError) and not exc.filename and exc.errno in _WRITE_ERRNOS:
        exc.filename = os.fspath(user)
    return exc


@contextmanager
def atomic_path(
    dest: str | os.PathLike,
    *,
    kind: Kind,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    suffix: str = ".tmp",
) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``dest``; on a clean exit it replaces
    ``dest``, on an exception it is removed (an old ``dest`` stays as it was). The
    output is checked first (:func:`check_output`) and again just before the rename.
    Errors that name the temporary path name ``dest`` instead.

    >>> with atomic_path("truth.csv", kind=TRUTH_CSV, force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("start,end,label\\n0x1000,0x2000,hot\\n")
    """
    inputs = list(inputs)
    user = Path(dest)
    check_output(user, kind, force=force, inputs=inputs)
    dest = Path(os.path.abspath(user))
    made = make_parents(dest.parent)
    tmp = _temp_beside(dest, directory=kind.directory, suffix=suffix)
    try:
        try:
            yield tmp
            check_output(user, kind, force=force, inputs=inputs)
            _install(tmp, dest)
        except BaseException as e:
            raise _naming_output(e, tmp, user)
    except BaseException:
        if kind.directory:
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        remove_made(made)
        raise


class AtomicDir:
    """A directory output built in a hidden directory beside ``dest`` and swapped into
    place by :meth:`commit` (:meth:`abort` removes it). Used by the trace-directory
    writer; :func:`atomic_path` does the same for callers that build in one go."""

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        kind: Kind = TRACE_DIR,
        force: bool = False,
        inputs: Iterable[str | os.PathLike] = (),
    ):
        self.user = Path(dest)
        self.kind, self.force, self.inputs = kind, force, list(inputs)
        check_output(self.user, kind, force=force, inputs=self.inputs)
        self.dest = Path(os.path.abspath(self.user))
        self.tmp: Optional[Path] = None
        self._made: list[Path] = []

    def open(self) -> Path:
        self._made = make_parents(self.dest.parent)
        try:
            self.tmp = _temp_beside(self.dest, directory=True)
        except BaseException:
            remove_made(self._made)
            raise
        return self.tmp

    def shown(self, exc: BaseException) -> BaseException:
        """``exc`` naming the output instead of the hidden directory."""
        return _naming_output(exc, self.tmp, self.user)

    def commit(self) -> Path:
        assert self.tmp is not None
        check_output(self.user, self.kind, force=self.force, inputs=self.inputs)
        _install(self.tmp, self.dest)
        self.tmp = None
        return self.user

    def abort(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        remove_made(self._made)
        self._made = []


def write_text_atomic(
    dest: str | os.PathLike,
    text: str,
    *,
    kind: Kind,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    with atomic_path(dest, kind=kind, force=force, inputs=inputs) as tmp:
        tmp.write_text(text)
    return Path(dest)


def write_bytes_atomic(
    dest: str | os.PathLike,
    data: bytes,
    *,
    kind: Kind,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    with atomic_path(dest, kind=kind, force=force, inputs=inputs) as tmp:
        tmp.write_bytes(data)
    return Path(dest)
