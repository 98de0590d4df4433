"""`tracedamon compare`.

Imports follow :mod:`tracedamon.cli`'s start-up rule: the library (pipeline, export:
pandas and pyarrow) and rich's tables are imported as the first statements of the
function that uses them, each marked "heavy: see tracedamon.cli"."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from ..units import format_bytes
from . import options as opt
from .warn import one_line_warnings


def _fmt(v, pct=False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if not pct else f"{100 * v:.1f} %"
    return str(v)


def render_metrics(m: dict) -> None:
    """A readable rich table of the main numbers."""
    from rich.console import Console  # heavy: see tracedamon.cli
    from rich.table import Table  # heavy: see tracedamon.cli

    con = Console()
    if "heat" in m:
        t = Table(
            title=f"compare  a = {m['a']['source']}   b = {m['b']['source']}", show_lines=False
        )
        t.add_column("metric")
        t.add_column("value", justify="right")
        c = m.get("compared") or {}
        g = m["grid"]
        if c:
            span = (c["time_ns"][1] - c["time_ns"][0]) / 1e9
            t.add_row(
                "compared (exact overlay)",
                f"{span:.3f} s × {format_bytes(c['common_bytes'])} in common; "
                f"accessed by either: {format_bytes(c['active_byte_seconds'] / max(span, 1e-12))}"
                " on average",
            )
        if "cells" in g:
            t.add_row(
                "cells grid (pictures only)",
                f"{g['time_bins']} × {g['address_bins']} cells "
                f"({g['time_bin_ns'] / 1e6:.1f} ms × {format_bytes(g['address_bin_bytes'])})",
            )
        al = m["alignment"]
        est = al["estimate"]
        t.add_row("time offset applied to b", f"{al['applied_offset_ns']} ns")
        t.add_row(
            "best lag (estimate)",
            f"{est['lag_ns']} ns, r = {_fmt(est['correlation'])} "
            f"(r at 0: {_fmt(est['correlation_at_zero'])})",
        )
        t.add_row(
            "heat Spearman / Pearson",
            f"{_fmt(m['heat']['spearman'])} / {_fmt(m['heat']['pearson'])}",
        )
        t.add_row("mean |rate b - rate a|", _fmt(m["heat"]["mean_abs_rate_diff"]))
        for th, v in m["hot"].items():
            t.add_row(
                f"hot ≥ {th}×max: precision / recall / F1",
                f"{_fmt(v['precision'])} / {_fmt(v['recall'])} / {_fmt(v['f1'])}",
            )
        w = m.get("wss") or {}
        if w:
            t.add_row(
                "WSS mean a / b", f"{format_bytes(w['mean_a'])} / {format_bytes(w['mean_b'])}"
            )
            t.add_row(
                "WSS MAE (relative)",
                f"{format_bytes(w['mae_bytes'])} ({_fmt(w['relative_error'], True)})",
            )
        a = m.get("age") or {}
        t.add_row(
            "age Spearman / median |diff|",
            f"{_fmt(a.get('spearman'))} / {_fmt(a.get('median_abs_diff_s'))} s",
        )
        r = m["regions"]
        if "mean" in r["a"] and r["a"]["mean"] is not None and r["b"]["mean"] is not None:
            sp = (
                " (sparse: with accesses)"
                if (
                    r["a"].get("counted", "regions") != "regions"
                    or r["b"].get("counted", "regions") != "regions"
                )
                else ""
            )
            t.add_row(
                "regions per snapshot a / b" + sp, f"{r['a']['mean']:.1f} / {r['b']['mean']:.1f}"
            )
        con.print(t)
    truth = m.get("truth")
    if truth:
        t = Table(title="against the ground truth")
        t.add_column("side")
        t.add_column("label")
        t.add_column("bytes", justify="right")
        t.add_column("mean nr_accesses", justify="right")
        t.add_column("rate", justify="right")
        t.add_column("accessed", justify="right")
        for side, s in truth.items():
            for lab, v in s["labels"].items():
                t.add_row(
                    side,
                    lab,
                    format_bytes(v["bytes"]),
                    _fmt(v["mean_nr_accesses"]),
                    _fmt(v["mean_rate"]),
                    _fmt(v["accessed_fraction"], True),
                )
            hot = s["hot"].get("0.5") or next(iter(s["hot"].values()), {})
            t.add_row(
                side,
                "hot P/R/F1 (0.5)",
                "",
                _fmt(hot.get("precision")),
                _fmt(hot.get("recall")),
                _fmt(hot.get("f1")),
            )
        con.print(t)


HELP = (
    "Compare two region histories (replay vs DAMON trace, replay vs replay, DAMON vs "
    "DAMON), exactly: every snapshot of A against the snapshots of B whose windows overlap "
    "it, byte by byte on both sides' region boundaries. Heat correlation over the bytes "
    "either side saw accessed, hot-set precision/recall/F1, working-set size error, age "
    "agreement, region counts; optionally score both against ground-truth ranges. A is "
    "the reference, B the candidate. With --truth, B may be omitted to score A alone. "
    "Sparse (--accessed-only) histories read as their dense originals. --cells writes "
    "a picture grid laid over where the accesses are.\n\n"
    "DAMOS applications: with --damos-apply (automatic when a side is a `tracedamon damos` "
    "output or a damos_apply table) the two sides' damos_apply tables are compared: "
    "applications paired per scheme, nearest in time within half the apply interval; "
    "bytes applied by both, by either, by one only, Jaccard, per application and over "
    "the run.\n\n"
    "Example:  tracedamon compare damon.td replay.parquet -o metrics.json --truth truth.csv"
    "\n\n"
    "Example:  tracedamon compare damon.td damon.td/damos -o damos-metrics.json"
)


def compare_cmd(
    a: Path = typer.Argument(..., help="reference: trace directory or regions .parquet"),
    b: Optional[Path] = typer.Argument(None, help="candidate: trace directory or regions .parquet"),
    out: Optional[Path] = opt.output("write the metrics as JSON"),
    cells: Optional[Path] = typer.Option(
        None,
        "--cells",
        help="write per-cell values and differences as Parquet "
        "(default with -o: METRICS.cells.parquet)",
    ),
    truth: Optional[Path] = opt.truth(),
    offset: int = opt.offset("ns added to every time of B"),
    align: str = typer.Option(
        "none",
        "--align",
        help="none: use --offset as is; auto: add the best lag found by "
        "cross-correlation (always reported)",
    ),
    max_lag: Optional[int] = typer.Option(None, "--max-lag", help="largest lag tried, ns"),
    lag_series: str = typer.Option("heat", "--lag-series", help="heat|wss: series correlated"),
    addr_bin: Optional[int] = typer.Option(
        None, "--addr-bin", help="cells grid: address bin, bytes (default: auto)"
    ),
    time_bin: Optional[int] = typer.Option(
        None, "--time-bin", help="cells grid and per-time metrics: time bin, ns (default: auto)"
    ),
    acc_thres: int = typer.Option(1, "--acc-thres", help="nr_accesses counted as accessed (WSS)"),
    all_addresses: bool = typer.Option(
        False, "--all-addresses", help="cells grid: keep long never-accessed address stretches"
    ),
    quiet: bool = opt.quiet(),
    force: bool = opt.force(),
    damos: bool = typer.Option(
        False,
        "--damos-apply",
        help="compare the damos_apply tables (scheme applications) of A and B",
    ),
    window: Optional[int] = typer.Option(
        None, "--window", help="--damos-apply: the apply interval, ns, when no metadata gives it"
    ),
    damos_old: bool = opt.deprecated("--damos", "--damos-apply", False),
) -> None:
    damos = damos or damos_old
    with one_line_warnings():
        if b is not None and (damos or _damos_sources(a, b)):
            _run_damos(
                a, b, out, offset, window, quiet, force, cells=cells, truth=truth, align=align
            )
            return
        _run(
            a,
            b,
            out,
            cells,
            truth,
            offset,
            align,
            max_lag,
            lag_series,
            addr_bin,
            time_bin,
            acc_thres,
            all_addresses,
            quiet,
            force,
        )


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(compare_cmd)


def _damos_sources(a, b) -> bool:
    from ..pipeline.compare import is_damos_pair  # heavy: see tracedamon.cli

    return is_damos_pair(a, b)


def _run_damos(a, b, out, offset, window, quiet, force, *, cells, truth, align) -> None:
    from .damos_table import render_damos_metrics  # heavy: see tracedamon.cli
    from ..pipeline.compare import compare_damos_sources  # heavy: see tracedamon.cli

    for flag, given in (
        ("--cells", cells is not None),
        ("--truth", truth is not None),
        ("--align auto", align != "none"),
    ):
        if given:
            raise ConfigError(
                f"{flag} compares region histories; a comparison of "
                "damos_apply tables does not take it"
            )
    res = compare_damos_sources(a, b, out=out, force=force, offset_ns=offset, window_ns=window)
    if not quiet:
        render_damos_metrics(res.metrics)
        if out is not None:
            typer.echo(f"wrote {out}")


def _run(
    a,
    b,
    out,
    cells,
    truth,
    offset,
    align,
    max_lag,
    lag_series,
    addr_bin,
    time_bin,
    acc_thres,
    all_addresses,
    quiet,
    force,
) -> None:
    from ..pipeline.compare import cells_path_for, compare  # heavy: see tracedamon.cli

    # --cells defaults to beside -o (checked after -o itself)
    res = compare(
        a,
        b,
        out=out,
        cells=True if cells is None else cells,
        truth=truth,
        force=force,
        damos=False,
        offset_ns=offset,
        align=align,
        max_lag_ns=max_lag,
        lag_series=lag_series,
        addr_bin=addr_bin,
        time_bin_ns=time_bin,
        acc_thres=acc_thres,
        focus="all" if all_addresses else "active",
    )
    if not quiet:
        render_metrics(res.metrics)
        if out is not None and b is not None:
            cells = cells_path_for(out) if cells is None else cells
            typer.echo(f"wrote {out} and {cells}")
