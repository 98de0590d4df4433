"""The size check of tools/check_sizes.py (run by `make lint`): what it counts, what it
lets pass, and that the tree keeps to it with its allowlist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_sizes", ROOT / "tools" / "check_sizes.py")
check_sizes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_sizes)


def _function(name: str, body_lines: int, decorators: str = "", indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{decorators}{indent}def {name}():\n{body}"


def test_long_functions_and_modules_are_found_by_their_qualified_names():
    limit = check_sizes.MAX_FUNCTION
    src = (
        "class K:\n"
        + _function("meth", limit, indent="    ")  # limit + 1 lines
        + _function("ok", limit - 1)  # exactly the limit
        + _function("outer", 2)
        + "    "
        + _function("inner", limit, indent="    ").lstrip()
    )
    found = check_sizes.file_violations("m.py", src)
    assert set(found) == {"m.py::K.meth", "m.py::outer", "m.py::outer.inner"}
    assert found["m.py::K.meth"].startswith(f"{limit + 1} lines")
    long_module = "x = 1\n" * (check_sizes.MAX_MODULE + 1)
    assert set(check_sizes.file_violations("big.py", long_module)) == {"big.py"}
    assert check_sizes.file_violations("fits.py", "x = 1\n" * check_sizes.MAX_MODULE) == {}


def test_a_numba_kernel_is_long_only_with_a_reason_above_its_decorator():
    n = check_sizes.MAX_FUNCTION + 5
    bare = _function("k", n, decorators="@njit(cache=True)\n")
    said = "# long kernel: one pass over the records, no calls out\n" + bare
    alias = "# long kernel: why\n" + _function("k", n, decorators="@_jit\n")
    not_numba = "# long kernel: why\n" + _function("k", n, decorators="@functools.cache\n")
    assert set(check_sizes.file_violations("a.py", bare)) == {"a.py::k"}
    assert check_sizes.file_violations("a.py", said) == {}
    assert check_sizes.file_violations("a.py", alias) == {}
    assert set(check_sizes.file_violations("a.py", not_numba)) == {"a.py::k"}


def test_the_tree_keeps_to_the_limits_and_the_allowlist_names_owners():
    allowed = check_sizes.read_allowlist()
    assert set(allowed.values()) <= set(check_sizes.OWNERS)
    assert set(check_sizes.violations()) == set(allowed)
