"""Tests for the kernels package against plain NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    assign_tiles,
    blend_offsets,
    block_means,
    cell_features,
    nearest_candidates,
    render,
    tile_features,
    warm_up,
)
from tests.unit.kernel_refs import nearest_tiles, principal_axes, srgb_to_lab

H, W, ROWS, COLS, N, P, K = 37, 53, 5, 7, 13, 9, 3


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


# ---------------------------------------------------------------- NumPy references


def ref_lab(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    d = 6.0 / 29.0
    f = np.where(xyz > d**3, np.cbrt(xyz), xyz / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ref_block_means(img: np.ndarray, rows: int, cols: int) -> np.ndarray:
    h, w, c = img.shape
    out = np.empty((rows, cols, c))
    for i in range(rows):
        for j in range(cols):
            block = img[i * h // rows : (i + 1) * h // rows, j * w // cols : (j + 1) * w // cols]
            out[i, j] = block.astype(np.float64).mean(axis=(0, 1))
    return out


# ---------------------------------------------------------------- color


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 255, 0), (87.73, -86.18, 83.18)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
    ],
)
def test_srgb_to_lab_published_values(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    got = srgb_to_lab(np.array([rgb], dtype=np.uint8))
    assert got.dtype == np.float32 and got.shape == (1, 3)
    np.testing.assert_allclose(got[0], lab, atol=0.05)


def test_srgb_to_lab_matches_reference(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    got = srgb_to_lab(img)
    assert got.dtype == np.float32 and got.shape == img.shape
    np.testing.assert_allclose(got, ref_lab(img), atol=1e-3)


def test_srgb_to_lab_all_colours_and_any_leading_dims() -> None:
    v = np.arange(256, dtype=np.uint8)
    img = np.stack(np.meshgrid(v, v[::5], v[::17], indexing="ij"), axis=-1)  # 4 dims
    np.testing.assert_allclose(srgb_to_lab(img), ref_lab(img), atol=1e-3)
    assert srgb_to_lab(np.zeros(3, dtype=np.uint8)).shape == (3,)
    assert srgb_to_lab(np.zeros((0, 3), dtype=np.uint8)).shape == (0, 3)


def test_srgb_to_lab_non_contiguous(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)[::2, ::-3]
    np.testing.assert_allclose(srgb_to_lab(img), ref_lab(img), atol=1e-3)


@pytest.mark.parametrize("bad", [np.zeros((4, 3), dtype=np.float32), np.zeros((4, 4), dtype=np.uint8)])
def test_srgb_to_lab_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        srgb_to_lab(bad)


# ---------------------------------------------------------------- features


def test_block_means_matches_reference(rng: np.random.Generator) -> None:
    img = rng.random((H, W, 4), dtype=np.float32) * 100
    got = block_means(img, ROWS, COLS)
    assert got.dtype == np.float32 and got.shape == (ROWS, COLS, 4)
    np.testing.assert_allclose(got, ref_block_means(img, ROWS, COLS), rtol=1e-5, atol=1e-4)


def test_block_means_of_uint8_match_those_of_float32(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    np.testing.assert_array_equal(block_means(img, ROWS, COLS), block_means(img.astype(np.float32), ROWS, COLS))


def test_block_means_one_pixel_blocks(rng: np.random.Generator) -> None:
    img = rng.random((ROWS, COLS, 3), dtype=np.float32)
    np.testing.assert_array_equal(block_means(img, ROWS, COLS), img)


@pytest.mark.parametrize(
    ("img", "rows", "cols"),
    [
        (np.zeros((H, W, 3), dtype=np.float64), ROWS, COLS),
        (np.zeros((H, W, 3), dtype=np.int16), ROWS, COLS),
        (np.zeros((H, W), dtype=np.float32), ROWS, COLS),
        (np.zeros((4, W, 3), dtype=np.float32), ROWS, COLS),
        (np.zeros((H, W, 3), dtype=np.float32), 0, COLS),
    ],
)
def test_block_means_rejects_bad_input(img: np.ndarray, rows: int, cols: int) -> None:
    with pytest.raises(ValueError):
        block_means(img, rows, cols)


def test_tile_features_matches_reference(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    got = tile_features(tiles, K)
    assert got.dtype == np.float32 and got.shape == (N, K * K * 3)
    ref = np.stack([ref_lab(ref_block_means(t, K, K)).reshape(-1) for t in tiles])
    np.testing.assert_allclose(got, ref, atol=1e-3)


def test_tile_features_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        tile_features(np.zeros((N, P, P, 3), dtype=np.float32), K)
    with pytest.raises(ValueError):
        tile_features(np.zeros((N, 2, 2, 3), dtype=np.uint8), K)


def test_cell_features_matches_reference(rng: np.random.Generator) -> None:
    target = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    got = cell_features(target, ROWS, COLS, K)
    assert got.dtype == np.float32 and got.shape == (ROWS * COLS, K * K * 3)
    ref = np.empty((ROWS * COLS, K * K * 3))
    for r in range(ROWS):
        for c in range(COLS):
            feats = np.empty((K, K, 3))
            for i in range(K):
                for j in range(K):
                    y0, y1 = (r * K + i) * H // (ROWS * K), (r * K + i + 1) * H // (ROWS * K)
                    x0, x1 = (c * K + j) * W // (COLS * K), (c * K + j + 1) * W // (COLS * K)
                    feats[i, j] = ref_lab(target[y0:y1, x0:x1].astype(np.float64).mean(axis=(0, 1)))
            ref[r * COLS + c] = feats.reshape(-1)
    np.testing.assert_allclose(got, ref, atol=1e-3)


def test_cell_features_line_up_with_tile_features(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(ROWS * COLS, P, P, 3), dtype=np.uint8)
    # Lay the tiles out as a target image: each cell is then exactly one tile.
    target = tiles.reshape(ROWS, COLS, P, P, 3).transpose(0, 2, 1, 3, 4).reshape(ROWS * P, COLS * P, 3)
    np.testing.assert_allclose(cell_features(target, ROWS, COLS, K), tile_features(tiles, K), atol=1e-4)


def test_cell_features_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        cell_features(np.zeros((H, W, 3), dtype=np.int16), ROWS, COLS, K)
    with pytest.raises(ValueError):
        cell_features(np.zeros((ROWS * K - 1, W, 3), dtype=np.uint8), ROWS, COLS, K)


# ---------------------------------------------------------------- match


def test_nearest_tiles_matches_reference(rng: np.random.Generator) -> None:
    cells = rng.random((41, 27), dtype=np.float32)
    tiles = rng.random((N, 27), dtype=np.float32)
    got = nearest_tiles(cells, tiles)
    assert got.dtype == np.int32 and got.shape == (41,)
    d = ((cells[:, None, :].astype(np.float64) - tiles[None, :, :]) ** 2).sum(axis=-1)
    np.testing.assert_array_equal(got, d.argmin(axis=1))


def test_nearest_tiles_ties_pick_lowest_index() -> None:
    tiles = np.array([[1, 0], [0, 1], [1, 0], [-1, 0], [0, 1]], dtype=np.float32)
    cells = np.array([[0, 0], [1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(nearest_tiles(cells, tiles), [0, 0, 1, 0])
    np.testing.assert_array_equal(nearest_tiles(cells, np.zeros((3, 2), dtype=np.float32)), [0, 0, 0, 0])


def test_nearest_tiles_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        nearest_tiles(np.zeros((3, 4), dtype=np.float64), np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        nearest_tiles(np.zeros((3, 4), dtype=np.float32), np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError):
        nearest_tiles(np.zeros((3, 4), dtype=np.float32), np.zeros((0, 4), dtype=np.float32))


# ---------------------------------------------------------------- render


def ref_render(tiles: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    rows, cols = assignment.shape
    p = tiles.shape[1]
    out = np.zeros((rows * p, cols * p, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            out[r * p : (r + 1) * p, c * p : (c + 1) * p] = tiles[assignment[r, c]]
    return out


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_render_matches_reference(rng: np.random.Generator, dtype: type) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment: np.ndarray = rng.integers(0, N, size=(ROWS, COLS)).astype(dtype)
    got = render(tiles, assignment)
    assert got.dtype == np.uint8 and got.shape == (ROWS * P, COLS * P, 3)
    np.testing.assert_array_equal(got, ref_render(tiles, assignment))


def test_render_writes_into_out(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment = rng.integers(0, N, size=(ROWS, COLS))
    out = np.zeros((ROWS * P, COLS * P, 3), dtype=np.uint8)
    assert render(tiles, assignment, out=out) is out
    np.testing.assert_array_equal(out, ref_render(tiles, assignment))


def test_render_rejects_bad_input(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    ok = np.zeros((ROWS, COLS), dtype=np.int32)
    for bad_value in (N, -1):
        bad = ok.copy()
        bad[2, 3] = bad_value
        with pytest.raises(ValueError, match=str(bad_value)):
            render(tiles, bad)
    with pytest.raises(ValueError):
        render(tiles, ok.astype(np.float32))
    with pytest.raises(ValueError):
        render(tiles.astype(np.int16), ok)
    with pytest.raises(ValueError):
        render(tiles, ok, out=np.zeros((ROWS * P, COLS * P + 1, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        render(tiles, ok, out=np.zeros((ROWS * P, COLS * P, 3), dtype=np.float32))


# ---------------------------------------------------------------- candidates and assignment


def ref_distances(cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    return ((cells[:, None, :].astype(np.float64) - tiles[None, :, :]) ** 2).mean(axis=-1)


@pytest.mark.parametrize(("m", "n", "d", "count"), [(41, 13, 27, 5), (7, 3, 5, 9), (33, 50, 48, 1), (1, 1, 1, 1)])
def test_nearest_candidates_matches_reference(rng: np.random.Generator, m: int, n: int, d: int, count: int) -> None:
    cells = rng.random((m, d), dtype=np.float32) * 50
    tiles = rng.random((n, d), dtype=np.float32) * 50
    idx, dist = nearest_candidates(cells, tiles, count)
    c = min(count, n)
    assert idx.shape == dist.shape == (m, c) and idx.dtype == np.int32 and dist.dtype == np.float32
    ref = ref_distances(cells, tiles)
    order = np.argsort(ref, axis=1, kind="stable")[:, :c]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, order, axis=1), rtol=1e-4, atol=1e-3)


def test_nearest_candidates_ties_keep_lower_index() -> None:
    tiles = np.array([[1, 0], [0, 1], [1, 0], [-1, 0]], dtype=np.float32)
    idx, _ = nearest_candidates(np.array([[1, 0], [0, 0]], dtype=np.float32), tiles, 3)
    np.testing.assert_array_equal(idx, [[0, 2, 1], [0, 1, 2]])


def test_nearest_candidates_rejects_bad_input() -> None:
    ok = np.zeros((3, 4), dtype=np.float32)
    for bad in ((ok.astype(np.float64), ok, 1), (ok, np.zeros((2, 5), np.float32), 1), (ok, ok[:0], 1), (ok, ok, 0)):
        with pytest.raises(ValueError):
            nearest_candidates(*bad)


def clustered(rng: np.random.Generator, m: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells and tiles with a dominant direction and runs of similar cells, as photos give: the pruning bites."""
    scale = np.geomspace(40, 1, d).astype(np.float32)
    tiles = (rng.standard_normal((n, d)) * scale).astype(np.float32)
    base = (rng.standard_normal((m // 5 + 1, d)) * scale).repeat(5, axis=0)[:m]
    cells = (base + rng.standard_normal((m, d)) * scale * 0.2).astype(np.float32)
    return cells, tiles


@pytest.mark.parametrize("slabs", [1, 2, 5, 40, 157, 999])
@pytest.mark.parametrize("rotate", [False, True])
def test_nearest_candidates_exact_for_any_slabs(rng: np.random.Generator, slabs: int, rotate: bool) -> None:
    # More cells than one run of seeded cells (64), so seeds, windows and run starts are all exercised.
    cells, tiles = clustered(rng, 203, 157, 12)
    if rotate:
        cells, tiles = principal_axes(cells, tiles)
    idx, dist = nearest_candidates(cells, tiles, 7, slabs)
    ref = ref_distances(cells, tiles)
    order = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, order, axis=1), rtol=1e-4, atol=1e-3)
    # The same candidates whatever the slabs (the distances summed the same way, so equal to the bit).
    idx1, dist1 = nearest_candidates(cells, tiles, 7, 1)
    np.testing.assert_array_equal(idx, idx1)
    np.testing.assert_array_equal(dist, dist1)


def test_nearest_candidates_ties_across_slabs_keep_lower_index() -> None:
    # Equal tiles land in different slabs and at both ends of a slab's window.
    tiles = np.array([[0, 1], [2, 0], [0, -1], [0, 1], [-2, 0], [2, 0], [5, 5]], dtype=np.float32)
    cells = np.zeros((70, 2), dtype=np.float32)
    for slabs in (1, 2, 3, 7):
        idx, dist = nearest_candidates(cells, tiles, 5, slabs)
        np.testing.assert_array_equal(idx, np.tile([0, 2, 3, 1, 4], (70, 1)))


def test_principal_axes_keep_distances_and_order_spread(rng: np.random.Generator) -> None:
    cells, tiles = clustered(rng, 31, 77, 9)
    tiles = tiles @ np.linalg.qr(rng.standard_normal((9, 9)))[0].astype(np.float32)  # spread over every axis
    rc, rt = principal_axes(cells, tiles)
    assert rc.dtype == rt.dtype == np.float32 and rc.shape == cells.shape and rt.shape == tiles.shape
    np.testing.assert_allclose(ref_distances(rc, rt), ref_distances(cells, tiles), rtol=1e-4, atol=1e-2)
    spread = rt.var(axis=0)
    assert np.all(np.diff(spread) <= 1e-3 * spread[0]) and abs(rt.mean(axis=0)).max() < 1e-3 * spread[0] ** 0.5
    with pytest.raises(ValueError):
        principal_axes(cells, tiles[:, :4])


def ref_assign(cells: np.ndarray, tiles: np.ndarray, rows: int, cols: int, order: np.ndarray, min_distance: int,
               max_uses: int, penalty: float, groups: np.ndarray | None = None) -> np.ndarray:
    """Plain greedy: each cell in order takes the cheapest tile the rules allow (full scan, no candidates); with
    ``groups``, the rules count groups of tiles."""
    dist = ref_distances(cells, tiles)
    group = np.arange(len(tiles)) if groups is None else groups
    out = np.full((rows, cols), -1)
    uses = np.zeros(int(group.max()) + 1, dtype=int)
    for m in order:
        r, c = divmod(int(m), cols)
        near = out[max(0, r - min_distance) : r + min_distance + 1, max(0, c - min_distance) : c + min_distance + 1]
        blocked = set(group[near[near >= 0]].tolist()) if min_distance else set()
        cost = dist[m] + penalty * uses[group]
        allowed = [t for t in range(len(tiles))
                   if group[t] not in blocked and not (max_uses and uses[group[t]] >= max_uses)]
        best = min(allowed or range(len(tiles)), key=lambda t: (cost[t], t))
        out[r, c] = best
        uses[group[best]] += 1
    return out


def uses_closer_than(assignment: np.ndarray, distance: int) -> list[tuple[int, int, int, int]]:
    """Pairs of cells closer than ``distance`` (Chebyshev) holding the same tile."""
    rows, cols = assignment.shape
    bad = []
    for r in range(rows):
        for c in range(cols):
            for dr in range(0, distance + 1):
                for dc in range(-distance, distance + 1):
                    rr, cc = r + dr, c + dc
                    inside = 0 <= rr < rows and 0 <= cc < cols
                    if (dr, dc) > (0, 0) and inside and assignment[rr, cc] == assignment[r, c]:
                        bad.append((r, c, rr, cc))
    return bad


RULES = [(0, 0, 0.0), (1, 0, 0.0), (2, 0, 0.0), (0, 3, 0.0), (1, 4, 0.0), (0, 0, 5.0), (2, 0, 2.0)]


@pytest.mark.parametrize(("min_distance", "max_uses", "penalty"), RULES)
@pytest.mark.parametrize("count", [1, 4, 60])
@pytest.mark.parametrize("data", ["uniform", "clustered"])
def test_assign_tiles_matches_reference(rng: np.random.Generator, min_distance: int, max_uses: int, penalty: float,
                                        count: int, data: str) -> None:
    # Few candidates: many cells fall back to the (pruned) full scan, which must pick what the plain scan picks.
    rows, cols, n, d = 9, 7, 60, 12
    if data == "uniform":
        cells = rng.random((rows * cols, d), dtype=np.float32) * 40
        tiles = rng.random((n, d), dtype=np.float32) * 40
    else:
        cells, tiles = principal_axes(*clustered(rng, rows * cols, n, d))
    order = rng.permutation(rows * cols)
    if penalty:  # with a penalty the choice is made among the candidates only: give it all of them
        count = n
    idx, dist = nearest_candidates(cells, tiles, count)
    got = assign_tiles(idx, dist, cells, tiles, (rows, cols), order, min_distance, max_uses, penalty)
    for bound_dims in (0, 2, d):  # the bound only prunes: same result
        again = assign_tiles(idx, dist, cells, tiles, (rows, cols), order, min_distance, max_uses, penalty, bound_dims)
        np.testing.assert_array_equal(again, got)
    assert got.dtype == np.int32 and got.shape == (rows, cols)
    np.testing.assert_array_equal(got, ref_assign(cells, tiles, rows, cols, order, min_distance, max_uses, penalty))


@pytest.mark.parametrize(("min_distance", "max_uses", "penalty"), RULES)
@pytest.mark.parametrize("count", [1, 4, 60])
def test_assign_tiles_with_groups_matches_reference(rng: np.random.Generator, min_distance: int, max_uses: int,
                                                    penalty: float, count: int) -> None:
    # Groups of up to 4 alike tiles (near-duplicates): the rules count groups; the kernel picks what plain greedy does.
    rows, cols, n, d = 9, 7, 60, 12
    base = rng.random((n // 2, d), dtype=np.float32) * 40
    groups = np.sort(rng.integers(0, n // 2, n)).astype(np.int32)
    groups = np.unique(groups, return_inverse=True)[1].astype(np.int32)
    tiles = (base[groups] + rng.random((n, d), dtype=np.float32)).astype(np.float32)
    cells = rng.random((rows * cols, d), dtype=np.float32) * 40
    order = rng.permutation(rows * cols)
    if penalty:
        count = n
    idx, dist = nearest_candidates(cells, tiles, count)
    got = assign_tiles(idx, dist, cells, tiles, (rows, cols), order, min_distance, max_uses, penalty, 4, groups)
    ref = ref_assign(cells, tiles, rows, cols, order, min_distance, max_uses, penalty, groups)
    np.testing.assert_array_equal(got, ref)
    pictures = int(groups.max()) + 1
    if max_uses and pictures * max_uses >= 2 * rows * cols:  # the cap per group, on the output (where it holds)
        assert np.bincount(groups[got.ravel()]).max() <= max_uses
    if min_distance and pictures >= 2 * (2 * min_distance + 1) ** 2:  # the distance rule per group
        assert uses_closer_than(groups[got], min_distance) == []


def test_assign_tiles_per_file_groups_are_the_default(rng: np.random.Generator) -> None:
    cells, tiles = rng.random((30, 6), dtype=np.float32), rng.random((12, 6), dtype=np.float32)
    idx, dist = nearest_candidates(cells, tiles, 3)
    plain = assign_tiles(idx, dist, cells, tiles, (5, 6), np.arange(30), 1, 4)
    np.testing.assert_array_equal(plain, assign_tiles(idx, dist, cells, tiles, (5, 6), np.arange(30), 1, 4,
                                                      groups=np.arange(12, dtype=np.int32)))
    for bad in (np.arange(11, dtype=np.int32), np.arange(12), np.full(12, -1, np.int32)):
        with pytest.raises(ValueError, match="groups"):
            assign_tiles(idx, dist, cells, tiles, (5, 6), np.arange(30), 1, 4, groups=bad)


@pytest.mark.parametrize("min_distance", [1, 2, 5])
def test_assign_tiles_keeps_min_distance(rng: np.random.Generator, min_distance: int) -> None:
    # A flat target: every cell wants the same tile, the hardest case for the rule.
    rows, cols, n = 23, 31, (2 * min_distance + 1) ** 2 + 3
    cells = np.full((rows * cols, 3), 50, dtype=np.float32)
    tiles = rng.random((n, 3), dtype=np.float32) * 100
    idx, dist = nearest_candidates(cells, tiles, 4)
    got = assign_tiles(idx, dist, cells, tiles, (rows, cols), rng.permutation(rows * cols), min_distance)
    assert uses_closer_than(got, min_distance) == []


def test_assign_tiles_max_uses_cap(rng: np.random.Generator) -> None:
    cells = np.zeros((40, 3), dtype=np.float32)
    tiles = rng.random((10, 3), dtype=np.float32)
    idx, dist = nearest_candidates(cells, tiles, 2)
    got = assign_tiles(idx, dist, cells, tiles, (5, 8), np.arange(40), 0, 4)
    assert np.bincount(got.ravel(), minlength=10).tolist() == [4] * 10


def test_assign_tiles_relaxes_rules_only_without_choice() -> None:
    cells = np.zeros((6, 3), dtype=np.float32)
    tiles = np.array([[0, 0, 0], [9, 9, 9]], dtype=np.float32)
    idx, dist = nearest_candidates(cells, tiles, 2)
    got = assign_tiles(idx, dist, cells, tiles, (1, 6), np.arange(6), 3, 0)
    assert got.min() >= 0 and set(got.ravel().tolist()) == {0, 1}


def test_assign_tiles_rejects_bad_input(rng: np.random.Generator) -> None:
    cells = rng.random((6, 3), dtype=np.float32)
    tiles = rng.random((4, 3), dtype=np.float32)
    idx, dist = nearest_candidates(cells, tiles, 2)
    with pytest.raises(ValueError, match="grid"):
        assign_tiles(idx, dist, cells, tiles, (2, 2), np.arange(6))
    with pytest.raises(ValueError, match="permutation"):
        assign_tiles(idx, dist, cells, tiles, (2, 3), np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="negative"):
        assign_tiles(idx, dist, cells, tiles, (2, 3), np.arange(6), -1)
    with pytest.raises(ValueError):
        assign_tiles(idx + 4, dist, cells, tiles, (2, 3), np.arange(6))
    with pytest.raises(ValueError):
        assign_tiles(idx.astype(np.int64), dist, cells, tiles, (2, 3), np.arange(6))


# ---------------------------------------------------------------- colour correction


def test_blend_offsets_and_render_with_offsets(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment = rng.integers(0, N, size=(ROWS, COLS))
    cell_rgb = rng.random((ROWS, COLS, 3), dtype=np.float32) * 255
    tile_rgb = tiles.reshape(N, -1, 3).mean(axis=1).astype(np.float32)
    offsets = blend_offsets(cell_rgb, tile_rgb, assignment, 0.3)
    np.testing.assert_allclose(offsets, 0.3 * (cell_rgb - tile_rgb[assignment]), rtol=1e-5, atol=1e-4)
    got = render(tiles, assignment, offsets=offsets)
    shift = np.repeat(np.repeat(offsets, P, axis=0), P, axis=1)
    ref = np.clip(np.floor(ref_render(tiles, assignment).astype(np.float64) + shift + 0.5), 0, 255)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float32 rounding at .5 boundaries
    np.testing.assert_array_equal(render(tiles, assignment, offsets=np.zeros_like(offsets)),
                                  ref_render(tiles, assignment))


def ref_field(offsets: np.ndarray, p: int) -> np.ndarray:
    """Plain NumPy: a (rows, cols, g, g, 3) field to (rows*p, cols*p, 3) per-pixel shifts, interpolated
    bilinearly between the centres of each tile's g x g parts, clamped at the tile's edges."""
    rows, cols, g = offsets.shape[:3]
    out = np.zeros((rows * p, cols * p, 3))
    centres = (np.arange(g) + 0.5) * p / g - 0.5
    for r in range(rows):
        for c in range(cols):
            for y in range(p):
                for x in range(p):
                    out[r * p + y, c * p + x] = [
                        _interp2(np.clip(y, centres[0], centres[-1]), np.clip(x, centres[0], centres[-1]),
                                 centres, offsets[r, c, :, :, ch].astype(np.float64)) for ch in range(3)]
    return out


def _interp2(y: float, x: float, centres: np.ndarray, grid: np.ndarray) -> float:
    rows = [np.interp(x, centres, grid[i]) for i in range(grid.shape[0])]
    return float(np.interp(y, centres, rows))


@pytest.mark.parametrize(("g", "p"), [(1, 5), (2, 7), (2, 8), (3, 7)])
def test_render_with_an_offset_field_matches_numpy(rng: np.random.Generator, g: int, p: int) -> None:
    rows, cols, n = 3, 5, 4
    tiles = rng.integers(0, 256, size=(n, p, p, 3), dtype=np.uint8)
    assignment = rng.integers(0, n, size=(rows, cols))
    offsets = (rng.random((rows, cols, g, g, 3), dtype=np.float32) - 0.5) * 200
    got = render(tiles, assignment, offsets=offsets)
    ref = np.clip(np.floor(ref_render(tiles, assignment).astype(np.float64) + ref_field(offsets, p) + 0.5), 0, 255)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float32 rounding at .5 boundaries


def test_a_flat_field_equals_a_flat_shift(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment = rng.integers(0, N, size=(ROWS, COLS))
    shift = (rng.random((ROWS, COLS, 3), dtype=np.float32) - 0.5) * 100
    field = np.repeat(np.repeat(shift[:, :, None, None, :], 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(render(tiles, assignment, offsets=field), render(tiles, assignment, offsets=shift))


def test_blend_offsets_on_a_grid_move_each_part_toward_its_part_of_the_cell() -> None:
    tiles = np.full((1, 8, 8, 3), 100, dtype=np.uint8)
    assignment = np.zeros((1, 1), dtype=np.int32)
    cell = np.zeros((1, 1, 2, 2, 3), dtype=np.float32)
    cell[0, 0, :, 0], cell[0, 0, :, 1] = 40.0, 200.0  # dark left half, bright right half
    tile_rgb = np.full((1, 2, 2, 3), 100.0, dtype=np.float32)
    offsets = blend_offsets(cell, tile_rgb, assignment, 1.0)
    assert offsets.shape == (1, 1, 2, 2, 3)
    out = render(tiles, assignment, offsets=offsets).astype(int)
    assert out[:, :2].max() == 40 and out[:, -2:].min() == 200  # beyond the part centres: clamped, not overshot
    assert (np.diff(out[0, :, 0]) >= 0).all()  # a smooth ramp in between
    with pytest.raises(ValueError):
        blend_offsets(cell, np.zeros((1, 3), np.float32), assignment, 0.5)
    with pytest.raises(ValueError):
        render(tiles, assignment, offsets=np.zeros((1, 1, 2, 3, 3), np.float32))


def test_full_blend_moves_tile_mean_to_cell_colour() -> None:
    tiles = np.full((1, 4, 4, 3), 100, dtype=np.uint8)
    tiles[0, 0, 0] = 120
    assignment = np.zeros((1, 1), dtype=np.int32)
    cell = np.array([[[160.0, 90.0, 40.0]]], dtype=np.float32)
    out = render(tiles, assignment, offsets=blend_offsets(cell, tiles.reshape(1, -1, 3).mean(axis=1), assignment, 1.0))
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), cell[0, 0], atol=0.6)
    assert out[0, 0, 0] - out[1, 1, 0] == 20  # texture kept


def test_blend_and_offsets_reject_bad_input(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment = np.zeros((ROWS, COLS), dtype=np.int32)
    with pytest.raises(ValueError):
        blend_offsets(np.zeros((ROWS, COLS, 3), np.float32), np.zeros((N, 3), np.float32), assignment, 1.5)
    with pytest.raises(ValueError):
        blend_offsets(np.zeros((ROWS, 3), np.float32), np.zeros((N, 3), np.float32), assignment, 0.5)
    with pytest.raises(ValueError):
        render(tiles, assignment, offsets=np.zeros((ROWS, COLS, 3), np.float64))


@pytest.mark.parametrize("g", [0, 1, 2])
def test_render_into_an_rgbx_canvas_leaves_the_fourth_byte(rng: np.random.Generator, g: int) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    assignment = rng.integers(0, N, size=(ROWS, COLS))
    offsets = None if g == 0 else (rng.random((ROWS, COLS, g, g, 3), dtype=np.float32) - 0.5) * 100
    canvas = np.full((ROWS * P, COLS * P, 4), 7, dtype=np.uint8)
    assert render(tiles, assignment, out=canvas, offsets=offsets) is canvas
    np.testing.assert_array_equal(canvas[:, :, :3], render(tiles, assignment, offsets=offsets))
    assert (canvas[:, :, 3] == 7).all()


def test_render_refuses_a_strided_out(rng: np.random.Generator) -> None:
    tiles = rng.integers(0, 256, size=(N, P, P, 3), dtype=np.uint8)
    canvas = np.zeros((ROWS * P, COLS * P, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="C-contiguous"):
        render(tiles, np.zeros((ROWS, COLS), np.int64), out=canvas[:, :, :3])


# ---------------------------------------------------------------- package


def test_warm_up_runs() -> None:
    warm_up()
