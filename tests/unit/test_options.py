"""Mosaic options: grid parsing, option parsing and the limit checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import config
from config import LimitSettings
from workers.protocol.errors import JobRejected, TooLarge
from workers.protocol.options import (
    DEFAULT,
    KEEP_MIN,
    Options,
    check_grid,
    check_job,
    default_max_uses,
    fitting_distance,
    parse_grid,
    parse_options,
)
from workers.protocol.package import JobPackage


def checked(raw: dict[str, Any], limits: LimitSettings, grid: str, tile_px: int) -> Options:
    """Parse as the web tier does, then check as web and worker both do."""
    options = parse_options(raw, grid, tile_px)
    check_job(options, limits)
    return options


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
    assert checked({}, limits, "40", 32) == Options(cols=40, rows=0, tile_px=32, seed=0)
    assert checked({"grid": "", "tile_px": "", "seed": None}, limits, "8x6", 16) == Options(8, 6, 16, 0)


def test_parse_options_given(limits: LimitSettings) -> None:
    raw = {"grid": "20x10", "tile_px": " 24 ", "seed": "99"}
    assert checked(raw, limits, "40", 32) == Options(20, 10, 24, 99)


@pytest.mark.parametrize("tile_px", ["big", "12.5", True, 3, 129])
def test_parse_options_bad_tile_px(limits: LimitSettings, tile_px: object) -> None:
    with pytest.raises(JobRejected, match="tile_px"):
        checked({"tile_px": tile_px}, limits, "40", 32)


@pytest.mark.parametrize(("seed", "ok"), [(0, True), (2**32 - 1, True), (-1, False), (2**32, False)])
def test_parse_options_seed_range(limits: LimitSettings, seed: int, ok: bool) -> None:
    if ok:
        assert checked({"seed": str(seed)}, limits, "40", 32).seed == seed
    else:
        with pytest.raises(JobRejected, match="seed"):
            checked({"seed": str(seed)}, limits, "40", 32)


def test_parse_options_zero_columns(limits: LimitSettings) -> None:
    with pytest.raises(JobRejected, match="at least one column"):
        checked({"grid": "0"}, limits, "40", 32)


def test_parse_options_over_side_is_too_large(limits: LimitSettings) -> None:
    with pytest.raises(TooLarge):
        checked({"grid": "1x99999"}, limits, "40", 32)


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


def test_check_job_defers_grid_when_rows_unknown(limits: LimitSettings) -> None:
    check_job(Options(cols=256, rows=0, tile_px=128, seed=0), limits)
    with pytest.raises(TooLarge):
        check_job(Options(cols=256, rows=256, tile_px=128, seed=0), limits)


@pytest.mark.parametrize(
    ("cols", "rows", "size", "expected"),
    [(40, 0, (400, 300), (40, 30)), (10, 0, (100, 400), (10, 40)), (10, 0, (10000, 10), (10, 1)),
     (40, 7, (400, 300), (40, 7))],
)
def test_grid_for(cols: int, rows: int, size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert Options(cols, rows, 32, 0).grid_for(*size) == expected


def test_to_json() -> None:
    assert Options(1, 2, 3, 4).to_json() == {"cols": 1, "rows": 2, "tile_px": 3, "seed": 4, "noop": False,
                                             "blend": -1.0, "min_distance": -1, "max_uses": -1}


def test_parse_rules_default_to_the_workers_settings(limits: LimitSettings) -> None:
    options = checked({}, limits, "40", 32)
    assert (options.blend, options.min_distance, options.max_uses) == (DEFAULT, DEFAULT, DEFAULT)
    mosaic = config.load(env={}).mosaic
    rules = options.rules(mosaic, 32, 10**6, 16384)
    assert (rules.blend, rules.min_distance, rules.max_uses) == (
        mosaic.blend / 100, mosaic.min_distance, default_max_uses(mosaic.max_share, 10**6, 16384))
    assert (rules.k, rules.lightness_weight, rules.penalty) == (
        min(mosaic.features_k, 32, mosaic.sample_px), mosaic.lightness_weight, mosaic.reuse_penalty)
    assert options.rules(mosaic, 32, 64, 100).min_distance == 0
    assert options.rules(mosaic, 32, 200, 100).min_distance == min(2, mosaic.min_distance)
    assert options.rules(mosaic, 1, 200, 100).k == 1  # never more samples than a tile has pixels


@pytest.mark.parametrize(("share", "tiles", "cells", "cap"), [
    (0.7, 10_000, 16_384, 115), (0.7, 1_000, 4_096, 29), (0.7, 10, 4_096, 820), (0.0, 10, 4_096, 0), (50, 3, 1, 1)])
def test_default_max_uses_is_a_share_of_the_cells_never_too_few(share: float, tiles: int, cells: int, cap: int) -> None:
    assert default_max_uses(share, tiles, cells) == cap


@pytest.mark.parametrize(("tiles", "distance"), [(0, 0), (71, 0), (72, 1), (199, 1), (200, 2), (968, 5)])
def test_fitting_distance(tiles: int, distance: int) -> None:
    assert fitting_distance(tiles) == distance


def test_parse_rules_given(limits: LimitSettings) -> None:
    options = checked({"blend": "25%", "min_distance": "3", "max_uses": 40}, limits, "40", 32)
    assert (options.blend, options.min_distance, options.max_uses) == (25.0, 3, 40)
    rules = options.rules(config.load(env={}).mosaic, 32, 10, 100)
    assert (rules.blend, rules.min_distance, rules.max_uses) == (0.25, 3, 40)


@pytest.mark.parametrize("raw", [{"blend": "101"}, {"blend": "-5"}, {"blend": "nan"}, {"blend": "much"},
                                 {"min_distance": "17"}, {"min_distance": "-2"}, {"max_uses": "-3"}, {"blend": True}])
def test_parse_rules_refused(limits: LimitSettings, raw: dict[str, object]) -> None:
    with pytest.raises(JobRejected):
        checked(raw, limits, "40", 32)


def test_rules_travel_in_the_package(limits: LimitSettings) -> None:
    options = checked({"blend": "12.5", "min_distance": "2", "max_uses": "7"}, limits, "40", 32)
    package = JobPackage.create("https://example.test/t.jpg", ["https://example.test/a.jpg"], options)
    assert JobPackage.decode(package.encode(), limits).options == options
    raw = package.encode().replace('"blend":12.5', '"blend":12')
    assert JobPackage.decode(raw, limits).options.blend == 12


def test_check_job_checks_tiles_and_the_final_grid_once_the_size_is_known(limits: LimitSettings) -> None:
    options = Options(cols=200, rows=0, tile_px=4, seed=0)
    assert check_job(options, limits, tiles=limits.max_tiles) is None
    assert check_job(options, limits, size=(400, 300)) == (200, 150)
    with pytest.raises(TooLarge, match="tiles is over the limit"):
        check_job(options, limits, tiles=limits.max_tiles + 1)
    with pytest.raises(TooLarge, match="over the limit"):
        check_job(options, limits, size=(100, 400))  # 200x800: over the cells per side


def test_parse_options_only_parses(limits: LimitSettings) -> None:
    assert parse_options({"tile_px": "3"}, "40", 32).tile_px == 3  # the limit is check_job's


def test_keep_is_whole_seconds_from_the_minimum_to_the_result_ttl(limits: LimitSettings) -> None:
    assert parse_options({}, "8", 8).keep == DEFAULT
    options = parse_options({"keep": "3600"}, "8", 8)
    assert options.keep == 3600
    check_job(options, limits, result_ttl=3600)  # the largest keep passes
    assert options.ttl(86400) == 3600 and options.ttl(600) == 600  # never past the worker's own result_ttl
    assert Options(8, 8, 8, 0).ttl(86400) == 86400
    for bad in (KEEP_MIN - 1, 0, 3601):
        with pytest.raises(JobRejected, match="keep must be between 60 and 3600 seconds"):
            check_job(replace(options, keep=bad), limits, result_ttl=3600)
    with pytest.raises(JobRejected, match="keep must be a whole number"):
        parse_options({"keep": "1h"}, "8", 8)


def test_keep_travels_in_the_package_only_when_asked() -> None:
    plain = JobPackage.create("http://e.test/t.png", [], Options(8, 8, 8, 0))
    assert "keep" not in plain.to_json()["options"]
    kept = JobPackage.create("http://e.test/t.png", [], Options(8, 8, 8, 0, keep=120))
    assert JobPackage.decode(kept.encode()).options.keep == 120
