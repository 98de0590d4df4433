"""numba's cache follows every kernel module: a change to a callee's file alone (a kernel
of rng.py inlined into draw.py's) starts a fresh cache instead of running the cached
caller with the old callee compiled in (numba keys an entry by the caller's file only)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRAW = (
    "import numpy as np\n"
    "from tracedamon.engine.draw import draw, new_generator\n"
    "import os\n"
    "st = new_generator(0, 'pcg32')\n"
    "print(draw(st, 1000, False, np.zeros(0, np.int64), np.zeros(1, np.int64)),"
    " os.environ['NUMBA_CACHE_DIR'])\n"
)


def _run(pkg_root: Path, home: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(pkg_root), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    r = subprocess.run(
        [sys.executable, "-c", DRAW], capture_output=True, text=True, env=env, cwd=str(home)
    )
    assert r.returncode == 0, r.stderr
    value, cache_dir = r.stdout.split()
    return int(value), cache_dir


def test_changing_a_callee_module_starts_a_fresh_cache(tmp_path):
    pkg_root = tmp_path / "src"
    shutil.copytree(
        ROOT / "tracedamon", pkg_root / "tracedamon", ignore=shutil.ignore_patterns("__pycache__")
    )
    home = tmp_path / "home"
    home.mkdir()
    first, dir1 = _run(pkg_root, home)
    again, dir2 = _run(pkg_root, home)  # from the cache: same value, same place
    assert (again, dir2) == (first, dir1)
    assert Path(dir1).is_relative_to(pkg_root / "tracedamon" / "__pycache__")
    assert any(Path(dir1).rglob("*.nbi"))  # numba did cache there
    # the callee (rng.py's rand_below) now always draws 7 (or 8, if the first was 7)
    forced = 8 if first == 7 else 7
    rng = pkg_root / "tracedamon" / "engine" / "rng.py"
    src = rng.read_text()
    doc_end = src.index('"""', src.index("def rand_below(") + 0)
    doc_end = src.index('"""', doc_end + 3) + 3
    rng.write_text(src[:doc_end] + f"\n    return {forced}" + src[doc_end:])
    changed, dir3 = _run(pkg_root, home)
    assert changed == forced and dir3 != dir1
