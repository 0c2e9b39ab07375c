"""Picture identity: groups of alike tiles (near-duplicates), and how much of a tile its commonest colours cover."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel, thread_slots

__all__ = ["linked_groups", "dominant_share"]


@ngjit
def _within(rows, i, q, limit_sq):
    # Whether rows i and q lie within sqrt(limit_sq) of each other, stopping once the squared sum is past it.
    d = 0.0
    for j in range(rows.shape[1]):
        e = rows[i, j] - rows[q, j]
        d += e * e
        if d > limit_sq:
            return False
    return True


@ngjit
def _alike(pattern, mean, scale, i, q, limit_sq, max_l, max_ab, max_ratio):
    # Whether tiles i and q are one picture under the limits (cheapest tests first).
    if abs(mean[i, 0] - mean[q, 0]) > max_l or abs(mean[i, 1] - mean[q, 1]) > max_ab:
        return False
    if abs(mean[i, 2] - mean[q, 2]) > max_ab:
        return False
    if max(scale[i] / scale[q], scale[q] / scale[i]) > max_ratio:
        return False
    return _within(pattern, i, q, limit_sq)


@ngjit
def _near(near, place, i, q, limit, limit_sq):
    # Whether the near signatures of tiles i and q lie within the limit (squared sum, stopping once past it);
    # first their channel means, which differ by at most the root-mean-square difference.
    for c in range(3):
        if abs(place[i, c] - place[q, c]) > limit:
            return False
    return _within(near, i, q, limit_sq)


@ngjit
def _find(parent, i):
    # The root of i's group (the group's first tile), halving the path on the way.
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@ngjit
def _join(parent, low, high, a, b, extent_l, extent_ab):
    # Joins the groups of roots a and b when their joined box of mean colours stays within the extents.
    for c in range(3):
        if max(high[a, c], high[b, c]) - min(low[a, c], low[b, c]) > (extent_l if c == 0 else extent_ab):
            return
    keep, gone = min(a, b), max(a, b)
    for c in range(3):
        low[keep, c] = min(low[keep, c], low[gone, c])
        high[keep, c] = max(high[keep, c], high[gone, c])
    parent[gone] = keep


@ngjit
def _link_round(near, place, pattern, mean, scale, textured, cells, dims, max_near, limit_sq, max_l, max_ab, max_ratio,
                extent_l, extent_ab, parent, low, high, head, nxt, mark, found):
    # One pass in index order: tile i joins the groups of the earlier tiles linked to it, in the order of their
    # first tile. Earlier tiles are kept in lists per cell of a colour grid whose cells are at least the limits
    # wide, so only the 27 cells around i can hold a linked tile. head: all -1; nxt, found: scratch; mark: all -1.
    nl, na, nb = dims[0], dims[1], dims[2]
    near_sq = max_near * max_near * (near.shape[1] // 3)
    for i in range(near.shape[0]):
        cl, ca, cb = cells[i, 0], cells[i, 1], cells[i, 2]
        k = 0
        for x in range(max(0, cl - 1), min(nl, cl + 2)):
            for y in range(max(0, ca - 1), min(na, ca + 2)):
                for z in range(max(0, cb - 1), min(nb, cb + 2)):
                    q = head[(x * na + y) * nb + z]
                    while q >= 0:
                        r = _find(parent, q)
                        if mark[r] != i and (_near(near, place, i, q, max_near, near_sq) or (
                                textured[i] and textured[q]
                                and _alike(pattern, mean, scale, i, q, limit_sq, max_l, max_ab, max_ratio))):
                            mark[r] = i  # one link to a group is enough: its other tiles are not compared
                            found[k] = r
                            k += 1
                        q = nxt[q]
        for j in range(1, k):  # in the order of their first tile: an insertion sort (few), no array made here
            r, m = found[j], j
            while m > 0 and found[m - 1] > r:
                found[m] = found[m - 1]
                m -= 1
            found[m] = r
        for j in range(k):
            a, b = _find(parent, i), _find(parent, found[j])
            if a != b:
                _join(parent, low, high, a, b, extent_l, extent_ab)
        cell = (cl * na + ca) * nb + cb
        nxt[i] = head[cell]
        head[cell] = i


GRID_SIDE = 128
"""Most grid cells per colour axis in :func:`linked_groups` (wider cells where the colours span more)."""


def _check(near: np.ndarray, pattern: np.ndarray, mean: np.ndarray, scale: np.ndarray, textured: np.ndarray,
           limits: tuple[float, ...], rounds: tuple[float, ...]) -> None:
    for name, arr, ndim in (("near", near, 2), ("pattern", pattern, 2), ("mean", mean, 2), ("scale", scale, 1)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != ndim:
            raise ValueError(f"{name} must be a {ndim}-D float32 array")
    n = pattern.shape[0]
    if near.shape[0] != n or near.shape[1] % 3 or mean.shape != (n, 3) or scale.shape != (n,):
        raise ValueError(f"shapes do not agree: near, pattern, mean, scale = "
                         f"{near.shape, pattern.shape, mean.shape, scale.shape}")
    if not isinstance(textured, np.ndarray) or textured.dtype != np.bool_ or textured.shape != (n,):
        raise ValueError("textured must be a bool array (N,)")
    max_near, max_rms, max_l, max_ab, max_ratio, extent_l, extent_ab = limits
    if not (max_near >= 0 and max_rms >= 0 and max_l > 0 and max_ab > 0 and max_ratio >= 1 and extent_l >= 0
            and extent_ab >= 0):
        raise ValueError(f"limits out of range: {max_near=}, {max_rms=}, {max_l=}, {max_ab=}, {max_ratio=}, "
                         f"{extent_l=}, {extent_ab=}")
    if not rounds or not all(0 < f <= 1 for f in rounds):
        raise ValueError(f"rounds must be fractions in (0, 1], got {rounds}")
    if n and not (np.all(np.isfinite(mean)) and np.all(np.isfinite(near)) and np.all(scale > 0)):
        raise ValueError("near and mean must be finite and scale positive")


def linked_groups(near: np.ndarray, pattern: np.ndarray, mean: np.ndarray, scale: np.ndarray, textured: np.ndarray,
                  limits: tuple[float, float, float, float, float, float, float],
                  rounds: tuple[float, ...] = (1.0,)) -> tuple[np.ndarray, int]:
    """Groups of linked tiles, joined transitively (union-find) as long as a group's mean colours stay in a box.

    Two tiles are linked at a fraction ``f`` when their near signatures lie within a root-mean-square
    difference ``f * max_near``, or when both are ``textured`` and alike: mean lightness within ``f * max_l``,
    each mean a*, b* within ``f * max_ab``, scales within a ratio ``1 + f * (max_ratio - 1)`` and patterns
    within a root-mean-square difference ``f * max_rms``. For each fraction of ``rounds`` in turn, each tile
    in index order joins the groups of the earlier tiles linked to it, in the order of their first tile; a
    join happens only if the joined group's mean colours (``mean``) span at most ``extent_l`` in L* and
    ``extent_ab`` in a* and in b*, so a chain of ever so slightly different colours stops at that span. Rounds
    of growing fractions join the closest tiles first, so a group's box fills with what is nearest to it.

    Parameters
    ----------
    near : np.ndarray
        float32 ``(N, 3M)``: each tile's thumbnail of M blocks, three channels each (interleaved). Its
        channels' means place the tiles on the search grid: two tiles' differences there must be at most
        their differences in ``mean`` (as with a thumbnail of compressed chroma beside plain CIELAB).
    pattern : np.ndarray
        float32 ``(N, D)``: each tile's (normalised) lightness pattern.
    mean : np.ndarray
        float32 ``(N, 3)``: each tile's mean (L*, a*, b*).
    scale : np.ndarray
        float32 ``(N,)``, positive: each tile's contrast.
    textured : np.ndarray
        bool ``(N,)``: tiles that may be linked by their pattern.
    limits : tuple of float
        ``(max_near, max_rms, max_l, max_ab, max_ratio, extent_l, extent_ab)``; ``max_l`` and ``max_ab``
        positive, ``max_ratio`` at least 1, the others at least 0.
    rounds : tuple of float
        Fractions in (0, 1] of the link limits, one pass each, in this order.

    Returns
    -------
    (np.ndarray, int)
        int32 ``(N,)`` group of each tile, numbered 0, 1, ... in the order of their first tiles; and the
        number of groups.
    """
    _check(near, pattern, mean, scale, textured, limits, rounds)
    max_near, max_rms, max_l, max_ab, max_ratio, extent_l, extent_ab = (float(v) for v in limits)
    n = pattern.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int32), 0
    near = np.ascontiguousarray(near)
    place = near.reshape(n, -1, 3).mean(axis=1, dtype=np.float64)  # a link bounds these: |mean difference| <= RMS
    parent = np.arange(n, dtype=np.int64)
    box_low, box_high = np.array(mean, dtype=np.float32), np.array(mean, dtype=np.float32)
    arrays = (place, np.ascontiguousarray(pattern), np.ascontiguousarray(mean), np.ascontiguousarray(scale),
              np.ascontiguousarray(textured))
    for f in rounds:  # the grid as fine as the round's limits: the first rounds compare few pairs
        cells, dims = _grid(place, f * max(max_l, max_near), f * max(max_ab, max_near))
        _link_round(near, *arrays, cells, dims, f * max_near, (f * max_rms) ** 2 * pattern.shape[1], f * max_l,
                    f * max_ab, 1 + f * (max_ratio - 1), extent_l, extent_ab, parent, box_low, box_high,
                    np.full(int(np.prod(dims)), -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
                    np.full(n, -1, dtype=np.int64), np.empty(n, dtype=np.int64))
    roots = np.empty(n, dtype=np.int64)
    _roots(parent, roots)
    _, groups = np.unique(roots, return_inverse=True)  # roots are first tiles: numbered in their order
    return groups.astype(np.int32), int(groups.max()) + 1


def _grid(place: np.ndarray, width_l: float, width_ab: float) -> tuple[np.ndarray, np.ndarray]:
    """Each tile's cell (N, 3) on a grid over ``place`` with cells at least the widths wide, and the grid's dims."""
    low, high = place.min(axis=0), place.max(axis=0)
    width = np.maximum(np.array([width_l, width_ab, width_ab]), np.maximum((high - low) / GRID_SIDE, 1e-6))
    cells = np.minimum(((place - low) / width).astype(np.int64), GRID_SIDE)
    return cells, (cells.max(axis=0) + 1).astype(np.int64)


@ngjit
def _roots(parent, out):
    for i in range(parent.shape[0]):
        out[i] = _find(parent, i)


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
