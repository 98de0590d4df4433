"""Sweep grids: replay options by their command-line names, and the cross product.

A grid maps option names (``tracedamon replay``'s own, without the dashes:
``sample-us``, ``min-nr-regions``, ``access``, ...) to lists of values.  Each
value is parsed as ``replay`` parses it; options that take several values at once
(``event``, ``pid``, ``range``, ``fix``) join them with ``+`` inside one grid value:
``--grid event=page-faults,page-faults+minor-faults`` sweeps one event against the
two OR'ed.

:func:`configurations` expands a grid (plus the options held fixed) into the
configurations of a sweep, in a stable order: the cross product of the grid keys in
the order they were given, each key's values in their order, then the seeds.
A configuration is seed-dependent unless the replay is deterministic whatever the
seed (fixed granularity with a perf-based access check, DESIGN §4); those run once,
with seed 0 (or the single fixed seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable

from ...engine.config import MonitorConfig
from ...engine.profiles import DEFAULT_KERNEL, PROFILES
from ...errors import ConfigError
from ..replay import MAX_ROWS

FIXES = {"age-once": "fix_age_once", "rand32": "fix_rand32", "pa-cache": "fix_pa_cache"}


def grid_error(name: str, problem: str) -> ConfigError:
    """A bad grid value or key: ``grid NAME: problem`` (``--grid NAME: ...`` on the
    command line)."""
    return ConfigError(f"grid {name}: {problem}", cli_message=f"--grid {name}: {problem}")


def _int(text: str, name: str) -> int:
    try:
        return int(str(text).strip().replace("_", ""), 0)
    except ValueError:
        raise grid_error(name, f"{text!r} is not an integer (decimal or 0x-hex)") from None


def _opt_int(text: str, name: str) -> int | None:
    return None if str(text).strip().lower() in ("none", "") else _int(text, name)


def _word(text: str, name: str) -> str:
    t = str(text).strip()
    if not t:
        raise grid_error(name, "empty value")
    return t


def _many(text: str, name: str) -> str:
    parts = [p.strip() for p in str(text).split("+")]
    if not all(parts):
        raise grid_error(name, f"{text!r} has an empty part")
    return "+".join(parts)


def _pids(text: str, name: str) -> str:
    return "+".join(str(_int(p, name)) for p in _many(text, name).split("+"))


def _bool(text: str, name: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise grid_error(name, f"{text!r} is not true or false")


def _fixes(text: str, name: str) -> str:
    t = str(text).strip().lower()
    if t in ("none", ""):
        return "none"
    parts = _many(t, name).split("+")
    bad = [p for p in parts if p not in FIXES]
    if bad:
        raise grid_error("fix", f"{bad[0]!r}: choose from {', '.join(FIXES)} or none")
    return "+".join(parts)


def _start(text: str, name: str) -> str | int:
    t = str(text).strip()
    if t.lower() in ("auto", "first"):
        return t.lower()
    return _int(t, name)


def _kernel(text: str, name: str) -> str:
    t = str(text).strip()
    if t not in PROFILES:
        raise grid_error(name, f"{t!r}: choose from {', '.join(PROFILES)}")
    return t


@dataclass(frozen=True)
class Option:
    """One replay option a sweep can vary: how its text parses, and where the value goes
    (a :class:`~tracedamon.engine.config.MonitorConfig` field, or a replay argument)."""

    name: str  # the command-line name, without dashes
    parse: Callable[[str, str], Any]
    target: str  # "config" or "replay"
    field: str  # MonitorConfig field / replay keyword

    @property
    def column(self) -> str:
        """The output column: the name with underscores (SQL-friendly)."""
        return self.name.replace("-", "_")


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in [
        Option("sample-us", _int, "config", "sample_us"),
        Option("aggr-us", _int, "config", "aggr_us"),
        Option("update-us", _int, "config", "update_us"),
        Option("min-nr-regions", _int, "config", "min_nr_regions"),
        Option("max-nr-regions", _int, "config", "max_nr_regions"),
        Option("min-region", _int, "config", "min_region"),
        Option("max-region", _opt_int, "config", "max_region"),
        Option("min-nr-regions-mode", _word, "config", "min_nr_regions_mode"),
        Option("goal-access-bp", _int, "config", "goal_access_bp"),
        Option("goal-aggrs", _int, "config", "goal_aggrs"),
        Option("goal-min-sample-us", _int, "config", "goal_min_sample_us"),
        Option("goal-max-sample-us", _int, "config", "goal_max_sample_us"),
        Option("rng-streams", _word, "config", "rng_streams"),
        Option("seed", _int, "config", "seed"),
        Option("fix", _fixes, "config", "fix"),
        Option("kernel", _kernel, "config", "kernel"),
        Option("ops", _word, "replay", "ops"),
        Option("access", _word, "replay", "access"),
        Option("event", _many, "replay", "events"),
        Option("pid", _pids, "replay", "pids"),
        Option("range", _many, "replay", "ranges"),
        Option("start", _start, "replay", "start_ns"),
        Option("accessed-only", _bool, "replay", "accessed_only"),
        Option("max-rows", _int, "replay", "max_rows"),
    ]
}


def option(name: str) -> Option:
    key = name.strip().lstrip("-")
    o = OPTIONS.get(key) or OPTIONS.get(key.replace("_", "-"))
    if o is None:
        why = f"unknown option {name!r}; choose from {', '.join(sorted(OPTIONS))}"
        raise ConfigError(f"grid: {why}", cli_message=f"--grid: {why}")
    return o


def parse_grid(specs: list[str] | dict) -> dict[str, list]:
    """``["sample-us=5000,10000", "access=perf,abit"]`` (or a dict of name → values,
    values as text or already parsed) → {option name: [parsed values]}, in order."""
    items: list[tuple[str, list]] = []
    if isinstance(specs, dict):
        for k, v in specs.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            items.append((k, [str(x) if x is not None else "none" for x in vals]))
    else:
        for spec in specs:
            if "=" not in spec:
                raise ConfigError(
                    f"grid {spec!r}: expected KEY=V1,V2,...",
                    cli_message=f"--grid {spec!r}: expected KEY=V1,V2,...",
                )
            k, _, v = spec.partition("=")
            items.append((k, v.split(",")))
    grid: dict[str, list] = {}
    for k, vals in items:
        o = option(k)
        if o.name in grid:
            raise ConfigError(
                f"grid: {o.name} is given twice", cli_message=f"--grid {o.name} is given twice"
            )
        parsed = [o.parse(x, o.name) for x in vals]
        if not parsed:
            raise grid_error(o.name, "no values")
        if len(set(map(repr, parsed))) != len(parsed):
            raise grid_error(o.name, "a value is repeated")
        grid[o.name] = parsed
    return grid


def replay_arguments(values: dict[str, Any]) -> dict:
    """{option name: parsed value} → the keyword arguments of ``tracedamon.replay``
    (MonitorConfig fields and replay options; ``fix`` becomes the ``fix_*`` flags;
    ``event``/``pid``/``range`` lists)."""
    kw: dict[str, Any] = {}
    for name, v in values.items():
        o = OPTIONS[name]
        if name == "fix":
            for f in [] if v == "none" else v.split("+"):
                kw[FIXES[f]] = True
        elif name in ("event", "range"):
            kw[o.field] = [] if v is None else v.split("+")
        elif name == "pid":
            kw[o.field] = [] if v is None else [int(p) for p in v.split("+")]
        elif name == "kernel":
            # the default profile is named by no argument: its configuration ids are
            # those of sweeps that do not name a kernel
            if v != DEFAULT_KERNEL:
                kw[o.field] = v
        else:
            kw[o.field] = v
    return kw


def seed_dependent(kw: dict) -> bool:
    """Whether a replay's result depends on its seed: every replay except fixed
    granularity (min_region == max_region) with a perf-based check, which uses no
    random draw (DESIGN §4)."""
    mn, mx = kw.get("min_region", 4096), kw.get("max_region")
    fixed = mx is not None and mx == mn
    return not (fixed and kw.get("access", "perf") != "abit" and not kw.get("goal_aggrs"))


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj, n: int = 16) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Configuration:
    """One point of the grid with its seed: ``values`` by option name (grid keys only),
    ``replay`` the full keyword arguments (fixed options included)."""

    index: int
    values: dict
    seed: int
    seed_dependent: bool
    replay: dict

    @property
    def config_id(self) -> str:
        """A stable id of the replay arguments except the seed (same id over seeds)."""
        return digest({k: v for k, v in self.replay.items() if k != "seed"}, 12)


def defaults() -> dict:
    """Every replay argument a sweep can set, at its default (``tracedamon replay``'s):
    configurations name all of them, so two grids that reach the same replay give it the
    same id."""
    d = {f.name: f.default for f in dataclasses.fields(MonitorConfig)}
    # sweeps replay the default kernel profile: its name and the mode it resolves to
    # keep the configuration ids that sweeps made before profiles existed
    d.pop("kernel", None)
    if d.get("min_nr_regions_mode") is None:
        d["min_nr_regions_mode"] = "legacy"
    d.update(
        ops="vaddr",
        access="perf",
        events=[],
        pids=[],
        ranges=[],
        start_ns=None,
        accessed_only=False,
        max_rows=MAX_ROWS,
    )
    return d


def configurations(
    grid: dict[str, list], fixed: dict[str, Any] | None = None, seeds: int = 1
) -> list[Configuration]:
    """The sweep's configurations: the cross product of ``grid`` × seeds, with the
    ``fixed`` options (option name → parsed value) in every one of them."""
    fixed = dict(fixed or {})
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(
            f"seeds must be a positive integer, not {seeds!r}",
            cli_message=f"--seeds must be a positive integer, not {seeds!r}",
        )
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"{both[0]} is both a grid key and a fixed option")
    if "seed" in grid and seeds > 1:
        raise ConfigError(
            "give either seeds=N or a seed grid, not both",
            cli_message="give either --seeds N or a seed grid, not both",
        )
    base_seed = int(fixed.get("seed", 0))
    keys = list(grid)
    base = defaults()
    out: list[Configuration] = []
    for i, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        kw = {**base, **replay_arguments({**fixed, **values})}
        if "kernel" in kw and "min-nr-regions-mode" not in {**fixed, **values}:
            # a profile's own min_nr_regions handling, as `replay --kernel` takes it
            kw["min_nr_regions_mode"] = PROFILES[kw["kernel"]].min_nr_regions_mode or "legacy"
        dep = seed_dependent(kw)
        explicit = "seed" in values
        for s in range(base_seed, base_seed + seeds) if dep and not explicit else [None]:
            seed = int(values["seed"]) if explicit else (base_seed if s is None else s)
            out.append(Configuration(i, values, seed, dep, {**kw, "seed": seed}))
    return out
