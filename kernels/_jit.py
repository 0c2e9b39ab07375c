"""Numba decorator aliases shared by all kernels."""

from __future__ import annotations

import numba

#: Serial nopython kernel, releases the GIL, cached on disk (``NUMBA_CACHE_DIR``).
ngjit = numba.njit(nogil=True, cache=True)

#: As :data:`ngjit` plus ``parallel=True``; use only for loops written with ``numba.prange``.
ngjit_parallel = numba.njit(nogil=True, cache=True, parallel=True)

#: As :data:`ngjit_parallel` with ``fastmath=True`` (reassociation, so sums vectorise); no NaN/inf inside.
ngjit_parallel_fast = numba.njit(nogil=True, cache=True, parallel=True, fastmath=True)

__all__ = ["ngjit", "ngjit_parallel", "ngjit_parallel_fast"]
