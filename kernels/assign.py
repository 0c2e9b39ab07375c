"""Greedy tile assignment with repetition control (minimum distance, use cap, reuse penalty)."""

from __future__ import annotations

import numpy as np

from ._jit import ngjit

__all__ = ["assign_tiles"]


@ngjit
def _mark_neighbours(out, r, c, rows, cols, radius, stamp, step):
    # Stamp every tile already placed within ``radius`` cells (Chebyshev) of (r, c).
    for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
        for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
            t = out[rr * cols + cc]
            if t >= 0:
                stamp[t] = step


@ngjit
def _scan_all(cell, tiles, uses, stamp, step, max_uses, penalty, strict):
    # Best tile over the whole library; with strict, skip stamped and used-up tiles (-1 if none is left).
    best = -1
    best_cost = np.inf
    scale = 1.0 / max(1, tiles.shape[1])
    for t in range(tiles.shape[0]):
        if strict and (stamp[t] == step or (max_uses > 0 and uses[t] >= max_uses)):
            continue
        d = 0.0
        for j in range(tiles.shape[1]):
            diff = cell[j] - tiles[t, j]
            d += diff * diff
        cost = d * scale + penalty * uses[t]
        if cost < best_cost:
            best_cost = cost
            best = t
    return best


@ngjit
def _assign_loop(cand_idx, cand_d, cells, tiles, order, rows, cols, radius, max_uses, penalty, out, uses):
    stamp = np.full(tiles.shape[0], -1, dtype=np.int64)
    for step in range(order.shape[0]):
        m = order[step]
        r = m // cols
        if radius > 0:
            _mark_neighbours(out, r, m - r * cols, rows, cols, radius, stamp, step)
        best = -1
        best_cost = np.inf
        for j in range(cand_idx.shape[1]):
            t = cand_idx[m, j]
            if stamp[t] == step or (max_uses > 0 and uses[t] >= max_uses):
                continue
            cost = cand_d[m, j] + penalty * uses[t]
            if cost < best_cost:
                best_cost = cost
                best = t
            if penalty == 0.0:
                break  # candidates are sorted: the first allowed one is the best
        if best < 0:
            best = _scan_all(cells[m], tiles, uses, stamp, step, max_uses, penalty, True)
        if best < 0:  # nothing satisfies the rules (too few tiles): relax them for this cell
            best = _scan_all(cells[m], tiles, uses, stamp, step, max_uses, penalty, False)
        out[m] = best
        uses[best] += 1


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
) -> np.ndarray:
    """Give each cell a tile, visiting cells in ``order``, under repetition rules.

    Each cell takes its cheapest allowed candidate, cost = distance + ``penalty`` * uses so far.
    A tile is not allowed where it already lies within ``min_distance`` cells (Chebyshev:
    ``max(|dr|, |dc|) <= min_distance``) or has been used ``max_uses`` times (0: no cap). When no
    candidate is allowed the whole library is scanned; only when no tile at all is allowed (too
    few tiles for the rules) is the rule relaxed for that cell. With a penalty, a cell chooses among its
    candidates (pass more of them for a wider choice).

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
    out = np.full(m, -1, dtype=np.int32)
    uses = np.zeros(n, dtype=np.int64)
    _assign_loop(np.ascontiguousarray(cand_idx), np.ascontiguousarray(cand_d), np.ascontiguousarray(cell_feats),
                 np.ascontiguousarray(tile_feats), order.astype(np.int64), rows, cols, int(min_distance),
                 int(max_uses), float(penalty), out, uses)
    return out.reshape(rows, cols)
