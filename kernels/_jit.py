"""Numba decorator aliases shared by all kernels."""

from __future__ import annotations

import sys
from types import ModuleType


def _import_numba_without_scipy_check() -> ModuleType:
    """``import numba``, minus the import of SciPy that Numba does only to check its version.

    That import is 15 ms of every process start where SciPy is installed (scikit-image brings it for the
    benchmark); no kernel uses SciPy. SciPy stays importable afterwards, and Numba imports it itself where it
    needs it (np.linalg support, when compiling).
    """
    if "numba" in sys.modules or "scipy" in sys.modules:
        import numba  # noqa: PLC0415

        return numba
    sys.modules["scipy"] = None  # type: ignore[assignment]  # makes `import scipy` raise ImportError
    try:
        import numba  # noqa: PLC0415
    finally:
        del sys.modules["scipy"]
    return numba


numba = _import_numba_without_scipy_check()


def _load_cached_kernels_without_refresh() -> None:
    """Let a cached kernel load without first registering every implementation Numba has.

    ``Cache.load_overload`` refreshes the target context before reading a kernel from the cache: it imports
    and registers all of Numba's typing and lowering rules (about 0.1 s of a process start; half of loading
    our kernels). A kernel rebuilt from its cached object code needs only the runtime (NRT) set up; a kernel
    that must be compiled still gets the full refresh, in ``CompilerBase.__init__``.
    """
    from numba.core import caching
    from numba.core.runtime import nrt

    def load_overload(self, sig, target_context):
        nrt.rtsys.initialize(target_context)
        return self._load_overload(sig, target_context)

    if hasattr(caching.Cache, "_load_overload"):  # the split this relies on (Numba 0.49 on)
        caching.Cache.load_overload = load_overload  # type: ignore[method-assign]


_load_cached_kernels_without_refresh()

def thread_slots() -> int:
    """Rows of per-thread scratch a parallel kernel indexes with ``numba.get_thread_id()`` (always below this)."""
    return int(numba.config.NUMBA_NUM_THREADS)


#: Serial nopython kernel, releases the GIL, cached on disk (``NUMBA_CACHE_DIR``).
ngjit = numba.njit(nogil=True, cache=True)

#: As :data:`ngjit` plus ``parallel=True``; use only for loops written with ``numba.prange``.
ngjit_parallel = numba.njit(nogil=True, cache=True, parallel=True)

#: As :data:`ngjit_parallel` with ``fastmath=True`` (reassociation, so sums vectorise); no NaN/inf inside.
ngjit_parallel_fast = numba.njit(nogil=True, cache=True, parallel=True, fastmath=True)

__all__ = ["ngjit", "ngjit_parallel", "ngjit_parallel_fast", "thread_slots"]
