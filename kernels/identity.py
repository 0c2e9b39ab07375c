"""Picture identity: groups of alike tiles (near-duplicates), and how much of a tile its commonest colours cover."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel, thread_slots

__all__ = ["leader_groups", "dominant_share"]


@ngjit
def _alike(pattern, mean, scale, i, q, limit_sq, max_l, max_ab, max_ratio):
    # Whether tiles i and q are one picture under the limits (cheapest tests first).
    if abs(mean[i, 0] - mean[q, 0]) > max_l or abs(mean[i, 1] - mean[q, 1]) > max_ab:
        return False
    if abs(mean[i, 2] - mean[q, 2]) > max_ab:
        return False
    if max(scale[i] / scale[q], scale[q] / scale[i]) > max_ratio:
        return False
    d = 0.0
    for j in range(pattern.shape[1]):
        e = pattern[i, j] - pattern[q, j]
        d += e * e
        if d > limit_sq:
            return False
    return True


@ngjit
def _leader_loop(pattern, mean, scale, cells, dims, limit_sq, max_l, max_ab, max_ratio, head, nxt, out):
    # Tiles in index order; each joins the earliest leader it is alike to, else leads a new group. Leaders are
    # kept in lists per cell of a (L, a, b) grid whose cells are at least the colour limits wide, so only the
    # 27 cells around a tile can hold an alike leader. head: int64 (cells,) all -1; nxt: int64 (N,) scratch.
    nl, na, nb = dims[0], dims[1], dims[2]
    groups = 0
    for i in range(pattern.shape[0]):
        cl, ca, cb = cells[i, 0], cells[i, 1], cells[i, 2]
        best = -1
        for x in range(max(0, cl - 1), min(nl, cl + 2)):
            for y in range(max(0, ca - 1), min(na, ca + 2)):
                for z in range(max(0, cb - 1), min(nb, cb + 2)):
                    q = head[(x * na + y) * nb + z]
                    while q >= 0:
                        if (best < 0 or q < best) and _alike(pattern, mean, scale, i, q, limit_sq, max_l, max_ab,
                                                             max_ratio):
                            best = q
                        q = nxt[q]
        if best >= 0:
            out[i] = out[best]
        else:
            out[i] = groups
            groups += 1
            cell = (cl * na + ca) * nb + cb
            nxt[i] = head[cell]
            head[cell] = i
    return groups


GRID_SIDE = 128
"""Most grid cells per colour axis in :func:`leader_groups` (wider cells when the limits are finer)."""


def leader_groups(pattern: np.ndarray, mean: np.ndarray, scale: np.ndarray, max_rms: float, max_l: float,
                  max_ab: float, max_ratio: float) -> tuple[np.ndarray, int]:
    """Groups of alike tiles: each tile, in index order, joins the group of the earliest group leader it is
    alike to, or leads a new group. No chains: every member is alike to its leader.

    Two tiles are alike when their mean lightness differs by at most ``max_l`` and each mean a*, b* by at
    most ``max_ab``, their scales are within a ratio ``max_ratio``, and their patterns within a
    root-mean-square difference ``max_rms``.

    Parameters
    ----------
    pattern : np.ndarray
        float32 ``(N, D)``: each tile's (normalised) lightness pattern.
    mean : np.ndarray
        float32 ``(N, 3)``: each tile's mean (L*, a*, b*).
    scale : np.ndarray
        float32 ``(N,)``, positive: each tile's contrast.
    max_rms, max_l, max_ab, max_ratio : float
        The limits; ``max_l`` and ``max_ab`` positive, ``max_ratio`` at least 1.

    Returns
    -------
    (np.ndarray, int)
        int32 ``(N,)`` group of each tile, numbered 0, 1, ... in the order of their leaders (a group's
        leader is its first tile); and the number of groups.
    """
    for name, arr, ndim in (("pattern", pattern, 2), ("mean", mean, 2), ("scale", scale, 1)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != ndim:
            raise ValueError(f"{name} must be a {ndim}-D float32 array")
    n = pattern.shape[0]
    if mean.shape != (n, 3) or scale.shape != (n,):
        raise ValueError(f"shapes do not agree: pattern, mean, scale = {pattern.shape, mean.shape, scale.shape}")
    if not (max_l > 0 and max_ab > 0 and max_ratio >= 1 and max_rms >= 0):
        raise ValueError(f"limits out of range: {max_rms=}, {max_l=}, {max_ab=}, {max_ratio=}")
    if n and not (np.all(np.isfinite(mean)) and np.all(scale > 0)):
        raise ValueError("mean must be finite and scale positive")
    out = np.empty(n, dtype=np.int32)
    if n == 0:
        return out, 0
    low, high = mean.min(axis=0).astype(np.float64), mean.max(axis=0).astype(np.float64)
    width = np.maximum(np.array([max_l, max_ab, max_ab]), (high - low) / GRID_SIDE)
    cells = np.minimum(((mean - low) / width).astype(np.int64), GRID_SIDE)
    dims = cells.max(axis=0) + 1
    limit_sq = float(max_rms) ** 2 * pattern.shape[1]
    count = _leader_loop(np.ascontiguousarray(pattern), np.ascontiguousarray(mean), np.ascontiguousarray(scale),
                         np.ascontiguousarray(cells), dims.astype(np.int64), limit_sq, float(max_l), float(max_ab),
                         float(max_ratio), np.full(int(np.prod(dims)), -1, dtype=np.int64),
                         np.full(n, -1, dtype=np.int64), out)
    return out, int(count)


@ngjit_parallel
def _dominant_loop(tiles, levels, top, out, hist_by_thread):
    # hist_by_thread: int64 (threads, levels**3) scratch (no array is made in here: see kernels/_jit.py).
    n, h, w, _ = tiles.shape
    bins = levels * levels * levels
    for i in prange(n):
        hist = hist_by_thread[numba.get_thread_id()]
        hist[:] = 0
        for y in range(h):
            for x in range(w):
                r = np.int64(tiles[i, y, x, 0]) * levels // 256
                g = np.int64(tiles[i, y, x, 1]) * levels // 256
                b = np.int64(tiles[i, y, x, 2]) * levels // 256
                hist[(r * levels + g) * levels + b] += 1
        covered = 0
        for _ in range(top):  # the ``top`` largest bins, one pass each (top is small)
            best = 0
            for q in range(1, bins):
                if hist[q] > hist[best]:
                    best = q
            covered += hist[best]
            hist[best] = -1
        out[i] = np.float32(covered / (h * w))


def dominant_share(tiles: np.ndarray, levels: int = 8, top: int = 2) -> np.ndarray:
    """Share of each tile's pixels in its ``top`` commonest colours, colours binned ``levels`` per channel.

    A drawn placeholder (a blank silhouette on a flat ground) is nearly all two colours; a photograph is not.

    Parameters
    ----------
    tiles : np.ndarray
        uint8 ``(N, H, W, 3)``.
    levels : int
        Bins per channel (``levels**3`` colours), 1 to 64.
    top : int
        Commonest bins counted, at least 1.

    Returns
    -------
    np.ndarray
        float32 ``(N,)`` in ``[0, 1]``.
    """
    if not isinstance(tiles, np.ndarray) or tiles.dtype != np.uint8 or tiles.ndim != 4 or tiles.shape[3] != 3:
        raise ValueError("tiles must be a uint8 array (N, H, W, 3)")
    if not 1 <= int(levels) <= 64 or int(top) < 1:
        raise ValueError(f"levels must be 1-64 and top at least 1, got {levels=}, {top=}")
    out = np.zeros(tiles.shape[0], dtype=np.float32)
    if tiles.shape[0] and tiles.shape[1] * tiles.shape[2]:
        levels = int(levels)
        scratch = np.zeros((thread_slots(), levels**3), dtype=np.int64)
        _dominant_loop(tiles, levels, min(int(top), levels**3), out, scratch)
    return out
