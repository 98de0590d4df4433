"""DAMON sysfs dumps: the ``path:value`` lines of ``grep -r .
/sys/kernel/mm/damon/admin/kdamonds/N``, values exactly as the kernel holds them."""

from __future__ import annotations

from ...engine.damos.scheme import (
    AccessPattern,
    Filter,
    Quota,
    QuotaGoal,
    Scheme,
    Watermarks,
)
from ...errors import ConfigError, TraceFormatError
from .file import SchemeFile

SYSFS_PREFIX = "/sys/kernel/mm/damon/admin/kdamonds/"


def sysfs_tree(text: str, path: str) -> dict:
    tree: dict = {}
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith(SYSFS_PREFIX) or ":" not in line:
            raise TraceFormatError(
                path,
                f"not a DAMON sysfs line ({line[:60]!r}); expected "
                f"'{SYSFS_PREFIX}...:value' as `grep -r .` prints",
                line=ln,
            )
        key, value = line[len(SYSFS_PREFIX) :].split(":", 1)
        node = tree
        parts = key.split("/")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise TraceFormatError(path, f"{key}: both a file and a directory", line=ln)
            node = nxt
        node[parts[-1]] = (value, ln)
    return tree


class _Sysfs:
    def __init__(self, tree: dict, path: str):
        self.tree, self.path = tree, path

    def node(self, *keys):
        n = self.tree
        for k in keys:
            if not isinstance(n, dict) or k not in n:
                raise TraceFormatError(self.path, f"missing {'/'.join(keys)} in the dump")
            n = n[k]
        return n

    def has(self, *keys) -> bool:
        try:
            self.node(*keys)
            return True
        except TraceFormatError:
            return False

    def str(self, *keys) -> str:
        v = self.node(*keys)
        if isinstance(v, dict):
            raise TraceFormatError(self.path, f"{'/'.join(keys)} is a directory, not a file")
        return v[0]

    def int(self, *keys) -> int:
        v = self.node(*keys)
        try:
            return int(v[0].strip())
        except (ValueError, TypeError, IndexError):
            raise TraceFormatError(
                self.path,
                f"{'/'.join(keys)}: {v[0]!r} is not an integer",
                line=v[1] if isinstance(v, tuple) else None,
            ) from None

    def bool(self, *keys) -> bool:
        v = self.str(*keys).strip()
        if v not in ("Y", "N"):
            raise TraceFormatError(
                self.path, f"{'/'.join(keys)}: {v!r} is not Y or N", line=self.node(*keys)[1]
            )
        return v == "Y"

    def entries(self, *keys, count: str) -> list[str]:
        n = self.int(*keys, count)
        d = self.node(*keys)
        missing = [str(i) for i in range(n) if str(i) not in d]
        if missing:
            raise TraceFormatError(
                self.path,
                f"{'/'.join(keys)}/{count} says {n}, but entry {missing[0]} is not in the dump",
            )
        return [str(i) for i in range(n)]


def sysfs(text: str, path: str, select: tuple[int, int] | None) -> SchemeFile:
    """The schemes of a sysfs dump's one context with schemes (or of kdamond K context C
    when ``select`` is (K, C)), with that context's monitoring attributes."""
    f = _Sysfs(sysfs_tree(text, path), path)
    k, c = _context_with_schemes(f, path, select)
    cx = (k, "contexts", c)
    mon = _monitoring(f, cx)
    schemes = [
        _scheme(f, cx + ("schemes", s), f"kdamond {k} context {c} scheme {s}")
        for s in f.entries(*cx, "schemes", count="nr_schemes")
    ]
    return SchemeFile(schemes, mon, f"sysfs dump {path} (kdamond {k}, context {c})", [])


def _context_with_schemes(f: _Sysfs, path: str, select) -> tuple[str, str]:
    """The (kdamond, context) of the dump whose schemes are read: the only one with
    schemes, or the selected one."""
    found = []
    for k in sorted((x for x in f.tree if x.isdigit()), key=int):
        if not f.has(k, "contexts"):
            continue
        for c in f.entries(k, "contexts", count="nr_contexts"):
            found.append((int(k), int(c)))
    if select is not None:
        found = [x for x in found if x == select]
        if not found:
            raise ConfigError(f"{path}: no kdamond {select[0]} context {select[1]}")
    with_schemes = [
        x
        for x in found
        if f.has(str(x[0]), "contexts", str(x[1]), "schemes", "nr_schemes")
        and f.int(str(x[0]), "contexts", str(x[1]), "schemes", "nr_schemes")
    ]
    if not with_schemes:
        raise ConfigError(f"{path}: no context with schemes in the dump")
    if len(with_schemes) > 1:
        raise ConfigError(
            f"{path}: {len(with_schemes)} contexts have schemes; choose one with {path}#K/C"
        )
    k, c = (str(x) for x in with_schemes[0])
    return k, c


def _monitoring(f: _Sysfs, cx: tuple) -> dict:
    """The context's operations set, intervals, region count bounds, address unit and
    targets (with their initial regions)."""
    ma = cx + ("monitoring_attrs",)
    au = f.int(*cx, "addr_unit") if f.has(*cx, "addr_unit") else 1
    targets = []
    if f.has(*cx, "targets"):
        for t in f.entries(*cx, "targets", count="nr_targets"):
            tx = cx + ("targets", t)
            regs = []
            if f.has(*tx, "regions"):
                for r in f.entries(*tx, "regions", count="nr_regions"):
                    regs.append(
                        [f.int(*tx, "regions", r, "start"), f.int(*tx, "regions", r, "end")]
                    )
            pid = f.int(*tx, "pid_target") if f.has(*tx, "pid_target") else None
            targets.append({"pid": pid, "regions": regs})
    return {
        "ops": f.str(*cx, "operations").strip(),
        "sample_us": f.int(*ma, "intervals", "sample_us"),
        "aggr_us": f.int(*ma, "intervals", "aggr_us"),
        "update_us": f.int(*ma, "intervals", "update_us"),
        "min_nr_regions": f.int(*ma, "nr_regions", "min"),
        "max_nr_regions": f.int(*ma, "nr_regions", "max"),
        "addr_unit": au,
        "targets": targets,
    }


def _scheme(f: _Sysfs, sx: tuple, name: str) -> Scheme:
    """One scheme directory of the dump."""
    ap = sx + ("access_pattern",)
    pattern = AccessPattern(
        f.int(*ap, "sz", "min"),
        f.int(*ap, "sz", "max"),
        f.int(*ap, "nr_accesses", "min"),
        f.int(*ap, "nr_accesses", "max"),
        f.int(*ap, "age", "min"),
        f.int(*ap, "age", "max"),
    )
    quota = _quota(f, sx + ("quotas",))
    wx = sx + ("watermarks",)
    wmarks = Watermarks(
        f.str(*wx, "metric").strip(),
        f.int(*wx, "interval_us"),
        f.int(*wx, "high"),
        f.int(*wx, "mid"),
        f.int(*wx, "low"),
    )
    filters = _filters(f, sx)
    tnid = f.int(*sx, "target_nid") if f.has(*sx, "target_nid") else -1
    return Scheme(
        f.str(*sx, "action").strip(),
        pattern,
        quota,
        wmarks,
        tuple(filters),
        f.int(*sx, "apply_interval_us"),
        tnid,
        name=name,
    )


def _quota(f: _Sysfs, qx: tuple) -> Quota:
    """A scheme's ``quotas`` directory, its goals included."""
    goals = []
    if f.has(*qx, "goals"):
        for g in f.entries(*qx, "goals", count="nr_goals"):
            gx = qx + ("goals", g)
            goals.append(
                QuotaGoal(
                    f.str(*gx, "target_metric").strip(),
                    f.int(*gx, "target_value"),
                    f.int(*gx, "current_value"),
                    f.int(*gx, "nid") if f.has(*gx, "nid") else None,
                    f.str(*gx, "path").strip() if f.has(*gx, "path") else None,
                )
            )
    return Quota(
        f.int(*qx, "ms"),
        f.int(*qx, "bytes"),
        f.int(*qx, "reset_interval_ms"),
        f.int(*qx, "weights", "sz_permil"),
        f.int(*qx, "weights", "nr_accesses_permil"),
        f.int(*qx, "weights", "age_permil"),
        tuple(goals),
    )


def _filters(f: _Sysfs, sx: tuple) -> list[Filter]:
    """A scheme's filters (``filters``, ``core_filters``, ``ops_filters``), the core
    filters first as the kernel keeps them."""
    filters = []
    for d in ("filters", "core_filters", "ops_filters"):
        if not f.has(*sx, d):
            continue
        for i in f.entries(*sx, d, count="nr_filters"):
            fx = sx + (d, i)
            ftype = f.str(*fx, "type").strip()
            kw = {}
            if ftype == "addr":
                kw = {
                    "addr_start": f.int(*fx, "addr_start"),
                    "addr_end": f.int(*fx, "addr_end"),
                }
            elif ftype == "target":
                key = "damon_target_idx" if f.has(*fx, "damon_target_idx") else "target_idx"
                kw = {"target_idx": f.int(*fx, key)}
            elif ftype == "memcg":
                kw = {"memcg_path": f.str(*fx, "memcg_path").strip()}
            elif ftype == "hugepage_size":
                kw = {"sz_min": f.int(*fx, "min"), "sz_max": f.int(*fx, "max")}
            allow = f.bool(*fx, "allow") if f.has(*fx, "allow") else False
            filters.append(Filter(ftype, f.bool(*fx, "matching"), allow, **kw))
    return [x for x in filters if x.core] + [x for x in filters if not x.core]
