"""Shared fixtures: where the reference corpus and the sample traces live."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
