"""DAMOS schemes as the kernel holds them, validated as the kernel validates them.

One :class:`Scheme` is one ``struct damos``: an action, an access pattern, a quota
(with optional goals), watermarks, filters (core: ``addr``, ``target``; ops: the
rest) and an apply interval.  Field names and units are the kernel's sysfs files'
(``damos-spec.md`` §12): sizes in bytes, ``nr_accesses`` in sampling intervals per
aggregation, ``age`` in aggregation intervals, weights and watermarks in permil,
times in the unit their name says.

Validation follows the kernel: an unknown action, filter type, watermark metric or
quota-goal metric is refused (the sysfs files return -EINVAL), so is an ``addr``
filter whose end lies before its start (``damon_sysfs_set_scheme_filters``).  Values
must fit the kernel field they are stored in: ``nr_accesses`` and ``age`` bounds and
the weights are ``unsigned int`` (sysfs takes an ``unsigned long`` and assigns it,
so a larger value would silently wrap in the kernel: refused here), sizes, times and
watermarks are ``unsigned long``.  Two offline rules are ours and say so: a quota
goal's ``target_value`` must not be 0 (the kernel divides by it), and a pattern
whose minimum exceeds its maximum is accepted (the kernel accepts it too; it simply
matches nothing).

:class:`Profile` names the kernel behaviour the walk mirrors (``damos-spec.md`` §0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ...errors import ConfigError
from ...units import PAGE_SIZE

UINT_MAX = 2**32 - 1
ULONG_MAX = 2**64 - 1
DAMOS_MAX_SCORE = 99

#: ``enum damos_action`` order (``damon.h``); sysfs/damo names.
ACTIONS = (
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "lru_prio",
    "lru_deprio",
    "migrate_hot",
    "migrate_cold",
    "stat",
)
#: ``enum damos_filter_type`` names.
FILTER_TYPES = ("anon", "active", "memcg", "young", "hugepage_size", "unmapped", "addr", "target")
CORE_FILTER_TYPES = ("addr", "target")
OPS_FILTER_TYPES = tuple(t for t in FILTER_TYPES if t not in CORE_FILTER_TYPES)
WMARK_METRICS = ("none", "free_mem_rate")
GOAL_METRICS = (
    "user_input",
    "some_mem_psi_us",
    "node_mem_used_bp",
    "node_mem_free_bp",
    "node_memcg_used_bp",
    "node_memcg_free_bp",
    "active_mem_bp",
    "inactive_mem_bp",
    "node_eligible_mem_bp",
    "hugepage_mem_bp",
)
OPS = ("paddr", "vaddr", "fvaddr")


def _check_uint(owner: str, name: str, value, limit: int, kind: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}: {name} must be an integer, not {value!r}")
    if value < 0:
        raise ConfigError(f"{owner}: {name} must not be negative (got {value})")
    if value > limit:
        raise ConfigError(
            f"{owner}: {name} = {value} does not fit the kernel's {kind} "
            f"(at most {limit}; the kernel would store {value & limit})"
        )


@dataclass(frozen=True)
class AccessPattern:
    """``struct damos_access_pattern``: every bound inclusive (spec §2.1)."""

    min_sz_region: int = 0
    max_sz_region: int = ULONG_MAX
    min_nr_accesses: int = 0
    max_nr_accesses: int = UINT_MAX
    min_age_region: int = 0
    max_age_region: int = UINT_MAX

    def validate(self, owner: str = "access pattern") -> None:
        for n in ("min_sz_region", "max_sz_region"):
            _check_uint(owner, n, getattr(self, n), ULONG_MAX, "unsigned long")
        for n in ("min_nr_accesses", "max_nr_accesses", "min_age_region", "max_age_region"):
            _check_uint(owner, n, getattr(self, n), UINT_MAX, "unsigned int")


@dataclass(frozen=True)
class QuotaGoal:
    """``struct damos_quota_goal``.  ``current_value`` is the value for ``user_input``;
    other metrics read live memory state in the kernel, so offline their value comes
    from a series the caller supplies (``goal_values`` of the walk)."""

    metric: str = "user_input"
    target_value: int = 0
    current_value: int = 0
    nid: int | None = None
    memcg_path: str | None = None

    def validate(self, owner: str = "quota goal") -> None:
        if self.metric not in GOAL_METRICS:
            raise ConfigError(
                f"{owner}: unknown quota goal metric {self.metric!r} "
                f"(one of {', '.join(GOAL_METRICS)})"
            )
        _check_uint(owner, "target_value", self.target_value, ULONG_MAX, "unsigned long")
        _check_uint(owner, "current_value", self.current_value, ULONG_MAX, "unsigned long")
        if self.target_value == 0:
            raise ConfigError(
                f"{owner}: target_value must not be 0 (the kernel divides the current value by it)"
            )


@dataclass(frozen=True)
class Quota:
    """``struct damos_quota`` (user part).  Off when ``ms == sz == 0`` and no goals."""

    ms: int = 0
    sz: int = 0
    reset_interval_ms: int = 0
    weight_sz: int = 0
    weight_nr_accesses: int = 0
    weight_age: int = 0
    goals: tuple[QuotaGoal, ...] = ()

    @property
    def is_set(self) -> bool:
        return bool(self.ms or self.sz or self.goals)

    def validate(self, owner: str = "quota") -> None:
        for n in ("ms", "sz", "reset_interval_ms"):
            _check_uint(owner, n, getattr(self, n), ULONG_MAX, "unsigned long")
        for n in ("weight_sz", "weight_nr_accesses", "weight_age"):
            _check_uint(owner, n, getattr(self, n), UINT_MAX, "unsigned int")
        for i, g in enumerate(self.goals):
            g.validate(f"{owner} goal {i}")


@dataclass(frozen=True)
class Watermarks:
    """``struct damos_watermarks``; ``high``/``mid``/``low`` in permil of the metric."""

    metric: str = "none"
    interval_us: int = 0
    high: int = 0
    mid: int = 0
    low: int = 0

    def validate(self, owner: str = "watermarks") -> None:
        if self.metric not in WMARK_METRICS:
            raise ConfigError(
                f"{owner}: unknown watermark metric {self.metric!r} "
                f"(one of {', '.join(WMARK_METRICS)})"
            )
        for n in ("interval_us", "high", "mid", "low"):
            _check_uint(owner, n, getattr(self, n), ULONG_MAX, "unsigned long")


@dataclass(frozen=True)
class Filter:
    """``struct damos_filter``.  ``matching``: select memory that has the property
    (True) or that lacks it; ``allow``: include (True) or exclude the selection."""

    type: str
    matching: bool = True
    allow: bool = False
    memcg_path: str = ""
    addr_start: int = 0
    addr_end: int = 0
    target_idx: int = 0
    sz_min: int = 0  # hugepage_size
    sz_max: int = 0

    @property
    def core(self) -> bool:
        """Judged by the core on whole regions (``addr``, ``target``)."""
        return self.type in CORE_FILTER_TYPES

    def validate(self, owner: str = "filter") -> None:
        if self.type not in FILTER_TYPES:
            raise ConfigError(
                f"{owner}: unknown filter type {self.type!r} (one of {', '.join(FILTER_TYPES)})"
            )
        for n in ("matching", "allow"):
            if not isinstance(getattr(self, n), bool):
                raise ConfigError(f"{owner}: {n} must be a boolean, not {getattr(self, n)!r}")
        for n in ("addr_start", "addr_end", "sz_min", "sz_max"):
            _check_uint(owner, n, getattr(self, n), ULONG_MAX, "unsigned long")
        _check_uint(owner, "target_idx", self.target_idx, ULONG_MAX, "unsigned long")
        if self.type == "addr" and self.addr_end < self.addr_start:
            raise ConfigError(
                f"{owner}: addr filter end 0x{self.addr_end:x} lies before its "
                f"start 0x{self.addr_start:x} (the kernel refuses it: -EINVAL)"
            )


@dataclass(frozen=True)
class Scheme:
    """One DAMOS scheme (``struct damos``)."""

    action: str = "stat"
    pattern: AccessPattern = field(default_factory=AccessPattern)
    quota: Quota = field(default_factory=Quota)
    wmarks: Watermarks = field(default_factory=Watermarks)
    filters: tuple[Filter, ...] = ()
    apply_interval_us: int = 0
    target_nid: int = -1
    name: str = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        owner = f"scheme {self.name!r}" if self.name else "scheme"
        if self.action not in ACTIONS:
            raise ConfigError(
                f"{owner}: unknown action {self.action!r} (one of {', '.join(ACTIONS)})"
            )
        self.pattern.validate(f"{owner} access pattern")
        self.quota.validate(f"{owner} quota")
        self.wmarks.validate(f"{owner} watermarks")
        for i, f in enumerate(self.filters):
            f.validate(f"{owner} filter {i}")
        _check_uint(owner, "apply_interval_us", self.apply_interval_us, ULONG_MAX, "unsigned long")
        if isinstance(self.target_nid, bool) or not isinstance(self.target_nid, int):
            raise ConfigError(f"{owner}: target_nid must be an integer")

    # -- the kernel's derived values ----------------------------------------------------
    @property
    def core_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.core)

    @property
    def ops_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if not f.core)

    @property
    def core_filters_default_reject(self) -> bool:
        """``damos_set_filters_default_reject`` (v6.15+, spec §4.2): the core layer
        allows by default whenever ops filters exist; otherwise unmatched regions get
        the opposite of the last core filter's verdict (no filters: allow)."""
        if self.ops_filters:
            return False
        return bool(self.core_filters) and self.core_filters[-1].allow

    @property
    def ops_filters_default_reject(self) -> bool:
        return bool(self.ops_filters) and self.ops_filters[-1].allow

    def replace(self, **changes) -> "Scheme":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Scheme":
        d = dict(d)
        pattern = AccessPattern(**d.pop("pattern", {}))
        q = dict(d.pop("quota", {}))
        goals = tuple(QuotaGoal(**g) for g in q.pop("goals", ()))
        quota = Quota(goals=goals, **q)
        wmarks = Watermarks(**d.pop("wmarks", {}))
        filters = tuple(Filter(**f) for f in d.pop("filters", ()))
        return cls(pattern=pattern, quota=quota, wmarks=wmarks, filters=filters, **d)


@dataclass(frozen=True)
class Profile:
    """A kernel generation's DAMOS behaviour (``damos-spec.md`` §0, §3.7).

    ``released`` is v6.15 ... v6.18.y with the 2026 stable fix of the quota's resume
    address (``charge_addr_from = r->ar.end``): what the corpus machine's 6.18.44 does.
    ``released-nofix`` is the same code as first released (``r->ar.end + 1``: a region
    that starts exactly at the resume address loses its first page to a split).
    ``mainline-2026`` applies the deltas of spec §3.7 that the spec states exactly:
    ``damos_quota_is_set()`` in place of the ``esz`` tests, a full quota when less than
    one minimum region is left, ``esz`` of a time quota at least one minimum region, the
    first charge window opened explicitly and the window test in both directions, the
    score histogram without regions the core filters reject, the region walk visiting
    the right part of every split it makes, the resume point kept until the last region
    of its target, the moving-sum ``nr_accesses`` of the pattern test and the trace, and
    scores clamped to [0, 99].  It leaves out the 2026 fail-charge ratio, the merge
    of DAMOS-made slices back into their neighbours, and the mm tree's skip of targets
    that are no longer valid (``kdamond_apply_schemes`` there passes over a target
    whose ``target_valid`` is false, dropping a resume point that names it; every
    profile walks them, as the released kernels do).
    """

    name: str
    resume_exclusive: bool = True  # charge_addr_from = end (fixed) vs end + 1
    quota_is_set: bool = False  # B: damos_quota_is_set() replaces quota->esz tests
    quota_full_min_region: bool = False  # B: esz - charged < min_region counts as full
    esz_time_floor: bool = False  # B: esz_time = max(throughput * ms, min_region)
    explicit_first_window: bool = False  # B: first window opened explicitly, range test
    hist_core_filters: bool = False  # B: histogram skips core-filter-rejected regions
    visit_split_right: bool = False  # B: the walk visits right parts of its splits
    resume_until_last: bool = False  # B (mm 2026): resume point kept for the whole walk
    mvsum_nr_accesses: bool = False  # B: damon_nr_accesses_mvsum for pattern and trace

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "released": Profile("released", resume_exclusive=True),
    "released-nofix": Profile("released-nofix", resume_exclusive=False),
    "mainline-2026": Profile(
        "mainline-2026",
        resume_exclusive=True,
        quota_is_set=True,
        quota_full_min_region=True,
        esz_time_floor=True,
        explicit_first_window=True,
        hist_core_filters=True,
        visit_split_right=True,
        resume_until_last=True,
        mvsum_nr_accesses=True,
    ),
}
DEFAULT_PROFILE = "released"


def profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown kernel profile {name!r} (one of {', '.join(PROFILES)})"
        ) from None


@dataclass(frozen=True)
class Context:
    """What the walk needs of the DAMON context the schemes belong to.

    ``sample_us``/``aggr_us`` are the *configured* intervals (scores turn ages into
    seconds with ``aggr_us``; ``max_nr_accesses = aggr_us // sample_us``);
    ``min_region`` is DAMON_MIN_REGION (``min_sz_region``: the page size over
    ``addr_unit``).  ``hz`` is the jiffy rate the quota's charge window is measured in
    (``msecs_to_jiffies`` rounds the reset interval up to whole jiffies; 0 = exact
    milliseconds).  ``ns_per_region_call`` and ``ns_per_byte`` model the time the ops
    take per applied region (``total_charged_ns``, which only a time quota reads); the
    default 0 is the kernel's own "nothing measured yet" path (4 MiB/ms).
    """

    ops: str = "paddr"
    sample_us: int = 5_000
    aggr_us: int = 100_000
    min_region: int = PAGE_SIZE
    hz: int = 250
    ns_per_region_call: int = 0
    ns_per_byte: float = 0.0

    def __post_init__(self):
        if self.ops not in OPS:
            raise ConfigError(f"unknown operations set {self.ops!r} (one of {', '.join(OPS)})")
        for n in ("sample_us", "aggr_us", "min_region", "hz", "ns_per_region_call"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{n} must be a non-negative integer, not {v!r}")
        if self.min_region == 0 or self.min_region & (self.min_region - 1):
            raise ConfigError(
                f"min_region ({self.min_region}) must be a power of two "
                "(damon_commit_ctx refuses others)"
            )
        if self.sample_us > self.aggr_us:
            raise ConfigError(
                f"the sampling interval ({self.sample_us} us) must not exceed "
                f"the aggregation interval ({self.aggr_us} us)"
            )
        if self.ns_per_byte < 0:
            raise ConfigError("ns_per_byte must not be negative")

    @property
    def max_nr_accesses(self) -> int:
        """``damon_max_nr_accesses()``: ``aggr / sample`` (1 without a sampling interval)."""
        if not self.sample_us:
            return 1
        return max(min(self.aggr_us // self.sample_us, UINT_MAX), 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def score_kind(ops: str, action: str) -> int:
    """Which prioritisation score ``ops`` gives ``action`` (spec §3.3):
    1 = ``damon_cold_score``, 2 = ``damon_hot_score``, 0 = ``DAMOS_MAX_SCORE`` (99)."""
    if ops == "paddr":
        if action in ("pageout", "lru_deprio", "migrate_cold"):
            return 1
        if action in ("lru_prio", "migrate_hot"):
            return 2
        return 0
    if action in ("pageout", "migrate_cold"):
        return 1
    if action == "migrate_hot":
        return 2
    return 0
