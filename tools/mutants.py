#!/usr/bin/env python3
"""Mutation check: does the test suite catch small, plausible bugs?

Each mutant is one small edit (an exact snippet of a source file and its
replacement) that a developer could plausibly make.  For each mutant the project's
files (``git ls-files``, with new untracked ones) are copied to a scratch slot
(``/tmp/tracedamon-mutants/slot-N/tracedamon``, ``shared`` linked beside it for the
corpus), the ONE edit is applied there, and pytest runs against the copy (``CI=1``,
``-q -p no:cacheprovider``, ``PYTHONPATH`` = the copy, checked to be the package
imported):

* ``alone``: the mutant's relevant test files, each on its own with ``-x``, until one
  catches it (``--all-files``: every one);
* ``full``: the whole suite (``-x -n 2 --dist loadfile``), one mutant per tree;
* ``batch``: the whole suite (``-n 2 --dist loadfile``, no ``-x``) once per batch of
  mutants applied together (``-n`` batches, each area spread over them); a mutant
  counts as caught there when a test that caught it alone fails in the run (``table``
  marks a test that also caught another mutant of the batch alone).

numba: every slot keeps a warm cache compiled from the unmutated tree at the same
path (the baseline run, ``--mutant none``, fills slot 0's; other slots get a copy
under their own directory names).  A mutant's run gets a copy of it without the
entries of the edited file and of every file importing it, transitively (a kernel
may have inlined a kernel of the edited file, and numba checks only the kernel's
own source file), so no kernel compiled from unmutated code can hide the edit;
``--fresh`` starts from an empty cache instead.

The baseline (``--mutant none``) runs every relevant file on an unmutated copy:
those must pass, or a "caught" means nothing.  Results go to ``--out`` (JSON lines,
one per pytest run; runs already there are not redone) and ``table`` prints them as
a Markdown table.  Usage::

    .venv/bin/python tools/mutants.py check          # every snippet occurs exactly once
    .venv/bin/python tools/mutants.py alone -j 2 --mutant none   # baseline first
    .venv/bin/python tools/mutants.py alone -j 2 [--mutant ID ...]
    .venv/bin/python tools/mutants.py batch -n 4 [--group K] [--slot N]
    .venv/bin/python tools/mutants.py full [--mutant ID ...]
    .venv/bin/python tools/mutants.py table
"""

from __future__ import annotations

import argparse
import hashlib
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = Path(os.environ.get("MUTANTS_SCRATCH", "/tmp/tracedamon-mutants"))
PYTHON = ROOT / ".venv" / "bin" / "python"

from mutant_table import BY_ID, MUTANTS, Mutant  # noqa: E402  (tools/ is not a package)


# ----------------------------------------------------------------------------------------
# scratch trees and numba caches
# ----------------------------------------------------------------------------------------
def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def make_tree(slot: int, mutants: list[Mutant]) -> Path:
    """A fresh copy of the project at SCRATCH/slot-N/tracedamon with ``mutants`` applied;
    ``shared`` beside it (the tests find the corpus at ../shared) and the project's .venv
    linked in (its damo binary).  Unchanged files keep their modification times (numba's
    cache checks a source file's time and size); an edited file gets a new one."""
    base = SCRATCH / f"slot-{slot}"
    tree = base / "tracedamon"
    if tree.exists():
        shutil.rmtree(tree)
    for rel in tracked_files():
        dst = tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    if not (base / "shared").exists():
        (base / "shared").symlink_to(ROOT.parent / "shared")
    (tree / ".venv").symlink_to(ROOT / ".venv")
    for m in mutants:
        p = tree / m.file
        text = p.read_text()
        if text.count(m.old) != 1:
            raise SystemExit(f"{m.id}: snippet found {text.count(m.old)} times in {m.file}")
        p.write_text(text.replace(m.old, m.new))
    return tree


def _module(rel: str) -> str:
    return rel[:-3].replace("/", ".").removesuffix(".__init__")


def importers(files: list[str]) -> set[str]:
    """The package's source files that import any of ``files``, transitively (with them)."""
    srcs = [p for p in tracked_files() if p.startswith("tracedamon/") and p.endswith(".py")]
    text = {p: (ROOT / p).read_text() for p in srcs}

    def imports(p: str, mod: str) -> bool:
        pkg = _module(p).rsplit(".", 1)[0] if not p.endswith("__init__.py") else _module(p)
        for m in re.finditer(r"^\s*from\s+(\.*)([\w.]*)\s+import\s+(.*)$", text[p], re.M):
            dots, name, what = m.groups()
            if dots:
                base = pkg.split(".")
                base = base[: len(base) - (len(dots) - 1)]
                full = ".".join(base + ([name] if name else []))
            else:
                full = name
            names = [w.strip(" ()").split(" as ")[0] for w in what.split(",")]
            if full == mod or any(f"{full}.{n}" == mod for n in names):
                return True
        return bool(re.search(rf"^\s*import\s+{re.escape(mod)}\b", text[p], re.M))

    out = set(files)
    grew = True
    while grew:
        grew = False
        for p in srcs:
            if p not in out and any(imports(p, _module(f)) for f in out):
                out.add(p)
                grew = True
    return out


def numba_cache_for(slot: int, tree: Path, mutants: list[Mutant], fresh: bool) -> Path:
    """The run's NUMBA_CACHE_DIR: the slot's warm cache (kernels compiled from the
    unmutated tree at this same path) without the entries of every edited file and of
    every file importing one, transitively (a kernel may have inlined a kernel of an
    edited file, and numba checks only the kernel's own source file) -- or an empty
    directory with ``fresh``."""
    base = SCRATCH / f"slot-{slot}"
    run = base / "numba-run"
    if run.exists():
        shutil.rmtree(run)
    warm = base / "numba-warm"
    if fresh or not warm.exists() or not mutants:
        run.mkdir()
        return run
    shutil.copytree(warm, run)
    for rel in importers([m.file for m in mutants]):
        src = (tree / rel).resolve()
        sub = src.parent.name + "_" + hashlib.sha1(str(src.parent).encode()).hexdigest()
        for f in (run / sub).glob(src.stem + ".*"):
            f.unlink()
    return run


def env_for(tree: Path, cache: Path) -> dict:
    env = dict(os.environ)
    env.update(
        CI="1", PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1"
    )
    env.pop("HYPOTHESIS_PROFILE", None)
    return env


def check_import(tree: Path, cache: Path) -> None:
    r = subprocess.run(
        [str(PYTHON), "-c", "import tracedamon; print(tracedamon.__file__)"],
        cwd=tree,
        env=env_for(tree, cache),
        capture_output=True,
        text=True,
        check=True,
    )
    got = Path(r.stdout.strip()).resolve()
    if not str(got).startswith(str(tree.resolve())):
        raise SystemExit(f"the scratch tree's package is not the one imported: {got}")


_FAIL = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


def pytest(tree: Path, cache: Path, args: list[str], timeout: int) -> dict:
    cmd = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *args]
    t = time.monotonic()
    try:
        r = subprocess.run(
            cmd, cwd=tree, env=env_for(tree, cache), capture_output=True, text=True, timeout=timeout
        )
        rc, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        rc = "timeout"
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    failed = sorted(set(m.group(2) for m in _FAIL.finditer(out)))
    tail = [ln for ln in out.splitlines() if ln.strip()][-1:] or [""]
    return {
        "cmd": " ".join(args),
        "rc": rc,
        "failed": failed,
        "summary": tail[0],
        "seconds": round(time.monotonic() - t, 1),
    }


def record(out: Path, row: dict) -> None:
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def warm_slot(slot: int) -> None:
    """Bring ``slot``'s warm cache up to date with slot 0's (filled by the baseline run
    there): the same entries under the directory names numba derives from this slot's
    paths (numba names a cache directory after the source directory's path)."""
    src, dst = SCRATCH / "slot-0" / "numba-warm", SCRATCH / f"slot-{slot}" / "numba-warm"
    if slot == 0 or not src.exists():
        return
    t0, t1 = SCRATCH / "slot-0" / "tracedamon", SCRATCH / f"slot-{slot}" / "tracedamon"
    names = {}
    for rel in {Path(p).parent for p in tracked_files() if p.endswith(".py")}:
        a, b = t0 / rel, t1 / rel
        names[a.name + "_" + hashlib.sha1(str(a).encode()).hexdigest()] = (
            b.name + "_" + hashlib.sha1(str(b).encode()).hexdigest()
        )
    for sub in src.iterdir():
        if sub.name not in names:
            continue
        (dst / names[sub.name]).mkdir(parents=True, exist_ok=True)
        for f in sub.iterdir():
            g = dst / names[sub.name] / f.name
            if not g.exists():
                shutil.copy2(f, g)


def done_runs(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(ln) for ln in open(out) if ln.strip()]


# ----------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------
def cmd_check(_args) -> int:
    bad = 0
    for m in MUTANTS:
        text = (ROOT / m.file).read_text()
        n = text.count(m.old)
        ok = n == 1 and m.old != m.new
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {m.id:22} {m.file}:{m.line()}  (found {n}x)")
    ids = [m.id for m in MUTANTS]
    if len(set(ids)) != len(ids):
        print("duplicate ids")
        bad += 1
    return 1 if bad else 0


def _selected(args) -> list[Mutant | None]:
    ids = args.mutant or [m.id for m in MUTANTS]
    return [None if i == "none" else BY_ID[i] for i in ids]


ALL_TESTS = sorted({f for x in MUTANTS for f in x.tests})


def _prepare(slot: int, mutants: list[Mutant], fresh: bool) -> tuple[Path, Path]:
    tree = make_tree(slot, mutants)
    if not mutants and not fresh:
        cache = SCRATCH / f"slot-{slot}" / "numba-warm"  # the baseline fills it
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = numba_cache_for(slot, tree, mutants, fresh)
    check_import(tree, cache)
    return tree, cache


def _alone_one(slot: int, m: Mutant | None, args) -> None:
    """Run the mutant's test files alone, one after the other; unless ``--all-files``,
    stop at the first file that catches it.  Runs already in ``--out`` are not redone."""
    name = m.id if m else "none"
    prev = [r for r in done_runs(args.out) if r["mode"] == "alone" and r["mutant"] == name]
    if m and not args.all_files and any(r["rc"] != 0 for r in prev):
        return
    files = [f for f in (m.tests if m else ALL_TESTS) if f not in {r["file"] for r in prev}]
    if not files:
        return
    warm_slot(slot)
    warm = (SCRATCH / f"slot-{slot}" / "numba-warm").exists()
    tree, cache = _prepare(slot, [m] if m else [], args.fresh)
    how = (
        "empty"
        if args.fresh or (m and not warm)
        else "warm, being filled"
        if not m
        else "warm minus the edited file and its importers"
    )
    for f in files:
        res = pytest(tree, cache, ["-x", f], args.timeout)
        record(
            args.out,
            {"mode": "alone", "mutant": name, "file": f, "slot": slot, "numba_cache": how, **res},
        )
        verdict = "passed" if res["rc"] == 0 else f"FAILED {res['failed']} rc={res['rc']}"
        print(f"[{name}] {f}: {verdict} ({res['seconds']} s)", flush=True)
        if m and res["rc"] != 0 and not args.all_files:
            break


def cmd_alone(args) -> int:
    import queue

    sel = _selected(args)
    slots: queue.Queue = queue.Queue()
    for k in range(args.jobs):
        slots.put(args.first_slot + k)

    def job(m):
        k = slots.get()
        try:
            _alone_one(k, m, args)
        finally:
            slots.put(k)

    with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for fut in [ex.submit(job, m) for m in sel]:
            fut.result()
    return 0


def cmd_full(args) -> int:
    for m in _selected(args):
        name = m.id if m else "none"
        warm_slot(args.slot)
        tree, cache = _prepare(args.slot, [m] if m else [], args.fresh)
        res = pytest(tree, cache, ["-x", "-n", "2", "--dist", "loadfile"], args.timeout)
        record(args.out, {"mode": "full", "mutant": name, **res})
        print(
            f"[{name}] full suite: rc={res['rc']} {res['failed']} ({res['seconds']} s)", flush=True
        )
    return 0


def _compatible(group: list[Mutant]) -> bool:
    """Whether the edits of ``group`` apply together (each snippet still found once)."""
    texts: dict[str, str] = {}
    for m in group:
        t = texts.get(m.file, (ROOT / m.file).read_text())
        if t.count(m.old) != 1:
            return False
        texts[m.file] = t.replace(m.old, m.new)
    return True


def batches(n: int) -> list[list[Mutant]]:
    """The mutants dealt round-robin (in list order, so each area spreads over the
    batches) into ``n`` batches whose edits apply together."""
    groups: list[list[Mutant]] = [[] for _ in range(n)]
    for i, m in enumerate(MUTANTS):
        for k in range(n):
            g = groups[(i + k) % n]
            if _compatible(g + [m]):
                g.append(m)
                break
        else:
            raise SystemExit(f"{m.id} fits no batch")
    return groups


def cmd_batch(args) -> int:
    groups = batches(args.n)
    for i, g in enumerate(groups):
        if args.group is not None and i not in args.group:
            continue
        name = f"batch{i}"
        warm_slot(args.slot)
        tree, cache = _prepare(args.slot, g, args.fresh)
        res = pytest(tree, cache, ["-n", "2", "--dist", "loadfile"], args.timeout)
        record(args.out, {"mode": "batch", "group": [m.id for m in g], "mutant": name, **res})
        print(
            f"[{name}: {' '.join(m.id for m in g)}] full suite: rc={res['rc']} "
            f"{len(res['failed'])} failed ({res['seconds']} s)",
            flush=True,
        )
    return 0


def cmd_groups(args) -> int:
    for i, g in enumerate(batches(args.n)):
        print(i, " ".join(m.id for m in g))
    return 0


def _short(test: str) -> str:
    return test.replace("tests/", "")


def cmd_table(args) -> int:
    """A Markdown table of the results in ``--out``: per mutant, the test each file run
    alone failed first (-x), the files that passed with it, and whether a test that
    caught it alone failed in its batch's full-suite run."""
    rows = done_runs(args.out)
    alone: dict[str, list[str]] = {}
    passed: dict[str, list[str]] = {}
    for r in rows:
        if r["mode"] != "alone":
            continue
        got = (
            alone.setdefault(r["mutant"], [])
            if r["rc"] != 0
            else passed.setdefault(r["mutant"], [])
        )
        for t in (r["failed"] or [f"{r['file']} (rc {r['rc']})"]) if r["rc"] != 0 else [r["file"]]:
            if t not in got:
                got.append(t)
    full: dict[str, str] = {}
    for r in rows:
        if r["mode"] == "full":
            full[r["mutant"]] = (
                "full: " + ", ".join(map(_short, r["failed"]))
                if r["failed"]
                else f"full: NOT CAUGHT (rc {r['rc']})"
            )
        elif r["mode"] == "batch":
            failed = set(r["failed"])
            for mid in r["group"]:
                hit = sorted(t for t in alone.get(mid, []) if t in failed)
                shared = sorted(
                    t for t in hit if any(t in alone.get(o, []) for o in r["group"] if o != mid)
                )
                cell = (
                    ", ".join(
                        _short(t) + (" (also another mutant's)" if t in shared else "") for t in hit
                    )
                    if hit
                    else "NOT CAUGHT by its alone-tests"
                )
                full.setdefault(mid, f"{r['mutant']}: {cell}")
    print(
        "| mutant | file:line | change | caught alone (first failing test of each file "
        "run alone) | passed alone | full suite |"
    )
    print("|---|---|---|---|---|---|")
    for m in MUTANTS:
        caught = alone.get(m.id)
        cell = "<br>".join(map(_short, caught)) if caught else "**NOT CAUGHT**"
        ok = "<br>".join(map(_short, passed.get(m.id, []))) or "-"
        why = m.why.replace("|", "\\|")
        print(
            f"| {m.id} | {m.file.replace('tracedamon/', '')}:{m.line()} | {why} | {cell} "
            f"| {ok} | {full.get(m.id, '-')} |"
        )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=SCRATCH / "results.jsonl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    for name in ("alone", "full"):
        p = sub.add_parser(name)
        p.add_argument("--mutant", action="append", help="id (repeatable; 'none': baseline)")
        p.add_argument("--timeout", type=int, default=1800 if name == "alone" else 3600)
        p.add_argument(
            "--fresh",
            action="store_true",
            help="an empty numba cache for every run (slow: every kernel compiles)",
        )
        if name == "full":
            p.add_argument("--slot", type=int, default=3)
        if name == "alone":
            p.add_argument("-j", "--jobs", type=int, default=1)
            p.add_argument(
                "--first-slot",
                type=int,
                default=0,
                help="scratch slots used: first-slot .. first-slot + jobs - 1",
            )
            p.add_argument(
                "--all-files",
                action="store_true",
                help="run every relevant file, not only up to the first catch",
            )
    p = sub.add_parser("batch")
    p.add_argument("-n", type=int, default=4, help="number of batches")
    p.add_argument("--slot", type=int, default=2)
    p.add_argument("--group", type=int, action="append")
    p.add_argument("--timeout", type=int, default=5400)
    p.add_argument("--fresh", action="store_true")
    p = sub.add_parser("groups")
    p.add_argument("-n", type=int, default=4)
    sub.add_parser("table")
    args = ap.parse_args(argv)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return {
        "check": cmd_check,
        "alone": cmd_alone,
        "full": cmd_full,
        "batch": cmd_batch,
        "groups": cmd_groups,
        "table": cmd_table,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
