"""The size limits of the code (README, "For developers"): no module over 800 lines, no
function over 120 lines.

A numba kernel may be longer when a comment says why, on the line(s) right above its
decorators: ``# long kernel: <reason>``. Every other violation known today is listed in
tools/size_allowlist.txt, one per line with the package that owns it:

    tracedamon/ingest/perf_data.py                      ingest
    tracedamon/engine/replay.py::replay                 engine

Each owner removes its lines as it splits its modules. The check fails on a violation
that is not listed, and on a listed one that no longer is (so the list only shrinks).

Usage: python tools/check_sizes.py [--list]   (--list prints today's violations in the
allowlist's format, owners guessed from the path)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = ("tracedamon", "tests", "tools")
MAX_MODULE = 800
MAX_FUNCTION = 120
ALLOWLIST = ROOT / "tools" / "size_allowlist.txt"
OWNERS = ("ingest", "engine", "export", "cli", "pipeline", "store", "tests")
KERNEL_MARK = "# long kernel:"


def _is_numba(dec: ast.expr) -> bool:
    node = dec.func if isinstance(dec, ast.Call) else dec
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    # numba's decorators, or a module's alias of one (``_jit = numba.njit(...)``)
    return "jit" in name.lower() or name in ("vectorize", "guvectorize")


def _justified_kernel(fn: ast.AST, lines: list[str]) -> bool:
    """A numba kernel with a ``# long kernel:`` comment right above its decorators."""
    decs = getattr(fn, "decorator_list", [])
    if not any(_is_numba(d) for d in decs):
        return False
    i = min([d.lineno for d in decs] + [fn.lineno]) - 2  # 0-based line above
    while i >= 0 and lines[i].strip().startswith("#"):
        if lines[i].strip().startswith(KERNEL_MARK):
            return True
        i -= 1
    return False


def _functions(tree: ast.AST):
    """(qualified name, node) of every function and method, nested ones included."""
    stack = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield q, child
                stack.append((child, q + "."))
            else:
                stack.append((child, prefix))


def violations() -> dict[str, str]:
    """{key: description} of every module and function over its limit."""
    out: dict[str, str] = {}
    for tree_name in TREES:
        for path in sorted((ROOT / tree_name).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            out.update(file_violations(rel, path.read_text(encoding="utf-8")))
    return out


def file_violations(rel: str, text: str) -> dict[str, str]:
    """The violations of one module's source ``text`` (``rel``: its path)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    if len(lines) > MAX_MODULE:
        out[rel] = f"{len(lines)} lines (module limit {MAX_MODULE})"
    for q, fn in _functions(ast.parse(text, filename=rel)):
        n = fn.end_lineno - fn.lineno + 1
        if n > MAX_FUNCTION and not _justified_kernel(fn, lines):
            out[f"{rel}::{q}"] = f"{n} lines (function limit {MAX_FUNCTION})"
    return out


def read_allowlist(path: Path = ALLOWLIST) -> dict[str, str]:
    """{key: owner} of the allowlist; blank lines and ``#`` comments are skipped."""
    allowed: dict[str, str] = {}
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in OWNERS:
            raise SystemExit(
                f"{path}:{no}: expected 'PATH[::FUNCTION] OWNER' with OWNER one "
                f"of {', '.join(OWNERS)}, got {line!r}"
            )
        if parts[0] in allowed:
            raise SystemExit(f"{path}:{no}: {parts[0]} listed twice")
        allowed[parts[0]] = parts[1]
    return allowed


def _guess_owner(key: str) -> str:
    parts = key.split("::")[0].split("/")
    if parts[0] != "tracedamon":
        return "tests"
    if len(parts) > 2 and parts[1] in OWNERS:
        return parts[1]
    return "pipeline"


def main(argv: list[str]) -> int:
    found = violations()
    if "--list" in argv:
        for key in sorted(found):
            print(f"{key:<70} {_guess_owner(key)}")
        return 0
    allowed = read_allowlist()
    new = sorted(set(found) - set(allowed))
    stale = sorted(set(allowed) - set(found))
    for key in new:
        print(
            f"size: {key}: {found[key]}; split it (or, for a numba kernel, say why above "
            f"its decorator: '{KERNEL_MARK} ...')"
        )
    for key in stale:
        print(
            f"size: {key} is within the limits now: delete its line from "
            f"{ALLOWLIST.relative_to(ROOT)}"
        )
    if new or stale:
        return 1
    print(f"size: ok ({len(allowed)} known violations in {ALLOWLIST.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
