"""The array layouts the DAMOS kernels share (numba reads these as constants).

The walk (:mod:`.walk`) and the score histogram (:mod:`.score`) take the schemes, their
state and the context as int64 matrices rather than objects: ``sp`` holds one row of
scheme parameters per scheme, ``ss`` one row of state, ``cfg`` the context, ``cf`` one
row per core filter (``type, scheme, matching, allow, a, b``), and the walk writes one
``ap`` row per application.  :mod:`.core` packs and unpacks them.
"""

from __future__ import annotations

from .scheme import ULONG_MAX

M64 = ULONG_MAX
I64_MAX = 2**63 - 1

# scheme parameter columns (sp)
(
    P_ACTION,
    P_MINSZ,
    P_MAXSZ,
    P_MINNR,
    P_MAXNR,
    P_MINAGE,
    P_MAXAGE,
    P_SCORE,
    P_WNR,
    P_WAGE,
    P_STATIC_SET,
    P_CORE_DEFREJ,
    P_IS_STAT,
) = range(13)
NP = 13
# scheme state columns (ss)
(
    S_RUN,
    S_ESZ,
    S_CHARGED,
    S_TFROM,
    S_AFROM,
    S_MINSCORE,
    S_NRTRIED,
    S_SZTRIED,
    S_CALLS,
    S_ZEROTRIES,
) = range(10)
NS = 10
# context columns (cfg)
C_MAXNR, C_AGGR, C_MINREG, C_EXCL, C_QSET, C_QFULL, C_VISIT, C_RESUME_LAST, C_HISTCF = range(9)
NC = 9
# application record columns
A_SCHEME, A_TARGET, A_START, A_END, A_NR, A_AGE, A_NRREG, A_CORE_ALLOWED = range(8)
NA = 8
# core filter types (cf[:, 0])
FT_ADDR, FT_TARGET = 0, 1
