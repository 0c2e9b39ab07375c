"""Numba decorator aliases shared by all kernels."""

from __future__ import annotations

import sys

import numba


def _load_numpy_support_without_blas_probe() -> None:
    """Load numba's NumPy support now, with its probe for SciPy's BLAS answered "absent".

    The probe imports scipy.linalg (about 0.2 s of every process start); no kernel calls BLAS inside
    ``@njit`` (the one matrix product, in :func:`kernels.principal_axes`, is plain NumPy). SciPy itself
    stays importable afterwards.
    """
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "numba.np.arraymath" in sys.modules:
        return
    sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules[name]


_load_numpy_support_without_blas_probe()

#: Serial nopython kernel, releases the GIL, cached on disk (``NUMBA_CACHE_DIR``).
ngjit = numba.njit(nogil=True, cache=True)

#: As :data:`ngjit` plus ``parallel=True``; use only for loops written with ``numba.prange``.
ngjit_parallel = numba.njit(nogil=True, cache=True, parallel=True)

#: As :data:`ngjit_parallel` with ``fastmath=True`` (reassociation, so sums vectorise); no NaN/inf inside.
ngjit_parallel_fast = numba.njit(nogil=True, cache=True, parallel=True, fastmath=True)

__all__ = ["ngjit", "ngjit_parallel", "ngjit_parallel_fast"]
