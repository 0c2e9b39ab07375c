"""Assemble the mosaic image from tiles and an assignment grid."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ngjit_parallel

__all__ = ["render"]


@ngjit_parallel
def _render_loop(tiles, assignment, out):
    ph, pw = tiles.shape[1], tiles.shape[2]
    cols = assignment.shape[1]
    for y in prange(assignment.shape[0] * ph):
        r = y // ph
        ty = y - r * ph
        for c in range(cols):
            out[y, c * pw : (c + 1) * pw, :] = tiles[assignment[r, c], ty, :, :]


def render(tiles: np.ndarray, assignment: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Copy tile ``assignment[r, c]`` to pixel ``(r*P, c*P)`` of the mosaic.

    Parameters
    ----------
    tiles : np.ndarray
        uint8 array ``(N, P, P, 3)``.
    assignment : np.ndarray
        Integer array ``(rows, cols)`` with values in ``[0, N)``.
    out : np.ndarray, optional
        uint8 array ``(rows*P, cols*P, 3)`` to write into; allocated if omitted.

    Returns
    -------
    np.ndarray
        The mosaic, uint8 ``(rows*P, cols*P, 3)`` (``out`` itself when given).
    """
    if not isinstance(tiles, np.ndarray) or tiles.dtype != np.uint8:
        raise ValueError(f"tiles must be a uint8 numpy array, got {getattr(tiles, 'dtype', type(tiles).__name__)}")
    if tiles.ndim != 4 or tiles.shape[3] != 3:
        raise ValueError(f"tiles must have shape (N, P, P, 3), got {tiles.shape}")
    if not isinstance(assignment, np.ndarray) or not np.issubdtype(assignment.dtype, np.integer):
        got = getattr(assignment, "dtype", type(assignment).__name__)
        raise ValueError(f"assignment must be an integer numpy array, got {got}")
    if assignment.ndim != 2:
        raise ValueError(f"assignment must have shape (rows, cols), got {assignment.shape}")
    n, ph, pw, _ = tiles.shape
    if assignment.size:
        lo, hi = int(assignment.min()), int(assignment.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ValueError(f"assignment values must be in [0, {n}), got {bad}")
    rows, cols = assignment.shape
    shape = (rows * ph, cols * pw, 3)
    if out is None:
        out = np.empty(shape, dtype=np.uint8)
    elif not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != shape:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a uint8 array of shape {shape}, got {got}")
    elif not out.flags.writeable:
        raise ValueError("out must be writeable")
    _render_loop(np.ascontiguousarray(tiles), np.ascontiguousarray(assignment, dtype=np.int64), out)
    return out
