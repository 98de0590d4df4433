"""The orchestration's home (tracedamon.pipeline) and the deprecated paths that stay for
one release; the operations-set registry the engine's core calls."""

import importlib

import numpy as np
import pytest

from tracedamon.engine import ops as ops_sets
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.errors import ConfigError

MOVED = {
    "tracedamon.damos_run": "tracedamon.pipeline.damos",
    "tracedamon.damos_history": "tracedamon.pipeline.damos_history",
    "tracedamon.schemes": "tracedamon.pipeline.schemes",
    "tracedamon.sweep": "tracedamon.pipeline.sweep",
    "tracedamon.sweep.batch": "tracedamon.pipeline.sweep.batch",
    "tracedamon.sweep.grid": "tracedamon.pipeline.sweep.grid",
    "tracedamon.sweep.runner": "tracedamon.pipeline.sweep.runner",
    "tracedamon.sweep.summary": "tracedamon.pipeline.sweep.summary",
    "tracedamon.sweep.task": "tracedamon.pipeline.sweep.task",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_are_the_moved_modules(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_public_api_names_resolve_to_the_pipeline():
    import tracedamon
    from tracedamon.pipeline.damos import damos
    from tracedamon.pipeline.replay import replay

    assert tracedamon.replay is replay and tracedamon.damos is damos
    assert callable(tracedamon.sweep)


def test_registry_holds_the_three_sets_and_refuses_others():
    assert set(ops_sets.REGISTRY) == {"vaddr", "fvaddr", "paddr"}
    assert ops_sets.get("paddr").space == "physical"
    assert {ops_sets.get(n).space for n in ("vaddr", "fvaddr")} == {"virtual"}
    # only vaddr has an update hook (fvaddr and paddr: the kernel's NULL update)
    assert [n for n, o in ops_sets.REGISTRY.items() if o.update is not None] == ["vaddr"]
    with pytest.raises(ConfigError, match="ops must be one of vaddr, fvaddr, paddr") as e:
        ops_sets.get("kvm")
    assert e.value.cli_message.startswith("--ops must be one of")


def test_the_core_calls_the_sets_update_hook():
    """The same moving ranges: vaddr's update refits the regions to them, fvaddr keeps its
    first ranges (it has no update hook)."""
    cfg = MonitorConfig(
        sample_us=1000,
        aggr_us=4000,
        update_us=8000,
        min_nr_regions=3,
        max_nr_regions=30,
        min_nr_regions_mode="apply",
    )

    def ranges_at(t):
        return np.array([(0x1000, 0x5000)] if t < 8_000_000 else [(0x9000, 0xD000)])

    times = np.arange(0, 16_000_000, 500_000)
    acc = AccessSamples(times, np.zeros(times.size), np.full(times.size, 0x1000))
    ends = {}
    for name in ("vaddr", "fvaddr"):
        h = Monitor(cfg, [Target(ranges_at, pid=1)], ops=name).run(acc, 0, int(times[-1]))
        last = h.snapshot == h.n_snapshots - 1
        ends[name] = (int(h.start[last].min()), int(h.end[last].max()))
    assert ends == {"vaddr": (0x9000, 0xD000), "fvaddr": (0x1000, 0x5000)}
