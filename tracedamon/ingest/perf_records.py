"""Deprecated path (kept for one release): the perf.data record decoders now live in
:mod:`tracedamon.ingest.perf` by concern -- ``layout`` (the record and sample layout by
name), ``words`` (loads at any byte offset), ``scan`` (record boundaries),
``byteswap`` (big-endian records), ``sample_kernels`` (SAMPLE bodies),
``read_values`` (PERF_SAMPLE_READ) and ``sideband_kernels`` (MMAP, COMM, FORK, EXIT in
bulk). This module re-exports their public names."""

from .perf.byteswap import be_fix_samples, be_fix_sideband  # noqa: F401
from .perf.layout import *  # noqa: F403
from .perf.read_values import count_read_values, expand_read, read_len  # noqa: F401
from .perf.sample_kernels import (  # noqa: F401
    decode_samples,
    fixed_layouts,
    gather_bytes,
    gather_fixed_attrs,
    gather_u16,
    gather_u64_lists,
    sample_attrs,
)
from .perf.scan import scan_records, scan_records_be  # noqa: F401
from .perf.sideband_kernels import HEX_DIGITS, hex_bytes, sideband_fields  # noqa: F401
from .perf.words import as_u64_view  # noqa: F401
