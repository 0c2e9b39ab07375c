"""Improve a tile assignment on the candidate graph: lower the summed distance, keep the repetition rules.

The greedy assignment (:func:`kernels.assign_tiles`) gives early cells their best tiles and later cells the
leftovers. Where a use cap binds, :func:`refine_assignment` also starts from an auction for the cap's slots
(kernels/auction.py: near-optimal for the cap alone, its arcs widened past the candidates where prices ask),
the distance rule then repaired locally (kernels/repair.py). From each start it cancels cycles on the sparse
candidate graph, every move also checked against the distance rule (which spares the groups ``spaced`` marks
False: flat colours), and keeps the start that ends with the lower sum:

* **Chains** (the use cap). A label per group, ``ins[g]``, is the cheapest known change of the summed distance
  that makes room for one more use of g: 0 when g is under the cap, else the best "one of g's cells moves to one
  of its candidates u, and room is made in u's group" (Bellman-Ford on the residual graph, a few sweeps in
  place). A negative label is an improving ejection chain (or cycle); chains are applied most negative first,
  each re-checked against the current assignment (cells unchanged, rules kept, total lower) or undone.
* **Blocker moves** (the distance rule). A cell whose better candidate is held by exactly one cell within
  ``min_distance`` takes it, and that cell takes the first's tile (a swap) or its own best allowed candidate,
  when the two together lower the sum.

Both count per identity group: ``groups[t]`` is tile t's group, and the cap and the distance rule apply to
groups (``np.arange(N)``: every tile its own group). Serial and deterministic: the same input gives the same
output. Only moves that lower the summed distance are kept, so the result is never worse than the input.
"""

from __future__ import annotations

import numpy as np

from ._jit import ngjit
from .assign import _spaced
from .repair import auction_start, current_distances

__all__ = ["refine_assignment"]

TOL = 1e-5
"""Least decrease of the summed distance a move must bring (same unit as the distances): rounding is not a gain."""
MAX_CHAIN = 64
"""Most cells one ejection chain moves."""
AUCTION = True
"""Also start from the auction's assignment (the cap alone, then the distance rule repaired) where the cap binds."""


@ngjit
def _allowed(assign, groups, spaced, m, g, rows, cols, radius, skip):
    # May cell m hold group g under the distance rule? Cells m and ``skip`` (-1: none) are not looked at.
    if radius <= 0 or not spaced[g]:
        return True
    r = m // cols
    c = m - r * cols
    for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
        base = rr * cols
        for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
            x = base + cc
            if x != m and x != skip and groups[assign[x]] == g:
                return False
    return True


@ngjit
def _dist(cand_idx, cand_d, cells, tiles, m, t):
    # Distance of cell m to tile t: its candidate distance when t is a candidate, else computed as
    # nearest_candidates does (float32 sum of squares over the features, divided by D).
    for j in range(cand_idx.shape[1]):
        if cand_idx[m, j] == t:
            return cand_d[m, j]
    d = np.float32(0.0)
    for b in range(cells.shape[1]):
        e = cells[m, b] - tiles[t, b]
        d += e * e
    return np.float32(d * np.float32(1.0 / max(1, cells.shape[1])))


@ngjit
def _labels(cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap, sweeps, ins, pred_m, pred_j):
    # Bellman-Ford sweeps (in place) of the room-making labels; pred_m/pred_j: the move behind each label.
    for g in range(uses.shape[0]):
        ins[g] = 0.0 if (cap == 0 or uses[g] < cap) else np.inf
        pred_m[g] = -1
        pred_j[g] = -1
    for _ in range(sweeps):
        changed = False
        for m in range(cand_idx.shape[0]):
            ga = groups[assign[m]]
            best = ins[ga] - TOL
            bj = -1
            for j in range(cand_idx.shape[1]):
                gu = groups[cand_idx[m, j]]
                if gu == ga:
                    continue
                val = cand_d[m, j] - cur[m] + ins[gu]
                if val < best and _allowed(assign, groups, spaced, m, gu, rows, cols, radius, -1):
                    best = val
                    bj = j
            if bj >= 0:
                ins[ga] = best
                pred_m[ga] = m
                pred_j[ga] = bj
                changed = True
        if not changed:
            break


@ngjit
def _undo(assign, cur, groups, uses, chain_m, saved_t, saved_d, start, stop):
    # Undo the applied moves chain[start:stop] (applied last to first, so undone first to last).
    for i in range(start, stop):
        m = chain_m[i]
        uses[groups[assign[m]]] -= 1
        uses[groups[saved_t[i]]] += 1
        assign[m] = saved_t[i]
        cur[m] = saved_d[i]


@ngjit
def _apply_chain(g0, cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap, pred_m, pred_j,
                 cell_mark, group_mark, group_pos, token, chain_m, chain_j, saved_t, saved_d):
    # Follow the labels from group g0 to a group with room (or back to a group met before: a cycle), then apply
    # the moves from the last to the first, each under the distance rule; keep them only if the summed
    # distance drops.
    g = g0
    k = 0
    first = 0
    group_mark[g0] = token
    group_pos[g0] = 0
    while True:
        m = pred_m[g]
        if m < 0 or k >= chain_m.shape[0] or cell_mark[m] == token or groups[assign[m]] != g:
            return False
        cell_mark[m] = token
        chain_m[k] = m
        chain_j[k] = pred_j[g]
        k += 1
        g = groups[cand_idx[m, pred_j[g]]]
        if group_mark[g] == token:  # a cycle from g's first visit: every group in it keeps its uses
            first = group_pos[g]
            break
        if cap == 0 or uses[g] < cap:
            break
        group_mark[g] = token
        group_pos[g] = k
    total = 0.0
    for i in range(k - 1, first - 1, -1):
        m = chain_m[i]
        u = cand_idx[m, chain_j[i]]
        gu = groups[u]
        if not _allowed(assign, groups, spaced, m, gu, rows, cols, radius, -1):
            _undo(assign, cur, groups, uses, chain_m, saved_t, saved_d, i + 1, k)
            return False
        saved_t[i] = assign[m]
        saved_d[i] = cur[m]
        uses[groups[assign[m]]] -= 1
        uses[gu] += 1
        assign[m] = u
        cur[m] = cand_d[m, chain_j[i]]
        total += cur[m] - saved_d[i]
    over = False
    for i in range(first, k):
        if cap > 0 and uses[groups[assign[chain_m[i]]]] > cap:
            over = True
    if over or total > -TOL:
        _undo(assign, cur, groups, uses, chain_m, saved_t, saved_d, first, k)
        return False
    return True


@ngjit
def _after(keys, a, b):
    # Does a sort after b, by (key, index)?
    return keys[a] > keys[b] or (keys[a] == keys[b] and a > b)


@ngjit
def _sift(keys, idx, root, end):
    # Max-heap on (keys[idx], idx) below ``root`` in idx[:end].
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _after(keys, idx[child + 1], idx[child]):
            child += 1
        if not _after(keys, idx[child], idx[root]):
            return
        idx[root], idx[child] = idx[child], idx[root]
        root = child


@ngjit
def _heapsort(keys, idx, count):
    # Sort idx[:count] by (keys[idx], idx) ascending, in place (no array is made: see kernels/_jit.py).
    for start in range(count // 2 - 1, -1, -1):
        _sift(keys, idx, start, count)
    for end in range(count - 1, 0, -1):
        idx[0], idx[end] = idx[end], idx[0]
        _sift(keys, idx, 0, end)


@ngjit
def _chains(cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap, sweeps, ins, pred_m, pred_j,
            order, cell_mark, group_mark, group_pos, token, chain_m, chain_j, saved_t, saved_d):
    # One pass of label sweeps and chain applications; returns (chains applied, next mark token).
    _labels(cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap, sweeps, ins, pred_m, pred_j)
    count = 0
    for g in range(ins.shape[0]):
        if ins[g] < -TOL:
            order[count] = g
            count += 1
    _heapsort(ins, order, count)
    applied = 0
    for q in range(count):
        g0 = order[q]
        token += 1
        if _apply_chain(g0, cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap, pred_m,
                        pred_j, cell_mark, group_mark, group_pos, token, chain_m, chain_j, saved_t, saved_d):
            applied += 1
    return applied, token


@ngjit
def _blockers(cand_idx, cand_d, cells, tiles, assign, cur, groups, spaced, uses, rows, cols, radius, cap):
    # One pass of blocker moves (see the module docstring); returns how many were made.
    made = 0
    for m in range(cand_idx.shape[0]):
        a = assign[m]
        ga = groups[a]
        r = m // cols
        c = m - r * cols
        for j in range(cand_idx.shape[1]):
            dm = cand_d[m, j]
            if dm > cur[m] - TOL:
                break  # candidates are sorted: no later one is better
            u = cand_idx[m, j]
            gu = groups[u]
            if gu == ga or not spaced[gu]:
                continue  # the same picture, or one the rule leaves alone (the chains move to it)
            count = 0
            blk = -1
            for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
                base = rr * cols
                for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
                    x = base + cc
                    if x != m and groups[assign[x]] == gu:
                        count += 1
                        blk = x
                if count > 1:
                    break
            if count != 1:
                continue
            gain_m = cur[m] - dm
            best_gain = TOL
            best_t = -1
            best_d = np.float32(0.0)
            if _allowed(assign, groups, spaced, blk, ga, rows, cols, radius, m):  # the swap: blk takes m's tile
                d = _dist(cand_idx, cand_d, cells, tiles, blk, a)
                if gain_m + cur[blk] - d > best_gain:
                    best_gain, best_t, best_d = gain_m + cur[blk] - d, a, d
            for jb in range(cand_idx.shape[1]):  # or blk moves to its best allowed candidate with room
                d = cand_d[blk, jb]
                if gain_m + cur[blk] - d <= best_gain:
                    break
                t = cand_idx[blk, jb]
                gt = groups[t]
                if gt == gu or (cap > 0 and gt != ga and uses[gt] >= cap):
                    continue
                if _allowed(assign, groups, spaced, blk, gt, rows, cols, radius, m):
                    best_gain, best_t, best_d = gain_m + cur[blk] - d, t, d
                    break
            if best_t < 0:
                continue
            uses[ga] -= 1
            uses[groups[best_t]] += 1
            assign[m] = u
            cur[m] = dm
            assign[blk] = best_t
            cur[blk] = best_d
            made += 1
            break
    return made


@ngjit
def _refine_loop(cand_idx, cand_d, cells, tiles, groups, spaced, assign, cur, uses, rows, cols, radius, cap, rounds,
                 sweeps, ins, pred_m, pred_j, order, cell_mark, group_mark, group_pos, chain_m, chain_j, saved_t,
                 saved_d):
    token = 0
    for _ in range(rounds):
        applied, token = _chains(cand_idx, cand_d, assign, cur, groups, spaced, uses, rows, cols, radius, cap,
                                 sweeps, ins, pred_m, pred_j, order, cell_mark, group_mark, group_pos, token,
                                 chain_m, chain_j, saved_t, saved_d)
        if radius > 0:
            applied += _blockers(cand_idx, cand_d, cells, tiles, assign, cur, groups, spaced, uses, rows, cols, radius,
                                 cap)
        if applied == 0:
            break


def refine_assignment(
    assignment: np.ndarray,
    cand_idx: np.ndarray,
    cand_d: np.ndarray,
    cell_feats: np.ndarray,
    tile_feats: np.ndarray,
    groups: np.ndarray,
    min_distance: int = 0,
    max_uses: int = 0,
    rounds: int = 2,
    sweeps: int = 2,
    spaced: np.ndarray | None = None,
) -> np.ndarray:
    """A better assignment than ``assignment`` on the candidate graph, under the same repetition rules.

    Moves cells between their candidates (ejection chains under the use cap, swaps and moves around the
    distance rule: see the module docstring) while the summed distance drops, for at most ``rounds``
    rounds of ``sweeps`` label sweeps each. Every kept move keeps both rules at the cells it changes:
    no group used more than ``max_uses`` times (0: no cap), and no group twice within ``min_distance``
    cells (Chebyshev). A cell whose tile is not among its candidates (the greedy's full scan) may move to
    one that is, never the other way.

    Parameters
    ----------
    assignment : np.ndarray
        int32 ``(rows, cols)`` tile per cell, e.g. from :func:`kernels.assign_tiles`.
    cand_idx, cand_d : np.ndarray
        int32 and float32 ``(M, C)``, from :func:`kernels.nearest_candidates`, sorted; ``M = rows * cols``.
    cell_feats, tile_feats : np.ndarray
        float32 ``(M, D)`` and ``(N, D)``: distances to tiles that are not candidates.
    groups : np.ndarray
        int ``(N,)``: each tile's identity group (non-negative ids); the rules count per group.
    min_distance, max_uses : int
        The repetition rules (0 turns a rule off).
    spaced : np.ndarray, optional
        bool ``(G,)``: the groups the distance rule applies to, as in :func:`kernels.assign_tiles` (None: all).
    rounds, sweeps : int
        Bounds on the work: improvement rounds, and label sweeps per round. The defaults keep a warm W2 build
        within 0.2 s of the greedy's at min_distance 5 (8 and 6 gain another 1 % of the sum for 1 s more).

    Returns
    -------
    np.ndarray
        int32 ``(rows, cols)``, a new array.
    """
    if not isinstance(assignment, np.ndarray) or assignment.ndim != 2:
        raise ValueError("assignment must be a 2-D array of tile indices")
    rows, cols = assignment.shape
    m = rows * cols
    for name, arr, dtype in (("cand_idx", cand_idx, np.int32), ("cand_d", cand_d, np.float32),
                             ("cell_feats", cell_feats, np.float32), ("tile_feats", tile_feats, np.float32)):
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D {np.dtype(dtype).name} array")
    n = tile_feats.shape[0]
    if (cand_idx.shape != cand_d.shape or cand_idx.shape[0] != m or cell_feats.shape[0] != m
            or cell_feats.shape[1] != tile_feats.shape[1]):
        shapes = (assignment.shape, cand_idx.shape, cand_d.shape, cell_feats.shape, tile_feats.shape)
        raise ValueError(f"shapes do not agree: assignment, cand_idx, cand_d, cell_feats, tile_feats = {shapes}")
    if n < 1 or (cand_idx.size and (cand_idx.min() < 0 or cand_idx.max() >= n)):
        raise ValueError(f"candidate indices must be in [0, {n})")
    if m and (assignment.min() < 0 or assignment.max() >= n):
        raise ValueError(f"assigned tiles must be in [0, {n})")
    groups = np.asarray(groups)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer) or groups.min() < 0:
        raise ValueError(f"groups must be {n} non-negative integer group ids")
    if min_distance < 0 or max_uses < 0 or rounds < 0 or sweeps < 0:
        raise ValueError(f"must not be negative: {min_distance=}, {max_uses=}, {rounds=}, {sweeps=}")
    assign = np.ascontiguousarray(assignment, dtype=np.int32).ravel().copy()
    cand_idx, cand_d = np.ascontiguousarray(cand_idx), np.ascontiguousarray(cand_d)
    cells, tiles = np.ascontiguousarray(cell_feats), np.ascontiguousarray(tile_feats)
    groups = groups.astype(np.int64)
    n_groups = int(groups.max()) + 1
    spaced = _spaced(spaced, n_groups)
    cur = np.empty(m, np.float32)
    for cell in range(0, m, 4096):  # the distances of the assignment, in bounded slices
        part = slice(cell, min(m, cell + 4096))
        cur[part] = current_distances(cand_idx[part], cand_d[part], cells[part], tiles, assign[part])
    rules = (int(min_distance), int(max_uses), int(rounds), int(sweeps))
    starts = [(assign, cur)]  # the greedy, and the auction's (the cap alone) with the distance rule repaired
    auctioned = auction_start(cells, tiles, groups, cand_idx, int(max_uses), spaced, (rows, cols),
                              int(min_distance)) if AUCTION else None
    if auctioned is not None:
        starts.append(auctioned)
    best = None
    for start, start_cur in starts:  # each polished by the chains and swaps; the lowest sum is kept
        _polish(cand_idx, cand_d, cells, tiles, groups, spaced, start, start_cur, (rows, cols), rules)
        total = start_cur.sum(dtype=np.float64)
        if best is None or total < best[1] - TOL:
            best = (start, total)
    assert best is not None
    return best[0].reshape(rows, cols)


def _polish(cand_idx: np.ndarray, cand_d: np.ndarray, cells: np.ndarray, tiles: np.ndarray, groups: np.ndarray,
            spaced: np.ndarray, assign: np.ndarray, cur: np.ndarray, grid: tuple[int, int],
            rules: tuple[int, int, int, int]) -> None:
    """The chains and blocker moves on ``assign`` and its distances ``cur``, in place."""
    (rows, cols), (radius, cap, rounds, sweeps) = grid, rules
    m, g = assign.shape[0], int(groups.max()) + 1
    uses = np.bincount(groups[assign], minlength=g).astype(np.int64)
    _refine_loop(cand_idx, cand_d, cells, tiles, groups, spaced, assign, cur, uses, rows, cols, radius, cap, rounds,
                 sweeps, np.empty(g, np.float64), np.empty(g, np.int64), np.empty(g, np.int64), np.empty(g, np.int64),
                 np.zeros(m, np.int64), np.zeros(g, np.int64), np.zeros(g, np.int64), np.empty(MAX_CHAIN, np.int64),
                 np.empty(MAX_CHAIN, np.int64), np.empty(MAX_CHAIN, np.int32), np.empty(MAX_CHAIN, np.float32))
