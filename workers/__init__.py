"""The queue protocol, the mosaic build pipeline, result stores and the worker daemon."""

import os

# Before anything imports NumPy, which loads OpenBLAS: our only matrix products are small (feature frames of
# 48 values), and after each one OpenBLAS's idle threads keep spinning for a while, taking the cores from the
# parallel kernels that follow (0.045 s of W2's candidate search). One BLAS thread, unless set otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
