"""Nearest-tile matching by squared Euclidean distance."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ngjit_parallel

__all__ = ["nearest_tiles"]


@ngjit_parallel
def _nearest_loop(cells, tiles, out):
    n_tiles, dim = tiles.shape
    for m in prange(cells.shape[0]):
        best = 0
        best_d = np.float32(np.inf)
        for n in range(n_tiles):
            d = np.float32(0.0)
            for j in range(dim):
                diff = cells[m, j] - tiles[n, j]
                d += diff * diff
            if d < best_d:  # strict: ties keep the lowest index
                best_d = d
                best = n
        out[m] = best


def _check_feats(name: str, arr: object) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.float32:
        raise ValueError(f"{name} must have dtype float32, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def nearest_tiles(cell_feats: np.ndarray, tile_feats: np.ndarray) -> np.ndarray:
    """Index of the nearest tile for each cell.

    Parameters
    ----------
    cell_feats : np.ndarray
        float32 array ``(M, D)``.
    tile_feats : np.ndarray
        float32 array ``(N, D)``, ``N >= 1``.

    Returns
    -------
    np.ndarray
        int32 array ``(M,)``; the tile with the smallest squared Euclidean distance, ties
        resolved to the lowest index.
    """
    cells = _check_feats("cell_feats", cell_feats)
    tiles = _check_feats("tile_feats", tile_feats)
    if tiles.shape[0] < 1:
        raise ValueError(f"tile_feats must hold at least one tile, got shape {tiles.shape}")
    if cells.shape[1] != tiles.shape[1]:
        raise ValueError(f"feature lengths differ: cell_feats {cells.shape}, tile_feats {tiles.shape}")
    out = np.empty(cells.shape[0], dtype=np.int32)
    _nearest_loop(cells, tiles, out)
    return out
