"""Shared fixtures: where the corpora and the sample traces live; Hypothesis profiles.

Two corpora: the perf corpus the suite records itself with the installed perf
(``perf_corpus()``, tests/perf_corpus.py), and the third-party reference corpus in
../shared/corpus (``CORPUS``; ``TRACEDAMON_CORPUS`` points elsewhere), whose tests skip
with the reason -- fail under CI -- when it is absent.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from perf_corpus import CASES as PERF_CASES
from perf_corpus import PerfCorpus
from perf_corpus import ensure as ensure_perf_corpus

IN_CI = bool(os.environ.get("CI"))

# CI runs every property test on a fixed sequence of examples: derandomize seeds each test
# from its own source, and Hypothesis's habit of drawing some values from literals it scans
# out of every project module loaded in the process is switched off, so a test's examples
# depend neither on which test files share its worker nor on literals edited elsewhere.
# A failure is reported as found (no shrinking: a shrink of a big input can run for many
# minutes); `HYPOTHESIS_PROFILE=ci-shrink` reruns CI's examples locally with shrinking.
# Developers' runs keep exploring.  Hypothesis is pinned in pyproject.toml: the examples are
# a function of its version.
_CI_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    phases=_CI_PHASES,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci-shrink", settings.get_profile("ci"), phases=tuple(Phase))
settings.register_profile("dev", deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev")
settings.load_profile(PROFILE)
if PROFILE.startswith("ci"):
    try:
        from hypothesis.internal.conjecture import providers as _providers
        from hypothesis.internal.constants_ast import Constants as _Constants

        _providers._get_local_constants  # noqa: B018  (the function replaced below)
    except (ImportError, AttributeError) as e:
        raise RuntimeError(
            "this Hypothesis cannot be kept from drawing constants out of the "
            "loaded modules, so CI's examples would depend on them; install the "
            f"version pyproject.toml pins ({e})"
        ) from None
    _NO_CONSTANTS = _Constants()
    _providers._get_local_constants = lambda: _NO_CONSTANTS

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# the third-party reference corpus; TRACEDAMON_CORPUS points the suite elsewhere (an empty
# directory shows what a clone without ../shared runs)
CORPUS = Path(os.environ.get("TRACEDAMON_CORPUS") or SHARED / "corpus")
SAMPLES = ROOT / "sample_traces"

PERF = shutil.which("perf")


def missing(reason: str) -> None:
    """Skip for a missing prerequisite -- except in CI (``CI`` set), where it is a failure:
    CI provides every prerequisite, so a skip there would hide a broken test."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: a missing prerequisite fails the test)", pytrace=False)
    pytest.skip(reason)


def requires(ok, reason: str):
    """Mark: ``missing(reason)`` before the test runs unless ``ok``."""
    return pytest.mark.tracedamon_requires(ok=bool(ok), reason=reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("tracedamon_requires"):
        if not mark.kwargs["ok"]:
            missing(mark.kwargs["reason"])


@functools.cache
def perf_corpus() -> PerfCorpus:
    """The perf.data files the suite records with the installed perf, with perf's own
    oracles (tests/perf_corpus.py): made once per machine into a cache, on the first call
    in a test process (the other processes wait for it)."""
    return ensure_perf_corpus()


def need_corpus(*parts: str) -> Path:
    """A corpus file, or ``missing()``.  ``need_corpus("perf", NAME)`` is a file of the
    recorded perf corpus (``perf_corpus()``, made on this machine); any other first part
    is the third-party reference corpus in ../shared/corpus (damo's test records, the
    Intel PEBS files, the recorded DAMON paddr run), which a clone may not have."""
    if parts and parts[0] == "perf":
        pc = perf_corpus()
        why = pc.why_missing(parts[1].split(".")[0]) if len(parts) > 1 else pc.reason
        if why:
            missing(why)
        p = pc.dir.joinpath(*parts[1:])
        if not p.exists():
            missing(f"{p} is not in the recorded perf corpus")
        return p
    p = CORPUS.joinpath(*parts)
    if not p.exists():
        missing(
            f"reference corpus not found at {p} (../shared/corpus beside the project; "
            "README says where it comes from)"
        )
    return p


def corpus_files(subdir: str, pattern: str) -> list:
    """The files of the third-party corpus ``subdir`` matching ``pattern``, to
    parametrize over; where the corpus is absent, one parameter that ``missing()``s with
    the reason (rather than an empty parameter set, which pytest skips silently)."""
    d = CORPUS / subdir
    found = sorted(d.glob(pattern)) if d.is_dir() else []
    return found or [
        pytest.param(
            d / pattern,
            id=f"{subdir}-absent",
            marks=requires(False, f"reference corpus not found at {d}"),
        )
    ]


def perf_cases(*names: str) -> list:
    """``pytest.param(path, id=name)`` per case of the recorded perf corpus (all, or
    ``names``), each marked to ``missing()`` with the reason when it could not be
    recorded here."""
    pc = perf_corpus()
    return [
        pytest.param(
            pc.dir / f"{n}.data",
            id=n,
            marks=requires(pc.why_missing(n) is None, pc.why_missing(n) or ""),
        )
        for n in (names or PERF_CASES)
    ]


requires_perf = pytest.mark.skipif(PERF is None, reason="the perf binary is not installed")


@pytest.fixture(scope="session")
def perf_dir() -> Path:
    """The directory of the recorded perf corpus (``perf_corpus()``), or ``missing()``."""
    pc = perf_corpus()
    if pc.reason:
        missing(pc.reason)
    return pc.dir


@pytest.fixture
def corpus():
    """The third-party reference corpus (../shared/corpus); see ``need_corpus``."""
    if not CORPUS.is_dir():
        missing(f"reference corpus not found at {CORPUS}")
    return CORPUS
