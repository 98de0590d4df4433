"""The replay's monitor run: the engine chosen (the sparse fixed-granularity engine or the
listing one, with the accessed-bit check's folios), the snapshots handed to the writer as
they are taken, and the result checked (a replay that used no sample, wrote no snapshot or
gave no target a region is refused)."""

from __future__ import annotations

from ..engine.core import HistoryArrays, Monitor
from ..engine.fixed import FixedMonitor, expected_snapshots, grid_regions
from ..engine.folio import FolioModel
from ..errors import InputError
from .exits import ended_early
from .region_history import history_table
from .replay_output import engine_metadata
from .replay_start import check_span
from .replay_state import ReplayState

DENSE_FIXED_MAX_REGIONS = 1 << 22  # fixed granularity through the dense engine (abit)


def folio_model(r: ReplayState, access: str, folios: str):
    """The folios of the pagemap snapshots for the abit check, or None (4 KiB pages)."""
    if access == "abit" and folios == "auto" and r.pm is not None and len(r.pm):
        model = FolioModel(r.pm, [t.pid for t in r.targets], r.physical)
        if model.large:  # no large folio: 4 KiB pages, as without
            return model
    return None


def run_monitor(
    r: ReplayState,
    acc,
    t0,
    t_last,
    *,
    accessed_only,
    max_rows,
    fixed_engine,
    progress,
    writer,
    folios=None,
    in_loop=None,
) -> tuple[HistoryArrays, dict]:
    """Run the monitor; snapshots go to ``writer`` as they are taken (or stay in the
    returned arrays).  Returns the arrays and the engine's part of the metadata."""
    config, access, targets = r.config, r.access, r.targets
    pids = [t.pid for t in targets]
    sink = None
    if writer is not None:

        def sink(cols):
            writer.add(history_table(HistoryArrays(*cols), pids))

    use_fixed = (
        fixed_engine
        and config.fixed_granularity
        and access != "abit"
        and not config.tuning
        and in_loop is None
    )  # schemes: the listing engine
    reason = None
    if use_fixed:
        mon = FixedMonitor(config, targets, ops=r.ops)
        hist = mon.run(
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            max_rows=max_rows,
            progress=progress,
            sink=sink,
        )
        reason = mon.auto_accessed_only
    else:
        if config.fixed_granularity:
            # the grid at start, or at the end if the mappings grew by then
            nreg = max(grid_regions(targets, t, config.max_region) for t in (t0, t_last))
            rows = nreg * expected_snapshots(config, t0, t_last)
            if not accessed_only and max_rows is not None and rows > max_rows:
                accessed_only = True
                reason = (
                    f"every region of every snapshot would be {rows:,} rows (more "
                    f"than {max_rows:,}): only regions with accesses are written"
                )
        mon = Monitor(
            config,
            targets,
            ops=r.ops,
            access="abit" if access == "abit" else "perf",
            max_fixed_regions=DENSE_FIXED_MAX_REGIONS,
            folios=folios,
        )
        hist = mon.run(
            acc,
            t0,
            t_last,
            accessed_only=accessed_only,
            progress=progress,
            sink=sink,
            damos=in_loop.inloop if in_loop is not None else None,
        )
    if reason is not None:
        accessed_only = True
        r.warnings.append(
            reason + " (pass --accessed-only to ask for this, or a larger "
            "--max-rows / --min-region)"
        )
    return hist, engine_metadata(config, hist, accessed_only, reason, max_rows, use_fixed, folios)


def check_result(
    r: ReplayState, hist: HistoryArrays, used: int, t0: int, t_last: int, t0_source: str
) -> None:
    """Warn about untranslated samples; refuse a replay that used no sample, wrote no
    snapshot or gave no target a region."""
    if r.translator is not None and r.physical and r.n_untrans:
        r.warnings.append(
            f"{r.n_untrans} samples' virtual addresses did not translate "
            "to a frame (their page is present in none of the pagemap "
            "snapshots of their pid)"
        )
    if used == 0:
        if r.translator is not None and r.n_untrans:
            raise InputError(
                f"no sample's address translated through the pagemap "
                f"snapshots ({r.n_untrans:,} did not): the snapshots must "
                "be of the same run and processes as the samples"
            )

        def msg(source):
            return (
                f"no sample of the targets from t0 on ({t0} ns, {source}; the last "
                f"sample is at {t_last} ns): nothing to replay"
            )

        raise InputError(
            msg("start_ns" if t0_source == "--start" else t0_source), cli_message=msg(t0_source)
        )
    if hist.n_snapshots == 0:
        ended_early(r.targets, r.ops, t0, r.config)
        check_span(r.config, t0, t_last, t0_source, always=True)
    if all(e[2] == e[3] for e in hist.coverage):
        why = [w for w in r.warnings if "no three regions" in w]
        raise InputError(
            "no target had a region in any snapshot, so the history would be empty"
            + (": " + "; ".join(why) if why else " (the targets' ranges are empty)")
        )
