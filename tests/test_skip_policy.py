"""No test may skip silently for a reason CI must never have.

In CI (``CI`` set) a missing prerequisite -- the reference corpus, the sample traces,
damo, a ``perf record`` that fails where perf is installed -- must fail the test, and an
error inside tracedamon must never become a skip.  ``conftest.missing()`` and
``conftest.requires()`` do that; this test reads every test module's source (with
``ast``) and names each place that skips another way:

* ``pytest.importorskip`` of a tracedamon module (an ImportError in the project would
  become a skip: import it plainly);
* ``pytest.skip(...)`` or ``pytest.mark.skipif(..., reason=...)`` whose text speaks of
  the corpus, a sample trace, damo or a failed ``perf record`` (use ``missing`` /
  ``requires``);
* ``pytest.skip`` inside an ``except`` handler for ``Exception`` (any error becomes a
  skip).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PREREQUISITE = re.compile(r"corpus|sample trace|\bdamo\b|perf record", re.IGNORECASE)


def _text(node) -> str:
    """The literal text of a string or f-string argument ('' otherwise)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return ""


def _is(call: ast.Call, *dotted: str) -> bool:
    f = call.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts)) in dotted


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    broad = set()
    for h in ast.walk(tree):
        if isinstance(h, ast.ExceptHandler) and (
            h.type is None
            or (isinstance(h.type, ast.Name) and h.type.id in ("Exception", "BaseException"))
        ):
            broad.update(id(n) for n in ast.walk(h))
    calls = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Call)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for node in calls:
        where = f"{path.name}:{node.lineno}"
        texts = [_text(a) for a in node.args] + [_text(k.value) for k in node.keywords]
        if (
            _is(node, "pytest.importorskip")
            and node.args
            and _text(node.args[0]).startswith("tracedamon")
        ):
            out.append(f"{where}: importorskip of the project's own {_text(node.args[0])}")
        elif _is(node, "pytest.skip", "skip"):
            if id(node) in broad:
                out.append(f"{where}: pytest.skip in an except Exception handler")
            elif any(PREREQUISITE.search(t) for t in texts):
                out.append(f"{where}: pytest.skip for a prerequisite (use conftest.missing)")
        elif _is(node, "pytest.mark.skipif") and any(PREREQUISITE.search(t) for t in texts):
            out.append(f"{where}: skipif for a prerequisite (use conftest.requires)")
    return out


def test_no_silent_skips_for_prerequisites():
    found = [
        v for p in sorted(TESTS.rglob("*.py")) if p.name != "conftest.py" for v in violations(p)
    ]
    assert not found, "skips that CI would not notice:\n" + "\n".join(found)


def test_the_checker_sees_each_kind(tmp_path):
    p = tmp_path / "t.py"
    p.write_text(
        "import pytest\n"
        "def a():\n    pytest.importorskip('tracedamon.engine.replay')\n"
        "def b():\n    pytest.skip('reference corpus not found')\n"
        "def c(r):\n    pytest.skip(f'perf record failed here: {r}')\n"
        "def d():\n    try:\n        pass\n    except Exception as e:\n"
        "        pytest.skip(f'unavailable: {e}')\n"
        "@pytest.mark.skipif(True, reason='sample trace missing')\ndef e():\n    pass\n"
        "def f():\n    pytest.importorskip('numpy')\n    pytest.skip('not root')\n"
    )
    got = violations(p)
    assert [v.split(":")[1] for v in got] == ["3", "5", "7", "12", "13"], got
