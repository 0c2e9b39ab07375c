"""kernels.refine_assignment against NumPy references: brute-force optima, the rules, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

import kernels


def _instance(rng: np.random.Generator, rows: int, cols: int, n: int, dim: int = 6,
              count: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cells = (rng.random((rows * cols, dim)) * 10).astype(np.float32)
    tiles = (rng.random((n, dim)) * 10).astype(np.float32)
    idx, dist = kernels.nearest_candidates(cells, tiles, count or n)
    return cells, tiles, idx, dist


def _greedy(cells: np.ndarray, tiles: np.ndarray, idx: np.ndarray, dist: np.ndarray, grid: tuple[int, int],
            min_distance: int, max_uses: int, groups: np.ndarray | None = None) -> np.ndarray:
    order = np.lexsort((np.random.default_rng(0).permutation(len(cells)), dist[:, 0]))
    if groups is None:
        return kernels.assign_tiles(idx, dist, cells, tiles, grid, order, min_distance, max_uses)
    return kernels.assign_tiles(idx, dist, cells, tiles, grid, order, min_distance, max_uses, 0.0, 4, groups)


def _cost(cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """Reference distances: mean squared difference per feature, in float64."""
    return np.square(cells[:, None, :].astype(np.float64) - tiles[None, :, :]).mean(axis=-1)


def _total(cells: np.ndarray, tiles: np.ndarray, assignment: np.ndarray) -> float:
    return float(_cost(cells, tiles)[np.arange(len(cells)), assignment.ravel()].sum())


def _optimal(cells: np.ndarray, tiles: np.ndarray, cap: int) -> float:
    """Brute force: each tile copied ``cap`` times, then an exact assignment (scipy)."""
    cost = _cost(cells, tiles)
    rows, cols = linear_sum_assignment(np.repeat(cost, cap, axis=1))
    return float(cost[rows, cols // cap].sum())


def _check_rules(assignment: np.ndarray, groups: np.ndarray, min_distance: int, max_uses: int) -> None:
    """NumPy reference of the rules, per group: the cap, and no group twice within the Chebyshev radius."""
    g = groups[assignment]
    if max_uses:
        assert np.bincount(g.ravel()).max() <= max_uses
    rows, cols = g.shape
    for r in range(rows):
        for c in range(cols):
            window = g[max(0, r - min_distance) : r + min_distance + 1, max(0, c - min_distance) : c + min_distance + 1]
            assert np.count_nonzero(window == g[r, c]) == 1, f"group {g[r, c]} repeats near cell ({r}, {c})"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("rows", "cols", "n", "cap"), [(6, 7, 12, 4), (9, 5, 20, 3), (8, 8, 30, 3)])
def test_comes_near_the_brute_force_optimum_under_a_cap(seed: int, rows: int, cols: int, n: int, cap: int) -> None:
    """With no distance rule the auction (kernels/auction.py) is within its eps of the optimum of a cap-fold LAP:
    on these instances within 1 % (at most 0.02 % measured), never worse than the greedy, the cap kept."""
    rng = np.random.default_rng(seed)
    cells, tiles, idx, dist = _instance(rng, rows, cols, n)
    greedy = _greedy(cells, tiles, idx, dist, (rows, cols), 0, cap)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, np.arange(n, dtype=np.int32), 0, cap)
    optimum = _optimal(cells, tiles, cap)
    assert _total(cells, tiles, refined) <= _total(cells, tiles, greedy) + 1e-6
    assert _total(cells, tiles, refined) <= optimum * 1.01
    _check_rules(refined, np.arange(n), 0, cap)


def _crowded(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], int]:
    """A picture whose dark part (160 of 256 cells, alike) wants more of the same few tiles than the cap allows:
    the optimum reaches tiles far from those cells' nearest, as on W1 at 5 uses."""
    rng = np.random.default_rng(seed)
    tiles = (rng.random((60, 6)) * 10).astype(np.float32)
    cells = np.concatenate([rng.random((160, 6)) * 3, rng.random((96, 6)) * 10]).astype(np.float32)
    return cells, tiles, (16, 16), 5


@pytest.mark.parametrize("seed", range(4))
def test_a_binding_cap_is_solved_beyond_the_candidates(seed: int) -> None:
    """With 8 candidates a cell and the cap binding, the chains on that graph alone reach 3-13 % of the optimum's
    gain over the greedy; the auction, widening each cell's arcs as prices rise, 98-99 %."""
    cells, tiles, grid, cap = _crowded(seed)
    idx, dist = kernels.nearest_candidates(cells, tiles, 8)
    greedy = _greedy(cells, tiles, idx, dist, grid, 0, cap)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, np.arange(len(tiles), dtype=np.int32), 0, cap)
    _check_rules(refined, np.arange(len(tiles)), 0, cap)
    before, after, optimum = _total(cells, tiles, greedy), _total(cells, tiles, refined), _optimal(cells, tiles, cap)
    assert (before - after) / (before - optimum) >= 0.9


@pytest.mark.parametrize("seed", range(6))
def test_few_candidates_stay_within_a_bounded_gap(seed: int) -> None:
    """With few candidates the result is never worse than the greedy and within 5 % of the optimum."""
    rng = np.random.default_rng(seed)
    rows, cols, n, cap = 10, 10, 40, 3
    cells, tiles, idx, dist = _instance(rng, rows, cols, n, count=8)
    greedy = _greedy(cells, tiles, idx, dist, (rows, cols), 0, cap)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, np.arange(n, dtype=np.int32), 0, cap)
    total, optimum = _total(cells, tiles, refined), _optimal(cells, tiles, cap)
    assert total <= _total(cells, tiles, greedy) + 1e-6
    assert total <= optimum * 1.05
    _check_rules(refined, np.arange(n), 0, cap)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("min_distance", "cap"), [(1, 0), (2, 4), (1, 3)])
def test_rules_hold_per_group_and_the_sum_drops(seed: int, min_distance: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    rows, cols, n = 11, 9, 90
    cells, tiles, idx, dist = _instance(rng, rows, cols, n, count=24)
    groups = (np.arange(n) // 2).astype(np.int32)  # pairs of near-duplicates: the rules count per pair
    greedy = _greedy(cells, tiles, idx, dist, (rows, cols), min_distance, cap, groups)
    _check_rules(greedy, groups, min_distance, cap)  # the starting point keeps them (enough tiles)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, groups, min_distance, cap)
    _check_rules(refined, groups, min_distance, cap)
    assert _total(cells, tiles, refined) <= _total(cells, tiles, greedy) + 1e-6
    assert refined.dtype == np.int32 and refined.shape == (rows, cols)


def test_swaps_around_the_distance_rule_improve_it() -> None:
    """On a picture of few colours the distance rule binds; the blocker moves find a lower sum."""
    rng = np.random.default_rng(3)
    rows, cols, n = 16, 16, 120
    cells, tiles, idx, dist = _instance(rng, rows, cols, n, dim=3, count=24)
    cells = np.repeat(cells[: rows * cols // 4], 4, axis=0)  # neighbouring cells alike
    idx, dist = kernels.nearest_candidates(cells, tiles, 24)
    groups = np.arange(n, dtype=np.int32)
    greedy = _greedy(cells, tiles, idx, dist, (rows, cols), 2, 0)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, groups, 2, 0)
    _check_rules(refined, groups, 2, 0)
    assert _total(cells, tiles, refined) < _total(cells, tiles, greedy)


def test_deterministic() -> None:
    rng = np.random.default_rng(7)
    cells, tiles, idx, dist = _instance(rng, 12, 12, 60, count=16)
    groups = np.arange(60, dtype=np.int32)
    greedy = _greedy(cells, tiles, idx, dist, (12, 12), 1, 4)
    first = kernels.refine_assignment(greedy, idx, dist, cells, tiles, groups, 1, 4)
    again = kernels.refine_assignment(greedy.copy(), idx.copy(), dist.copy(), cells, tiles, groups, 1, 4)
    assert np.array_equal(first, again)
    assert np.array_equal(greedy, _greedy(cells, tiles, idx, dist, (12, 12), 1, 4))  # the input is not changed


def test_zero_rounds_give_the_input_back() -> None:
    rng = np.random.default_rng(1)
    cells, tiles, idx, dist = _instance(rng, 5, 5, 10, count=5)
    greedy = _greedy(cells, tiles, idx, dist, (5, 5), 1, 0)
    same = kernels.refine_assignment(greedy, idx, dist, cells, tiles, np.arange(10, dtype=np.int32), 1, 0, rounds=0)
    assert np.array_equal(same, greedy)


@pytest.mark.parametrize("bad", ["shape", "dtype", "groups", "negative"])
def test_arguments_are_checked(bad: str) -> None:
    rng = np.random.default_rng(0)
    cells, tiles, idx, dist = _instance(rng, 4, 4, 8, count=4)
    greedy = _greedy(cells, tiles, idx, dist, (4, 4), 0, 0)
    groups = np.arange(8, dtype=np.int32)
    args: list[object] = [greedy, idx, dist, cells, tiles, groups, 0, 2]
    if bad == "shape":
        args[0] = greedy[:3]
    elif bad == "dtype":
        args[2] = dist.astype(np.float64)
    elif bad == "groups":
        args[5] = groups[:5]
    else:
        args[6] = -1
    with pytest.raises(ValueError):
        kernels.refine_assignment(*args)  # type: ignore[arg-type]


def _spread_instance(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """12 x 12 cells of a few colours and 60 tiles in 40 groups: the assignment leaves many groups unused."""
    rng = np.random.default_rng(seed)
    cells = np.repeat((rng.random((9, 4)) * 10).astype(np.float32), 16, axis=0)
    tiles = (rng.random((60, 4)) * 10).astype(np.float32)
    idx, dist = kernels.nearest_candidates(cells, tiles, 16)
    groups = (np.arange(60) % 40).astype(np.int32)
    return cells, tiles, idx, dist, groups


@pytest.mark.parametrize("seed", range(4))
def test_use_all_places_every_group_and_keeps_the_distance_rule(seed: int) -> None:
    cells, tiles, idx, dist, groups = _spread_instance(seed)
    greedy = _greedy(cells, tiles, idx, dist, (12, 12), 1, 0, groups)
    refined = kernels.refine_assignment(greedy, idx, dist, cells, tiles, groups, 1, 0)
    assert np.unique(groups[refined]).size < 40  # the case the option is for
    covered = kernels.cover_groups(refined, cells, tiles, groups)
    assert np.unique(groups[covered]).size == 40
    _check_rules(covered, groups, 1, 0)
    again = kernels.cover_groups(refined, cells, tiles, groups)
    assert np.array_equal(covered, again)  # deterministic, and the input is not changed
    small = kernels.cover_groups(refined[:5, :6], cells[:30], tiles, groups)  # 30 cells < 40 groups
    assert np.array_equal(small, refined[:5, :6])


def test_flat_groups_may_repeat_side_by_side() -> None:
    """A group the rule does not space (a flat colour) fills neighbouring cells; the others keep their distance."""
    cells = np.zeros((36, 3), np.float32)  # a flat area
    tiles = np.array([[0, 0, 0], [0.5, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]] + [[4 + i, 0, 0] for i in range(30)],
                     np.float32)
    groups = np.arange(len(tiles), dtype=np.int32)
    idx, dist = kernels.nearest_candidates(cells, tiles, 24)
    spaced = np.ones(len(tiles), np.bool_)
    spaced[0] = False  # the nearest tile is a flat colour
    got = kernels.assign_tiles(idx, dist, cells, tiles, (6, 6), np.arange(36), 2, 0, 0.0, 4, groups, spaced)
    refined = kernels.refine_assignment(got, idx, dist, cells, tiles, groups, 2, 0, spaced=spaced)
    for out in (got, refined):
        assert np.all(out == 0)  # every cell its best tile, side by side
    spaced[0] = True
    ruled = kernels.assign_tiles(idx, dist, cells, tiles, (6, 6), np.arange(36), 2, 0, 0.0, 4, groups, spaced)
    _check_rules(ruled, groups, 2, 0)
