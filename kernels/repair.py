"""The auction's start (kernels/auction.py, the use cap alone), and the distance rule then restored on it, locally.

The auction solves the use cap alone and gives alike neighbours the same picture. The repair takes a tile away
from the fewest cells that clears every conflict, those that lose least by moving first: cells in order of their
regret (the distance to their best arc of another group, less their own), each losing its tile while a cell
within the rule's radius still holds its group. Then each cell left without a tile takes its cheapest legal one,
closest cells first, exactly as the greedy fills a cell (kernels/assign.py ``_assign_loop``: the first allowed
arc, else a pruned scan of every tile under both rules). The caller's chains and swaps polish the result.
"""

from __future__ import annotations

import numpy as np

from ._jit import ngjit
from .assign import _assign_loop
from .auction import WIDE, auction_assignment, renewals
from .match import nearest_candidates, sorted_tiles

__all__ = ["auction_start", "current_distances", "repair_spacing"]

LEFT_MOST = 0.01
"""Most share of the cells the auction may leave without a tile for its result to be used (each such cell then
scans every tile)."""


@ngjit
def _unspace(assign, groups, spaced, rows, cols, radius, order, uses):
    # Cells in ``order`` lose their tile (-1) while an assigned cell within ``radius`` holds their group; returns
    # how many did. Those left keep the rule among themselves: of two in conflict, the first met had lost its tile.
    removed = 0
    for i in range(order.shape[0]):
        m = order[i]
        g = groups[assign[m]]
        if not spaced[g]:
            continue
        r = m // cols
        c = m - r * cols
        hit = False
        for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
            for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
                x = rr * cols + cc
                if x != m and assign[x] >= 0 and groups[assign[x]] == g:
                    hit = True
        if hit:
            uses[g] -= 1
            assign[m] = -1
            order[removed] = m  # the cells now without a tile, at the front (i >= removed: nothing unread lost)
            removed += 1
    return removed


def repair_spacing(assign: np.ndarray, arcs: np.ndarray, arcs_d: np.ndarray, cells: np.ndarray, tiles: np.ndarray,
                   groups: np.ndarray, spaced: np.ndarray, grid: tuple[int, int], radius: int, cap: int) -> int:
    """Make ``assign`` (int32 ``(M,)``, changed in place) keep the distance rule of ``radius`` cells (Chebyshev,
    per group, only for the groups ``spaced`` marks) and the use cap ``cap`` (0: none), which it must keep
    already. ``arcs``, ``arcs_d``: each cell's nearest tiles, sorted (kernels.nearest_candidates); ``cells``,
    ``tiles``: their float32 features. Returns the cells that took a new tile."""
    rows, cols = grid
    m = assign.shape[0]
    groups32 = np.ascontiguousarray(groups, dtype=np.int32)  # the greedy's types: one compiled loop for both
    g_cell = groups32[assign]
    other = groups32[arcs] != g_cell[:, None]
    first = np.where(other.any(axis=1), other.argmax(axis=1), arcs.shape[1] - 1)
    own = np.square(cells - tiles[assign]).sum(axis=1, dtype=np.float32) * np.float32(1.0 / max(1, cells.shape[1]))
    regret = arcs_d[np.arange(m), first] - own
    order = np.lexsort((np.arange(m), regret)).astype(np.int64)
    n_groups = int(groups32.max()) + 1
    uses = np.bincount(groups32[assign], minlength=n_groups).astype(np.int64)
    removed = _unspace(assign, groups32, spaced, rows, cols, int(radius), order, uses)
    if removed == 0:
        return 0
    left = order[:removed]
    left = left[np.lexsort((left, arcs_d[left, 0]))]  # closest first, as the greedy visits cells
    sorted_t, ids, rank, bound_t = sorted_tiles(tiles, 4)
    _assign_loop(arcs, arcs_d, cells, sorted_t, ids, rank, bound_t, left, rows, cols, int(radius), int(cap), 0.0,
                 groups32, spaced, assign, uses, np.full(n_groups, -1, np.int64), np.empty(tiles.shape[0], np.float32))
    return removed


def _cap_binds(cand_idx: np.ndarray, groups: np.ndarray, n_groups: int, most: int, cap: int) -> bool:
    """Is the auction worth running: a cap with room for every cell, which the cells' nearest tiles would break
    (else each cell's nearest is the cap's optimum: the greedy's), for fewer cells than the ``most`` arc renewals
    it may make (else it stops early and leaves cells without a tile: W2's goldfish has 14,290 such cells for
    139 renewals, and its 0.45 s came to nothing)."""
    m = cand_idx.shape[0]
    if cap <= 0 or cap * n_groups < m or m == 0:
        return False
    excess = int(np.maximum(np.bincount(groups[cand_idx[:, 0]], minlength=n_groups) - cap, 0).sum())
    return 0 < excess <= most


def current_distances(cand_idx: np.ndarray, cand_d: np.ndarray, cells: np.ndarray, tiles: np.ndarray,
                      assign: np.ndarray) -> np.ndarray:
    """Each cell's distance to its tile: the candidate's where it is one, else computed (as float32 sums)."""
    hit = cand_idx == assign[:, None]
    direct = (np.square(cells - tiles[assign]).sum(axis=1, dtype=np.float32) * np.float32(1.0 / max(1, cells.shape[1])))
    found = hit.any(axis=1)
    return np.where(found, cand_d[np.arange(assign.size), hit.argmax(axis=1)], direct).astype(np.float32)


def auction_start(cells: np.ndarray, tiles: np.ndarray, groups: np.ndarray, cand_idx: np.ndarray, cap: int,
                  spaced: np.ndarray, grid: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The auction's assignment under the cap (kernels/auction.py) and its distances; the few cells it may leave
    without a tile (its work bound) take their nearest tile whose group has room (any tile when none has); then
    the distance rule of ``radius`` is repaired (:func:`repair_spacing`). None where the auction is not worth
    running (:func:`_cap_binds`, on the cells' nearest tiles ``cand_idx[:, 0]``) or left more than LEFT_MOST
    of the cells (the bound hit early: the greedy stays)."""
    if not _cap_binds(cand_idx, groups, int(groups.max()) + 1, renewals(len(cells), len(tiles), tiles.shape[1]), cap):
        return None
    arcs, arcs_d = nearest_candidates(cells, tiles, WIDE)
    assign = auction_assignment(arcs, arcs_d, cells, tiles, groups, cap)
    if np.count_nonzero(assign < 0) > LEFT_MOST * len(assign):
        return None
    uses = np.bincount(groups[assign[assign >= 0]], minlength=int(groups.max()) + 1)
    scale = np.float32(1.0 / max(1, cells.shape[1]))
    for cell in np.flatnonzero(assign < 0):
        d = np.square(cells[cell] - tiles).sum(axis=1, dtype=np.float32) * scale
        room = uses[groups] < cap
        t = int(np.argmin(np.where(room, d, np.inf))) if room.any() else int(np.argmin(d))
        assign[cell] = t
        uses[groups[t]] += 1
    if radius > 0:
        repair_spacing(assign, arcs, arcs_d, cells, tiles, groups, spaced, grid, radius, cap)
    return assign, current_distances(arcs, arcs_d, cells, tiles, assign)
