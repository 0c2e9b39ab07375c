"""Numba decorator aliases shared by all kernels."""

from __future__ import annotations

import numba

#: Serial nopython kernel, releases the GIL, cached on disk (``NUMBA_CACHE_DIR``).
ngjit = numba.njit(nogil=True, cache=True)

#: As :data:`ngjit` plus ``parallel=True``; use only for loops written with ``numba.prange``.
ngjit_parallel = numba.njit(nogil=True, cache=True, parallel=True)

__all__ = ["ngjit", "ngjit_parallel"]
