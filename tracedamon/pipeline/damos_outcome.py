"""The modelled outcome of the actions of ``tracedamon damos`` on the recorded workload:
the workload's samples keyed as the outcome models key pages, and the pageout and
two-tier models (:mod:`tracedamon.engine.damos.outcome`) per run and time bin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..engine.damos import Context
from ..engine.damos.outcome import keys as addr_keys, pageout_outcome, tier_outcome
from ..engine.translate import merge_intervals
from ..errors import ConfigError, InputError
from ..schema import SAMPLES, conform
from ..store.trace import open_trace
from ..units import PAGE_SIZE
from .damos_history import Source
from .damos_tables import outcome_table
from .samples import targets_of


@dataclass
class Samples:
    time_ns: np.ndarray
    key: np.ndarray
    weight: np.ndarray
    note: str = ""
    dropped: int = 0
    outside: int = 0


def load_samples(
    samples, source: Source, ops: str, target_pids, spaces: dict, offset_ns: int, weight: str
) -> Samples | None:
    """The workload's samples as (time, address key, weight), in time order.

    paddr: a sample of a process the pagemap snapshots cover is keyed by its virtual
    page (``spaces``), any other by its physical address (needs ``phys_addr``); vaddr:
    by the target its pid is (a target without a pid takes every process's samples, as
    in replay)."""
    if weight not in ("period", "latency", "count"):
        raise ConfigError(
            f"weight={weight!r}: 'period', 'latency' or 'count'",
            cli_message=f"--weight {weight!r}: period, latency or count",
        )
    cols = ["time_ns", "pid", "addr", "phys_addr", "period", "weight"]
    if isinstance(samples, pa.Table):  # a samples table in memory (a sweep worker's)
        d = "samples table (in memory)"
        have = [c for c in cols if c in samples.column_names]
        tables = [conform(samples.select(have), SAMPLES, cols)]
    else:
        d = Path(samples) if samples is not None else source.trace_dir
        if d is None or not (Path(d) / "samples.parquet").exists():
            if samples is not None:
                raise InputError(f"{samples}: no samples table")
            return None
        tables = open_trace(d).iter_tables("samples", columns=cols)
    ts, ks, ws = [], [], []
    dropped = 0
    for t in tables:
        time = t.column("time_ns").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        pid = t.column("pid").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        addr = t.column("addr").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if weight == "count":
            w = np.ones(time.size)
        else:
            per = t.column("period").fill_null(1).to_numpy(zero_copy_only=False).astype(float)
            w = np.where(per > 0, per, 1.0)
            if weight == "latency":
                lat = t.column("weight")
                lv = lat.fill_null(0).to_numpy(zero_copy_only=False).astype(float)
                w = np.where(lv > 0, lv, w)
        if ops == "paddr":
            phys = (
                t.column("phys_addr").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            )
            sp = (
                np.array([spaces.get(int(p), 0) for p in pid], np.int64)
                if spaces and pid.size
                else np.zeros(pid.size, np.int64)
            )
            virt = (sp > 0) & (addr != 0)
            ok = (virt | (phys != 0)) & (time >= 0)
            key = np.where(virt, addr_keys(sp, addr), addr_keys(np.zeros_like(sp), phys))[ok]
        else:
            tix = targets_of(pid, list(target_pids))
            ok = (tix >= 0) & (addr != 0) & (time >= 0)
            key = addr_keys(tix[ok], addr[ok])
        dropped += int((~ok).sum())
        ts.append(time[ok] + int(offset_ns))
        ks.append(key)
        ws.append(w[ok])
    if not ts:
        return Samples(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), str(d), 0)
    time = np.concatenate(ts)
    o = np.argsort(time, kind="stable")
    return Samples(time[o], np.concatenate(ks)[o], np.concatenate(ws)[o], str(d), dropped)


def inside_history(smp: Samples, reg: dict) -> Samples:
    """vaddr: only the samples inside the monitored regions (of any snapshot) take part in
    the outcome -- pages outside them are none of the schemes' business."""
    _, us, ue = merge_intervals(
        reg["target"], addr_keys(reg["target"], reg["start"]), addr_keys(reg["target"], reg["end"])
    )
    j = np.searchsorted(us, smp.key, side="right") - 1
    inside = (j >= 0) & (smp.key < ue[np.maximum(j, 0)])
    return Samples(
        smp.time_ns[inside],
        smp.key[inside],
        smp.weight[inside],
        smp.note,
        smp.dropped,
        int((~inside).sum()),
    )


def model_outcome(events, smp: Samples | None, reg: dict, ctx: Context, fast_tier, bin_ns, say):
    meta: dict = {"modelled": True}
    parts = []
    if not events:
        return meta, outcome_table([])
    ev_run = np.array([e[0] for e in events], np.int64)
    ev_t = np.array([e[1] for e in events], np.int64)
    ev_kind = np.array([e[2] for e in events])
    ev_key_s = addr_keys([e[3] for e in events], [e[4] for e in events])
    ev_key_e = addr_keys([e[3] for e in events], [e[5] for e in events])
    bin_ns = int(bin_ns or ctx.aggr_us * 1000)
    if bin_ns <= 0:
        raise ConfigError("bin_ns must be positive", cli_message="--bin must be positive")
    s_t = smp.time_ns if smp is not None else np.zeros(0, np.int64)
    s_k = smp.key if smp is not None else np.zeros(0, np.int64)
    s_w = smp.weight if smp is not None else np.zeros(0)
    if smp is not None:
        meta["samples"] = {
            "source": smp.note,
            "used": int(s_t.size),
            "without_address": smp.dropped,
            "outside_the_monitored_regions": smp.outside,
        }
    pageout = ev_kind == "pageout"
    tier = (ev_kind == "hot") | (ev_kind == "cold")
    for run in np.unique(reg["run"]):
        rt = reg["time_ns"][reg["run"] == run]
        t0, t1 = int(rt.min()) - ctx.aggr_us * 1000, int(rt.max())
        edges = np.arange(t0, t1 + bin_ns, bin_ns, dtype=np.int64)
        if edges.size < 2:
            edges = np.array([t0, t0 + bin_ns], np.int64)
        ins = (s_t > t0) & (s_t <= t1)
        m = pageout & (ev_run == run)
        if m.any():
            r = pageout_outcome(ev_t[m], ev_key_s[m], ev_key_e[m], s_t[ins], s_k[ins], t1, edges)
            r["samples"] = bool(smp is not None and ins.any())
            meta["pageout"] = merge_totals(meta.get("pageout"), r)
            pb = r["per_bin"]
            for i in range(edges.size - 1):
                parts.append(
                    {
                        "run": int(run),
                        "time_ns": int(edges[i + 1]),
                        "model": "pageout",
                        "bytes_applied": int(pb["bytes_applied"][i]),
                        "bytes_out": int(pb["bytes_out"][i]),
                        "reaccesses": int(pb["reaccesses"][i]) if r["samples"] else None,
                        "reaccess_bytes": int(pb["reaccesses"][i]) * PAGE_SIZE
                        if r["samples"]
                        else None,
                    }
                )
        m = tier & (ev_run == run)
        if m.any() or fast_tier is not None:
            if fast_tier is None:
                say("migrate/lru actions: give --fast-tier BYTES for the two-tier outcome model")
                continue
            d = np.where(ev_kind[m] == "hot", 1, -1)
            r = tier_outcome(
                ev_t[m],
                ev_key_s[m],
                ev_key_e[m],
                d,
                s_t[ins],
                s_k[ins],
                s_w[ins],
                int(fast_tier),
                edges,
            )
            meta["tier"] = {k: v for k, v in r.items() if k != "per_bin"}
            pb = r["per_bin"]
            for i in range(edges.size - 1):
                fr, fr0 = pb["fast_ratio"][i], pb["fast_ratio_first_touch"][i]
                parts.append(
                    {
                        "run": int(run),
                        "time_ns": int(edges[i + 1]),
                        "model": "tier",
                        "weight": float(pb["weight"][i]),
                        "fast_ratio": None if np.isnan(fr) else float(fr),
                        "fast_ratio_first_touch": None if np.isnan(fr0) else float(fr0),
                        "bytes_promoted": int(pb["bytes_promoted"][i]),
                        "bytes_demoted": int(pb["bytes_demoted"][i]),
                    }
                )
    return meta, outcome_table(parts)


def merge_totals(a: dict | None, b: dict) -> dict:
    b = {k: v for k, v in b.items() if k != "per_bin"}
    if a is None:
        return b
    out = dict(a)
    for k in (
        "bytes_applied",
        "bytes_paged_out",
        "reaccesses",
        "reaccess_bytes",
        "bytes_out_at_end",
        "saving_gib_s",
    ):
        out[k] = a[k] + b[k]
    out["samples"] = a.get("samples") or b.get("samples")
    return out
