"""Near-optimal assignment under a use cap: an auction (Bertsekas) on arcs that widen where prices ask, in Numba.

Cells bid for the slots of tile groups (``cap`` slots a group, each with a price): a cell takes the slot of least
distance + price and raises its price by how much better it is than the cell's next choice, plus ``eps``, evicting
the slot's holder, who bids again. The result is within ``cells x eps`` of the best assignment.

Each cell starts from its nearest tiles; once its best slot there costs more than the last of them did (a bound
no tile left out can beat, as prices only rise), it takes new arcs from every tile. This is what a binding cap
needs: on W1 at 5 uses (82 % of all uses taken) the optimum places tiles at a median rank of 77, up to 340 of
1,000, from their cells, where a fixed graph of 32 or even 128 arcs a cell reaches 38-82 % of its gain (the exact
min-cost flow, successive shortest paths, took +0.4 to +1.9 s for it). Why not a library: scipy's sparse LAP needs
every tile copied ``cap`` times and a fixed graph; ortools' flow is a new dependency with the same fixed graph.
"""

from __future__ import annotations

import numpy as np

from ._jit import ngjit

__all__ = ["auction_assignment", "renewals"]

EPS = 2.5
"""The least raise of a bid, times the mean distance of the cells' nearest tiles: the result is within ``cells x
eps`` of the best. Smaller is closer and slower (W1 at cap 5, share of the optimum's gain over the greedy:
0.5 -> 98 % in 0.44 s, 1 -> 96 % in 0.32 s, 2 -> 92 % in 0.20 s on Dragonfly; over the three targets, greedy plus
refinement against the greedy alone: 2 -> 87-97 % in 2.6-3.2x, 2.5 -> 83-96 % in 2.2-2.8x, 3 -> 79-96 %). One
phase: scaling eps down over more (free slots' prices back to 0 between them) came out worse here, 74 % at 2 then
2/8."""
FINE_BELOW = 4096
"""Under this many cells eps shrinks with the cell count: the bids, about cells x the price range / eps, stay as
few as at this size, and small mosaics come closer to the best."""
BIDS_PER_CELL = 60
"""Most bids, per cell: a bound on the work where prices would climb without end (no room left)."""
RENEWAL_WORK = 1 << 26
"""Most work renewing arcs (distances read or feature terms summed; W1: 10,000-20,000 renewals of 1,000 reads):
where no room is left near many cells (a cap close to the cells' count) the auction stops, and the caller keeps
the greedy if that is better (W2 without every distance at once: 139 renewals, a few tenths of a second)."""
WIDE = 64
"""Arcs a cell starts from (its nearest tiles; fewer bids than 32 for the same result on W1, half the time)."""
DENSE_MAX = 1 << 23
"""Most cells x tiles for which every distance is computed at once (32 MB; W1 is 4M): new arcs then cost a row
read, not a row of distances."""


@ngjit
def _lowest_two(slot_price, base, cap):
    # The cheapest slot of a group (its index) and the second-cheapest price (inf when cap is 1).
    best = base
    lo1 = slot_price[base]
    lo2 = np.inf
    for s in range(base + 1, base + cap):
        p = slot_price[s]
        if p < lo1:
            lo2 = lo1
            lo1 = p
            best = s
        elif p < lo2:
            lo2 = p
    return best, lo1, lo2


@ngjit
def _select(work, k):
    # The k-th smallest (0-based) of ``work`` (reordered in place): quickselect, median of three pivots.
    lo, hi = 0, work.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        a, b, c = work[lo], work[mid], work[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i, j = lo, hi
        while i <= j:
            while work[i] < pivot:
                i += 1
            while work[j] > pivot:
                j -= 1
            if i <= j:
                work[i], work[j] = work[j], work[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return work[k]


@ngjit
def _refresh(cell, cells, tiles, dense, groups, lo1, cand_idx, cand_d, bound, row, work, scale):
    # The cell's arcs anew: its C tiles of least distance + price now (prices only rise, so a tile left out stays
    # at or above bound[cell], the C-th of these, for the rest of the run). Unsorted: _best_two needs no order.
    c = cand_idx.shape[1]
    n = tiles.shape[0]
    for t in range(n):
        if dense.shape[0] > 0:
            d = dense[cell, t]
        else:
            d = np.float32(0.0)
            for b in range(cells.shape[1]):
                e = cells[cell, b] - tiles[t, b]
                d += e * e
            d *= scale
        row[t] = d + lo1[groups[t]]
        work[t] = row[t]
    top = _select(work, c - 1)
    j = 0
    for t in range(n):  # those under the C-th, then those equal to it (lowest index first) while room is left
        if row[t] < top:
            cand_idx[cell, j] = t
            cand_d[cell, j] = np.float32(row[t] - lo1[groups[t]])
            j += 1
    for t in range(n):
        if j < c and row[t] == top:
            cand_idx[cell, j] = t
            cand_d[cell, j] = np.float32(row[t] - lo1[groups[t]])
            j += 1
    bound[cell] = top if c < n else np.inf


@ngjit
def _best_two(cell, cand_idx, cand_d, groups, lo1):
    # The cheapest slot's tile and group over the cell's arcs (u1), and the cheapest of another group (u2).
    u1, u2, t1, g1 = np.inf, np.inf, -1, -1
    for j in range(cand_idx.shape[1]):
        t = cand_idx[cell, j]
        g = groups[t]
        u = cand_d[cell, j] + lo1[g]
        if u < u1:
            if g != g1:
                u2 = u1
            u1, t1, g1 = u, t, g
        elif u < u2 and g != g1:
            u2 = u
    return u1, u2, t1, g1


@ngjit
def _phase(cand_idx, cand_d, cells, tiles, dense, groups, cap, eps, max_bids, max_refresh, slot_price, slot_owner,
           lo1, lo1_slot, lo2, bound, row, work, assign, queue):
    # The auction, from nothing assigned and every price 0; returns the bids made and the arcs renewed.
    m = cand_idx.shape[0]
    scale = np.float32(1.0 / max(1, cells.shape[1]))
    for cell in range(m):
        assign[cell] = -1
        queue[cell] = cell
    for s in range(slot_owner.shape[0]):
        slot_owner[s] = -1
    head, size, bids = 0, m, 0
    refreshed = 0
    while size > 0 and bids < max_bids:
        cell = queue[head]
        head = (head + 1) % m
        size -= 1
        u1, u2, t1, g1 = _best_two(cell, cand_idx, cand_d, groups, lo1)
        if t1 < 0:
            continue
        d1 = u1 - lo1[g1]
        u2 = min(u2, d1 + lo2[g1])  # or the same group's next slot
        if u1 > bound[cell]:  # a tile off the arcs may now be the best: new arcs from every tile
            if refreshed >= max_refresh:
                break  # the work bound: the cells left without a tile are placed by the caller
            refreshed += 1
            _refresh(cell, cells, tiles, dense, groups, lo1, cand_idx, cand_d, bound, row, work, scale)
            u1, u2, t1, g1 = _best_two(cell, cand_idx, cand_d, groups, lo1)
            d1 = u1 - lo1[g1]
            u2 = min(u2, d1 + lo2[g1])
        u2 = min(u2, bound[cell])  # a tile off the arcs is never cheaper than the bound: a smaller, safe raise
        if u2 == np.inf:
            u2 = u1 + 1000.0 * eps  # the only choice there is (fewer tiles than arcs): a bounded raise
        slot = lo1_slot[g1]
        held = slot_owner[slot]
        if held >= 0:
            assign[held] = -1
            queue[(head + size) % m] = held
            size += 1
        slot_owner[slot] = cell
        assign[cell] = t1
        slot_price[slot] = lo1[g1] + (u2 - u1) + eps
        lo1_slot[g1], lo1[g1], lo2[g1] = _lowest_two(slot_price, g1 * cap, cap)
        bids += 1
    return bids, refreshed


def auction_assignment(cand_idx: np.ndarray, cand_d: np.ndarray, cells: np.ndarray, tiles: np.ndarray,
                       groups: np.ndarray, cap: int) -> np.ndarray:
    """Tile per cell (int32 ``(M,)``, -1 where the work bound left a cell without one), at most ``cap`` cells per
    group (``groups``: int64 ``(N,)``), starting from the arcs ``cand_idx`` (int32 ``(M, C)``, each cell's C
    nearest tiles, distances ``cand_d``, float32, sorted); a cell whose arcs no longer hold its best two choices
    under the prices gets new ones from every tile (``cells``, ``tiles``: float32 features, as
    :func:`kernels.nearest_candidates` measures them). Deterministic: cells bid in index order."""
    m = cand_idx.shape[0]
    n_groups = int(groups.max()) + 1
    assign = np.full(m, -1, np.int32)
    if m == 0:
        return assign
    eps = max(1e-6, EPS * min(1.0, m / FINE_BELOW) * float(np.mean(cand_d[:, 0], dtype=np.float64)))
    slots = n_groups * cap
    arcs, arcs_d = cand_idx.copy(), cand_d.copy()  # widened in place where prices ask for it
    bound = arcs_d[:, -1].astype(np.float64) if arcs.shape[1] < tiles.shape[0] else np.full(m, np.inf)
    dense = _dense(cells, tiles)
    row_cost = tiles.shape[0] * (1 if dense.shape[0] else cells.shape[1])  # a renewal's work
    _phase(arcs, arcs_d, cells, tiles, dense, groups, int(cap), eps, BIDS_PER_CELL * m, RENEWAL_WORK // row_cost,
           np.zeros(slots, np.float64), np.full(slots, -1, np.int64), np.zeros(n_groups, np.float64),
           np.arange(n_groups, dtype=np.int64) * cap,
           np.zeros(n_groups, np.float64) if cap > 1 else np.full(n_groups, np.inf), bound,
           np.empty(tiles.shape[0], np.float64), np.empty(tiles.shape[0], np.float64), assign, np.empty(m, np.int64))
    return assign


def renewals(cells: int, tiles: int, dims: int) -> int:
    """The most arc renewals the auction makes on ``cells`` x ``tiles`` of ``dims`` features (RENEWAL_WORK)."""
    return RENEWAL_WORK // (tiles * (1 if cells * tiles <= DENSE_MAX else dims))


def _dense(cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """Every cell-tile distance (float32 ``(M, N)``, as nearest_candidates measures them, up to rounding) when
    there are at most DENSE_MAX; else an empty array (the kernel computes the rows it needs)."""
    if cells.shape[0] * tiles.shape[0] > DENSE_MAX:
        return np.zeros((0, 0), np.float32)
    c64, t64 = cells.astype(np.float64), tiles.astype(np.float64)
    d = np.square(c64).sum(axis=1)[:, None] + np.square(t64).sum(axis=1)[None, :] - 2.0 * (c64 @ t64.T)
    return np.maximum(d / max(1, cells.shape[1]), 0.0).astype(np.float32)
