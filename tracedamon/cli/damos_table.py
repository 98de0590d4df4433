"""compare's terminal tables for two ``damos_apply`` tables (``tracedamon compare`` of
two DAMOS sources): the figures of :func:`tracedamon.export.damos_compare.compare_damos`
as rich tables.  The command line prints; the exporter only measures."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from ..units import format_bytes


def render_damos_metrics(m: dict, *, max_rows: int = 40) -> None:
    """compare's terminal tables for two damos_apply tables: the run's figures, then
    one line per application (at most ``max_rows``; mismatches first when cut)."""

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f} %"

    def short(n) -> str:  # bytes in a narrow column: one decimal, up to GiB
        return format_bytes(n, 1, largest="GiB")

    con = Console()
    t = Table(title=f"compare damos_apply  a = {m['a']['source']}   b = {m['b']['source']}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    ap = m["applications"]
    t.add_row("applications a / b", f"{ap['a']} / {ap['b']}")
    t.add_row(
        "paired (nearest in time, within half the window)",
        f"{ap['paired']}; only a {ap['only_a']}, only b {ap['only_b']}",
    )
    t.add_row(
        "paired: identical row for row / 100 % byte overlap",
        f"{ap['identical']} / {ap['full_overlap']}",
    )
    if ap.get("mean_abs_dt_ns") is not None:
        t.add_row("paired: mean |time b - time a|", f"{ap['mean_abs_dt_ns'] / 1e6:.3f} ms")
    for label, key in (
        ("bytes applied (summed per application)", "bytes"),
        ("addresses ever applied (time left out)", "addresses"),
    ):
        b = m[key]
        t.add_row(f"{label}: a / b", f"{format_bytes(b['a'])} / {format_bytes(b['b'])}")
        t.add_row("  both / either", f"{format_bytes(b['both'])} / {format_bytes(b['either'])}")
        t.add_row("  only a / only b", f"{format_bytes(b['only_a'])} / {format_bytes(b['only_b'])}")
        t.add_row("  Jaccard (both / either)", pct(b["jaccard"]))
    con.print(t)
    rows = m.get("per_application") or []
    if not rows:
        return
    shown = rows
    if len(rows) > max_rows:
        bad = [r for r in rows if not r["identical"]]
        shown = sorted(
            (bad + [r for r in rows if r["identical"]])[:max_rows],
            key=lambda r: (
                r["context"],
                r["scheme"],
                r["time_a_ns"] if r["time_a_ns"] is not None else r["time_b_ns"],
            ),
        )
    t0 = min(x for r in rows for x in (r["time_a_ns"], r["time_b_ns"]) if x is not None)
    u = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title="per application"
        + (
            f" ({len(shown)} of {len(rows)}, differing ones first)"
            if len(shown) < len(rows)
            else ""
        ),
    )
    for c in ("scheme", "t a (s)", "Δt ms", "bytes a", "bytes b", "both", "Jaccard", "same"):
        u.add_column(c, justify="left" if c == "scheme" else "right", no_wrap=True)
    for r in shown:
        ta = "-" if r["time_a_ns"] is None else f"{(r['time_a_ns'] - t0) / 1e9:.3f}"
        if r["time_a_ns"] is None:
            ta = f"(b: {(r['time_b_ns'] - t0) / 1e9:.3f})"
        dt = "-" if r["dt_ns"] is None else f"{r['dt_ns'] / 1e6:+.3f}"
        u.add_row(
            f"{r['context']}/{r['scheme']}",
            ta,
            dt,
            short(r["bytes_a"]),
            short(r["bytes_b"]),
            short(r["bytes_both"]),
            pct(r["jaccard"]),
            ("yes" if r["identical"] else "no") if r["paired"] else "unpaired",
        )
    con.print(u)
