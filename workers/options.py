"""Mosaic options (grid, tile size, seed): parsing and checks against the configured limits."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from config import LimitSettings
from workers.errors import JobRejected, TooLarge

_GRID = re.compile(r"^\s*(\d{1,5})\s*(?:[xX×]\s*(\d{1,5}))?\s*$")


@dataclass(frozen=True)
class Options:
    """What the user asked for; ``rows == 0`` means: from the target's aspect ratio."""

    cols: int
    rows: int
    tile_px: int
    seed: int
    noop: bool = False
    """Skip the build and finish at once: only for measuring the queue (see queue.allow_noop)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def grid_for(self, width: int, height: int) -> tuple[int, int]:
        """(cols, rows) for a target of this size; rows follow the aspect ratio when not given."""
        if self.rows:
            return self.cols, self.rows
        return self.cols, max(1, round(self.cols * height / width))


def parse_grid(value: Any) -> tuple[int, int]:
    """``"48x32"`` → (48, 32); ``"40"`` or 40 → (40, 0)."""
    match = _GRID.match(str(value))
    if not match:
        raise JobRejected(f"grid must be COLSxROWS (e.g. 48x32) or one number of columns, not {str(value)[:40]!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def _int_option(raw: dict[str, Any], name: str, default: int) -> int:
    value = raw.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise JobRejected(f"{name} must be a whole number, not {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise JobRejected(f"{name} must be a whole number, not {str(value)[:40]!r}") from None


def parse_options(raw: dict[str, Any], limits: LimitSettings, default_grid: str, default_tile_px: int) -> Options:
    """Options from a request's fields; raises JobRejected/TooLarge with a message for the user."""
    cols, rows = parse_grid(raw.get("grid") or default_grid)
    tile_px = _int_option(raw, "tile_px", default_tile_px)
    seed = _int_option(raw, "seed", 0)
    options = Options(cols=cols, rows=rows, tile_px=tile_px, seed=seed)
    check_options(options, limits)
    return options


def check_options(options: Options, limits: LimitSettings) -> None:
    """Everything that can be checked before the target's size is known."""
    side = limits.max_cells_per_side
    if options.cols < 1 or options.rows < 0:
        raise JobRejected("the grid needs at least one column and one row")
    if options.cols > side or options.rows > side:
        raise TooLarge(f"grid {options.cols}x{options.rows or '?'} is over the limit of {side} cells per side")
    if not limits.tile_px_min <= options.tile_px <= limits.tile_px_max:
        raise JobRejected(f"tile_px must be between {limits.tile_px_min} and {limits.tile_px_max}")
    if not 0 <= options.seed < 2**32:
        raise JobRejected("seed must be between 0 and 4294967295")
    if options.rows:
        check_grid(options.cols, options.rows, options.tile_px, limits)


def check_grid(cols: int, rows: int, tile_px: int, limits: LimitSettings) -> None:
    """Limits on the final grid: cells per side, total cells, output pixels."""
    if max(cols, rows) > limits.max_cells_per_side:
        raise TooLarge(f"grid {cols}x{rows} is over the limit of {limits.max_cells_per_side} cells per side")
    if cols * rows > limits.max_cells:
        raise TooLarge(f"grid {cols}x{rows} has {cols * rows} cells, over the limit of {limits.max_cells}")
    pixels = cols * rows * tile_px * tile_px
    if pixels > limits.max_output_pixels:
        megapixels = math.ceil(pixels / 1e6)
        raise TooLarge(f"the mosaic would be {megapixels} megapixels, over the limit of "
                       f"{limits.max_output_pixels // 1_000_000}")
