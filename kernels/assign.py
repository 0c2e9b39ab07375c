"""Greedy tile assignment with repetition control (minimum distance, use cap, reuse penalty), per tile or per
picture group."""

from __future__ import annotations

import numpy as np

from ._jit import ngjit
from .match import _bounds, _finish, _window, sorted_tiles

__all__ = ["assign_tiles"]


@ngjit
def _mark_neighbours(out, r, c, rows, cols, radius, groups, spaced, stamp, step):
    # Stamp the group of every tile already placed within ``radius`` cells (Chebyshev) of (r, c), if the rule
    # spaces that group.
    for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
        for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
            t = out[rr * cols + cc]
            if t >= 0 and spaced[groups[t]]:
                stamp[groups[t]] = step


@ngjit
def _try(cell, tiles, t, q, start, d, groups, uses, stamp, step, max_uses, penalty, strict, scale, best,
         best_cost):
    # Cost of tile t, at sorted row q (its first ``start`` features already summed in d), if allowed and not
    # beaten, else inf.
    g = groups[t]
    if strict and (stamp[g] == step or (max_uses > 0 and uses[g] >= max_uses)):
        return np.inf
    extra = penalty * uses[g]
    limit = np.float32(np.inf)
    if best >= 0:
        room = best_cost - extra
        if room < 0:
            return np.inf
        limit = np.float32(room / scale * 1.001 + 1e-6)  # safely above any distance that could still win
        if d > limit:
            return np.inf
    d = _finish(cell, tiles, q, start, d, limit)
    if d > limit:
        return np.inf
    return np.float32(d * scale) + extra


@ngjit
def _ring_hint(cell, tiles, rank, out, r, c, rows, cols, ring, groups, uses, stamp, step, max_uses, penalty):
    # The best allowed tile already placed on the square ring ``ring`` cells (Chebyshev) around (r, c), and its
    # cost: the neighbours just outside the distance rule's reach show what this part of the photo takes, so
    # one of theirs is a near bound for the whole-library scan (which stays exact: the bound only narrows it).
    best = -1
    best_cost = np.inf
    for rr in range(max(0, r - ring), min(rows, r + ring + 1)):
        if rr == r - ring or rr == r + ring:  # the top and bottom rows of the ring, whole
            for cc in range(max(0, c - ring), min(cols, c + ring + 1)):
                best, best_cost = _consider(cell, tiles, rank, out[rr * cols + cc], groups, uses, stamp, step,
                                            max_uses, penalty, best, best_cost)
        else:  # the rows between: their two ends
            if c - ring >= 0:
                best, best_cost = _consider(cell, tiles, rank, out[rr * cols + c - ring], groups, uses, stamp, step,
                                            max_uses, penalty, best, best_cost)
            if c + ring < cols:
                best, best_cost = _consider(cell, tiles, rank, out[rr * cols + c + ring], groups, uses, stamp, step,
                                            max_uses, penalty, best, best_cost)
    return best, best_cost


@ngjit
def _consider(cell, tiles, rank, t, groups, uses, stamp, step, max_uses, penalty, best, best_cost):
    # (best, best_cost) with placed tile t (-1: none) taken in when it is allowed and cheaper (ties: lower index).
    if t < 0 or t == best:
        return best, best_cost
    scale = np.float32(1.0 / max(1, tiles.shape[1]))
    cost = _try(cell, tiles, t, rank[t], 0, np.float32(0.0), groups, uses, stamp, step, max_uses, penalty, True,
                scale, best, best_cost)
    if cost < best_cost or (cost == best_cost and t < best):
        return t, cost
    return best, best_cost


@ngjit
def _scan_all(cell, tiles, ids, bound_t, lb, groups, uses, stamp, step, max_uses, penalty, strict, best=-1,
              best_cost=np.inf):
    # Best tile over the whole library; with strict, skip stamped and used-up tiles (-1 if none is left).
    # Distances as in nearest_candidates (float32, feature by feature, divided by D). ``tiles`` are sorted by their
    # first feature: a few allowed tiles nearest on it give a first bound (or ``best``, an allowed tile already
    # costed at ``best_cost``); then only the window of tiles whose first term is within it is scanned, a tile
    # skipped when its partial sum over the bound features already costs more than the best so far. Ties go to
    # the lowest original index.
    scale = np.float32(1.0 / max(1, tiles.shape[1]))
    n = tiles.shape[0]
    c0 = cell[0]
    lo, top = 0, n
    while lo < top:  # first sorted position with key >= c0
        mid = (lo + top) // 2
        if tiles[mid, 0] < c0:
            lo = mid + 1
        else:
            top = mid
    up, down, found = lo, lo - 1, 0 if best < 0 else 8
    while found < 8 and (up < n or down >= 0):
        if up < n and (down < 0 or tiles[up, 0] - c0 <= c0 - tiles[down, 0]):
            q = up
            up += 1
        else:
            q = down
            down -= 1
        cost = _try(cell, tiles, ids[q], q, 0, np.float32(0.0), groups, uses, stamp, step, max_uses, penalty, strict,
                    scale, -1, best_cost)
        if cost < np.inf:
            found += 1
            if cost < best_cost or (cost == best_cost and ids[q] < best):
                best_cost = cost
                best = ids[q]
    if best < 0:
        return best
    p = bound_t.shape[0]
    lo, top = 0, n
    if p > 0:
        lo, top = _window(bound_t[0], c0, np.float32(best_cost / scale * 1.001 + 1e-6))
    _bounds(cell, bound_t, lb, lo, top)
    for q in range(lo, top):
        if np.float32(lb[q] * scale) > best_cost:
            continue
        cost = _try(cell, tiles, ids[q], q, p, lb[q], groups, uses, stamp, step, max_uses, penalty, strict, scale,
                    best, best_cost)
        if cost < best_cost or (cost == best_cost and ids[q] < best):
            best_cost = cost
            best = ids[q]
    return best


@ngjit
def _assign_loop(cand_idx, cand_d, cells, tiles, ids, rank, bound_t, order, rows, cols, radius, max_uses, penalty,
                 groups, spaced, out, uses, stamp, lb):
    # groups: int32 (N,) group of each tile; uses: int64 (G,) zeros, stamp: int64 (G,) all -1, per group;
    # rank: int64 (N,) sorted row of each tile; lb: float32 (N,) scratch (no array is made in here: see
    # kernels/_jit.py).
    for step in range(order.shape[0]):
        m = order[step]
        r = m // cols
        if radius > 0:
            _mark_neighbours(out, r, m - r * cols, rows, cols, radius, groups, spaced, stamp, step)
        best = -1
        best_cost = np.inf
        for j in range(cand_idx.shape[1]):
            t = cand_idx[m, j]
            g = groups[t]
            if stamp[g] == step or (max_uses > 0 and uses[g] >= max_uses):
                continue
            cost = cand_d[m, j] + penalty * uses[g]
            if cost < best_cost:
                best_cost = cost
                best = t
            if penalty == 0.0:
                break  # candidates are sorted: the first allowed one is the best
        if best < 0:
            hint, hint_cost = _ring_hint(cells[m], tiles, rank, out, r, m - r * cols, rows, cols, radius + 1, groups,
                                         uses, stamp, step, max_uses, penalty)
            best = _scan_all(cells[m], tiles, ids, bound_t, lb, groups, uses, stamp, step, max_uses, penalty, True,
                             hint, hint_cost)
        if best < 0:  # nothing satisfies the rules (too few tiles): relax them for this cell
            best = _scan_all(cells[m], tiles, ids, bound_t, lb, groups, uses, stamp, step, max_uses, penalty, False)
        out[m] = best
        uses[groups[best]] += 1


def assign_tiles(
    cand_idx: np.ndarray,
    cand_d: np.ndarray,
    cell_feats: np.ndarray,
    tile_feats: np.ndarray,
    grid: tuple[int, int],
    order: np.ndarray,
    min_distance: int = 0,
    max_uses: int = 0,
    penalty: float = 0.0,
    bound_dims: int = 4,
    groups: np.ndarray | None = None,
    spaced: np.ndarray | None = None,
) -> np.ndarray:
    """Give each cell a tile, visiting cells in ``order``, under repetition rules.

    Each cell takes its cheapest allowed candidate, cost = distance + ``penalty`` * uses so far.
    A tile is not allowed where it already lies within ``min_distance`` cells (Chebyshev:
    ``max(|dr|, |dc|) <= min_distance``) or has been used ``max_uses`` times (0: no cap). When no
    candidate is allowed the whole library is scanned (exactly, but pruned: fastest on features in
    principal axes, see :func:`kernels.principal_frame`); only when no tile at all is allowed (too
    few tiles for the rules) is the rule relaxed for that cell. With a penalty, a cell chooses among its
    candidates (pass more of them for a wider choice). With ``groups``, the rules count pictures, not
    tiles: uses, the distance rule and the penalty are per group (near-duplicates of one picture).

    Parameters
    ----------
    cand_idx, cand_d : np.ndarray
        From :func:`kernels.nearest_candidates`: int32 ``(M, C)`` and float32 ``(M, C)``, sorted.
    cell_feats, tile_feats : np.ndarray
        float32 ``(M, D)`` and ``(N, D)``, for the full scan.
    grid : (int, int)
        ``(rows, cols)`` with ``rows * cols == M``; cells are row-major.
    order : np.ndarray
        A permutation of ``range(M)``: the visiting order.
    min_distance, max_uses : int
        Repetition rules (0 turns a rule off).
    penalty : float
        Cost added per earlier use of a tile (same unit as the distances).
    bound_dims : int
        Features that bound a tile's distance in the full scan, as in :func:`kernels.nearest_candidates`
        (any value gives the same result).
    groups : np.ndarray, optional
        int32 ``(N,)``: the group of each tile, in ``[0, G)``; tiles of one group count as one for the rules.
        None: each tile its own group.
    spaced : np.ndarray, optional
        bool ``(G,)``: the groups the distance rule applies to (a flat colour shows no picture to repeat);
        None: every group.

    Returns
    -------
    np.ndarray
        int32 array ``(rows, cols)`` of tile indices.
    """
    rows, cols = (int(v) for v in grid)
    m, n = cell_feats.shape[0], tile_feats.shape[0]
    if rows < 1 or cols < 1 or rows * cols != m:
        raise ValueError(f"grid {rows}x{cols} does not hold {m} cells")
    for name, arr, dtype in (("cand_idx", cand_idx, np.int32), ("cand_d", cand_d, np.float32),
                             ("cell_feats", cell_feats, np.float32), ("tile_feats", tile_feats, np.float32)):
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D {np.dtype(dtype).name} array")
    if cand_idx.shape != cand_d.shape or cand_idx.shape[0] != m or cell_feats.shape[1] != tile_feats.shape[1]:
        shapes = (cand_idx.shape, cand_d.shape, cell_feats.shape, tile_feats.shape)
        raise ValueError(f"shapes do not agree: cand_idx, cand_d, cell_feats, tile_feats = {shapes}")
    if n < 1 or (cand_idx.size and (cand_idx.min() < 0 or cand_idx.max() >= n)):
        raise ValueError(f"candidate indices must be in [0, {n})")
    order = np.asarray(order)
    if order.shape != (m,) or not np.array_equal(np.sort(order), np.arange(m)):
        raise ValueError("order must be a permutation of range(rows * cols)")
    if min_distance < 0 or max_uses < 0 or not penalty >= 0:
        raise ValueError(f"rules must not be negative: {min_distance=}, {max_uses=}, {penalty=}")
    if groups is None:
        groups = np.arange(n, dtype=np.int32)
    elif not isinstance(groups, np.ndarray) or groups.dtype != np.int32 or groups.shape != (n,):
        raise ValueError(f"groups must be an int32 array of shape ({n},)")
    elif groups.min() < 0:
        raise ValueError("groups must not be negative")
    count = int(groups.max()) + 1
    spaced = _spaced(spaced, count)
    out = np.full(m, -1, dtype=np.int32)
    tiles, ids, rank, bound_t = sorted_tiles(tile_feats, bound_dims)
    _assign_loop(np.ascontiguousarray(cand_idx), np.ascontiguousarray(cand_d), np.ascontiguousarray(cell_feats),
                 tiles, ids, rank, bound_t, order.astype(np.int64), rows, cols, int(min_distance),
                 int(max_uses), float(penalty), np.ascontiguousarray(groups), spaced, out,
                 np.zeros(count, dtype=np.int64), np.full(count, -1, dtype=np.int64), np.empty(n, np.float32))
    return out.reshape(rows, cols)


def _spaced(spaced: np.ndarray | None, count: int) -> np.ndarray:
    """The groups the distance rule applies to, checked: bool ``(count,)`` (None: all of them)."""
    if spaced is None:
        return np.ones(count, dtype=np.bool_)
    if not isinstance(spaced, np.ndarray) or spaced.dtype != np.bool_ or spaced.shape != (count,):
        raise ValueError(f"spaced must be a bool array of shape ({count},), one per group")
    return np.ascontiguousarray(spaced)
