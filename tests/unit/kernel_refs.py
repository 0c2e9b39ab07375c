"""Kernels only the tests use: references for the pipeline's kernels, kept out of ``kernels`` (its public API and
``warm_up``, which a worker runs at every start, hold only what the pipeline calls).

- :func:`srgb_to_lab`: CIELAB per pixel through the kernels' own colour maths (``kernels.color.lab_pixel``), so
  that maths can be checked against published values.
- :func:`nearest_tiles`: the brute-force nearest tile, the reference for ``kernels.nearest_candidates``.
- :func:`principal_axes`: both feature sets in the tiles' ``kernels.principal_frame``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._jit import ngjit_parallel
from kernels.color import LINEAR_LUT, lab_pixel
from kernels.match import _check_feats, check_pair, principal_frame, to_frame


@ngjit_parallel
def _srgb_to_lab_loop(rgb, lut, out):
    for i in prange(rgb.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = lab_pixel(lut, rgb[i, 0], rgb[i, 1], rgb[i, 2])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert 8-bit sRGB to CIELAB (D65).

    Parameters
    ----------
    rgb : np.ndarray
        uint8 array of shape ``(..., 3)``, sRGB values 0-255.

    Returns
    -------
    np.ndarray
        float32 array of the same shape holding ``(L, a, b)``.
    """
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"rgb must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must have dtype uint8, got {rgb.dtype}")
    if rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must have shape (..., 3), got {rgb.shape}")
    flat = np.ascontiguousarray(rgb).reshape(-1, 3)
    out = np.empty(flat.shape, dtype=np.float32)
    _srgb_to_lab_loop(flat, LINEAR_LUT, out)
    return out.reshape(rgb.shape)


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
    cells, tiles = check_pair(cell_feats, tile_feats)
    out = np.empty(cells.shape[0], dtype=np.int32)
    _nearest_loop(cells, tiles, out)
    return out


def principal_axes(cell_feats: np.ndarray, tile_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets in the tiles' principal frame (centred, largest variance first).

    Parameters
    ----------
    cell_feats, tile_feats : np.ndarray
        float32 arrays ``(M, D)`` and ``(N, D)``, ``N >= 1``.

    Returns
    -------
    (np.ndarray, np.ndarray)
        float32 ``(M, D)`` and ``(N, D)``, C-contiguous.
    """
    cells = _check_feats("cell_feats", cell_feats)
    tiles = _check_feats("tile_feats", tile_feats)
    if cells.shape[1] != tiles.shape[1] or tiles.shape[0] < 1:
        raise ValueError(f"bad shapes: cell_feats {cells.shape}, tile_feats {tiles.shape}")
    frame = principal_frame(tiles)
    return to_frame(cells, frame), to_frame(tiles, frame)
