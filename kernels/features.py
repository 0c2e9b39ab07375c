"""Block-mean feature vectors for tiles and target cells.

A feature is the CIELAB colour of the mean sRGB value of each block: the colour a box
downsample to ``k`` x ``k`` shows, which is what a viewer (and the benchmark's metric) sees.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ngjit_parallel
from .color import lab_from_mean

__all__ = ["block_means", "tile_features", "cell_features"]


@ngjit_parallel
def _block_means_loop(imgs, rows, cols, out, sums):
    # imgs (N, H, W, C) -> out (N, rows, cols, C); block i spans [i*H//rows, (i+1)*H//rows). ``sums``: float64
    # (N*rows, C) scratch (no array is made in here: see kernels/_jit.py).
    n_img, h, w, c = imgs.shape
    for idx in prange(n_img * rows):
        n = idx // rows
        i = idx - n * rows
        r0 = i * h // rows
        r1 = (i + 1) * h // rows
        acc = sums[idx]
        for j in range(cols):
            c0 = j * w // cols
            c1 = (j + 1) * w // cols
            acc[:] = 0.0
            for y in range(r0, r1):
                for x in range(c0, c1):
                    for ch in range(c):
                        acc[ch] += imgs[n, y, x, ch]
            inv = 1.0 / ((r1 - r0) * (c1 - c0))
            for ch in range(c):
                out[n, i, j, ch] = np.float32(acc[ch] * inv)


@ngjit_parallel
def _means_to_lab_loop(means):
    # In place: block means of sRGB (0-255, shape (..., 3) flattened to (n, 3)) to CIELAB.
    for i in prange(means.shape[0]):
        means[i, 0], means[i, 1], means[i, 2] = lab_from_mean(means[i, 0], means[i, 1], means[i, 2])


def _lab_block_means(imgs: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """CIELAB of the block-mean sRGB colours of uint8 images ``(N, H, W, 3)``: float32 ``(N, rows, cols, 3)``."""
    out = np.empty((imgs.shape[0], rows, cols, 3), dtype=np.float32)
    _block_means_loop(np.ascontiguousarray(imgs), rows, cols, out, np.empty((imgs.shape[0] * rows, 3)))
    _means_to_lab_loop(out.reshape(-1, 3))
    return out


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_uint8(name: str, arr: object, ndim: int, layout: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8, got {arr.dtype}")
    if arr.ndim != ndim or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape {layout}, got {arr.shape}")
    return arr


def block_means(img: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of each block of a ``rows`` x ``cols`` grid over an image.

    Block ``(i, j)`` covers rows ``floor(i*H/rows)`` to ``floor((i+1)*H/rows)`` (and likewise
    for columns), so ``H`` and ``W`` need not divide evenly.

    Parameters
    ----------
    img : np.ndarray
        uint8 or float32 array ``(H, W, C)`` with ``H >= rows`` and ``W >= cols``.
    rows, cols : int
        Grid size.

    Returns
    -------
    np.ndarray
        float32 array ``(rows, cols, C)``.
    """
    rows = _check_count("rows", rows)
    cols = _check_count("cols", cols)
    if not isinstance(img, np.ndarray):
        raise ValueError(f"img must be a numpy array, got {type(img).__name__}")
    if img.dtype not in (np.uint8, np.float32):
        raise ValueError(f"img must have dtype uint8 or float32, got {img.dtype}")
    if img.ndim != 3:
        raise ValueError(f"img must have shape (H, W, C), got {img.shape}")
    h, w, c = img.shape
    if h < rows or w < cols:
        raise ValueError(f"img shape {img.shape} is smaller than the {rows}x{cols} grid")
    out = np.empty((1, rows, cols, c), dtype=np.float32)
    _block_means_loop(np.ascontiguousarray(img)[None], rows, cols, out, np.empty((rows, c)))
    return out[0]


def tile_features(tiles: np.ndarray, k: int) -> np.ndarray:
    """Feature vector of each tile: CIELAB of its ``k`` x ``k`` block-mean sRGB colours.

    Parameters
    ----------
    tiles : np.ndarray
        uint8 array ``(N, P, P, 3)`` of sRGB tiles, ``P >= k``.
    k : int
        Blocks per side.

    Returns
    -------
    np.ndarray
        float32 array ``(N, k*k*3)`` flattened as (block row, block col, channel).
    """
    k = _check_count("k", k)
    _check_uint8("tiles", tiles, 4, "(N, P, P, 3)")
    n, ph, pw, _ = tiles.shape
    if ph < k or pw < k:
        raise ValueError(f"tile size {ph}x{pw} is smaller than k={k}")
    return _lab_block_means(tiles, k, k).reshape(n, k * k * 3)


def cell_features(target: np.ndarray, rows: int, cols: int, k: int) -> np.ndarray:
    """Feature vector of each cell of a target image, laid out like :func:`tile_features`.

    The target is split into ``rows*k`` x ``cols*k`` sub-blocks (floor boundaries); cell
    ``(r, c)`` is sub-blocks ``[r*k, (r+1)*k) x [c*k, (c+1)*k)``.

    Parameters
    ----------
    target : np.ndarray
        uint8 array ``(H, W, 3)`` with ``H >= rows*k`` and ``W >= cols*k``.
    rows, cols : int
        Mosaic grid size in cells.
    k : int
        Sub-blocks per cell side.

    Returns
    -------
    np.ndarray
        float32 array ``(rows*cols, k*k*3)``, cells in row-major order.
    """
    rows = _check_count("rows", rows)
    cols = _check_count("cols", cols)
    k = _check_count("k", k)
    _check_uint8("target", target, 3, "(H, W, 3)")
    h, w, _ = target.shape
    if h < rows * k or w < cols * k:
        raise ValueError(f"target shape {target.shape} is smaller than {rows}x{cols} cells of {k}x{k} blocks")
    means = _lab_block_means(target[None], rows * k, cols * k)
    cells = means.reshape(rows, k, cols, k, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(cells).reshape(rows * cols, k * k * 3)
