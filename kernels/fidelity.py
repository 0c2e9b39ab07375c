"""Tile fidelity: how far the colour correction moved the placed tiles from their own colours (CIEDE2000)."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel
from .color import lab_from_mean

__all__ = ["ciede2000", "tile_fidelity"]

_POW25_7 = 25.0**7


@ngjit
def _hue(b, a):
    # Hue angle in degrees, 0-360; 0 for a neutral colour (as CIEDE2000 defines it).
    if a == 0.0 and b == 0.0:
        return 0.0
    h = math.degrees(math.atan2(b, a))
    return h + 360.0 if h < 0.0 else h


@ngjit
def ciede2000(l1, a1, b1, l2, a2, b2):
    """CIEDE2000 colour difference of two CIELAB colours (kL = kC = kH = 1), as Sharma, Wu and Dalal (2005)
    state it; float64 inside."""
    c_bar = 0.5 * (math.hypot(a1, b1) + math.hypot(a2, b2))
    c7 = c_bar**7
    g = 0.5 * (1.0 - math.sqrt(c7 / (c7 + _POW25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = _hue(b1, a1p), _hue(b2, a2p)
    dl, dc = l2 - l1, c2p - c1p
    both = c1p * c2p
    dh = 0.0
    h_bar = h1p + h2p
    if both != 0.0:
        dh = h2p - h1p
        if dh > 180.0:
            dh -= 360.0
        elif dh < -180.0:
            dh += 360.0
        if abs(h1p - h2p) <= 180.0:
            h_bar = 0.5 * (h1p + h2p)
        elif h1p + h2p < 360.0:
            h_bar = 0.5 * (h1p + h2p + 360.0)
        else:
            h_bar = 0.5 * (h1p + h2p - 360.0)
    big_dh = 2.0 * math.sqrt(both) * math.sin(math.radians(0.5 * dh))
    l_bar, cp_bar = 0.5 * (l1 + l2), 0.5 * (c1p + c2p)
    t = (1.0 - 0.17 * math.cos(math.radians(h_bar - 30.0)) + 0.24 * math.cos(math.radians(2.0 * h_bar))
         + 0.32 * math.cos(math.radians(3.0 * h_bar + 6.0)) - 0.20 * math.cos(math.radians(4.0 * h_bar - 63.0)))
    d_theta = 30.0 * math.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp7 = cp_bar**7
    r_c = 2.0 * math.sqrt(cp7 / (cp7 + _POW25_7))
    l50 = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / math.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    r_t = -math.sin(math.radians(2.0 * d_theta)) * r_c
    fl, fc, fh = dl / s_l, dc / s_c, big_dh / s_h
    return math.sqrt(max(0.0, fl * fl + fc * fc + fh * fh + r_t * fc * fh))


@ngjit_parallel
def _fidelity_loop(tile_rgb, offsets, assignment, out):
    # out[r]: the sum over row r's cells and their g x g parts of the CIEDE2000 difference between the tile's
    # part mean and that mean shifted by the part's offset (clipped to 0-255, as rendering clips).
    g = offsets.shape[2]
    for r in prange(assignment.shape[0]):
        total = 0.0
        for c in range(assignment.shape[1]):
            parts = tile_rgb[assignment[r, c]]
            for i in range(g):
                for j in range(g):
                    red, green, blue = parts[i, j, 0], parts[i, j, 1], parts[i, j, 2]
                    shift = offsets[r, c, i, j]
                    l1, a1, b1 = lab_from_mean(red, green, blue)
                    l2, a2, b2 = lab_from_mean(min(max(red + shift[0], np.float32(0.0)), np.float32(255.0)),
                                               min(max(green + shift[1], np.float32(0.0)), np.float32(255.0)),
                                               min(max(blue + shift[2], np.float32(0.0)), np.float32(255.0)))
                    total += ciede2000(l1, a1, b1, l2, a2, b2)
        out[r] = total


def tile_fidelity(tile_rgb: np.ndarray, offsets: np.ndarray, assignment: np.ndarray) -> float:
    """Mean CIEDE2000 between each placed tile as rendered and the same tile untouched, over the placed cells.

    Computed from the parts' mean colours, not from every pixel: each of a tile's ``g`` x ``g`` parts moves by
    its offset (clipped as :func:`render` clips), so the rendered part's colour is known without rendering.

    Parameters
    ----------
    tile_rgb : np.ndarray
        float32 ``(N, g, g, 3)``: mean sRGB colour (0-255) of each part of each tile (rows of unplaced tiles
        are not read).
    offsets : np.ndarray
        float32 ``(rows, cols, g, g, 3)``: the shift of each part of each cell's tile
        (:func:`blend_offsets`).
    assignment : np.ndarray
        Integer ``(rows, cols)`` tile indices.

    Returns
    -------
    float
        Mean ΔE2000 over the cells' parts; 0 for an empty grid.
    """
    rows, cols = assignment.shape
    if offsets.ndim != 5 or offsets.shape[:2] != (rows, cols) or tile_rgb.shape[1:] != offsets.shape[2:]:
        raise ValueError(f"shapes do not agree: tile_rgb {tile_rgb.shape}, offsets {offsets.shape}, "
                         f"assignment {assignment.shape}")
    if assignment.size == 0:
        return 0.0
    out = np.zeros(rows, dtype=np.float64)
    _fidelity_loop(np.ascontiguousarray(tile_rgb, dtype=np.float32), np.ascontiguousarray(offsets, dtype=np.float32),
                   np.ascontiguousarray(assignment, dtype=np.int64), out)
    return float(out.sum() / (assignment.size * offsets.shape[2] * offsets.shape[3]))
