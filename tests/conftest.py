"""Shared fixtures: where the reference corpus and the sample traces live."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs every property test with a fixed sequence of examples (derandomize), so a
# landing never depends on the draw of the day; developers' runs keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
IN_CI = bool(os.environ.get("CI"))

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SAMPLES = ROOT / "sample_traces"

PERF = shutil.which("perf")


def need_corpus(*parts: str) -> Path:
    p = CORPUS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference corpus not found at {p} (../shared/corpus beside the project)")
    return p


requires_perf = pytest.mark.skipif(PERF is None, reason="the perf binary is not installed")


@pytest.fixture
def corpus():
    if not CORPUS.exists():
        pytest.skip(f"reference corpus not found at {CORPUS}")
    return CORPUS
