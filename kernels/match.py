"""Nearest-tile matching by squared Euclidean distance."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._jit import ngjit, ngjit_parallel, thread_slots

FINISH_BLOCK = 8
"""Features summed between two checks of a distance against its limit (fastest of 1/4/8/16 on W2: 8)."""

__all__ = ["nearest_candidates", "principal_frame", "to_frame", "sorted_tiles", "slab_tiles"]


def _check_feats(name: str, arr: object) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.float32:
        raise ValueError(f"{name} must have dtype float32, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def check_pair(cell_feats: object, tile_feats: object) -> tuple[np.ndarray, np.ndarray]:
    """Cell and tile features checked for matching: float32 ``(M, D)`` and ``(N, D)``, ``N >= 1``, C-contiguous."""
    cells = _check_feats("cell_feats", cell_feats)
    tiles = _check_feats("tile_feats", tile_feats)
    if tiles.shape[0] < 1:
        raise ValueError(f"tile_feats must hold at least one tile, got shape {tiles.shape}")
    if cells.shape[1] != tiles.shape[1]:
        raise ValueError(f"feature lengths differ: cell_feats {cells.shape}, tile_feats {tiles.shape}")
    return cells, tiles


@ngjit
def _bigger(hd, hi, a, b):
    # Heap order on (distance, index): is entry a after entry b?
    return hd[a] > hd[b] or (hd[a] == hd[b] and hi[a] > hi[b])


@ngjit
def _swap(hd, hi, a, b):
    hd[a], hd[b] = hd[b], hd[a]
    hi[a], hi[b] = hi[b], hi[a]


@ngjit
def _sift_down(hd, hi, start, end):
    # Restore the max-heap property of hd/hi[start:end] below ``start``.
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _bigger(hd, hi, child + 1, child):
            child += 1
        if not _bigger(hd, hi, child, root):
            return
        _swap(hd, hi, root, child)
        root = child


@ngjit
def _sift_up(hd, hi, child):
    while child > 0:
        parent = (child - 1) // 2
        if not _bigger(hd, hi, child, parent):
            return
        _swap(hd, hi, parent, child)
        child = parent


@ngjit
def _offer(hd, hi, size, d, t):
    # Offer (d, t) to a max-heap of the best entries holding ``size``; returns the new size.
    count = hd.shape[0]
    if size < count:
        hd[size] = d
        hi[size] = t
        _sift_up(hd, hi, size)
        return size + 1
    if d < hd[0] or (d == hd[0] and t < hi[0]):
        hd[0] = d
        hi[0] = t
        _sift_down(hd, hi, 0, count)
    return size


@ngjit
def _bounds(c, bound_t, lb, lo, hi):
    # lb[t] = sum over the first p features of (c - t)^2 for t in [lo, hi), in feature order: the start of the
    # full sum.
    for t in range(lo, hi):
        lb[t] = np.float32(0.0)
    for j in range(bound_t.shape[0]):
        cj = c[j]
        row = bound_t[j]
        for t in range(lo, hi):
            e = cj - row[t]
            lb[t] += e * e


@ngjit
def _finish(c, tiles, t, start, d, limit):
    # Add the features from ``start`` on to ``d``; stop early (returning > limit) once d > limit. Summed a block
    # of FINISH_BLOCK features at a time, checked after each block: fewer branches, and the most a distance
    # rarely needs (after the principal axes, about 11 of 48 features on W2) is one block more.
    dim = tiles.shape[1]
    j = start
    while j + FINISH_BLOCK <= dim:
        block = np.float32(0.0)
        for b in range(j, j + FINISH_BLOCK):
            e = c[b] - tiles[t, b]
            block += e * e
        d += block
        j += FINISH_BLOCK
        if d > limit:
            return d
    for b in range(j, dim):
        e = c[b] - tiles[t, b]
        d += e * e
    return d


@ngjit
def _window(key, c0, limit, base=0.0, start=0, end=-1):
    # Positions [lo, hi) within [start, end) (end -1: the whole key) of sorted values whose term
    # base + (c0 - key)^2 is <= limit. The term grows monotonically away from c0 on both sides, so two binary
    # searches find the ends; computed as the distances are (float32, base first), so no tile is cut that a
    # full sum could still keep.
    n = key.shape[0] if end < 0 else end
    lo, top = start, n
    while lo < top:  # first position that is not (left of c0 and beyond the limit)
        mid = (lo + top) // 2
        e = c0 - key[mid]
        if key[mid] < c0 and base + e * e > limit:
            lo = mid + 1
        else:
            top = mid
    hi, top = lo, n
    while hi < top:  # first position right of c0 and beyond the limit
        mid = (hi + top) // 2
        e = c0 - key[mid]
        if key[mid] > c0 and base + e * e > limit:
            top = mid
        else:
            hi = mid + 1
    return lo, hi


@ngjit
def _scan_slab(c, tiles, second, ids, seen, mark, start, end, gap, hd, hi, size):
    # Offer the slab's tiles [start, end) (sorted by their second feature) that can still beat the heap's worst:
    # with ``gap`` the least first-feature term of the slab, only those whose second feature keeps
    # gap + (c1 - t1)^2 within it (a window of the slab) are finished, each stopping once past it.
    count = hd.shape[0]
    lo, top = start, end
    if size == count:
        lo, top = _window(second, c[1] if c.shape[0] > 1 else np.float32(0.0), hd[0], gap, start, end)
    for q in range(lo, top):
        if seen[q] == mark:
            continue
        if size < count:
            size = _offer(hd, hi, size, _finish(c, tiles, q, 0, np.float32(0.0), np.float32(np.inf)), ids[q])
        else:
            d = _finish(c, tiles, q, 0, np.float32(0.0), hd[0])
            if d <= hd[0]:
                size = _offer(hd, hi, size, d, ids[q])
    return size


@ngjit
def _cell_candidates(c, tiles, second, ids, rank, edges, low, high, seen, mark, seeds, hd, hi):
    # Exact top-C of one cell. The tiles are in slabs of their first feature (slab s: rows edges[s]..edges[s+1],
    # first feature between low[s] and high[s]), each sorted by the second. Seeds (a neighbour's candidates)
    # fill the heap first, so its worst entry bounds the search at once; slabs are visited outward from the
    # cell's first feature, and a side ends at the first slab whose least first-feature term is beyond the worst.
    count = hd.shape[0]
    slabs = low.shape[0]
    size = 0
    for s in range(seeds.shape[0]):
        t = seeds[s]
        q = rank[t]
        seen[q] = mark
        size = _offer(hd, hi, size, _finish(c, tiles, q, 0, np.float32(0.0), np.float32(np.inf)), t)
    c0 = c[0]
    up = 0
    while up < slabs - 1 and high[up] < c0:
        up += 1
    down = up - 1
    while up < slabs or down >= 0:
        gap_up = max(low[up] - c0, np.float32(0.0)) if up < slabs else np.float32(np.inf)
        gap_down = max(c0 - high[down], np.float32(0.0)) if down >= 0 else np.float32(np.inf)
        side_up = gap_up <= gap_down
        if side_up:
            s, gap = up, gap_up * gap_up
            up += 1
        else:
            s, gap = down, gap_down * gap_down
            down -= 1
        if size == count and gap > hd[0]:  # slabs further out on this side are further still
            if side_up:
                up = slabs
            else:
                down = -1
            continue
        size = _scan_slab(c, tiles, second, ids, seen, mark, edges[s], edges[s + 1], gap, hd, hi, size)
    for end in range(count - 1, 0, -1):
        _swap(hd, hi, 0, end)
        _sift_down(hd, hi, 0, end)


@ngjit_parallel
def _candidates_loop(cells, tiles, second, ids, rank, edges, low, high, chunk, runs, out_idx, out_d, seen_by_thread):
    # Parallel over runs of ``chunk`` cells, taken in the order ``runs`` (interleaved, so each thread's share
    # of the loop mixes every part of the picture); inside a run each cell is seeded with the previous cell's
    # candidates (neighbours look alike). The result does not depend on the seeds: they only make the pruning
    # bite sooner. seen_by_thread: int64 (threads, N) all -1; a thread's row marks the tiles a cell has offered
    # with that cell's index, so it never needs clearing (no array is made in here: see kernels/_jit.py).
    m_total = cells.shape[0]
    for i in prange(runs.shape[0]):
        b = runs[i]
        seen = seen_by_thread[numba.get_thread_id()]
        start = b * chunk
        for m in range(start, min(m_total, start + chunk)):
            seeds = out_idx[m - 1] if m > start else out_idx[m, :0]
            _cell_candidates(cells[m], tiles, second, ids, rank, edges, low, high, seen, m, seeds, out_d[m],
                             out_idx[m])


def slab_tiles(tile_feats: np.ndarray, slabs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                           np.ndarray, np.ndarray]:
    """The tiles in ``slabs`` equal slabs of their first feature, each sorted by the second (stable).

    Returns ``(tiles, second, ids, rank, edges, low, high)``: the reordered float32 ``(N, D)`` features and
    their second feature (zeros when D is 1), int64 original index of each row and row of each original index,
    int64 ``(S+1,)`` first row of each slab, and float32 ``(S,)`` least and greatest first feature per slab.
    """
    n = tile_feats.shape[0]
    slabs = max(1, min(int(slabs), n))
    second = tile_feats[:, 1] if tile_feats.shape[1] > 1 else np.zeros(n, np.float32)
    by_first = np.argsort(tile_feats[:, 0], kind="stable")
    edges = (np.arange(slabs + 1, dtype=np.int64) * n) // slabs
    ids = np.concatenate([part[np.argsort(second[part], kind="stable")]
                          for part in np.split(by_first, edges[1:-1])]).astype(np.int64)
    rank = np.empty_like(ids)
    rank[ids] = np.arange(n, dtype=np.int64)
    first = tile_feats[ids, 0]
    low = np.array([first[a:b].min() for a, b in zip(edges[:-1], edges[1:], strict=True)], dtype=np.float32)
    high = np.array([first[a:b].max() for a, b in zip(edges[:-1], edges[1:], strict=True)], dtype=np.float32)
    return (np.ascontiguousarray(tile_feats[ids]), np.ascontiguousarray(second[ids], dtype=np.float32), ids, rank,
            edges, low, high)


TILES_PER_SLAB = 200
"""Slab size of the candidate search: 48 slabs for W2's 9,486 tiles (fastest of 16/32/48/64 slabs)."""


CHUNK = 64
"""Cells per run of the candidate search (one seed chain)."""


def _per_thread(n: int, fill: int) -> np.ndarray:
    """int64 scratch rows, one per thread a parallel kernel may run on (numba.get_thread_id())."""
    return np.full((thread_slots(), n), fill, dtype=np.int64)


def interleaved(count: int, threads: int | None = None) -> np.ndarray:
    """0..count-1 reordered so that each of ``threads`` equal contiguous slices (how a parallel loop is split)
    holds every ``threads``-th item: the top and bottom of a picture often differ in cost."""
    threads = max(1, threads or numba.get_num_threads())
    return np.concatenate([np.arange(k, count, threads, dtype=np.int64) for k in range(threads)])


def sorted_tiles(tile_feats: np.ndarray, bound_dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tiles sorted by their first feature (stable), for the pruned searches.

    Returns ``(tiles, ids, rank, bound_t)``: the sorted float32 ``(N, D)`` features, int64 original index of
    each sorted row, int64 sorted row of each original index, and the first ``bound_dims`` (0..D) features
    transposed ``(p, N)`` for the vectorised bound pass.
    """
    ids = np.argsort(tile_feats[:, 0], kind="stable").astype(np.int64)
    rank = np.empty_like(ids)
    rank[ids] = np.arange(ids.size, dtype=np.int64)
    tiles = np.ascontiguousarray(tile_feats[ids])
    p = max(0, min(int(bound_dims), tile_feats.shape[1]))
    return tiles, ids, rank, np.ascontiguousarray(tiles[:, :p].T)


def principal_frame(tile_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tiles' principal axes: ``(mean, rotation)``, float32 ``(D,)`` and ``(D, D)``, largest variance first.

    The rotation is orthonormal, so distances are kept (up to float32 rounding); what changes is that the
    first few features carry most of the spread, which lets :func:`nearest_candidates` and
    :func:`kernels.assign_tiles` prune most tiles on their first ``bound_dims`` features alone.
    """
    tiles = _check_feats("tile_feats", tile_feats)
    if tiles.shape[0] < 1:
        raise ValueError(f"tile_feats must hold at least one tile, got shape {tiles.shape}")
    mean = tiles.mean(axis=0, dtype=np.float64)
    centred = tiles.astype(np.float64) - mean
    _, vectors = np.linalg.eigh(centred.T @ centred)
    rot = np.ascontiguousarray(vectors[:, ::-1])
    # Fix each axis's sign (eigh may flip it between platforms): largest component positive.
    signs = np.sign(rot[np.abs(rot).argmax(axis=0), np.arange(rot.shape[1])])
    rot *= np.where(signs == 0, 1.0, signs)
    return mean.astype(np.float32), rot.astype(np.float32)


def to_frame(feats: np.ndarray, frame: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``feats`` (float32 ``(M, D)``) in a :func:`principal_frame`; float32, C-contiguous."""
    mean, rot = frame
    feats = _check_feats("feats", feats)
    if feats.shape[1] != rot.shape[0]:
        raise ValueError(f"feature length {feats.shape[1]} does not match the frame's {rot.shape[0]}")
    return np.ascontiguousarray((feats - mean) @ rot, dtype=np.float32)


def nearest_candidates(cell_feats: np.ndarray, tile_feats: np.ndarray, count: int,
                       slabs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` nearest tiles of every cell, nearest first (exact).

    Distances are squared Euclidean divided by the feature length (mean squared difference per
    feature value), summed feature by feature. The tiles are cut into slabs of their first feature, each
    sorted by the second; per cell, the slabs are visited outward from the cell, and in each only the tiles
    whose first two features keep them within the worst of the best ``count`` so far (a window of the slab)
    are finished, stopping early once past it. A neighbouring cell's candidates start the search, so that
    bound is tight at once. The result is the same for any number of slabs; it is fast when the first
    features carry most of the spread (see :func:`principal_frame`). Parallel over cells.

    Parameters
    ----------
    cell_feats : np.ndarray
        float32 array ``(M, D)``.
    tile_feats : np.ndarray
        float32 array ``(N, D)``, ``N >= 1``.
    count : int
        Candidates per cell; at most ``N`` are returned.
    slabs : int, optional
        Slabs of the first feature (default: one per TILES_PER_SLAB tiles).

    Returns
    -------
    (np.ndarray, np.ndarray)
        int32 tile indices ``(M, C)`` and float32 distances ``(M, C)``, ``C = min(count, N)``,
        sorted by distance, ties by index.
    """
    cells, tiles = check_pair(cell_feats, tile_feats)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    c = min(int(count), tiles.shape[0])
    out_idx = np.zeros((cells.shape[0], c), dtype=np.int32)
    out_d = np.zeros((cells.shape[0], c), dtype=np.float32)
    slab_count = -(-tiles.shape[0] // TILES_PER_SLAB) if slabs is None else slabs
    ordered, second, ids, rank, edges, low, high = slab_tiles(tiles, slab_count)
    _candidates_loop(cells, ordered, second, ids, rank, edges, low, high, CHUNK,
                     interleaved(-(-cells.shape[0] // CHUNK)), out_idx, out_d, _per_thread(tiles.shape[0], -1))
    out_d *= np.float32(1.0 / max(1, tiles.shape[1]))
    return out_idx, out_d
