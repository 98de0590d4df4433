"""README's developer map names the tree as it is: every module of the package is named
there (by its file name, or its package's), and every tracedamon/ path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _developer_map() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## For developers")
    block = text[start:]
    return block[block.index("```") + 3 : block.index("```", block.index("```") + 3)]


def test_every_module_is_in_the_developer_map():
    """By file name (x.py), as a package (x/), by its stem as a word (the operations
    sets vaddr/fvaddr/paddr, perf/'s header, reader...), a deprecated alias (.x), or, in
    cli/, as the module of a command (report_html: `report html`)."""
    m = _developer_map()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m))
    commands = set(re.findall(r"^tracedamon (\w+)", (ROOT / "README.md").read_text(), re.M))
    missing = []
    for f in sorted((ROOT / "tracedamon").rglob("*.py")):
        if f.name == "__init__.py":
            named = f"{f.parent.name}/" in m or f.parent.name == "tracedamon"
        elif f.parent.name == "cli":
            named = f.name in m or f.stem.split("_")[0] in commands
        else:
            named = f.name in m or f.stem in words
        if not named:
            missing.append(str(f.relative_to(ROOT)))
    assert missing == [], "\n".join(missing)


def test_every_path_the_map_names_exists():
    m = _developer_map()
    for p in re.findall(r"^(tracedamon/\S+|tests/|bench/|tools/)", m, flags=re.M):
        assert (ROOT / p).exists(), p
