"""``MonitorConfig``: DAMON's monitoring attributes for one replay, validated.

Field names follow the kernel's sysfs files where one exists (``sample_us``,
``aggr_us``, ``update_us``, ``min_nr_regions``, ``max_nr_regions``); the
defaults are the kernel's (spec §1).  ``min_region`` is the context's
``min_region_sz`` (alignment of every region boundary and the split floor);
``max_region`` is the perf-access RFC's per-target ``region_sz/max``.  Both are
powers of two; ``min_region == max_region`` asks for fixed-granularity
monitoring (regions of exactly that size, never merged or split).
``min_region`` may go below the page size, down to a cache line
(``MIN_REGION_FLOOR``, 64 bytes): perf samples know an access to the byte, so the
perf checks can monitor sub-page regions (the kernel's algorithms with
DAMON_MIN_REGION replaced by it).  The accessed-bit check cannot: the replay
refuses ``access="abit"`` with a minimum below the page size.

Invalid values raise :class:`~tracedamon.errors.ConfigError` with the rule the
kernel applies (``damon_set_attrs``, ``damon_commit_ctx``, the RFC's commit
checks).  ``to_dict()`` is what goes into the output's Parquet metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError
from ..units import PAGE_SIZE
from .profiles import kernel_profile

MIN_REGION_FLOOR = 64  # a cache line: the smallest sub-page region size
MODES = ("legacy", "apply")


def _pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


def _refused(text: str, *fields: str) -> ConfigError:
    """A ConfigError whose ``text`` names the configuration's ``fields`` at ``{0}``,
    ``{1}``...: as the Python arguments (``sample_us``) and, for the command line, as
    the options (``--sample-us``)."""
    flags = ["--" + f.replace("_", "-") for f in fields]

    def named(names) -> str:
        # not str.format: the text holds the refused value's repr, braces and all; each
        # field's place comes before the value in every message, so the first is its own
        out = text
        for i, n in enumerate(names):
            out = out.replace("{%d}" % i, n, 1)
        return out

    return ConfigError(named(fields), cli_message=named(flags))


@dataclass(frozen=True)
class MonitorConfig:
    """DAMON monitoring attributes plus the replay's reproducibility knobs.

    Quirk switches (spec §16) default to mirroring the kernel:
    ``fix_age_once`` counts ages on the first merge pass only (Q3),
    ``fix_rand32`` samples regions of 4 GiB and more over their full width
    (Q1), ``fix_pa_cache`` stops the paddr accessed-bit cache from reusing a
    verdict across sample intervals and targets (Q5).  ``age_zero_reset``
    (v6.18+) and ``merge_escalation`` (mid-2024) select kernel generations.
    ``rng_streams="split"`` draws sampling addresses and split points from two
    generators (spec §15.1); the default is the kernel's single stream.

    ``kernel`` names the kernel profile (:mod:`tracedamon.engine.profiles`):
    ``released`` (default), ``released-nofix`` (the same monitoring) or
    ``mainline-2026``, which brings its own min_nr_regions handling (``apply``; an
    explicit ``legacy`` is refused), counts ages once per merge (``fix_age_once``)
    and draws without 32-bit truncation (``fix_rand32``): those fields are set
    accordingly.  ``min_nr_regions_mode=None`` means the profile's mode (``legacy``
    for released kernels).
    """

    sample_us: int = 5_000
    aggr_us: int = 100_000
    update_us: int = 60_000_000
    min_nr_regions: int = 10
    max_nr_regions: int = 1_000
    min_region: int = PAGE_SIZE
    max_region: int | None = None
    min_nr_regions_mode: str | None = None
    goal_access_bp: int = 0
    goal_aggrs: int = 0
    goal_min_sample_us: int = 0
    goal_max_sample_us: int = 0
    seed: int = 0
    fix_age_once: bool = False
    fix_rand32: bool = False
    fix_pa_cache: bool = False
    age_zero_reset: bool = True
    merge_escalation: bool = True
    rng_streams: str = "single"
    kernel: str = "released"

    def __post_init__(self):
        prof = kernel_profile(self.kernel)
        if prof.min_nr_regions_mode is not None:
            if self.min_nr_regions_mode not in (None, prof.min_nr_regions_mode):
                why = (
                    f"kernel profile {prof.name} handles min_nr_regions as "
                    f"{prof.min_nr_regions_mode!r} (damon_apply_min_nr_regions); "
                )
                raise ConfigError(
                    f"{why}min_nr_regions_mode {self.min_nr_regions_mode!r} belongs to "
                    "released kernels (kernel='released')",
                    cli_message=f"{why}--min-nr-regions-mode {self.min_nr_regions_mode} "
                    "belongs to released kernels (--kernel released)",
                )
            object.__setattr__(self, "min_nr_regions_mode", prof.min_nr_regions_mode)
        elif self.min_nr_regions_mode is None:
            object.__setattr__(self, "min_nr_regions_mode", "legacy")
        if prof.merge_count_age_once:
            object.__setattr__(self, "fix_age_once", True)
        if prof.prng == "lfsr113":
            object.__setattr__(self, "fix_rand32", True)  # no 32-bit truncation
        self.validate()

    # -- validation -----------------------------------------------------------------
    def validate(self) -> None:
        for name in (
            "sample_us",
            "aggr_us",
            "update_us",
            "min_nr_regions",
            "max_nr_regions",
            "min_region",
            "goal_access_bp",
            "goal_aggrs",
            "goal_min_sample_us",
            "goal_max_sample_us",
            "seed",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise _refused(f"{{0}} must be an integer, not {v!r}", name)
            if v < 0:
                raise _refused(f"{{0}} must not be negative (got {v})", name)
        if self.sample_us == 0:
            raise _refused(
                "{0} must be > 0: the replay cuts time into sample intervals", "sample_us"
            )
        if self.sample_us > self.aggr_us:
            raise ConfigError(
                f"the sampling interval ({self.sample_us} us) must not exceed the "
                f"aggregation interval ({self.aggr_us} us), as the kernel requires"
            )
        if self.min_nr_regions < 3:
            raise _refused(
                f"{{0}} must be at least 3 (got {self.min_nr_regions}); "
                "the kernel rejects smaller values",
                "min_nr_regions",
            )
        if self.min_nr_regions > self.max_nr_regions:
            raise _refused(
                f"{{0}} ({self.min_nr_regions}) must not exceed {{1}} ({self.max_nr_regions})",
                "min_nr_regions",
                "max_nr_regions",
            )
        if not _pow2(self.min_region):
            raise _refused(f"{{0}} ({self.min_region}) must be a power of two", "min_region")
        if self.min_region < MIN_REGION_FLOOR:
            raise _refused(
                f"{{0}} ({self.min_region}) must be at least {MIN_REGION_FLOOR} (a cache line)",
                "min_region",
            )
        if self.max_region is not None:
            if isinstance(self.max_region, bool) or not isinstance(self.max_region, int):
                raise _refused(f"{{0}} must be an integer, not {self.max_region!r}", "max_region")
            if not _pow2(self.max_region):
                raise _refused(f"{{0}} ({self.max_region}) must be a power of two", "max_region")
            if self.max_region < self.min_region:
                raise _refused(
                    f"{{0}} ({self.min_region}) must not exceed {{1}} ({self.max_region})",
                    "min_region",
                    "max_region",
                )
        if self.min_nr_regions_mode not in MODES:
            raise _refused(
                f"{{0}} must be one of {', '.join(MODES)}, not {self.min_nr_regions_mode!r}",
                "min_nr_regions_mode",
            )
        if self.goal_aggrs:
            if self.goal_min_sample_us > self.goal_max_sample_us:
                raise ConfigError(
                    f"intervals goal: min_sample_us ({self.goal_min_sample_us}) exceeds "
                    f"max_sample_us ({self.goal_max_sample_us})",
                    cli_message=f"--goal-min-sample-us ({self.goal_min_sample_us}) exceeds "
                    f"--goal-max-sample-us ({self.goal_max_sample_us})",
                )
            if not (self.goal_min_sample_us <= self.sample_us <= self.goal_max_sample_us):
                raise _refused(
                    f"intervals goal: {{0}} ({self.sample_us}) must lie within "
                    f"[{self.goal_min_sample_us}, {self.goal_max_sample_us}]",
                    "sample_us",
                )
            if self.goal_min_sample_us == 0:
                raise ConfigError(
                    "intervals goal: min_sample_us must be > 0 (the replay's "
                    "time grid needs a non-zero sampling interval)",
                    cli_message="--goal-min-sample-us must be > 0 (the replay's "
                    "time grid needs a non-zero sampling interval)",
                )
            if self.goal_access_bp == 0:
                raise ConfigError(
                    "intervals goal: access_bp must be > 0 when aggrs is set",
                    cli_message="--goal-access-bp must be > 0 with --goal-aggrs",
                )
        if self.rng_streams not in ("single", "split"):
            raise ConfigError(f"rng_streams must be single or split, not {self.rng_streams!r}")
        if self.seed >= 1 << 64:
            raise _refused("{0} must be below 2**64", "seed")

    # -- derived values ------------------------------------------------------------
    @property
    def aggr_samples(self) -> int:
        """Sample intervals per aggregation (``aggr_us // sample_us``)."""
        return self.aggr_us // self.sample_us

    @property
    def fixed_granularity(self) -> bool:
        """min_region == max_region: regions of exactly that size, never merged or split."""
        return self.max_region is not None and self.max_region == self.min_region

    @property
    def subpage(self) -> bool:
        """Regions may be smaller than a page (only the perf checks can see them)."""
        return self.min_region < PAGE_SIZE

    @property
    def tuning(self) -> bool:
        return self.goal_aggrs != 0

    def replace(self, **changes) -> "MonitorConfig":
        return dataclasses.replace(self, **changes)

    @property
    def profile(self):
        """The :class:`~tracedamon.engine.profiles.KernelProfile` of ``kernel``."""
        return kernel_profile(self.kernel)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # the default profile is what every history before profiles existed was made
        # with: its key is left out, so those files and new ones stay byte-identical
        if d["kernel"] == "released":
            del d["kernel"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MonitorConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown monitoring parameter(s): {', '.join(unknown)}")
        return cls(**d)
