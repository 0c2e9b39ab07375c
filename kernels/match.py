"""Nearest-tile matching by squared Euclidean distance."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel, ngjit_parallel_fast

__all__ = ["nearest_tiles", "nearest_candidates"]


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


@ngjit
def _bigger(hd, hi, a, b):
    # Heap order on (distance, index): is entry a after entry b?
    return hd[a] > hd[b] or (hd[a] == hd[b] and hi[a] > hi[b])


@ngjit
def _swap(hd, hi, a, b):
    hd[a], hd[b] = hd[b], hd[a]
    hi[a], hi[b] = hi[b], hi[a]


@ngjit
def _sift_down(hd, hi, start, end):
    # Restore the max-heap property of hd/hi[start:end] below ``start``.
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _bigger(hd, hi, child + 1, child):
            child += 1
        if not _bigger(hd, hi, child, root):
            return
        _swap(hd, hi, root, child)
        root = child


@ngjit
def _sift_up(hd, hi, child):
    while child > 0:
        parent = (child - 1) // 2
        if not _bigger(hd, hi, child, parent):
            return
        _swap(hd, hi, parent, child)
        child = parent


@ngjit
def _offer(hd, hi, size, d, t):
    # Offer (d, t) to a max-heap of the best entries holding ``size``; returns the new size.
    count = hd.shape[0]
    if size < count:
        hd[size] = d
        hi[size] = t
        _sift_up(hd, hi, size)
        return size + 1
    if d < hd[0] or (d == hd[0] and t < hi[0]):
        hd[0] = d
        hi[0] = t
        _sift_down(hd, hi, 0, count)
    return size


@ngjit_parallel_fast
def _candidates_loop(cells, tiles, tile_sq, out_idx, out_d):
    # Per cell: |c - t|^2 - |c|^2 = |t|^2 - 2 c.t for every tile, the best kept in a max-heap, then heap-sorted.
    count = out_idx.shape[1]
    for m in prange(cells.shape[0]):
        hd = out_d[m]
        hi = out_idx[m]
        c = cells[m]
        size = 0
        for t in range(tiles.shape[0]):
            dot = np.float32(0.0)
            for j in range(tiles.shape[1]):
                dot += c[j] * tiles[t, j]
            d = tile_sq[t] - np.float32(2.0) * dot
            if size < count or d < hd[0]:
                size = _offer(hd, hi, size, d, t)
        for end in range(count - 1, 0, -1):
            _swap(hd, hi, 0, end)
            _sift_down(hd, hi, 0, end)


def nearest_candidates(cell_feats: np.ndarray, tile_feats: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` nearest tiles of every cell, nearest first.

    Distances are squared Euclidean divided by the feature length (mean squared difference per
    feature value). One fused pass per cell over all tiles, the best kept in a heap (no distance
    matrix is stored); parallel over cells.

    Parameters
    ----------
    cell_feats : np.ndarray
        float32 array ``(M, D)``.
    tile_feats : np.ndarray
        float32 array ``(N, D)``, ``N >= 1``.
    count : int
        Candidates per cell; at most ``N`` are returned.

    Returns
    -------
    (np.ndarray, np.ndarray)
        int32 tile indices ``(M, C)`` and float32 distances ``(M, C)``, ``C = min(count, N)``,
        sorted by distance (ties by index, up to float32 rounding).
    """
    cells = _check_feats("cell_feats", cell_feats)
    tiles = _check_feats("tile_feats", tile_feats)
    if tiles.shape[0] < 1:
        raise ValueError(f"tile_feats must hold at least one tile, got shape {tiles.shape}")
    if cells.shape[1] != tiles.shape[1]:
        raise ValueError(f"feature lengths differ: cell_feats {cells.shape}, tile_feats {tiles.shape}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    c = min(int(count), tiles.shape[0])
    out_idx = np.zeros((cells.shape[0], c), dtype=np.int32)
    out_d = np.zeros((cells.shape[0], c), dtype=np.float32)
    _candidates_loop(cells, tiles, (tiles * tiles).sum(axis=1), out_idx, out_d)
    out_d += (cells * cells).sum(axis=1)[:, None]
    np.maximum(out_d, 0, out=out_d)
    out_d *= np.float32(1.0 / max(1, tiles.shape[1]))
    return out_idx, out_d
