"""What a worker-side process does once at start: before NumPy loads, and before the kernels load.

``prepare_process`` is called first by the entry points (``tessera``, ``python -m workers``);
``prepare_kernels`` just before a command's first import of the kernels (``tessera worker``, ``tessera
build`` once its tiles are decoding in forked processes, which should not carry Numba). The tests' conftest
calls both. A process that imports ``kernels`` without them gets plain Numba: correct, only slower to start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHECKOUT_MARKERS = ("setup.cfg", "supervisord.conf", "kernels", "workers")
"""What sits beside ``workers/`` in a checkout (an installed wheel's site-packages has none of the files)."""


def prepare_process() -> None:
    """One BLAS thread, one Numba cache, and Pillow's own pixel guard off (we check declared sizes ourselves).
    Safe to call more than once."""
    from workers.protocol.startup import limit_blas_threads

    limit_blas_threads()  # first: before anything imports NumPy
    use_one_kernel_cache()
    from workers.inputs.images import configure_pillow

    configure_pillow()


def prepare_kernels() -> None:
    """Numba imported without SciPy's version check, and cached kernels loaded lean; before the kernels load."""
    use_one_kernel_cache()
    import_numba_without_scipy_check()
    load_cached_kernels_without_refresh()


def kernel_cache_dir() -> Path:
    """Where this installation's compiled kernels live: ``<checkout>/var/numba-cache`` when the code runs from a
    checkout (workers, the CLI and the tests alike), else ``<virtualenv>/numba-cache``, where a worker node's
    supervisord.conf points (orchestrator/nodeconf.py)."""
    here = Path(__file__).resolve().parents[2]  # workers/cli/startup.py -> the folder holding workers/
    if all((here / name).exists() for name in CHECKOUT_MARKERS):
        return here / "var" / "numba-cache"
    return Path(sys.prefix) / "numba-cache"


def use_one_kernel_cache() -> None:
    """``NUMBA_CACHE_DIR`` set to :func:`kernel_cache_dir` unless set already (supervisord sets it), so no
    process of an installation compiles kernels another has cached; before Numba is imported (it reads the
    variable then). A folder that cannot be made leaves Numba's default (next to the sources)."""
    if os.environ.get("NUMBA_CACHE_DIR") or "numba" in sys.modules:
        return
    folder = kernel_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK | os.X_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(folder)


def warm_kernels() -> None:
    """Compile (or load from the cache) every kernel variant the worker and `tessera build` call: ``make deps``
    runs it (``tessera warm-kernels``), so the first build of a fresh checkout compiles nothing."""
    prepare_kernels()
    import kernels

    kernels.warm_up()


def import_numba_without_scipy_check() -> None:
    """``import numba``, minus the import of SciPy that Numba does only to check its version.

    That import is 15 ms of every process start where SciPy is installed (scikit-image brings it for the
    benchmark); no kernel uses SciPy. SciPy stays importable afterwards, and Numba imports it itself where it
    needs it (np.linalg support, when compiling).
    """
    if "numba" in sys.modules or "scipy" in sys.modules:
        return
    sys.modules["scipy"] = None  # type: ignore[assignment]  # makes `import scipy` raise ImportError
    try:
        import numba  # noqa: F401
    finally:
        del sys.modules["scipy"]


def load_cached_kernels_without_refresh() -> None:
    """Let a cached kernel load without first registering every implementation Numba has.

    ``Cache.load_overload`` refreshes the target context before reading a kernel from the cache: it imports
    and registers all of Numba's typing and lowering rules (about 0.1 s of a process start; half of loading
    our kernels). A kernel rebuilt from its cached object code needs only the runtime (NRT) set up; a kernel
    that must be compiled still gets the full refresh, in ``CompilerBase.__init__``. Must run before the
    first kernel loads.
    """
    from numba.core import caching
    from numba.core.runtime import nrt

    def load_overload(self: caching.Cache, sig: object, target_context: object) -> object:
        nrt.rtsys.initialize(target_context)
        return self._load_overload(sig, target_context)  # type: ignore[no-untyped-call]

    if hasattr(caching.Cache, "_load_overload"):  # the split this relies on (Numba 0.49 on)
        caching.Cache.load_overload = load_overload  # type: ignore[method-assign]
