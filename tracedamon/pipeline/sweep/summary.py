"""What a sweep found: the best configurations per metric and the Pareto front of
accuracy against monitoring cost (access checks per second).

Rows are first averaged per configuration (over sources and seeds); error rows
are left out.  A metric's direction comes from its name: correlations, precision,
recall and F1 are better higher; errors and differences are better lower; of the
DAMOS figures (``--scheme``), the pageout saving (GiB*s) and the fast-tier hit ratio
are better higher, the re-accesses of paged-out memory (count, bytes) lower; other
columns (sizes, counts) have no "best".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ...errors import ConfigError
from ...store.atomic import PNG_PLOT, atomic_path, png_metadata

COST = "checks_per_s"
_HIGHER = re.compile(r"(spearman|pearson|correlation|precision|recall|f1)$")
_LOWER = re.compile(
    r"(error|mae|rmse|mae_bytes|abs_diff|abs_rate_diff|rms_rate_diff|"
    r"max_abs_error|abs_diff_s)$"
)
_DAMOS = {
    "damos_pageout_saving_gib_s": 1,
    "damos_tier_fast_ratio": 1,
    "damos_pageout_reaccesses": -1,
    "damos_pageout_reaccess_bytes": -1,
}


def direction(column: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when neither."""
    if column in (COST, "regions_mean", "regions_max"):
        return -1
    if column in _DAMOS:
        return _DAMOS[column]
    if not (column.startswith("ref_") or column.startswith("truth_")):
        return 0
    if "per_time" in column or column.startswith(("ref_a_", "ref_grid_", "ref_alignment_")):
        return 0
    if _HIGHER.search(column):
        return 1
    if _LOWER.search(column):
        return -1
    return 0


def default_accuracy(columns) -> str | None:
    """The accuracy column of the Pareto front: hot-set F1 at θ = 0.5 against the
    reference (else against the truth), else the first heat or truth correlation."""
    cols = list(columns)
    for pat in (
        r"^ref_hot_0_5_f1$",
        r"^truth_hot_0_5_f1$",
        r"^ref_.*f1$",
        r"^truth_.*f1$",
        r"^ref_heat_spearman$",
        r"^truth_correlation_spearman$",
        r"spearman$",
    ):
        hit = [c for c in cols if re.search(pat, c)]
        if hit:
            return hit[0]
    return None


def per_configuration(df: pd.DataFrame, grid_columns: list[str]) -> pd.DataFrame:
    """Mean of every numeric column per configuration (config_id), error rows left
    out; the grid columns describe each configuration; ``runs`` counts its rows."""
    ok = df[df["error"].isna()] if "error" in df else df
    if ok.empty:
        return pd.DataFrame(columns=["config_id", *grid_columns, "runs"])
    num = [
        c
        for c in ok.columns
        if c not in grid_columns
        and c not in ("seed",)
        and pd.api.types.is_numeric_dtype(ok[c])
        and not pd.api.types.is_bool_dtype(ok[c])
    ]
    g = ok.groupby("config_id", sort=False)
    out = g[num].mean()
    out["runs"] = g.size()
    desc = ok.drop_duplicates("config_id").set_index("config_id")[grid_columns]
    return desc.join(out).reset_index()


def describe(row, grid_columns: list[str]) -> str:
    return " ".join(f"{c}={_fmt(row[c])}" for c in grid_columns) or row["config_id"]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "none"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def best(per_cfg: pd.DataFrame, grid_columns: list[str]) -> pd.DataFrame:
    """Per metric with a direction: the best configuration and its mean value."""
    rows = []
    for c in per_cfg.columns:
        d = direction(c)
        if d == 0 or c in grid_columns:
            continue
        v = pd.to_numeric(per_cfg[c], errors="coerce")
        if v.notna().sum() == 0:
            continue
        i = int(np.nanargmax(v.to_numpy(float) * d))
        rows.append(
            {
                "metric": c,
                "better": "higher" if d > 0 else "lower",
                "value": float(v.iat[i]),
                "config_id": per_cfg["config_id"].iat[i],
                "configuration": describe(per_cfg.iloc[i], grid_columns),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "better", "value", "config_id", "configuration"])


def pareto(per_cfg: pd.DataFrame, accuracy: str, cost: str = COST) -> pd.DataFrame:
    """The configurations no other one beats on both accuracy (higher) and cost
    (lower), sorted by cost."""
    if accuracy not in per_cfg or cost not in per_cfg:
        return per_cfg.iloc[0:0]
    d = per_cfg[per_cfg[accuracy].notna() & per_cfg[cost].notna()]
    d = d.sort_values([cost, accuracy], ascending=[True, False], kind="stable")
    keep, top = [], -np.inf
    for i, a in zip(d.index, d[accuracy].to_numpy(float)):
        if a > top:
            keep.append(i)
            top = a
    return d.loc[keep]


def draw_pareto(
    per_cfg: pd.DataFrame,
    front: pd.DataFrame,
    accuracy: str,
    png,
    grid_columns: list[str],
    title: str = "",
    cost: str = COST,
    *,
    force: bool = False,
) -> None:
    """Every configuration as a point (cost, accuracy), the front joined by a line
    and labelled with its configurations; written atomically."""
    # matplotlib is optional (tracedamon[plots]) and slow to import: only for a PNG
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = per_cfg[per_cfg[accuracy].notna() & per_cfg[cost].notna()]
    n_lines = min(len(front), 13)
    fig, ax = plt.subplots(figsize=(8, 5.5 + 0.14 * n_lines), dpi=110)
    ax.scatter(d[cost], d[accuracy], s=22, color="#9aa5b1", label="configurations")
    ax.plot(front[cost], front[accuracy], "-o", color="#c0392b", ms=6, lw=1.6, label="Pareto front")
    lines = []
    for i, (_, r) in enumerate(front.iterrows(), start=1):
        ax.annotate(
            str(i),
            (r[cost], r[accuracy]),
            fontsize=8,
            color="#c0392b",
            fontweight="bold",
            xytext=(4, 4),
            textcoords="offset points",
        )
        lines.append(f"{i}: {describe(r, grid_columns)}")
    if lines:
        shown = lines[:12] + ([f"... {len(lines) - 12} more"] if len(lines) > 12 else [])
        fig.text(
            0.01, 0.01, "\n".join(shown), fontsize=7, family="monospace", va="bottom", ha="left"
        )
    if len(d) and (d[cost] > 0).all() and d[cost].max() / max(d[cost].min(), 1e-9) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("access checks per second (mean regions / sampling interval)")
    ax.set_ylabel(accuracy + " (mean over sources and seeds)")
    ax.set_title(title or f"sweep: {len(d)} configurations", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout(rect=(0, 0.03 + 0.14 * n_lines / (5.5 + 0.14 * n_lines), 1, 1))
    with atomic_path(png, kind=PNG_PLOT, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    plt.close(fig)


def write_pareto(df: pd.DataFrame, png, accuracy: str | None = None, *, force: bool = False):
    """Draw a sweep table's Pareto front (:func:`draw_pareto` of the configurations'
    means) into ``png``: ``accuracy`` against access checks per second."""
    meta = df.attrs["tracedamon_sweep"]
    gc = meta["grid_columns"]
    per = per_configuration(df, gc)
    acc = accuracy or default_accuracy(per.columns)
    if acc is None or acc not in per:
        why = "no accuracy column to draw (give {} or {}, or name one with {})"
        raise ConfigError(
            "png: " + why.format("reference", "truth", "accuracy"),
            cli_message="--png: " + why.format("--reference", "--truth", "--accuracy"),
        )
    draw_pareto(
        per,
        pareto(per, acc),
        acc,
        png,
        gc,
        title=f"{len(meta['sources'])} source(s), {len(per)} configurations",
        force=force,
    )
