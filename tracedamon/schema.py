"""Every table tracedamon writes: column names, Arrow types and the schema version.

This is the one place column names live. Readers build Arrow record batches
against these schemas (``table_schema(name)``); writers refuse batches that do
not match. Column names carry their units (``time_ns``); values are raw
integers, never formatted strings. A column is nullable when a source may not
know the value (an event that did not record ``PHYS_ADDR`` has a null
``phys_addr``, not 0).
"""

from __future__ import annotations

import pyarrow as pa

#: Bumped whenever a column is added, removed, renamed or retyped.
SCHEMA_VERSION = 1

#: Key under which tracedamon stores its JSON metadata in every Parquet file.
METADATA_KEY = b"tracedamon"

_dict_str = pa.dictionary(pa.int32(), pa.string())

SAMPLES = pa.schema(
    [
        pa.field("time_ns", pa.int64()),  # perf's sample clock; null without TIME
        pa.field("pid", pa.int32()),
        pa.field("tid", pa.int32()),
        pa.field("cpu", pa.int32()),
        pa.field("event_id", pa.int32(), nullable=False),  # index of the attr in `events`
        pa.field("event", _dict_str, nullable=False),  # event name
        pa.field("ip", pa.uint64()),
        pa.field("addr", pa.uint64()),  # data virtual address
        pa.field("phys_addr", pa.uint64()),
        pa.field("period", pa.uint64()),  # sampled PERIOD, else the attr's fixed period
        pa.field("weight", pa.uint64()),  # WEIGHT, or WEIGHT_STRUCT var1
        pa.field("weight2", pa.uint16()),  # WEIGHT_STRUCT var2 (x86: ins_lat)
        pa.field("weight3", pa.uint16()),  # WEIGHT_STRUCT var3 (x86: retire_lat)
        pa.field("data_src", pa.uint64()),  # raw perf_mem_data_src
        pa.field("mem_op", _dict_str),  # decoded data_src, text as perf prints it
        pa.field("mem_level", _dict_str),
        pa.field("mem_snoop", _dict_str),
        pa.field("mem_tlb", _dict_str),
        pa.field("mem_lock", _dict_str),
        pa.field("mem_blk", _dict_str),
        pa.field("mem_remote", pa.bool_()),
        pa.field("mem_hops", pa.uint8()),
        pa.field("mem_lvl_num", pa.uint8()),
        pa.field("data_page_size", pa.uint64()),
        pa.field("code_page_size", pa.uint64()),
        pa.field("transaction", pa.uint64()),
        pa.field("cgroup", pa.uint64()),
        pa.field("stream_id", pa.uint64()),
        pa.field("sample_id", pa.uint64()),  # perf's ID / IDENTIFIER value
        pa.field("cpumode", pa.uint8(), nullable=False),  # header.misc & 7
        pa.field("misc", pa.uint16(), nullable=False),
        pa.field("callchain", pa.list_(pa.uint64())),
        pa.field("raw", pa.binary()),  # RAW payload (tracepoints); null otherwise
        pa.field("file_offset", pa.uint64()),  # where the record sits in its file (or container)
    ]
)

EVENTS = pa.schema(
    [
        pa.field("event_id", pa.int32(), nullable=False),  # attr index (perf's evsel index)
        pa.field("name", pa.string()),
        pa.field("pmu", pa.string()),
        pa.field("type", pa.uint32()),
        pa.field("config", pa.uint64()),
        pa.field("config1", pa.uint64()),
        pa.field("config2", pa.uint64()),
        pa.field("config3", pa.uint64()),
        pa.field("sample_type", pa.uint64()),
        pa.field("read_format", pa.uint64()),
        pa.field("flags", pa.uint64()),
        pa.field("freq", pa.bool_()),
        pa.field("sample_period", pa.uint64()),  # null in frequency mode
        pa.field("sample_freq", pa.uint64()),  # null in period mode
        pa.field("precise_ip", pa.uint8()),
        pa.field("sample_id_all", pa.bool_()),
        pa.field("branch_sample_type", pa.uint64()),
        pa.field("sample_regs_user", pa.uint64()),
        pa.field("sample_regs_intr", pa.uint64()),
        pa.field("sample_stack_user", pa.uint32()),
        pa.field("clockid", pa.int32()),  # null unless use_clockid
        pa.field("attr_size", pa.uint32()),
        pa.field("ids", pa.list_(pa.uint64())),
        pa.field("nr_samples", pa.int64()),
    ]
)

MMAPS = pa.schema(
    [
        pa.field("time_ns", pa.int64()),
        pa.field("pid", pa.int32()),
        pa.field("tid", pa.int32()),
        pa.field("start", pa.uint64()),
        pa.field("length", pa.uint64()),
        pa.field("pgoff", pa.uint64()),
        pa.field("prot", pa.uint32()),  # MMAP2 only
        pa.field("flags", pa.uint32()),  # MMAP2 only
        pa.field("filename", pa.string()),
        pa.field("build_id", pa.string()),  # hex, MMAP2 build-id form only
        pa.field("maj", pa.uint32()),
        pa.field("min", pa.uint32()),
        pa.field("ino", pa.uint64()),
        pa.field("ino_generation", pa.uint64()),
        pa.field("data", pa.bool_()),  # misc MMAP_DATA: a non-executable mapping
        pa.field("cpumode", pa.uint8()),
        pa.field("record_type", pa.uint8()),  # 1 MMAP, 10 MMAP2
    ]
)

TASKS = pa.schema(
    [
        pa.field("time_ns", pa.int64()),
        pa.field("kind", _dict_str, nullable=False),  # COMM, FORK, EXIT
        pa.field("pid", pa.int32()),
        pa.field("tid", pa.int32()),
        pa.field("ppid", pa.int32()),  # FORK/EXIT
        pa.field("ptid", pa.int32()),
        pa.field("comm", pa.string()),  # COMM
        pa.field("exec", pa.bool_()),  # COMM caused by exec
    ]
)

LOST = pa.schema(
    [
        pa.field("time_ns", pa.int64()),
        pa.field("kind", _dict_str, nullable=False),  # LOST, LOST_SAMPLES, THROTTLE, UNTHROTTLE
        pa.field("event_id", pa.int32()),
        pa.field("sample_id", pa.uint64()),
        pa.field("pid", pa.int32()),
        pa.field("tid", pa.int32()),
        pa.field("cpu", pa.int32()),
        pa.field("lost", pa.uint64()),  # 0 for THROTTLE/UNTHROTTLE
    ]
)

REGIONS = pa.schema(
    [
        pa.field("run", pa.int32(), nullable=False),  # kdamond run (a restart starts a new one)
        pa.field("snapshot", pa.int64(), nullable=False),  # aggregation number within the run
        pa.field("time_ns", pa.int64(), nullable=False),  # end of the aggregation
        pa.field("target", pa.int32(), nullable=False),  # DAMON target index
        pa.field("pid", pa.int32()),  # vaddr targets
        pa.field("start", pa.uint64(), nullable=False),
        pa.field("end", pa.uint64(), nullable=False),
        pa.field("nr_accesses", pa.uint32(), nullable=False),
        pa.field("age", pa.uint32()),  # null for traces without age
        pa.field("nr_accesses_bp", pa.uint32()),
    ]
)

PAGEMAP = pa.schema(
    [
        pa.field("snapshot", pa.int32(), nullable=False),
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("pid", pa.int32(), nullable=False),
        pa.field("vaddr_start", pa.uint64(), nullable=False),
        pa.field("vaddr_end", pa.uint64(), nullable=False),
        pa.field("pfn_start", pa.uint64()),  # null when not present (swapped / none)
        pa.field("flags", pa.uint32(), nullable=False),  # PAGEMAP_FLAG_* below
    ]
)

MAPS = pa.schema(
    [
        pa.field("snapshot", pa.int32(), nullable=False),
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("pid", pa.int32(), nullable=False),
        pa.field("start", pa.uint64(), nullable=False),
        pa.field("end", pa.uint64(), nullable=False),
        pa.field("perms", pa.string()),
        pa.field("offset", pa.uint64()),
        pa.field("dev", pa.string()),
        pa.field("inode", pa.uint64()),
        pa.field("path", pa.string()),
    ]
)

#: ``damon:damos_before_apply`` events of a real DAMON trace: one row per region a
#: DAMOS scheme is about to act on (written by the DAMON trace readers).
DAMOS_APPLY = pa.schema(
    [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("kdamond_pid", pa.int32()),  # the emitting kdamond (null if unknown)
        pa.field("cpu", pa.int32()),
        pa.field("context", pa.int32(), nullable=False),  # ctx_idx
        pa.field("scheme", pa.int32(), nullable=False),  # scheme_idx
        pa.field("target", pa.int64(), nullable=False),  # target_idx
        pa.field("nr_regions", pa.uint32()),
        pa.field("start", pa.uint64(), nullable=False),
        pa.field("end", pa.uint64(), nullable=False),
        pa.field("nr_accesses", pa.uint32(), nullable=False),
        pa.field("age", pa.uint32()),
    ]
)

#: One row per scheme per DAMOS application step of a ``tracedamon damos`` run (or of a
#: replay with schemes): the scheme's stats as the kernel keeps them (cumulative since its
#: kdamond started: a new ``run`` starts them over), the quota's state after the step.
#: ``nr_applied``, ``sz_applied`` and ``sz_ops_filter_passed`` depend on page state and are
#: modelled (see the run's metadata); the rest is what the kernel would count.
DAMOS_STATS = pa.schema(
    [
        pa.field("run", pa.int32(), nullable=False),
        pa.field("snapshot", pa.int64(), nullable=False),  # the aggregation of the step
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("context", pa.int32(), nullable=False),
        pa.field("scheme", pa.int32(), nullable=False),
        pa.field("applied", pa.bool_(), nullable=False),  # due and active: it walked the regions
        pa.field("nr_tried", pa.uint64(), nullable=False),
        pa.field("sz_tried", pa.uint64(), nullable=False),
        pa.field("nr_applied", pa.uint64(), nullable=False),
        pa.field("sz_applied", pa.uint64(), nullable=False),
        pa.field("sz_ops_filter_passed", pa.uint64(), nullable=False),
        pa.field("qt_exceeds", pa.uint64(), nullable=False),
        pa.field("min_score", pa.uint32(), nullable=False),
        pa.field("esz", pa.uint64(), nullable=False),  # effective quota (0: no quota)
        pa.field("charged_sz", pa.uint64(), nullable=False),  # charged in the current window
    ]
)

#: Modelled outcome of the actions on the recorded workload, per time bin (``time_ns`` is
#: the bin's end): ``model`` "pageout" (pageout / cold: bytes the action acted on,
#: non-resident bytes, re-accesses of paged-out pages) or "tier" (migrate_* / lru_*:
#: sampled accesses served from the fast tier, bytes migrated).  Columns of the other
#: model are null.
DAMOS_OUTCOME = pa.schema(
    [
        pa.field("run", pa.int32(), nullable=False),
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("model", _dict_str, nullable=False),
        pa.field("bytes_applied", pa.uint64()),
        pa.field("bytes_out", pa.uint64()),
        pa.field("reaccesses", pa.uint64()),
        pa.field("reaccess_bytes", pa.uint64()),
        pa.field("weight", pa.float64()),
        pa.field("fast_ratio", pa.float64()),
        pa.field("fast_ratio_first_touch", pa.float64()),
        pa.field("bytes_promoted", pa.uint64()),
        pa.field("bytes_demoted", pa.uint64()),
    ]
)

#: ``damon:damon_monitor_intervals_tune`` events: the sampling interval DAMON's
#: interval auto-tuning chose, from this time on.
INTERVALS_TUNE = pa.schema(
    [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("kdamond_pid", pa.int32()),
        pa.field("cpu", pa.int32()),
        pa.field("sample_us", pa.uint64(), nullable=False),
    ]
)

# flags of the `pagemap` table
PAGEMAP_FLAG_PRESENT = 1 << 0
PAGEMAP_FLAG_SWAPPED = 1 << 1
PAGEMAP_FLAG_FILE = 1 << 2  # file-page or shared-anon
PAGEMAP_FLAG_EXCLUSIVE = 1 << 3
PAGEMAP_FLAG_SOFT_DIRTY = 1 << 4
PAGEMAP_FLAG_THP = 1 << 5  # from /proc/kpageflags (THP or compound huge page)
PAGEMAP_FLAG_HUGE = 1 << 6  # hugetlbfs page
PAGEMAP_FLAG_COMPOUND_HEAD = 1 << 7  # from /proc/kpageflags: first page of a large folio

TABLES: dict[str, pa.Schema] = {
    "samples": SAMPLES,
    "events": EVENTS,
    "mmaps": MMAPS,
    "tasks": TASKS,
    "lost": LOST,
    "regions": REGIONS,
    "pagemap": PAGEMAP,
    "maps": MAPS,
    "damos_apply": DAMOS_APPLY,
    "damos_stats": DAMOS_STATS,
    "damos_outcome": DAMOS_OUTCOME,
    "intervals_tune": INTERVALS_TUNE,
}


def table_schema(name: str) -> pa.Schema:
    """The Arrow schema of table ``name`` (raises KeyError for an unknown table)."""
    return TABLES[name]


def empty_table(name: str) -> pa.Table:
    return empty(TABLES[name])


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (``Schema.empty_table()`` imports pandas, 0.19 s)."""
    return pa.Table.from_batches([], schema=schema)


def conform(table: pa.Table, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """``table`` in ``schema`` (or in its ``columns``, in that order).

    A table file may hold a narrower form of its schema: a column no row has is left
    out, and a column no row lacks is declared non-nullable (see README, "The trace
    directory"). This restores the full form: absent columns come back as nulls of
    their type and every field takes the schema's nullability. Columns beyond the
    schema are kept at the end. Zero-copy when the types already match.
    """
    names = schema.names if columns is None else list(columns)
    n = table.num_rows
    arrays, fields = [], []
    for name in names:
        if name not in schema.names:  # not a schema column: as the file has it
            arrays.append(table.column(name))
            fields.append(table.schema.field(name))
            continue
        f = schema.field(name)
        if name in table.column_names:
            col = table.column(name)
            if col.type != f.type:
                col = col.cast(f.type)
        elif f.nullable:
            col = (
                pa.chunked_array([pa.nulls(n, f.type)]) if n else pa.chunked_array([], type=f.type)
            )
        else:
            raise ValueError(f"column {name!r} is missing and may not be null")
        arrays.append(col)
        fields.append(f)
    if columns is None:
        # columns beyond the schema (a newer writer's) are kept, after the others
        for name in table.column_names:
            if name not in schema.names:
                arrays.append(table.column(name))
                fields.append(table.schema.field(name))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))
