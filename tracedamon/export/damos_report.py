"""``tracedamon report damos``: what DAMOS schemes did, on a picture and in a summary.

:func:`damos_report` reads scheme applications and what came with them:

* a directory written by ``tracedamon damos`` (``damos_apply``, ``damos_stats``,
  ``damos_outcome``, ``meta.json``): the region history it ran on is the one its
  metadata names (``history=`` overrides it, e.g. after a move);
* a region history whose ``tracedamon damos`` output lies at its default place
  (``DIR/damos`` beside a trace directory's tables, ``X.damos`` beside ``X.parquet``):
  the history and that output;
* an ingested DAMON trace with ``damos_before_apply`` events and no such output: the
  kernel's recorded applications over its own snapshots (no stats, no outcome: the
  kernel did not trace them).

:meth:`DamosReport.to_png` draws, on one time axis (seconds from the start of the
history): the history's heatmap with every application laid over it (each applied
address range over the window of the snapshot it was applied to, one colour per
scheme); the bytes handed to the action per step (exact) with the modelled bytes out of
memory; re-accesses of paged-out pages per time bin (pageout outcome); the fast-tier hit
ratio per time bin against first-touch placement (tier outcome).  Panels without data
are left out, and the picture says why.  :meth:`DamosReport.text` is the terminal
summary: per scheme, walks that applied, bytes tried and applied (modelled), quota
exceeds; then the outcome figures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..store.trace import open_trace
from ..units import format_bytes as fmt_bytes
from .figure import DPI, new_figure, save_figure
from .grid import guide_ranges, merge_intervals
from .heatmap import region_heatmap, scan_space
from .idle import open_source

__all__ = ["damos_report", "DamosReport", "find_sources"]

#: colours of schemes 0, 1, ... on the picture (cycled)
SCHEME_COLOURS = ("#00e5ff", "#76ff03", "#ff4081", "#ffd740", "#e040fb", "#ffffff")


def _read_meta(d: Path) -> dict:
    p = d / "meta.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise InputError(f"{p}: not JSON ({e})") from None


def _is_damos_output(d: Path) -> bool:
    return (
        d.is_dir()
        and (d / "damos_apply.parquet").exists()
        and isinstance(_read_meta(d).get("damos"), dict)
    )


def _named_history(damos_dir: Path, meta: dict) -> Path | None:
    """The history a damos run names in its metadata, where it still is: as named (a
    path relative to where the run was made), else relative to the output's parent."""
    p = ((meta.get("damos") or {}).get("source") or {}).get("path")
    if not p:
        return None
    for cand in (Path(p), damos_dir.parent / p, damos_dir.parent / Path(p).name):
        if cand.exists() and cand.resolve() != damos_dir.resolve():
            return cand
    return None


def find_sources(src, history=None) -> tuple[Path | None, Path | None, str]:
    """(damos output directory or None, region history or None, how they were found)
    for ``report damos SRC`` (see the module docstring)."""
    p = Path(src)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    h = Path(history) if history is not None else None
    if h is not None and not h.exists():
        raise InputError(
            f"{h}: no such file or directory (the history)",
            cli_message=f"--history {h}: no such file or directory",
        )
    if _is_damos_output(p):
        got = h or _named_history(p, _read_meta(p))
        return (
            p,
            got,
            (
                "history: --history"
                if h
                else "history: named in its metadata"
                if got
                else "its history is not found (give --history): no heatmap"
            ),
        )
    dflt = p / "damos" if p.is_dir() else p.with_suffix(".damos")
    if _is_damos_output(dflt):
        return dflt, h or p, f"the damos output beside it: {dflt}"
    if p.is_dir() and (p / "damos_apply.parquet").exists():
        if not (p / "regions.parquet").exists() and h is None:
            return p, None, "no region history: no heatmap"
        return p, h or p, "the applications the trace recorded"
    raise InputError(
        f"{p}: no DAMOS applications: give a tracedamon damos output, a "
        "history with its damos output beside it (DIR/damos, X.damos), or a "
        "DAMON trace with damos_before_apply events"
    )


@dataclass
class DamosReport:
    """Scheme applications, the schemes' stats and the modelled outcome of one run."""

    name: str
    applications: pd.DataFrame
    stats: pd.DataFrame | None
    outcome: pd.DataFrame | None
    meta: dict
    history: Path | None
    aggr_ns: int | None
    found: str = ""
    notes: list = field(default_factory=list)

    # -------------------------------------------------------------- figures
    def per_scheme(self) -> pd.DataFrame:
        """One row per scheme: walks that applied to a region, rows (regions handed to
        the action), bytes tried; with stats: steps due, bytes applied (modelled),
        quota exceeds (summed over kdamond runs: each run counts from 0)."""
        a = self.applications
        out = []
        schemes = sorted(
            set(a["scheme"].unique().tolist())
            | (
                set(self.stats["scheme"].unique().tolist())
                if self.stats is not None and len(self.stats)
                else set()
            )
        )
        for s in schemes:
            g = a[a.scheme == s]
            r = {
                "scheme": int(s),
                "walks_applied": int(_walks(g, self.aggr_ns)),
                "regions": int(len(g)),
                "bytes_tried": int(
                    (g.end.astype(np.int64) - g.start.astype(np.int64)).sum() if len(g) else 0
                ),
                "steps_due": None,
                "bytes_applied": None,
                "qt_exceeds": None,
                "action": None,
            }
            sch = self.meta.get("schemes") or []
            if s < len(sch) and isinstance(sch[s], dict):
                r["action"] = sch[s].get("action")
            if self.stats is not None and len(self.stats):
                st = self.stats[self.stats.scheme == s]
                last = st.groupby("run").tail(1)
                r["steps_due"] = int(len(st))
                r["bytes_applied"] = int(last.sz_applied.sum())
                r["qt_exceeds"] = int(last.qt_exceeds.sum())
                tried = int(last.sz_tried.sum())
                if tried != r["bytes_tried"]:
                    self.notes.append(
                        f"scheme {s}: the stats count {tried} bytes tried, "
                        f"the applications {r['bytes_tried']}"
                    )
            out.append(r)
        return pd.DataFrame(out)

    def text(self) -> str:
        lines = [f"DAMOS applications: {self.name}" + (f" ({self.found})" if self.found else "")]
        m = self.meta
        if m.get("kernel"):
            c = m.get("context") or {}
            lines.append(
                f"kernel {m['kernel']}, {c.get('ops')}, sample {c.get('sample_us')} "
                f"us, aggr {c.get('aggr_us')} us"
            )
        ps = self.per_scheme()
        if not len(ps):
            lines.append("no scheme applied to any region")
        for r in ps.itertuples():
            act = f" ({r.action})" if r.action else ""
            s = (
                f"scheme {r.scheme}{act}: {r.walks_applied} applications"
                + (f" in {r.steps_due} steps due" if r.steps_due is not None else "")
                + f", {r.regions} regions, tried {fmt_bytes(r.bytes_tried)}"
            )
            if r.bytes_applied is not None:
                s += (
                    f", applied {fmt_bytes(r.bytes_applied)} (modelled), quota exceeded "
                    f"{r.qt_exceeds} times"
                )
            else:
                s += "; applied bytes and quota exceeds not recorded"
            lines.append(s)
        o = m.get("outcome") or {}
        if o.get("pageout"):
            p = o["pageout"]
            s = (
                f"pageout (modelled): {fmt_bytes(p['bytes_paged_out'])} paged out, "
                f"{fmt_bytes(p['bytes_out_at_end'])} still out at the end; "
            )
            s += (
                f"{p['reaccesses']} re-accesses of paged-out pages "
                f"({fmt_bytes(p['reaccess_bytes'])}); saving {p['saving_gib_s']:.4g} GiB*s"
                if p.get("samples")
                else "re-accesses unknown (no samples)"
            )
            lines.append(s)
        if o.get("tier"):
            t = o["tier"]
            fr, fr0 = t.get("fast_ratio"), t.get("fast_ratio_first_touch")
            lines.append(
                f"two tiers (modelled, fast tier {fmt_bytes(t['fast_bytes'])}): "
                + (
                    f"{100 * fr:.1f} % of sampled accesses from the fast tier (first-touch "
                    f"placement alone: {100 * fr0:.1f} %), promoted "
                    f"{fmt_bytes(t['bytes_promoted'])}, demoted "
                    f"{fmt_bytes(t['bytes_demoted'])}"
                    if fr is not None
                    else "no samples"
                )
            )
        lines += [f"note: {n}" for n in dict.fromkeys(self.notes)]
        return "\n".join(lines)

    # -------------------------------------------------------------- picture
    def to_png(
        self,
        path: str | os.PathLike,
        *,
        width: int = 1100,
        height: int = 1000,
        time_bins: int = 400,
        addr_bins: int = 400,
        force: bool = False,
    ) -> Path:
        fig = self.figure(width=width, height=height, time_bins=time_bins, addr_bins=addr_bins)
        return save_figure(fig, path, DPI, force=force)

    def figure(
        self, *, width: int = 1100, height: int = 1000, time_bins: int = 400, addr_bins: int = 400
    ):
        hm, key_target = self._heatmap(time_bins, addr_bins)
        has_po = self.outcome is not None and (self.outcome.model == "pageout").any()
        has_tier = self.outcome is not None and (self.outcome.model == "tier").any()
        panels = (
            (["heat"] if hm is not None else [])
            + ["bytes"]
            + (["reaccess"] if has_po else [])
            + (["tier"] if has_tier else [])
        )
        ratios = {"heat": 3.2, "bytes": 1.2, "reaccess": 1.0, "tier": 1.0}
        fig, axes = new_figure(
            width,
            height,
            nrows=len(panels),
            sharex=True,
            gridspec_kw={"height_ratios": [ratios[p] for p in panels]},
            squeeze=False,
        )
        axes = dict(zip(panels, axes[:, 0]))
        t0 = int(hm.t_edges[0]) if hm is not None else self._t_first()
        sec = lambda t: (np.asarray(t, np.float64) - t0) / 1e9  # noqa: E731
        if hm is not None:
            self._draw_heat(axes["heat"], hm, key_target, sec)
        self._draw_bytes(axes["bytes"], sec)
        if has_po:
            self._draw_reaccess(axes["reaccess"], sec)
        if has_tier:
            self._draw_tier(axes["tier"], sec)
        axes[panels[-1]].set_xlabel("time (s from the start of the history)")
        notes = list(dict.fromkeys(self.notes))
        if notes:
            fig.text(0.01, 0.003, "; ".join(notes)[:400], fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, 0.02 if notes else 0, 1, 1))
        return fig

    def _t_first(self) -> int:
        ts = [self.applications.time_ns.min()] if len(self.applications) else []
        if self.stats is not None and len(self.stats):
            ts.append(self.stats.time_ns.min())
        return int(min(ts)) - int(self.aggr_ns or 0) if ts else 0

    def _heatmap(self, time_bins, addr_bins):
        if self.history is None:
            return None, None
        hs = open_source(self.history)
        a = self.applications
        tk = hs.snaps.groupby("target")["key"].first().to_dict() if len(hs.snaps) else {}
        key = None
        if len(a):
            sz = (a.end.astype(np.float64) - a.start.astype(np.float64)).groupby(a.target).sum()
            for tg in sz.sort_values(ascending=False).index:
                if int(tg) in tk:
                    key = tk[int(tg)]
                    break
        if key is None:
            key = hs.snaps.groupby("key")["rows"].sum().idxmax()
        targets = [t for t, k in tk.items() if k == key]
        span = self._span(hs)
        # the address axis: where the accesses are (the heatmap's own default view) and
        # where the schemes applied (pageout acts on never-accessed memory, which that
        # view would collapse)
        sc = scan_space(hs, key, evidence=True)
        ev = sc.evidence[0]
        mine = a[a.target.isin(targets)]
        both = np.concatenate(
            [
                ev.reshape(-1, 2),
                np.stack([mine.start.to_numpy(np.uint64), mine.end.to_numpy(np.uint64)], axis=1),
            ]
        )
        shown = merge_intervals(both[:, 0], both[:, 1]) if len(both) else both
        ranges = guide_ranges(sc.held, shown) if len(shown) else None
        hm = region_heatmap(
            hs,
            time_bins=time_bins,
            addr_bins=addr_bins,
            target=key,
            time_range=span,
            ranges=[(int(x), int(y)) for x, y in ranges] if ranges is not None else None,
        )
        others = a[~a.target.isin(targets)]
        if len(others):
            self.notes.append(
                f"{len(others)} applied regions of other targets are not on "
                f"the heatmap (target {targets[0] if targets else key})"
            )
        return hm, targets

    def _span(self, hs) -> tuple[int, int] | None:
        """The time the picture shows: the kdamond runs in which a scheme applied to a
        region (a history of several runs shows only those), else the whole history."""
        if (
            "run" not in hs.snaps.columns
            or hs.snaps["run"].nunique() < 2
            or not len(self.applications)
        ):
            return None
        sn = hs.snaps
        runs = sn.groupby("run").agg(t0=("t0", "min"), t1=("t1", "max"))
        t = self.applications.time_ns.to_numpy(np.int64)
        slack = int(self.aggr_ns or 0)
        used = [r for r, x in runs.iterrows() if ((t >= x.t0 - slack) & (t <= x.t1 + slack)).any()]
        if not used or len(used) == len(runs):
            return None
        left = [int(r) for r in runs.index if r not in used]
        self.notes.append(
            f"kdamond run(s) {', '.join(map(str, left))} without applications "
            "left out of the picture"
        )
        return int(runs.loc[used, "t0"].min()), int(runs.loc[used, "t1"].max())

    def _draw_heat(self, ax, hm, targets, sec):
        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Patch

        nt, nb = hm.matrix.shape
        t = sec(hm.t_edges)
        ax.imshow(
            np.transpose(hm.rgba(), (1, 0, 2)),
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            extent=(float(t[0]), float(t[-1]), 0, nb),
        )
        seg_first = np.searchsorted(hm.bin_start, hm.segments[:, 0])
        for k, j in enumerate(seg_first):
            if k > 0:
                ax.axhline(j, color="white", lw=1.0)
        ticks = sorted({int(j) for j in np.linspace(0, max(nb - 1, 0), 7).round()})
        ax.set_yticks(ticks)
        ax.set_yticklabels([f"{int(hm.bin_start[j]):#x}" for j in ticks], fontsize=7)
        shown = int((hm.segments[:, 1] - hm.segments[:, 0]).sum())
        space = {
            "paddr": "physical address",
            "vaddr": "virtual address",
            "fvaddr": "virtual address",
        }.get((self.meta.get("context") or {}).get("ops"), hm.space)
        ax.set_ylabel(
            f"{space}\n({fmt_bytes(shown)} shown"
            + (f", {len(hm.segments)} ranges" if len(hm.segments) > 1 else "")
            + ")",
            fontsize=8,
        )
        a = self.applications
        a = a[a.target.isin(targets)] if targets is not None else a
        w = float(self.aggr_ns or np.diff(hm.t_edges).mean())
        polys, colours, off_axis = [], [], 0
        handles = []
        for s, g in a.groupby("scheme"):
            col = SCHEME_COLOURS[int(s) % len(SCHEME_COLOURS)]
            n_s = 0
            for tm, h in g.groupby(_walk_times(g, self.aggr_ns)):
                iv = merge_intervals(h.start.to_numpy(np.uint64), h.end.to_numpy(np.uint64))
                y0, y1 = _rows_of(hm, iv[:, 0]), _rows_of(hm, iv[:, 1])
                x1 = float(sec(tm))
                x0 = x1 - w / 1e9
                for lo, hi in zip(y0, y1):
                    if hi <= lo:
                        off_axis += 1
                        continue
                    polys.append([(x0, lo), (x1, lo), (x1, hi), (x0, hi)])
                    colours.append(col)
                    n_s += 1
            handles.append(
                Patch(facecolor=col, edgecolor=col, alpha=0.6, label=f"scheme {int(s)} applied")
            )
        if polys:
            from matplotlib.colors import to_rgba

            pc = PolyCollection(
                polys,
                facecolors=[to_rgba(c, 0.4) for c in colours],
                edgecolors=[to_rgba(c, 1.0) for c in colours],
                linewidths=0.8,
            )
            ax.add_collection(pc)
        if off_axis:
            self.notes.append(
                f"{off_axis} applied ranges lie in address gaps the heatmap leaves out"
            )
        if handles:
            ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.7)
        ax.set_title(
            f"DAMOS applications over the access heat of {hm.source} "
            "(black: never accessed, brighter: more accesses; each application "
            "over the window of the snapshot it acted on)",
            fontsize=8,
        )

    def _draw_bytes(self, ax, sec):
        a = self.applications
        w = float(self.aggr_ns or 0) / 1e9
        for s, g in a.groupby("scheme"):
            col = SCHEME_COLOURS[int(s) % len(SCHEME_COLOURS)]
            by = (
                (g.end.astype(np.float64) - g.start.astype(np.float64))
                .groupby(_walk_times(g, self.aggr_ns))
                .sum()
            )
            x = sec(by.index.to_numpy())
            ax.bar(
                x - w if w else x,
                by.to_numpy() / 2**20,
                width=(w * 0.9) or 0.8,
                align="edge" if w else "center",
                color=_darker(col),
                label=f"scheme {int(s)}: bytes handed to the action (exact)",
            )
        if self.outcome is not None and (self.outcome.model == "pageout").any():
            po = self.outcome[self.outcome.model == "pageout"]
            for run, g in po.groupby("run"):
                ax.step(
                    sec(g.time_ns.to_numpy()),
                    g.bytes_out.to_numpy(np.float64) / 2**20,
                    where="post",
                    color="black",
                    lw=1.2,
                    label="out of memory (pageout, modelled)" if run == po.run.min() else None,
                )
        ax.set_ylabel("MiB", fontsize=8)
        ax.set_title(
            "bytes handed to the action per application (bars, drawn at the "
            "window of the snapshot)"
            + (
                " and bytes paged out (line)"
                if self.outcome is not None and (self.outcome.model == "pageout").any()
                else ""
            ),
            fontsize=8,
        )
        if len(a) or (self.outcome is not None and len(self.outcome)):
            ax.legend(fontsize=7, loc="upper left", framealpha=0.7)
        else:
            ax.text(
                0.5,
                0.5,
                "no scheme applied to any region",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )

    def _draw_reaccess(self, ax, sec):
        po = self.outcome[self.outcome.model == "pageout"]
        known = po.reaccesses.notna()
        if not known.any():
            ax.text(
                0.5,
                0.5,
                "re-accesses unknown: no samples (tracedamon damos --samples-from DIR)",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
            )
        else:
            p = po[known]
            edges = p.time_ns.to_numpy(np.int64)
            wid = float(np.median(np.diff(edges))) / 1e9 if len(edges) > 1 else 1.0
            ax.bar(
                sec(edges) - wid,
                p.reaccesses.to_numpy(np.float64),
                width=wid,
                align="edge",
                color="#d84315",
            )
            tot = int(p.reaccesses.sum())
            ax.set_ylim(0, max(1.0, float(p.reaccesses.max()) * 1.1))
            ax.text(
                0.99,
                0.9,
                f"{tot} re-accesses in all",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
            )
        ax.set_ylabel("re-accesses", fontsize=8)
        ax.set_title(
            "sampled accesses to paged-out pages per time bin (pageout, modelled: "
            "each one a refault)",
            fontsize=8,
        )

    def _draw_tier(self, ax, sec):
        ti = self.outcome[self.outcome.model == "tier"]
        for run, g in ti.groupby("run"):
            x = sec(g.time_ns.to_numpy())
            first = run == ti.run.min()
            ax.step(
                x,
                g.fast_ratio.to_numpy(np.float64),
                where="pre",
                color="#1565c0",
                label="with the schemes" if first else None,
            )
            ax.step(
                x,
                g.fast_ratio_first_touch.to_numpy(np.float64),
                where="pre",
                color="grey",
                ls="--",
                label="first-touch placement alone" if first else None,
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("fast-tier hits", fontsize=8)
        ax.set_title(
            "share of sampled accesses served from the fast tier per time bin (two-tier model)",
            fontsize=8,
        )
        ax.legend(fontsize=7, loc="lower right", framealpha=0.7)


def _darker(hexcol: str) -> str:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(hexcol)
    return (r * 0.7, g * 0.7, b * 0.7)


def _rows_of(hm, addrs: np.ndarray) -> np.ndarray:
    """Positions of addresses on the heatmap's address axis, in (fractional) columns:
    an address inside a shown bin lies at its share of that bin, one in a gap the axis
    leaves out at the start of the next shown bin."""
    bs = hm.bin_start.astype(np.float64)
    be = hm.bin_end.astype(np.float64)
    x = np.asarray(addrs, np.float64)
    j = np.searchsorted(be, x, side="right")
    out = np.empty(len(x))
    for i, (v, k) in enumerate(zip(x, j)):
        if k >= len(bs):
            out[i] = len(bs)
        elif v <= bs[k]:
            out[i] = k
        else:
            out[i] = k + (v - bs[k]) / (be[k] - bs[k])
    return out


def _walk_times(g: pd.DataFrame, aggr_ns: int | None) -> np.ndarray:
    """Each row's walk, by the walk's time (its last row's): a scheme's rows less than
    half an aggregation apart are one walk (the kernel traces each region of a walk
    with its own time, within milliseconds)."""
    if not len(g):
        return np.zeros(0, np.int64)
    t = g.time_ns.to_numpy(np.int64)
    o = np.argsort(t, kind="stable")
    ts = t[o]
    new = np.ones(len(ts), bool)
    new[1:] = np.diff(ts) > (aggr_ns or 0) // 2
    wid = np.cumsum(new) - 1
    last = np.maximum.reduceat(ts, np.flatnonzero(new))
    out = np.empty(len(t), np.int64)
    out[o] = last[wid]
    return out


def _walks(g: pd.DataFrame, aggr_ns: int | None) -> int:
    """Walks among a scheme's rows (see :func:`_walk_times`)."""
    return int(np.unique(_walk_times(g, aggr_ns)).size)


def _table(d: Path, name: str) -> pd.DataFrame | None:
    tr = open_trace(d)
    return tr.df(name) if tr.has(name) else None


def damos_report(src, *, history=None) -> DamosReport:
    """The report of ``src``: a ``tracedamon damos`` output, a history with its output
    beside it, or a DAMON trace with recorded applications (module docstring)."""
    d, hist, found = find_sources(src, history)
    meta_all = _read_meta(d)
    meta = meta_all.get("damos") if isinstance(meta_all.get("damos"), dict) else {}
    apps = _table(d, "damos_apply")
    stats = _table(d, "damos_stats")
    outcome = _table(d, "damos_outcome")
    aggr_us = (meta.get("context") or {}).get("aggr_us") or (meta_all.get("intervals") or {}).get(
        "aggr_us"
    )
    if aggr_us is None and hist is not None:
        aggr_us = open_source(hist).aggr_us
    notes = []
    if hist is None:
        notes.append(found)
    rep = DamosReport(
        str(src),
        apps,
        stats,
        outcome,
        meta,
        hist,
        int(aggr_us * 1000) if aggr_us else None,
        found,
        notes,
    )
    return rep
