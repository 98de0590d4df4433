"""The perf.data record and sample layout by name: PERF_SAMPLE_* and read_format bits,
PERF_RECORD_* types, the columns of the sample decode matrix and the decoders' error
codes.

These are plain module constants so that the numba kernels of this package
(words.py, scan.py, byteswap.py, sample_kernels.py, read_values.py,
sideband_kernels.py) compile them in; the word "numba" in this docstring also puts
this module among :func:`tracedamon.numba_cache.kernel_sources`, so a change here
starts a fresh kernel cache.
"""

from __future__ import annotations

# PERF_SAMPLE_* bits
S_IP = 1 << 0
S_TID = 1 << 1
S_TIME = 1 << 2
S_ADDR = 1 << 3
S_READ = 1 << 4
S_CALLCHAIN = 1 << 5
S_ID = 1 << 6
S_CPU = 1 << 7
S_PERIOD = 1 << 8
S_STREAM_ID = 1 << 9
S_RAW = 1 << 10
S_BRANCH_STACK = 1 << 11
S_REGS_USER = 1 << 12
S_STACK_USER = 1 << 13
S_WEIGHT = 1 << 14
S_DATA_SRC = 1 << 15
S_IDENTIFIER = 1 << 16
S_TRANSACTION = 1 << 17
S_REGS_INTR = 1 << 18
S_PHYS_ADDR = 1 << 19
S_AUX = 1 << 20
S_CGROUP = 1 << 21
S_DATA_PAGE_SIZE = 1 << 22
S_CODE_PAGE_SIZE = 1 << 23
S_WEIGHT_STRUCT = 1 << 24
#: every bit whose sample layout this reader knows
S_KNOWN = (1 << 25) - 1

# read_format bits
F_TOTAL_TIME_ENABLED = 1
F_TOTAL_TIME_RUNNING = 2
F_ID = 4
F_GROUP = 8
F_LOST = 16

# PERF_RECORD_* types: the kernel's records (1..21) and perf's own (64..83), named as
# in tracedamon.ingest.perf.header.RECORD_NAMES (tests/test_ingest_layout.py checks
# that the two agree); module constants, so the kernels compile them in
R_MMAP = 1
R_LOST = 2
R_COMM = 3
R_EXIT = 4
R_THROTTLE = 5
R_UNTHROTTLE = 6
R_FORK = 7
R_SAMPLE = 9
R_MMAP2 = 10
R_LOST_SAMPLES = 13
R_HEADER_ATTR = 64
R_HEADER_TRACING_DATA = 66
R_FINISHED_ROUND = 68
R_ID_INDEX = 69
R_AUXTRACE = 71
R_EVENT_UPDATE = 78
R_HEADER_FEATURE = 80
R_COMPRESSED = 81
R_FINISHED_INIT = 82
R_COMPRESSED2 = 83

# columns of the decode matrix
C_IP, C_TID, C_TIME, C_ADDR, C_ID, C_STREAM_ID, C_CPU, C_PERIOD = range(8)
C_READ_OFF, C_READ_LEN, C_CC_OFF, C_CC_NR, C_RAW_OFF, C_RAW_LEN = range(8, 14)
C_WEIGHT, C_DATA_SRC, C_TRANSACTION, C_PHYS_ADDR, C_CGROUP = range(14, 19)
C_DATA_PAGE_SIZE, C_CODE_PAGE_SIZE = 19, 20
NCOLS = 21

# error codes of decode_samples (0 = fine)
ERR_SHORT = 1  # a field runs past header.size
ERR_READ = 2  # read_format group count impossible
ERR_CALLCHAIN = 3
ERR_RAW = 4
ERR_BRANCH = 5
ERR_REGS = 6
ERR_STACK = 7
ERR_AUX = 8
ERR_TEXT = {
    ERR_SHORT: "sample record shorter than its sample_type requires",
    ERR_READ: "sample READ block larger than the record",
    ERR_CALLCHAIN: "sample callchain larger than the record",
    ERR_RAW: "sample RAW payload larger than the record",
    ERR_BRANCH: "sample branch stack larger than the record",
    ERR_REGS: "sample register block larger than the record",
    ERR_STACK: "sample user stack larger than the record",
    ERR_AUX: "sample AUX data larger than the record",
}

#: sample_type bits whose fields have a variable size
S_VARIABLE = (
    S_READ | S_CALLCHAIN | S_RAW | S_BRANCH_STACK | S_REGS_USER | S_STACK_USER | S_REGS_INTR | S_AUX
)

#: per-record error of the side-band kernels: the record is shorter than its fixed part
SB_SHORT = 1
