"""Process-wide settings an entry point applies first, before NumPy loads (``python -m web``, ``tessera``)."""

from __future__ import annotations

import os


def limit_blas_threads() -> None:
    """One OpenBLAS thread unless the environment says otherwise; must run before NumPy is imported.

    Our only matrix products are small (feature frames of 48 values), and after each one OpenBLAS's idle
    threads keep spinning for a while, taking the cores from the parallel kernels that follow (0.045 s of W2's
    candidate search).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
