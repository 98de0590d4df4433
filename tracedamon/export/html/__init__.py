"""`tracedamon report html`: one self-contained HTML file to explore region histories.

The file opens from disk with no network: the page's script and style are inlined
(package data under ``static/``), the data is one JSON object plus deflated binary
blobs in base64, decoded by the browser's own ``DecompressionStream``. The page
draws with a small canvas renderer of its own (see README, "report html", for why
not a plotting library).

    >>> rep = build_report("run.td", diff="other.parquet")     # doctest: +SKIP
    >>> rep.write("report.html")                               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ... import __version__
from ...errors import ConfigError
from ...store.atomic import HTML_REPORT, write_bytes_atomic
from ..history import replay_meta
from . import layers as L
from .tiles import BlobStore

FORMAT = 1
_MARK = re.compile(r"@@(TITLE|CSS|META|BLOB|JS|VERSION)@@")


@dataclass
class Report:
    html: str
    summary: dict = field(default_factory=dict)

    def write(self, path: str | os.PathLike, *, force: bool = False, inputs=()) -> Path:
        """Write the page atomically; an existing ``path`` is replaced only with
        ``force=True`` and only if it is a report tracedamon wrote (its generator tag)."""
        return write_bytes_atomic(
            path, self.html.encode("utf-8"), kind=HTML_REPORT, force=force, inputs=inputs
        )


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _json_for_script(obj) -> str:
    """JSON that is safe inside a <script> element."""
    s = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_report(
    src,
    *,
    diff=None,
    samples: bool = False,
    samples_from=None,
    damos=None,
    truth=None,
    max_samples: int = 100_000,
    max_damos: int = 200_000,
    title: str | None = None,
    offset_ns: int = 0,
) -> Report:
    """Build the report page of region history ``src`` (a trace directory with regions,
    a regions ``.parquet``, an Arrow table or DataFrame).

    ``diff``: a second region history; the page shows both and their difference on
    ``compare``'s common grid with its metrics (``offset_ns`` is added to its times, as
    ``compare --offset``). ``samples``: draw the raw samples of the trace directory
    (``samples_from``, SRC, or the one the replay's metadata names) as a second layer,
    at most ``max_samples`` of them. ``damos``: a ``damos_apply`` table (a trace
    directory or .parquet) drawn over the heatmap. ``truth``: labelled ranges (CSV/JSON,
    see ``compare.load_truth``) marked beside the address axis.
    """
    if max_samples < 1 or max_damos < 1:
        raise ConfigError(
            "max_samples and max_damos must be at least 1",
            cli_message="--max-samples and --max-damos must be at least 1",
        )
    blobs = BlobStore()
    notes: list[str] = []
    ha = L.open_source(src)
    layer_a = L.history_layer(ha, blobs)
    layers = {"a": layer_a}
    meta = {
        "format": FORMAT,
        "title": title or f"tracedamon report: {ha.name}",
        "layers": layers,
        "notes": notes,
    }
    _sparse_note("A", ha, notes)
    if diff is not None:
        hb = L.open_source(diff)
        layers["b"] = L.history_layer(hb, blobs, offset_ns=offset_ns)
        _sparse_note("B", hb, notes)
        meta["diff"] = L.diff_layer(src, diff, blobs, offset_ns=int(offset_ns))
    if samples or samples_from is not None:
        tr = L.find_samples_trace(src, ha, samples_from)
        phys = _is_paddr(ha)
        meta["samples"] = L.samples_layer(
            tr, layer_a["spaces"], phys, blobs, max_points=max_samples
        )
        meta["samples"]["trace"] = str(tr.path)
        s = meta["samples"]
        if s["n"] == 0:
            notes.append(f"no sample of {tr.path} falls in the address ranges of {ha.name}")
        elif s["n"] < s["inside"]:
            notes.append(
                f"samples: a uniform random {s['n']:,} of the {s['inside']:,} that "
                "fall in the drawn ranges"
            )
    if damos is not None:
        df = L.read_damos(damos)
        meta["damos"] = L.damos_layer(df, ha, layer_a["spaces"], blobs, max_marks=max_damos)
        meta["damos"]["name"] = Path(damos).name if isinstance(damos, (str, Path)) else "damos"
        d = meta["damos"]
        if d["placed"] < d["total"]:
            notes.append(
                f"DAMOS: {d['total'] - d['placed']:,} of {d['total']:,} applications "
                "lie outside the drawn ranges or targets"
            )
        if d["n"] < d["placed"]:
            notes.append(
                f"DAMOS: a uniform random {d['n']:,} of {d['placed']:,} applications drawn"
            )
    if truth is not None:
        meta["truth"] = L.truth_layer(truth, layer_a["spaces"])
    # blobs: each base64-encoded on its own, so that any one decodes alone
    b64 = [base64.b64encode(p).decode("ascii") for p in blobs.parts]
    offs = []
    pos = 0
    for s in b64:
        offs.append([pos, len(s)])
        pos += len(s)
    meta["blobs"] = offs
    parts = {
        "TITLE": _escape(meta["title"]),
        "VERSION": _escape(__version__),
        "CSS": _static("report.css"),
        "META": _json_for_script(meta),
        "BLOB": "".join(b64),
        "JS": _static("report.js").replace("</", "<\\/"),
    }
    # one pass over the template's markers, so that no inserted text is scanned again
    html = _MARK.sub(lambda m: parts[m.group(1)], _static("template.html"))
    summary = {
        "bytes": len(html.encode("utf-8")),
        "blobs": len(blobs.parts),
        "blob_bytes_raw": blobs.raw_bytes,
        "blob_bytes_packed": blobs.packed_bytes,
        "rows": layer_a["info"]["file_rows"],
        "spaces": len(layer_a["spaces"]),
        "notes": notes,
    }
    return Report(html, summary)


def _is_paddr(hs) -> bool:
    """True when the history's addresses are physical (a paddr replay, or a DAMON trace
    whose rows carry no pid)."""
    rep = replay_meta(hs.meta)
    if rep.get("ops"):
        return rep["ops"] == "paddr"
    return hs.key_column != "pid"


def _sparse_note(tag: str, hs, notes: list) -> None:
    if hs.sparse:
        notes.append(
            f"{tag} ({hs.name}) was written with accessed regions only: idle bytes "
            "inside the monitored ranges are drawn as nr_accesses 0 (idle neighbours "
            "joined into one region, age unknown), so its region counts are not the "
            "monitor's"
        )


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_report(out, src, **kw) -> Report:
    rep = build_report(src, **kw)
    rep.write(out)
    return rep
