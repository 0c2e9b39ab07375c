"""Assemble the mosaic image from tiles and an assignment grid."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ngjit_parallel

__all__ = ["render", "blend_offsets"]


@ngjit_parallel
def _render_loop(tiles, assignment, out):
    ph, pw = tiles.shape[1], tiles.shape[2]
    cols = assignment.shape[1]
    for y in prange(assignment.shape[0] * ph):
        r = y // ph
        ty = y - r * ph
        for c in range(cols):
            out[y, c * pw : (c + 1) * pw, :] = tiles[assignment[r, c], ty, :, :]


@ngjit_parallel
def _render_shift_loop(tiles, assignment, offsets, out):
    ph, pw = tiles.shape[1], tiles.shape[2]
    cols = assignment.shape[1]
    for y in prange(assignment.shape[0] * ph):
        r = y // ph
        ty = y - r * ph
        for c in range(cols):
            t = assignment[r, c]
            for x in range(pw):
                for ch in range(3):
                    v = np.float32(tiles[t, ty, x, ch]) + offsets[r, c, ch]
                    v = min(max(v, np.float32(0.0)), np.float32(255.0))
                    out[y, c * pw + x, ch] = np.uint8(v + np.float32(0.5))


def blend_offsets(cell_rgb: np.ndarray, tile_rgb: np.ndarray, assignment: np.ndarray, blend: float) -> np.ndarray:
    """Per-cell colour shift that moves each placed tile ``blend`` of the way to its cell's mean colour.

    Parameters
    ----------
    cell_rgb : np.ndarray
        float32 ``(rows, cols, 3)``: the mean sRGB colour of each target cell.
    tile_rgb : np.ndarray
        float32 ``(N, 3)``: the mean sRGB colour of each tile.
    assignment : np.ndarray
        Integer ``(rows, cols)`` tile indices.
    blend : float
        0 (no correction) to 1 (tile mean equals cell mean, up to clipping).

    Returns
    -------
    np.ndarray
        float32 ``(rows, cols, 3)`` offsets to add to every pixel of the cell's tile.
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must be between 0 and 1, got {blend!r}")
    if cell_rgb.shape != assignment.shape + (3,) or tile_rgb.ndim != 2 or tile_rgb.shape[1] != 3:
        raise ValueError(f"shapes do not agree: cell_rgb {cell_rgb.shape}, tile_rgb {tile_rgb.shape}, "
                         f"assignment {assignment.shape}")
    shift = cell_rgb.astype(np.float32) - tile_rgb.astype(np.float32)[assignment]
    return shift * np.float32(blend)


def render(tiles: np.ndarray, assignment: np.ndarray, out: np.ndarray | None = None,
           offsets: np.ndarray | None = None) -> np.ndarray:
    """Copy tile ``assignment[r, c]`` to pixel ``(r*P, c*P)`` of the mosaic.

    Parameters
    ----------
    tiles : np.ndarray
        uint8 array ``(N, P, P, 3)``.
    assignment : np.ndarray
        Integer array ``(rows, cols)`` with values in ``[0, N)``.
    out : np.ndarray, optional
        uint8 array ``(rows*P, cols*P, 3)`` to write into (may be a strided view); allocated if omitted.
    offsets : np.ndarray, optional
        float32 ``(rows, cols, 3)`` added to every pixel of the cell's tile, then rounded and
        clipped to 0-255 (see :func:`blend_offsets`).

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
    tiles, assignment = np.ascontiguousarray(tiles), np.ascontiguousarray(assignment, dtype=np.int64)
    if offsets is None:
        _render_loop(tiles, assignment, out)
        return out
    if not isinstance(offsets, np.ndarray) or offsets.dtype != np.float32 or offsets.shape != (rows, cols, 3):
        got = f"{offsets.dtype} {offsets.shape}" if isinstance(offsets, np.ndarray) else type(offsets).__name__
        raise ValueError(f"offsets must be a float32 array of shape {(rows, cols, 3)}, got {got}")
    _render_shift_loop(tiles, assignment, np.ascontiguousarray(offsets), out)
    return out
