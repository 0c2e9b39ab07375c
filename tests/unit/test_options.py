"""Mosaic options: grid parsing, option parsing and the limit checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

import config
from config import LimitSettings
from workers.errors import JobRejected, TooLarge
from workers.options import Options, check_grid, check_options, parse_grid, parse_options


@pytest.fixture(scope="module")
def limits() -> LimitSettings:
    return config.load(env={}).limits


@pytest.mark.parametrize(
    ("text", "expected"),
    [("48x32", (48, 32)), ("40", (40, 0)), (" 12 X 9 ", (12, 9)), ("7×5", (7, 5)), (40, (40, 0)),
     ("0", (0, 0)), ("1x99999", (1, 99999))],
)
def test_parse_grid(text: object, expected: tuple[int, int]) -> None:
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["abc", "10x", "x10", "10x10x10", "-5", "123456", "", "4.5"])
def test_parse_grid_refuses(text: str) -> None:
    with pytest.raises(JobRejected, match="grid must be"):
        parse_grid(text)


def test_parse_options_defaults(limits: LimitSettings) -> None:
    assert parse_options({}, limits, "40", 32) == Options(cols=40, rows=0, tile_px=32, seed=0)
    assert parse_options({"grid": "", "tile_px": "", "seed": None}, limits, "8x6", 16) == Options(8, 6, 16, 0)


def test_parse_options_given(limits: LimitSettings) -> None:
    raw = {"grid": "20x10", "tile_px": " 24 ", "seed": "99"}
    assert parse_options(raw, limits, "40", 32) == Options(20, 10, 24, 99)


@pytest.mark.parametrize("tile_px", ["big", "12.5", True, 3, 129])
def test_parse_options_bad_tile_px(limits: LimitSettings, tile_px: object) -> None:
    with pytest.raises(JobRejected, match="tile_px"):
        parse_options({"tile_px": tile_px}, limits, "40", 32)


@pytest.mark.parametrize(("seed", "ok"), [(0, True), (2**32 - 1, True), (-1, False), (2**32, False)])
def test_parse_options_seed_range(limits: LimitSettings, seed: int, ok: bool) -> None:
    if ok:
        assert parse_options({"seed": str(seed)}, limits, "40", 32).seed == seed
    else:
        with pytest.raises(JobRejected, match="seed"):
            parse_options({"seed": str(seed)}, limits, "40", 32)


def test_parse_options_zero_columns(limits: LimitSettings) -> None:
    with pytest.raises(JobRejected, match="at least one column"):
        parse_options({"grid": "0"}, limits, "40", 32)


def test_parse_options_over_side_is_too_large(limits: LimitSettings) -> None:
    with pytest.raises(TooLarge):
        parse_options({"grid": "1x99999"}, limits, "40", 32)


def test_check_grid_passes_at_the_limits(limits: LimitSettings) -> None:
    check_grid(200, 200, 32, limits)  # 40000 cells, 40.96 MP


def test_check_grid_cells_per_side(limits: LimitSettings) -> None:
    with pytest.raises(TooLarge, match="per side"):
        check_grid(limits.max_cells_per_side + 1, 1, 4, limits)
    with pytest.raises(TooLarge, match="per side"):
        check_grid(1, limits.max_cells_per_side + 1, 4, limits)


def test_check_grid_total_cells(limits: LimitSettings) -> None:
    with pytest.raises(TooLarge, match="40200 cells"):
        check_grid(201, 200, 4, limits)


def test_check_grid_output_pixels(limits: LimitSettings) -> None:
    small = replace(limits, max_output_pixels=1_000_000)
    check_grid(10, 10, 100, small)  # exactly 1 MP
    with pytest.raises(TooLarge, match="megapixels"):
        check_grid(10, 10, 101, small)


def test_check_options_defers_grid_when_rows_unknown(limits: LimitSettings) -> None:
    check_options(Options(cols=256, rows=0, tile_px=128, seed=0), limits)
    with pytest.raises(TooLarge):
        check_options(Options(cols=256, rows=256, tile_px=128, seed=0), limits)


@pytest.mark.parametrize(
    ("cols", "rows", "size", "expected"),
    [(40, 0, (400, 300), (40, 30)), (10, 0, (100, 400), (10, 40)), (10, 0, (10000, 10), (10, 1)),
     (40, 7, (400, 300), (40, 7))],
)
def test_grid_for(cols: int, rows: int, size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert Options(cols, rows, 32, 0).grid_for(*size) == expected


def test_to_json() -> None:
    assert Options(1, 2, 3, 4).to_json() == {"cols": 1, "rows": 2, "tile_px": 3, "seed": 4, "noop": False}
