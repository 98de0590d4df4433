"""`tracedamon report heatmap|wss|access|summary|truth|attribute` (``report html`` and
``report damos`` have their own modules).

Imports follow :mod:`tracedamon.cli`'s start-up rule: at the top only what ``tracedamon
--help`` may load (typer, the floor, the CLI's helpers); the library (store, export,
pipeline: pandas and pyarrow) and rich's tables are imported as the first statements of
the function that uses them, each marked "heavy: see tracedamon.cli"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..units import format_bytes, parse_range
from . import options as opt
from . import report_damos, report_html
from .warn import one_line_warnings, with_history_warnings

HELP = (
    "Heatmaps, working-set size, access distributions and summaries of region histories "
    "(and of raw samples)."
)


def _ranges(specs: Optional[List[str]]):
    try:
        return [parse_range(s) for s in specs or []] or None
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _numbers(s: str, what: str):
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, not {s!r}") from None


def _check(out: Optional[Path], kind, force: bool, *inputs) -> None:
    """Refuse an output of ``kind`` (a tracedamon.store.atomic.Kind) before any work: the
    rule every command follows."""
    from ..store.atomic import check_output  # heavy: see tracedamon.cli

    if out is not None:
        check_output(out, kind, force=force, inputs=inputs)


def _has_regions(src: Path) -> bool:
    from ..store.trace import open_trace  # heavy: see tracedamon.cli

    tr = open_trace(src)
    return tr.path.is_file() or tr.has("regions")


HEATMAP_HELP = (
    "Time × address heat of a region history (mean nr_accesses per cell), of raw samples "
    "(--samples, or automatically for a trace directory without regions), or the difference "
    "of two region histories (--diff OTHER: rate of OTHER minus rate of SRC). Empty address "
    "gaps and long never-accessed stretches are collapsed (--collapse). Without --png the "
    "heatmap is printed as digit rows.\n\n"
    "Example:  tracedamon report heatmap damon.td --png heat.png"
)


@with_history_warnings
def heatmap_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    png: Optional[Path] = opt.png(),
    cells: Optional[Path] = typer.Option(
        None, "--cells", help="write the matrix as Parquet (t0_ns, t1_ns, start, end, value)"
    ),
    diff: Optional[Path] = typer.Option(
        None, "--diff", help="other region history: draw OTHER - SRC"
    ),
    samples: bool = typer.Option(False, "--samples", help="heat of the raw samples table"),
    phys: bool = typer.Option(False, "--phys", help="samples: use physical addresses"),
    pid: Optional[int] = opt.pid("samples: only this pid"),
    event: List[str] = opt.events("samples: only these events (repeatable)"),
    target: Optional[int] = typer.Option(None, "--target", help="regions: target (pid or index)"),
    range_: List[str] = opt.ranges("START-END address range to draw (repeatable)"),
    collapse: str = typer.Option(
        "auto",
        "--collapse",
        help="auto: drop gaps and long idle stretches; gaps: drop only "
        "uncovered gaps; none: one continuous axis",
    ),
    value: str = typer.Option("nr_accesses", "--value", help="nr_accesses|rate|hz"),
    time_bins: int = typer.Option(
        0, "--time-bins", help="rows (default 400 for PNG, 40 on the terminal)"
    ),
    addr_bins: int = typer.Option(
        0, "--addr-bins", help="columns (default 400 for PNG, 80 on the terminal)"
    ),
    offset: int = opt.offset("--diff: ns added to OTHER's times"),
    damo: bool = typer.Option(
        False,
        "--damo",
        help="damo's accounting (Hz, first snapshot backfilled over its "
        "ages, integer pixels, one continuous address axis), to put "
        "beside `damo report heatmap` output",
    ),
    width: int = opt.width(1000),
    height: int = opt.height(700),
    force: bool = opt.force(),
) -> None:
    from ..store.atomic import HEATMAP_CELLS, PNG_PLOT  # heavy: see tracedamon.cli
    from ..export import heatmap as hm_mod  # heavy: see tracedamon.cli

    _check(png, PNG_PLOT, force, src, diff)
    _check(cells, HEATMAP_CELLS, force, src, diff, png)

    tb = time_bins or (400 if png else 40)
    ab = addr_bins or (400 if png else 80)
    if diff is not None:
        hm = hm_mod.diff_heatmap(
            src,
            diff,
            offset_ns=offset,
            time_bins=tb,
            addr_bins=ab,
            collapse=collapse,
            ranges=_ranges(range_),
        )
    elif damo:
        rng = _ranges(range_)
        hm = hm_mod.damo_heatmap(
            src,
            time_bins=time_bins or (500 if png else 40),
            addr_bins=addr_bins or (500 if png else 80),
            target=target,
            addr_range=rng[0] if rng else None,
        )
    elif samples or not _has_regions(src):
        hm = hm_mod.sample_heatmap(
            src,
            time_bins=tb,
            addr_bins=ab,
            phys=phys,
            pid=pid,
            events=event,
            ranges=_ranges(range_),
        )
    else:
        hm = hm_mod.region_heatmap(
            src,
            time_bins=tb,
            addr_bins=ab,
            target=target,
            ranges=_ranges(range_),
            collapse=collapse,
            value=value,
        )
    if cells is not None:
        hm.write_cells(cells, force=force)
        typer.echo(f"wrote {cells}")
    if png is not None:
        hm.to_png(png, width=width, height=height, force=force)
        typer.echo(
            f"wrote {png}: {hm.kind} heatmap {hm.shape[0]}×{hm.shape[1]} cells, "
            f"{len(hm.segments)} address range(s)"
            + ("; " + "; ".join(hm.notes) if hm.notes else "")
        )
    else:
        typer.echo(hm.ascii(rows=min(tb, 200), cols=min(ab, 200)))


WSS_HELP = (
    "Working-set size (bytes of regions with nr_accesses >= --acc-thres) per snapshot: mean "
    "and percentiles (damo's definition; unlike damo no snapshot is skipped unless --exclude), "
    "and how much of it comes from regions of 2 MiB and 1 GiB or more (a region counts whole "
    "once it counts as accessed).\n\n"
    "Example:  tracedamon report wss replay.parquet --png wss.png"
)


@with_history_warnings
def wss_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    acc_thres: int = typer.Option(1, "--acc-thres"),
    sz_thres: int = typer.Option(1, "--sz-thres", help="smallest region counted, bytes"),
    percentiles: str = typer.Option("0,25,50,75,100", "--percentiles"),
    exclude: int = typer.Option(0, "--exclude", help="drop the first N snapshots"),
    png: Optional[Path] = opt.png("time series and distribution as PNG"),
    as_json: bool = opt.as_json(),
    force: bool = opt.force(),
) -> None:
    from ..store.atomic import PNG_PLOT  # heavy: see tracedamon.cli
    from ..export.wss import format_large, wss_png, wss_report  # heavy: see tracedamon.cli

    _check(png, PNG_PLOT, force, src)

    rep = wss_report(
        src,
        acc_thres=acc_thres,
        sz_thres=sz_thres,
        ps=_numbers(percentiles, "percentiles"),
        exclude=exclude,
    )
    if png is not None:
        wss_png(rep, png, title=f"working set size: {src}", force=force)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in rep.items() if k != "series"}, indent=2))
        return
    if rep["snapshots"] == 0:
        typer.echo("no snapshot")
        return
    typer.echo(
        f"# snapshots {rep['snapshots']}, mean {format_bytes(rep['mean_bytes'])} ({rep['mean_bytes']:.0f})"
    )
    for p, v in rep["percentiles"].items():
        typer.echo(f"{p:>6g} {v:>16.0f}  {format_bytes(v)}")
    typer.echo(f"# {format_large(rep)}")
    typer.echo(f"# {rep['region_rule']}")
    if png is not None:
        typer.echo(f"wrote {png}")


ACCESS_HELP = (
    "Distributions of bytes by temperature and by idle time (damo `report access` "
    "definitions), over all snapshots.\n\n"
    "Example:  tracedamon report access damon.td"
)


@with_history_warnings
def access_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    weights: str = typer.Option(
        "0,100,100", "--weights", help="temperature weights: size,rate,age"
    ),
    percentiles: str = typer.Option("0,1,5,10,25,50,75,90,95,99,100", "--percentiles"),
    png: Optional[Path] = opt.png("CDFs of bytes as PNG"),
    as_json: bool = opt.as_json(),
    force: bool = opt.force(),
) -> None:
    from ..store.atomic import PNG_PLOT  # heavy: see tracedamon.cli
    from rich.console import Console  # heavy: see tracedamon.cli
    from rich.table import Table  # heavy: see tracedamon.cli

    from ..export.access_report import access_png, access_report  # heavy: see tracedamon.cli

    _check(png, PNG_PLOT, force, src)

    rep = access_report(
        src, weights=_numbers(weights, "weights"), ps=_numbers(percentiles, "percentiles")
    )
    if png is not None:
        access_png(src, png, weights=_numbers(weights, "weights"), force=force)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    t = Table(title=f"bytes by temperature and idle time ({rep['snapshots']} snapshots)")
    t.add_column("percentile of bytes", justify="right")
    t.add_column("temperature", justify="right")
    t.add_column("idle time (s)", justify="right")
    for p in rep["temperature"]:
        tv, iv = rep["temperature"][p], rep["idle_us"][p]
        t.add_row(
            f"{p:g}",
            "-" if tv is None else f"{tv + 0.0:.0f}",
            "-" if iv is None else f"{iv / 1e6:.3f}",
        )
    Console().print(t)
    typer.echo(
        f"mean accessed {format_bytes(rep['mean_accessed_bytes'])} of {format_bytes(rep['mean_total_bytes'])}; "
        + ", ".join(
            f"idle >= {k}: {format_bytes(v)}" for k, v in rep["mean_bytes_idle_at_least"].items()
        )
    )
    if rep.get("idle_ages"):
        typer.echo(f"note: {rep['idle_ages']}")
    if png is not None:
        typer.echo(f"wrote {png}")


SUMMARY_HELP = (
    "What a region history (or, without regions, a samples table) holds: snapshots, time "
    "span, intervals, targets, regions per snapshot, address ranges, heat, working set.\n\n"
    "Example:  tracedamon report summary replay.parquet"
)


@with_history_warnings
def summary_cmd(
    src: Path = typer.Argument(..., help="trace directory or regions .parquet"),
    as_json: bool = opt.as_json(),
) -> None:
    from ..export import access_report as ar  # heavy: see tracedamon.cli

    if _has_regions(src):
        s = ar.summary(src)
        typer.echo(json.dumps(s, indent=2) if as_json else ar.format_summary(s))
    else:
        s = ar.sample_summary(src)
        typer.echo(
            json.dumps(s, indent=2) if as_json else "\n".join(f"{k:<16}{v}" for k, v in s.items())
        )


TRUTH_HELP = (
    "Ground truth for scoring a paddr history: the physical frames of a workload's "
    "labelled virtual areas, from pagemap snapshots. Areas come from a CSV/JSON of "
    "label,start,end (virtual addresses) or from a workload log with "
    "'layout area=NAME start=0x.. end=0x..' lines. Writes start,end,label CSV for "
    "`tracedamon compare --truth`.\n\n"
    "Example:  tracedamon report truth pagemap.td --areas workload.log -o truth.csv"
)


def truth_cmd(
    pagemap: Path = typer.Argument(..., help="trace directory with a pagemap table"),
    areas: Path = typer.Option(..., "--areas", help="virtual areas: CSV/JSON or workload log"),
    out: Path = opt.output("truth CSV to write", ...),
    snapshot: Optional[int] = typer.Option(
        None, "--snapshot", help="pagemap snapshot (default: the last)"
    ),
    pid: Optional[int] = opt.pid("process of the areas"),
    force: bool = opt.force(),
) -> None:
    from ..pipeline.truth import write_ground_truth  # heavy: see tracedamon.cli

    res = write_ground_truth(pagemap, areas, out, snapshot=snapshot, pid=pid, force=force)
    for c in res.labels:
        if not c.left_out:
            typer.echo(f"{c.label:<10} {c.pages:>10} pages  {c.ranges:>6} physical ranges")
        else:
            typer.echo(f"{c.label:<10} {0:>10} pages  {0:>6} physical ranges  (left out)")
            which = "the last snapshot" if snapshot is None else f"snapshot {snapshot}"
            typer.echo(
                f"tracedamon: warning: area {c.label}: no page present in {which} of "
                f"{pagemap}: it is not in {out}",
                err=True,
            )
    typer.echo(f"wrote {out}")


ATTRIBUTE_HELP = (
    "Which processes own the memory of a paddr region history: per region and "
    "snapshot, the bytes each pid maps (from pagemap snapshots nearest in time), and per "
    "pid the bytes in accessed regions.\n\n"
    "Example:  tracedamon report attribute damon.td --pagemap pagemap.td -o owners.parquet"
)


def attribute_cmd(
    src: Path = typer.Argument(..., help="paddr region history: trace directory or .parquet"),
    pagemap: Path = opt.pagemap("trace directory with a pagemap table", ...),
    out: Optional[Path] = opt.output("write the table (Parquet)"),
    offset: int = opt.offset("ns added to region times to reach the pagemap clock"),
    force: bool = opt.force(),
) -> None:
    from ..pipeline.truth import write_attribution  # heavy: see tracedamon.cli

    with one_line_warnings():
        res = write_attribution(src, pagemap, out, offset_ns=offset, force=force)
    if not res["per_pid"]:
        typer.echo("no region overlaps a frame of a captured process")
    else:
        nsnap = max(1, res["snapshots"])
        typer.echo(f"{'pid':>8} {'mean bytes':>14} {'accessed':>14}  (per snapshot)")
        for pid, (tot, acc) in res["per_pid"].items():
            typer.echo(
                f"{int(pid):>8} {tot / nsnap / 2**20:>11.1f} MiB {acc / nsnap / 2**20:>11.1f} MiB"
            )
    if out is not None:
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=HELP, no_args_is_help=True)
    group.command("heatmap", help=HEATMAP_HELP)(heatmap_cmd)
    group.command("wss", help=WSS_HELP)(wss_cmd)
    group.command("access", help=ACCESS_HELP)(access_cmd)
    group.command("summary", help=SUMMARY_HELP)(summary_cmd)
    group.command("truth", help=TRUTH_HELP)(truth_cmd)
    group.command("attribute", help=ATTRIBUTE_HELP)(attribute_cmd)
    report_html.register(group)
    report_damos.register(group)
    app.add_typer(group, name="report")
