"""Shared fixtures: where the reference corpus and the sample traces live; Hypothesis profiles."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

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
settings.register_profile("ci", derandomize=True, deadline=None, phases=_CI_PHASES,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
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
        raise RuntimeError("this Hypothesis cannot be kept from drawing constants out of the "
                           "loaded modules, so CI's examples would depend on them; install the "
                           f"version pyproject.toml pins ({e})") from None
    _NO_CONSTANTS = _Constants()
    _providers._get_local_constants = lambda: _NO_CONSTANTS

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SAMPLES = ROOT / "sample_traces"

PERF = shutil.which("perf")


def missing(reason: str) -> None:
    """Skip for a missing prerequisite -- except in CI (``CI`` set), where it is a failure:
    CI provides every prerequisite, so a skip there would hide a broken test."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: a missing prerequisite fails the test)",
                    pytrace=False)
    pytest.skip(reason)


def requires(ok, reason: str):
    """Mark: ``missing(reason)`` before the test runs unless ``ok``."""
    return pytest.mark.tracedamon_requires(ok=bool(ok), reason=reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("tracedamon_requires"):
        if not mark.kwargs["ok"]:
            missing(mark.kwargs["reason"])


def need_corpus(*parts: str) -> Path:
    p = CORPUS.joinpath(*parts)
    if not p.exists():
        missing(f"reference corpus not found at {p} (../shared/corpus beside the project)")
    return p


requires_perf = pytest.mark.skipif(PERF is None, reason="the perf binary is not installed")


@pytest.fixture
def corpus():
    if not CORPUS.exists():
        missing(f"reference corpus not found at {CORPUS}")
    return CORPUS
