"""DAMOS inside the replay's kdamond loop: the schemes shape the region history.

:class:`InLoop` is what :meth:`tracedamon.engine.core.Monitor.run` calls where the
kernel calls ``kdamond_apply_schemes`` (``damos-spec.md`` §1.1): at an aggregation
boundary after the merge (and apply-mode's split), before the ``damon_aggregated``
snapshot, the reset and the random split; and, for a scheme whose apply interval is not
the aggregation interval, at its ``next_apply_sis`` between two aggregations (the loop
ends a segment there; ``nr_accesses`` is then the partial count and the pattern reads
the moving sum, spec §1.3).  Each step runs :func:`.core.apply_schemes` on the live
region arrays and puts its result back into the monitor: the quota, resume and
address-filter splits and the age resets change what the monitor merges, splits and
writes afterwards, as in the kernel.  The snapshot written right after an application
therefore shows its effects (applied regions with age 0, the DAMOS splits), like a
real trace's ``damon_aggregated`` lines after ``damos_before_apply``.

What each step did is kept as plain columns: the applications (``damos_before_apply``
rows, with the snapshot emitted right after them), the per-scheme stats of every due
step, and the runs each action was applied to (for the outcome models).  No I/O.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..lifetime import mm_exit
from .core import apply_schemes
from .state import new_state
from .scheme import Context, Profile, Scheme

APP_COLUMNS = (
    "run",
    "snapshot",
    "time_ns",
    "scheme",
    "target",
    "nr_regions",
    "start",
    "end",
    "nr_accesses",
    "age",
    "kdamond_pid",
)
REGION_FIELDS = ("start", "end", "nr", "bp", "last", "age")
# what an action does to the pages it is applied to, for the outcome models
KIND_OF = {
    "pageout": "pageout",
    "cold": "pageout",
    "migrate_hot": "hot",
    "lru_prio": "hot",
    "migrate_cold": "cold",
    "lru_deprio": "cold",
}


class InLoop:
    """The schemes of one replayed DAMON context and what they did.

    Parameters
    ----------
    schemes : the schemes, in the context's order
    ctx : the context the walk needs (ops, configured intervals, DAMON_MIN_REGION)
    profile : kernel profile name or :class:`~.scheme.Profile`
    ops_model : the ops' side of an application (:class:`~.ops_model.PageModel`);
        None: every page passes, every action succeeds
    run : the ``run`` number written with the rows
    """

    def __init__(
        self,
        schemes: Sequence[Scheme],
        ctx: Context,
        profile: str | Profile = "released",
        *,
        ops_model: Callable | None = None,
        run: int = 0,
    ):
        self.state = new_state(schemes, ctx, profile)
        self.ops_model = ops_model
        self.run = int(run)
        self._apps: list[tuple] = []  # per step with applications: (snap, t, apps)
        self._kind = [KIND_OF.get(s.action, "") for s in self.state.schemes]
        self.stat_rows: list[tuple] = []
        self.events: list[tuple] = []  # (run, time, kind, target, start, end)
        self.steps = 0
        self.changed_steps = 0

    def next_due(self) -> int:
        """The earliest ``next_apply_sis`` of the schemes (the loop stops there)."""
        return min(st.next_apply_sis for st in self.state.states)

    def step(self, mon, psi: int, now_ns: int, snap: int, left_window_bp: int = 0) -> None:
        """``kdamond_apply_schemes`` on ``mon``'s regions at sample interval ``psi``;
        ``snap`` is the number of the snapshot the loop emits next.  A target of
        ``mon`` whose mm is gone (its leader exited) is walked like the others, but
        the ops apply nothing to it (:func:`.ops_model.without_mm`)."""
        regs = {k: mon.arr[k] for k in REGION_FIELDS}
        regs["toff"] = mon.toff
        res = apply_schemes(
            self.state,
            regs,
            sis=psi,
            now_ns=now_ns,
            left_window_bp=left_window_bp,
            ops_model=self.ops_model,
            mm_exit_ns=[mm_exit(tg) for tg in mon.targets],
        )
        self.steps += 1
        a = res.applications
        n = res.n_applications
        out = res.regions
        if n or int(out["toff"][-1]) != int(mon.toff[-1]):
            # age resets (only with an application) or splits (a resume or an address
            # filter split may come without one): the monitor goes on from here
            self.changed_steps += 1
            mon.arr = {k: np.ascontiguousarray(out[k]) for k in REGION_FIELDS}
            mon.toff = np.ascontiguousarray(out["toff"])
        if n:
            self._apps.append(
                (
                    snap,
                    int(now_ns),
                    {
                        k: a[k]
                        for k in (
                            "scheme",
                            "target",
                            "start",
                            "end",
                            "nr_accesses",
                            "age",
                            "nr_regions",
                        )
                    },
                )
            )
            if any(self._kind):
                self._note_events(a, int(now_ns))
        for j, st in enumerate(self.state.states):
            if res.due[j]:
                self.stat_rows.append(
                    (
                        self.run,
                        snap,
                        int(now_ns),
                        j,
                        bool(res.ran[j]),
                        st.nr_tried,
                        st.sz_tried,
                        st.nr_applied,
                        st.sz_applied,
                        st.sz_ops_filter_passed,
                        st.qt_exceeds,
                        st.min_score,
                        st.esz,
                        st.charged_sz,
                    )
                )

    @property
    def apps(self) -> dict:
        """The applications so far, one int64 array per column (:data:`APP_COLUMNS`;
        ``kdamond_pid`` is a list of None: a replay has no kdamond)."""
        sizes = np.array([a["start"].size for _, _, a in self._apps], np.int64)
        n = int(sizes.sum())
        c: dict = {
            "run": np.full(n, self.run, np.int64),
            "snapshot": np.repeat(np.array([x[0] for x in self._apps], np.int64), sizes),
            "time_ns": np.repeat(np.array([x[1] for x in self._apps], np.int64), sizes),
            "kdamond_pid": [None] * n,
        }
        for k in ("scheme", "target", "nr_regions", "start", "end", "nr_accesses", "age"):
            c[k] = (
                np.concatenate([a[k] for _, _, a in self._apps]).astype(np.int64)
                if self._apps
                else np.zeros(0, np.int64)
            )
        return c

    def _note_events(self, a: dict, t: int) -> None:
        """The address runs each application's action was applied to (the ops model's
        segments where it has them, else the whole region)."""
        kinds = [self._kind[x] for x in a["scheme"].tolist()]
        m = self.ops_model
        seg_app = getattr(m, "seg_app", None)
        if seg_app is not None:
            for q in range(seg_app.size):
                i = int(seg_app[q])
                if kinds[i]:
                    self.events.append(
                        (
                            self.run,
                            t,
                            kinds[i],
                            int(a["target"][i]),
                            int(m.seg_start[q]),
                            int(m.seg_end[q]),
                        )
                    )
            return
        for i, k in enumerate(kinds):
            if k and a["has_mm"][i]:
                self.events.append(
                    (self.run, t, k, int(a["target"][i]), int(a["start"][i]), int(a["end"][i]))
                )
