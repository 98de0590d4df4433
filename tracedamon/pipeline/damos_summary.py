"""The summary ``tracedamon damos`` prints: the schemes and context, each scheme's stats
per run, the modelled outcome and the check against the recorded applications."""

from __future__ import annotations


def summary(result) -> str:
    """The schemes and context, each scheme's stats per run, the modelled outcome and
    the check of a :class:`~.damos_tables.DamosResult`."""
    m = result.metadata
    lines = [
        f"schemes: {len(m['schemes'])} ({'; '.join(m['scheme_sources'])}), kernel "
        f"{m['kernel']}, {m['context']['ops']}, sample {m['context']['sample_us']} us,"
        f" aggr {m['context']['aggr_us']} us"
    ]
    st = result.stats.to_pandas()
    for run, g in st.groupby("run") if len(st) else []:
        for sch, h in g.groupby("scheme"):
            last = h.iloc[-1]
            lines.append(
                f"run {run} scheme {sch}: {int(h.applied.sum())} steps applied of "
                f"{len(h)} due; tried {int(last.nr_tried)} regions "
                f"({int(last.sz_tried) / 2**20:.1f} MiB), applied {int(last.nr_applied)} "
                f"({int(last.sz_applied) / 2**20:.1f} MiB, modelled), quota exceeded "
                f"{int(last.qt_exceeds)} times"
            )
    o = m.get("outcome") or {}
    if o.get("pageout"):
        p = o["pageout"]
        lines.append(
            f"pageout (modelled): {p['bytes_paged_out'] / 2**20:.1f} MiB paged out; "
            + (
                f"{p['reaccesses']} pages re-accessed later "
                f"({p['reaccess_bytes'] / 2**20:.2f} MiB); saving "
                f"{p['saving_gib_s']:.3f} GiB*s"
                if p.get("samples")
                else "re-accesses unknown (no samples)"
            )
        )
    if o.get("tier"):
        t = o["tier"]
        fr = t["fast_ratio"]
        fr0 = t["fast_ratio_first_touch"]
        lines.append(
            f"two tiers (modelled, fast {t['fast_bytes'] / 2**20:.1f} MiB): "
            + (
                f"{fr:.3f} of sampled accesses from the fast tier (first-touch only: "
                f"{fr0:.3f}); promoted {t['bytes_promoted'] / 2**20:.1f} MiB, demoted "
                f"{t['bytes_demoted'] / 2**20:.1f} MiB"
                if fr is not None
                else "no samples"
            )
        )
    if result.check is not None:
        lines.append(format_check(result.check))
    return "\n".join(lines)


def format_check(c: dict) -> str:
    s = (
        f"check: {c['matched']} of {c['recorded']} recorded applications reproduced region "
        f"for region (start, end, nr_accesses, age)"
    )
    if c.get("first_excluded"):
        s += (
            f"; after the first of each run: {c['matched_after_first']} of "
            f"{c['recorded_after_first']}"
        )
    s += (
        f"; {c['predicted']} predicted, {c['predicted_only']} not in the trace; rows "
        f"{c['rows_matched']} of {c['rows_recorded']}"
    )
    for d in c.get("mismatches", [])[:3]:
        s += (
            f"\n  run {d['run']} snapshot {d['snapshot']} scheme {d['scheme']}: "
            f"{d['recorded_rows']} recorded rows, {d['predicted_rows']} predicted, first "
            f"difference at row {d['first_difference']}"
        )
    return s
