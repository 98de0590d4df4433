"""`make demo` is the first thing a new user runs: its steps are numbered 1, 2, 3...
in the order they run."""

from __future__ import annotations

import re

from conftest import ROOT


def test_demo_steps_are_numbered_in_order():
    text = (ROOT / "sample_traces" / "demo.sh").read_text()
    numbers = [int(n) for n in re.findall(r'^step "(\d+)\. ', text, re.M)]
    assert len(numbers) >= 9
    assert numbers == list(range(1, len(numbers) + 1)), numbers
