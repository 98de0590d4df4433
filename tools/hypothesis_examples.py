"""pytest plugin: write every example Hypothesis runs, to check that CI's examples are the
same from run to run and whichever test files share the process.

    HYPOTHESIS_EXAMPLES_OUT=/tmp/ex.jsonl CI=1 .venv/bin/python -m pytest \\
        -p tools.hypothesis_examples -p no:cacheprovider tests/test_engine_reference.py
    .venv/bin/python tools/hypothesis_examples.py /tmp/ex1.jsonl /tmp/ex2.jsonl

Each line of the output is one test case as Hypothesis's observability reports it
(the property, the example's representation, its status).  Comparing two files
prints, per property, the number of examples and whether the sequences are equal.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

_OUT = os.environ.get("HYPOTHESIS_EXAMPLES_OUT")


def _callback(obs) -> None:
    d = obs if isinstance(obs, dict) else getattr(obs, "__dict__", {})
    if hasattr(obs, "type"):
        d = {
            k: getattr(obs, k, None)
            for k in ("type", "property", "status", "representation", "how_generated")
        }
    if d.get("type") != "test_case":
        return
    with open(_OUT, "a") as f:
        f.write(
            json.dumps(
                {
                    "property": d.get("property"),
                    "status": d.get("status"),
                    "how_generated": d.get("how_generated"),
                    "representation": d.get("representation"),
                }
            )
            + "\n"
        )


def pytest_configure(config) -> None:
    if not _OUT:
        return
    from hypothesis.internal.observability import add_observability_callback

    add_observability_callback(_callback)


def _load(path: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in open(path):
        r = json.loads(ln)
        out.setdefault(r["property"], []).append(
            f"{r['status']}|{r['how_generated']}|{r['representation']}"
        )
    return out


def compare(a: str, b: str) -> int:
    ea, eb = _load(a), _load(b)
    bad = 0
    for prop in sorted(set(ea) | set(eb)):
        if prop not in ea or prop not in eb:
            print(f"{'only in ' + ('1st' if prop in ea else '2nd'):9} {prop}")
            continue
        xa, xb = ea[prop], eb[prop]
        same = xa == xb
        bad += not same
        digest = hashlib.sha1("\n".join(xa).encode()).hexdigest()[:12]
        print(
            f"{'same' if same else 'DIFFERENT':9} {prop}: {len(xa)} / {len(xb)} examples "
            f"(sha1 {digest})"
        )
    print(f"{len(set(ea) & set(eb))} properties in both, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(compare(sys.argv[1], sys.argv[2]))
