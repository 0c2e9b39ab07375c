"""Numba decorator aliases shared by all kernels."""

from __future__ import annotations

import numba

# Numba is imported plainly here. A process's entry point first imports it without SciPy's version check and
# lets cached kernels load without Numba's full registry refresh (workers/cli/startup.py, prepare_kernels):
# explicit start-up steps, not side effects of importing the kernels.


def thread_slots() -> int:
    """Rows of per-thread scratch a parallel kernel indexes with ``numba.get_thread_id()`` (always below this)."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # numba.config sets it at run time


#: Serial nopython kernel, releases the GIL, cached on disk (``NUMBA_CACHE_DIR``).
ngjit = numba.njit(nogil=True, cache=True)

#: As :data:`ngjit` plus ``parallel=True``; use only for loops written with ``numba.prange``.
ngjit_parallel = numba.njit(nogil=True, cache=True, parallel=True)

#: As :data:`ngjit_parallel` with ``fastmath=True`` (reassociation, so sums vectorise); no NaN/inf inside.
ngjit_parallel_fast = numba.njit(nogil=True, cache=True, parallel=True, fastmath=True)

__all__ = ["ngjit", "ngjit_parallel", "ngjit_parallel_fast", "thread_slots"]
