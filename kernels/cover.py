"""Every picture at least once: give each unused group a cell, at the least cost.

After the assignment, each group no cell holds takes the cell where its tile costs least over what the cell has
now, among its tile's nearest cells, taking only from a group used more than once (so no placed group is lost);
the cheapest fits go first. The repetition rules hold as they did: a group placed once repeats nowhere, and the
cell it takes loses a use.
"""

from __future__ import annotations

import numpy as np

from ._jit import ngjit
from .match import nearest_candidates

__all__ = ["cover_groups"]

NEAREST = 64
"""Cells looked at per unused tile (its nearest); a tile none of them can take looks at every cell."""


@ngjit
def _cover_loop(tiles_u, near, near_d, assign, cur, groups, uses, left):
    # Place each unused tile (in order) at its cheapest cell among its nearest; left[i] = 1 where none could.
    for i in range(tiles_u.shape[0]):
        t = tiles_u[i]
        g = groups[t]
        if uses[g] > 0:
            continue  # another tile of its group came in meanwhile
        best, best_j, best_cost = -1, -1, np.inf
        for j in range(near.shape[1]):
            x = near[i, j]
            if uses[groups[assign[x]]] < 2:
                continue
            cost = near_d[i, j] - cur[x]
            if cost < best_cost:
                best, best_j, best_cost = x, j, cost
        if best < 0:
            left[i] = 1
            continue
        uses[groups[assign[best]]] -= 1
        uses[g] += 1
        assign[best] = t
        cur[best] = near_d[i, best_j]
        left[i] = 0


def cover_groups(assignment: np.ndarray, cell_feats: np.ndarray, tile_feats: np.ndarray,
                 groups: np.ndarray) -> np.ndarray:
    """``assignment`` (int32 ``(rows, cols)``) changed so that every group of ``groups`` (int32 ``(N,)``, numbered
    0..G-1) is used at least once, when there are at least G cells (else it is returned unchanged).

    Each unused group's first tile takes, among its NEAREST cells, the one where it adds least to the summed
    distance, from a group used twice or more; where none of those can give up its tile, every cell is looked
    at. A use cap and a distance rule the input keeps still hold. Features as for
    :func:`kernels.nearest_candidates`. Deterministic. Returns a new int32 array."""
    if not isinstance(assignment, np.ndarray) or assignment.ndim != 2:
        raise ValueError("assignment must be a 2-D array of tile indices")
    rows, cols = assignment.shape
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    assign = np.ascontiguousarray(assignment, dtype=np.int32).ravel().copy()
    if rows * cols < n_groups:
        return assign.reshape(rows, cols)
    groups = np.ascontiguousarray(groups, dtype=np.int32)
    uses = np.bincount(groups[assign], minlength=n_groups).astype(np.int64)
    missing = np.flatnonzero(uses == 0)
    if missing.size == 0:
        return assign.reshape(rows, cols)
    firsts = np.full(n_groups, -1, np.int64)
    firsts[groups[::-1]] = np.arange(len(groups))[::-1]  # each group's first tile
    tiles_u = firsts[missing]
    near, near_d = nearest_candidates(np.ascontiguousarray(tile_feats[tiles_u]), cell_feats,
                                      min(NEAREST, rows * cols))
    order = np.argsort(near_d[:, 0], kind="stable")  # the closest fits first
    tiles_u, near, near_d = tiles_u[order], near[order], near_d[order]
    scale = np.float32(1.0 / max(1, cell_feats.shape[1]))
    cur = np.square(cell_feats - tile_feats[assign]).sum(axis=1, dtype=np.float32) * scale
    left = np.zeros(len(tiles_u), np.int8)
    _cover_loop(tiles_u, near, near_d, assign, cur, groups, uses, left)
    tiles_u = tiles_u[left == 1]
    if tiles_u.size:  # none of its nearest cells can give up a tile: any cell of a group used twice
        _cover_rest(tiles_u, assign, cur, cell_feats, tile_feats, groups, uses)
    return assign.reshape(rows, cols)


def _cover_rest(tiles_u: np.ndarray, assign: np.ndarray, cur: np.ndarray, cells: np.ndarray, tiles: np.ndarray,
                groups: np.ndarray, uses: np.ndarray) -> None:
    """The last unused groups, each at its cheapest cell over all those of a group used twice (in place)."""
    scale = np.float32(1.0 / max(1, cells.shape[1]))
    for t in tiles_u:
        if uses[groups[t]]:
            continue
        d = np.square(cells - tiles[t]).sum(axis=1, dtype=np.float32) * scale
        free = uses[groups[assign]] >= 2
        if not free.any():
            return
        x = int(np.argmin(np.where(free, d - cur, np.inf)))
        uses[groups[assign[x]]] -= 1
        uses[groups[t]] += 1
        assign[x], cur[x] = t, d[x]
