"""Helpers shared by the tests (imported as ``helpers.<module>``).

The checks moved out of test modules keep pytest's assertion messages (the values
compared) by being registered for assertion rewriting before they are imported.
"""

import pytest

pytest.register_assert_rewrite("helpers.native_truth", "helpers.perf_oracle", "helpers.perf_synth")
