"""Mosaic options (grid, tile size, seed, colour blend, repetition rules): parsing and checks against the limits."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from config import LimitSettings, MosaicSettings
from config.converters import boolean
from workers.protocol.errors import JobRejected, TooLarge

DEFAULT = -1
"""An option left at this value takes the worker's setting of the same name."""

MAX_DISTANCE = 16
"""Largest min_distance accepted: (2*16+1)^2 cells already ask for over a thousand distinct tiles."""

KEEP_MIN = 60
"""Fewest seconds a job may ask to be kept (option ``keep``, at most jobs.result_ttl): time to fetch its result."""

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
    blend: float = float(DEFAULT)
    """Colour correction toward each cell, 0-100 %; DEFAULT (-1): the worker's mosaic.blend."""
    min_distance: int = DEFAULT
    """Cells between two uses of one tile (0: off); DEFAULT: the worker's mosaic.min_distance."""
    max_uses: int = DEFAULT
    """Most uses of one tile (0: no cap); DEFAULT: mosaic.max_share of the cells."""
    keep_avatars: bool = False
    """Match on default avatars too (a blank silhouette, one picture under many names); else the worker's
    mosaic.keep_avatars."""
    use_all: bool = False
    """Use every picture at least once where the grid has room; else the worker's mosaic.use_all."""
    keep: int = DEFAULT
    """Seconds the finished job and its files are kept (KEEP_MIN..jobs.result_ttl); DEFAULT: jobs.result_ttl."""
    webhook: str = ""
    """An https URL told when the job ends (done, failed, canceled), by `tessera webhooks`; "" = none."""

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # asdict deep-copies: slower
        if not self.keep_avatars:
            del out["keep_avatars"]  # named only when asked: a worker from before it reads the package as ever
        if not self.use_all:
            del out["use_all"]  # likewise
        if self.keep == DEFAULT:
            del out["keep"]  # likewise
        if not self.webhook:
            del out["webhook"]  # likewise
        return out

    def ttl(self, result_ttl: int) -> int:
        """Seconds the finished job is kept: ``keep``, never past ``result_ttl`` (the worker's own setting)."""
        return result_ttl if self.keep == DEFAULT else min(self.keep, result_ttl)

    def grid_for(self, width: int, height: int) -> tuple[int, int]:
        """(cols, rows) for a target of this size; rows follow the aspect ratio when not given."""
        if self.rows:
            return self.cols, self.rows
        return self.cols, max(1, round(self.cols * height / width))

    def rules(self, mosaic: MosaicSettings, px: int, tiles: int, cells: int) -> Rules:
        """How cells get their tiles: these options with DEFAULT filled from the settings, for ``tiles`` tiles of
        ``px`` pixels and ``cells`` cells. ``tiles`` counts pictures: near-duplicates as one (pipeline/identity.py).

        A default min_distance shrinks for small libraries: one window of the rule never needs more
        than 1/TILES_PER_WINDOW of the ``tiles`` (else every window is filled with poor matches).
        A default max_uses is mosaic.max_share of the ``cells``, never under twice their even share."""
        blend = mosaic.blend if self.blend == DEFAULT else self.blend
        min_distance = self.min_distance
        if min_distance == DEFAULT:
            min_distance = min(mosaic.min_distance, fitting_distance(tiles))
        max_uses = self.max_uses
        if max_uses == DEFAULT:
            max_uses = default_max_uses(mosaic.max_share, tiles, cells)
        return Rules(k=max(1, min(mosaic.features_k, px, mosaic.sample_px)), lightness_weight=mosaic.lightness_weight,
                     blend=min(100.0, blend) / 100.0, min_distance=min(MAX_DISTANCE, min_distance), max_uses=max_uses,
                     penalty=mosaic.reuse_penalty, candidates=max(1, mosaic.candidates), seed=self.seed,
                     refine=mosaic.refine, use_all=self.use_all or mosaic.use_all, space_flat=mosaic.space_flat)


@dataclass(frozen=True)
class Rules:
    """How cells get their tiles: a job's options resolved against the worker's settings (Options.rules)."""

    k: int
    """Feature samples per tile side."""
    lightness_weight: float
    blend: float
    """Colour correction toward each cell, as a fraction 0-1."""
    min_distance: int
    max_uses: int
    """Most uses of one tile (0: no cap)."""
    penalty: float
    candidates: int
    seed: int
    refine: bool = True
    """Improve the greedy assignment on the candidate graph (kernels.refine_assignment; mosaic.refine)."""
    use_all: bool = False
    """Every picture group at least once where the grid has room (kernels.cover_groups; mosaic.use_all)."""
    space_flat: bool = False
    """The distance rule spaces out flat pictures too (mosaic.space_flat); off: only pictures with detail."""


def default_max_uses(share: float, tiles: int, cells: int) -> int:
    """Uses of one tile allowed by default: ``share`` % of the cells (0: no cap), at least 2 * cells / tiles."""
    if share <= 0:
        return 0
    return max(math.ceil(cells * share / 100), math.ceil(2 * cells / max(1, tiles)), 1)


TILES_PER_WINDOW = 8


def fitting_distance(tiles: int) -> int:
    """The largest d with (2d+1)^2 <= tiles / TILES_PER_WINDOW (0 when none)."""
    d = 0
    while (2 * d + 3) ** 2 * TILES_PER_WINDOW <= tiles:
        d += 1
    return d


def parse_grid(value: Any) -> tuple[int, int]:
    """``"48x32"`` → (48, 32); ``"40"`` or 40 → (40, 0)."""
    match = _GRID.match(str(value))
    if not match:
        raise JobRejected(f"grid must be COLSxROWS (e.g. 48x32) or one number of columns, not {str(value)[:40]!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def _option(raw: dict[str, Any], name: str, default: Any, convert: Callable[[str], Any], what: str) -> Any:
    value = raw.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise JobRejected(f"{name} must be {what}, not {value!r}")
    try:
        return convert(str(value).strip())
    except ValueError:
        raise JobRejected(f"{name} must be {what}, not {str(value)[:40]!r}") from None


def _int_option(raw: dict[str, Any], name: str, default: int) -> int:
    return int(_option(raw, name, default, int, "a whole number"))


def _percent(text: str) -> float:
    number = float(text.rstrip("%"))
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _float_option(raw: dict[str, Any], name: str, default: float) -> float:
    return float(_option(raw, name, default, _percent, "a finite number"))


def _bool_option(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None or value == "":
        return False
    try:
        return boolean(value)  # the one reading of true/false/on/off/1/0, as settings read it
    except ValueError:
        raise JobRejected(f"{name} must be true or false, not {str(value)[:40]!r}") from None


def parse_options(raw: dict[str, Any], default_grid: str, default_tile_px: int) -> Options:
    """Options from a request's fields; raises JobRejected with a message for the user when one is not a number.

    Limits are not checked here: :func:`check_job` does that once, with the tile count and the target's size."""
    cols, rows = parse_grid(raw.get("grid") or default_grid)
    tile_px = _int_option(raw, "tile_px", default_tile_px)
    seed = _int_option(raw, "seed", 0)
    blend = _float_option(raw, "blend", DEFAULT)
    min_distance = _int_option(raw, "min_distance", DEFAULT)
    max_uses = _int_option(raw, "max_uses", DEFAULT)
    keep_avatars = _bool_option(raw, "keep_avatars")
    use_all = _bool_option(raw, "use_all")
    keep = _int_option(raw, "keep", DEFAULT)
    webhook = _option(raw, "webhook", "", str, "an https URL")
    return Options(cols=cols, rows=rows, tile_px=tile_px, seed=seed, blend=blend, min_distance=min_distance,
                   max_uses=max_uses, keep_avatars=keep_avatars, use_all=use_all, keep=keep,
                   webhook=webhook)


def check_job(options: Options, limits: LimitSettings, tiles: int | None = None,
              size: tuple[int, int] | None = None, result_ttl: int | None = None) -> tuple[int, int] | None:
    """Every limit on a job, in one place: the web tier calls it at submission, the worker on decoding the
    package and once the target is decoded. Raises JobRejected/TooLarge with a message for the user.

    ``tiles``: the number of tile pictures, when known; ``size``: the target's (width, height), when known;
    ``result_ttl``: the longest ``keep`` (jobs.result_ttl), when known (a worker keeps a job at most its own).
    Returns the final (cols, rows) when it is known (rows given, or ``size``), else None."""
    side = limits.max_cells_per_side
    if options.cols < 1 or options.rows < 0:
        raise JobRejected("the grid needs at least one column and one row")
    if options.cols > side or options.rows > side:
        raise TooLarge(f"grid {options.cols}x{options.rows or '?'} is over the limit of {side} cells per side")
    if not limits.tile_px_min <= options.tile_px <= limits.tile_px_max:
        raise JobRejected(f"tile_px must be between {limits.tile_px_min} and {limits.tile_px_max}")
    if not 0 <= options.seed < 2**32:
        raise JobRejected("seed must be between 0 and 4294967295")
    check_rules(options)
    check_keep(options.keep, result_ttl)
    check_webhook(options.webhook)
    if tiles is not None and tiles > limits.max_tiles:
        raise TooLarge(f"{tiles} tiles is over the limit of {limits.max_tiles}")
    if size is None and not options.rows:
        return None  # rows follow the target's aspect ratio: the grid is checked once its size is known
    cols, rows = options.grid_for(*size) if size is not None else (options.cols, options.rows)
    check_grid(cols, rows, options.tile_px, limits)
    return cols, rows


def check_rules(options: Options) -> None:
    """Blend and repetition rules: in range, or DEFAULT."""
    if options.blend != DEFAULT and not 0 <= options.blend <= 100:
        raise JobRejected(f"blend must be between 0 and 100 (%), not {options.blend:g}")
    if options.min_distance != DEFAULT and not 0 <= options.min_distance <= MAX_DISTANCE:
        raise JobRejected(f"min_distance must be between 0 and {MAX_DISTANCE} cells, not {options.min_distance}")
    if options.max_uses != DEFAULT and options.max_uses < 0:
        raise JobRejected(f"max_uses must be 0 (no cap) or more, not {options.max_uses}")


def check_keep(keep: int, result_ttl: int | None) -> None:
    """``keep``: DEFAULT, or whole seconds from KEEP_MIN to ``result_ttl`` (when known)."""
    if keep == DEFAULT:
        return
    if keep < KEEP_MIN or (result_ttl is not None and keep > result_ttl):
        most = f" and {result_ttl}" if result_ttl is not None else " or more"
        raise JobRejected(f"keep must be between {KEEP_MIN}{most} seconds, not {keep}")


MAX_WEBHOOK = 2000
"""Longest webhook URL taken (what browsers and proxies commonly carry)."""


def check_webhook(url: str) -> None:
    """``webhook``: "" or an https URL with a host and no user name or password in it. Which hosts may be called
    is the URL policy's (workers/inputs/urlpolicy.py), at submission and again when it is called."""
    if not url:
        return
    if len(url) > MAX_WEBHOOK or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise JobRejected(f"webhook must be a URL of at most {MAX_WEBHOOK} printable characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a bad port raises here
    except ValueError:
        raise JobRejected(f"webhook is not a valid URL: {url[:80]!r}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise JobRejected(f"webhook must be an https:// URL, not {url[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise JobRejected("webhook must not carry a user name or password (put a token in the path or query)")


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


def option_schemas(limits: LimitSettings, result_ttl: int) -> dict[str, dict[str, Any]]:
    """The JSON Schema of each option a request may name, with the bounds :func:`check_job` holds it to: the one
    description of them the API's OpenAPI document gives (web/openapi.py), so the two cannot drift apart
    (tests/unit/test_openapi.py checks every name here against :func:`parse_options`). Forms may send the numbers
    as text, which :func:`parse_options` reads as well."""
    side = limits.max_cells_per_side
    return {
        "grid": {"description": "COLSxROWS (e.g. 48x32), or a number of columns with rows from the target's aspect "
                 "ratio", "oneOf": [{"type": "string", "pattern": _GRID.pattern},
                                    {"type": "integer", "minimum": 1, "maximum": side}]},
        "tile_px": {"description": "pixels per tile side in the mosaic", "type": "integer",
                    "minimum": limits.tile_px_min, "maximum": limits.tile_px_max},
        "seed": {"description": "seed of the random choices (the same seed, the same mosaic)", "type": "integer",
                 "minimum": 0, "maximum": 2**32 - 1},
        "blend": {"description": "colour correction of each tile toward its cell, in %", "type": "number",
                  "minimum": 0, "maximum": 100},
        "min_distance": {"description": "cells between two uses of one tile (0: off)", "type": "integer",
                         "minimum": 0, "maximum": MAX_DISTANCE},
        "max_uses": {"description": "most uses of one tile (0: no cap)", "type": "integer", "minimum": 0},
        "keep_avatars": {"description": "match on default avatars too", "type": "boolean"},
        "use_all": {"description": "use every picture at least once where the grid has room", "type": "boolean"},
        "keep": {"description": "seconds the finished job and its files are kept", "type": "integer",
                 "minimum": KEEP_MIN, "maximum": result_ttl},
        "webhook": {"description": "an https URL called when the job is done, failed or canceled (signed the "
                    "Standard Webhooks way; checked by the URL policy like tile URLs)", "type": "string",
                    "format": "uri", "pattern": "^https://"},
    }
