"""Assemble the mosaic image from tiles and an assignment grid."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel, thread_slots

__all__ = ["render", "blend_offsets", "field_weights"]


@ngjit_parallel
def _render_loop(tiles, assignment, out):
    ph, pw = tiles.shape[1], tiles.shape[2]
    cols = assignment.shape[1]
    for y in prange(assignment.shape[0] * ph):
        r = y // ph
        ty = y - r * ph
        for c in range(cols):
            out[y, c * pw : (c + 1) * pw, :3] = tiles[assignment[r, c], ty, :, :]


@ngjit_parallel
def _render_field_loop(flat_tiles, assignment, offsets, y0, y1, wy, x0, x1, wx, rows_out, channels, across_by_thread,
                       line_by_thread):
    # Each tile pixel gets its cell's offset field (g x g values) interpolated bilinearly between the sub-cell
    # centres, clamped at the tile's edges (no bleed between cells); per axis, pixel i lies between field
    # rows y0[i] and y1[i] at weight wy[i]. g = 1 is one flat shift per cell. Per output row and cell: the
    # field's rows interpolated first (g values a channel), then along the row, then added to the tile's row
    # in one flat loop that vectorises into RGB (RGBX: the fourth byte is left alone). flat_tiles is
    # (N, P, P*3), rows_out the output as (H, W*channels); the *_by_thread rows are scratch (no array is made or
    # reshaped in here: see kernels/_jit.py).
    ph, width3 = flat_tiles.shape[1], flat_tiles.shape[2]
    pw = width3 // 3
    g = offsets.shape[2]
    cols = assignment.shape[1]
    for y in prange(assignment.shape[0] * ph):
        r = y // ph
        ty = y - r * ph
        a0, a1, fy = y0[ty], y1[ty], wy[ty]
        across = across_by_thread[numba.get_thread_id()]
        line = line_by_thread[numba.get_thread_id()]
        row = rows_out[y]
        for c in range(cols):
            field = offsets[r, c]
            for b in range(g):
                for ch in range(3):
                    top = field[a0, b, ch]
                    across[b * 3 + ch] = top + fy * (field[a1, b, ch] - top)
            for x in range(pw):
                b0, b1, fx = x0[x] * 3, x1[x] * 3, wx[x]
                for ch in range(3):
                    left = across[b0 + ch]
                    line[x * 3 + ch] = left + fx * (across[b1 + ch] - left)
            src = flat_tiles[assignment[r, c], ty]
            if channels == 3:
                at = c * width3
                for i in range(width3):
                    row[at + i] = _shifted(src[i], line[i])
            else:
                for i in range(width3):
                    row[(c * pw + i // 3) * channels + i % 3] = _shifted(src[i], line[i])


@ngjit
def _shifted(value, shift):
    # A pixel value moved by ``shift``, clipped to 0..255 and rounded.
    v = min(max(np.float32(value) + shift, np.float32(0.0)), np.float32(255.0))
    return np.uint8(v + np.float32(0.5))


def _offset_field(offsets: object, rows: int, cols: int) -> np.ndarray:
    """``offsets`` as a C-contiguous float32 ``(rows, cols, g, g, 3)`` field (a flat shift is g = 1)."""
    if isinstance(offsets, np.ndarray) and offsets.dtype == np.float32:
        if offsets.shape == (rows, cols, 3):
            return np.ascontiguousarray(offsets).reshape(rows, cols, 1, 1, 3)
        g = offsets.shape[2] if offsets.ndim == 5 else 0
        if g >= 1 and offsets.shape == (rows, cols, g, g, 3):
            return np.ascontiguousarray(offsets)
    got = f"{offsets.dtype} {offsets.shape}" if isinstance(offsets, np.ndarray) else type(offsets).__name__
    raise ValueError(f"offsets must be float32 of shape {(rows, cols, 3)} or ({rows}, {cols}, g, g, 3), got {got}")


def field_weights(p: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``p`` pixels along a tile side: the two field rows around it and the weight of the second.

    The field's ``g`` values sit at the centres of ``g`` equal parts of the side; pixels before the first
    centre or after the last take that value (clamped, not extrapolated).
    """
    pos = np.clip((np.arange(p) + 0.5) * g / p - 0.5, 0, g - 1)
    first = np.floor(pos).astype(np.int64)
    return first, np.minimum(first + 1, g - 1), (pos - first).astype(np.float32)


def blend_offsets(cell_rgb: np.ndarray, tile_rgb: np.ndarray, assignment: np.ndarray, blend: float) -> np.ndarray:
    """Per-cell colour shift that moves each placed tile ``blend`` of the way to its cell's colours.

    With one colour per cell and tile the tile's mean moves toward the cell's mean; with a ``g`` x ``g``
    grid of sub-cell means each part of the tile moves toward its part of the cell (rendered as a smooth
    field, see :func:`render`), so the correction follows the picture inside a cell while the tile's own
    texture stays.

    Parameters
    ----------
    cell_rgb : np.ndarray
        float32 ``(rows, cols, 3)`` or ``(rows, cols, g, g, 3)``: mean sRGB colour of each target cell
        (or of each of its ``g`` x ``g`` parts).
    tile_rgb : np.ndarray
        float32 ``(N, 3)`` or ``(N, g, g, 3)``: the same for each tile.
    assignment : np.ndarray
        Integer ``(rows, cols)`` tile indices.
    blend : float
        0 (no correction) to 1 (tile means equal cell means, up to clipping).

    Returns
    -------
    np.ndarray
        float32 offsets of ``cell_rgb``'s shape, for :func:`render`.
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must be between 0 and 1, got {blend!r}")
    grid = cell_rgb.shape[2:-1]
    if cell_rgb.shape[:2] != assignment.shape or cell_rgb.shape[2:] != tile_rgb.shape[1:] \
            or cell_rgb.shape[-1] != 3 or grid not in ((), grid[:1] * 2):
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
        C-contiguous uint8 array ``(rows*P, cols*P, 3)`` to write into, or ``(rows*P, cols*P, 4)`` (RGBX: the
        fourth channel is not written); allocated (RGB) if omitted.
    offsets : np.ndarray, optional
        float32 ``(rows, cols, 3)`` added to every pixel of the cell's tile, or ``(rows, cols, g, g, 3)``:
        a field interpolated bilinearly between the centres of the tile's ``g`` x ``g`` parts (clamped at
        its edges); then rounded and clipped to 0-255 (see :func:`blend_offsets`).

    Returns
    -------
    np.ndarray
        The mosaic, uint8 ``(rows*P, cols*P, 3)``, or ``out`` itself when given.
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
    elif not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape[:2] != shape[:2] \
            or out.ndim != 3 or out.shape[2] not in (3, 4):
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a uint8 array of shape {shape} or {shape[:2] + (4,)}, got {got}")
    elif not (out.flags.writeable and out.flags.c_contiguous):
        raise ValueError("out must be writeable and C-contiguous")
    tiles, assignment = np.ascontiguousarray(tiles), np.ascontiguousarray(assignment, dtype=np.int64)
    if offsets is None:
        _render_loop(tiles, assignment, out)
        return out
    field = _offset_field(offsets, rows, cols)
    g, threads = field.shape[2], thread_slots()
    _render_field_loop(tiles.reshape(n, ph, pw * 3), assignment, field, *field_weights(ph, g),
                       *field_weights(pw, g), out.reshape(out.shape[0], -1), out.shape[2],
                       np.empty((threads, g * 3), np.float32), np.empty((threads, pw * 3), np.float32))
    return out
