"""Build one mosaic: fetch → decode → match → render → encode. No Redis here."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

import kernels
from config import Settings
from workers.errors import JobRejected, TesseraError
from workers.fetch import Fetcher
from workers.images import decode, square_tile
from workers.options import check_grid
from workers.package import JobPackage

Progress = Callable[[str, float], None]
"""Called with a stage description and the overall progress in [0, 1]."""

FETCH_THREADS = 8


@dataclass
class BuildResult:
    data: bytes
    ext: str
    details: dict[str, Any] = field(default_factory=dict)


def _no_progress(stage: str, fraction: float) -> None:
    pass


def build_mosaic(
    package: JobPackage, fetcher: Fetcher, settings: Settings, report: Progress = _no_progress
) -> BuildResult:
    limits, opts = settings.limits, package.options
    report("fetching the photo", 0.02)
    target = decode(fetcher.get(package.target), limits.max_image_pixels)
    cols, rows = opts.grid_for(target.width, target.height)
    check_grid(cols, rows, opts.tile_px, limits)
    if len(package.tiles) > limits.max_tiles:
        raise JobRejected(f"{len(package.tiles)} tiles is over the limit of {limits.max_tiles}")

    tiles, skipped = _prepare_tiles(package, fetcher, settings, report)
    report("matching cells to tiles", 0.65)
    assignment = _match(target, tiles, cols, rows, settings)
    report("rendering", 0.8)
    mosaic = kernels.render(tiles, assignment)
    report("encoding", 0.9)
    data = _encode_jpeg(mosaic, settings.mosaic.jpeg_quality)
    details = {"grid": f"{cols}x{rows}", "tiles_used": len(tiles), "tiles_skipped": len(skipped),
               "distinct_tiles": int(np.unique(assignment).size), "width": mosaic.shape[1], "height": mosaic.shape[0]}
    if skipped:
        details["skipped_reasons"] = skipped[:5]
    return BuildResult(data=data, ext="jpg", details=details)


def _prepare_tiles(package: JobPackage, fetcher: Fetcher, settings: Settings,
                   report: Progress) -> tuple[np.ndarray, list[str]]:
    """Fetch and square every tile; a tile that fails is skipped and counted, not fatal."""
    px, total = package.options.tile_px, len(package.tiles)

    def one(url: str) -> np.ndarray:
        image = decode(fetcher.get(url), settings.limits.max_image_pixels, draft_px=px * 2)
        return square_tile(image, px)

    tiles: list[np.ndarray] = []
    skipped: list[str] = []
    with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, max(1, total))) as pool:
        for done, future in enumerate([pool.submit(one, url) for url in package.tiles], start=1):
            try:
                tiles.append(future.result())
            except TesseraError as exc:
                skipped.append(exc.reason)
            report(f"preparing tiles {done}/{total}", 0.05 + 0.6 * done / total)
    minimum = settings.limits.min_tiles
    if len(tiles) < max(1, minimum):
        why = f" (first problem: {skipped[0]})" if skipped else ""
        raise JobRejected(f"only {len(tiles)} of {total} tiles could be used; at least {max(1, minimum)} needed{why}")
    return np.stack(tiles), skipped


def _match(target: Image.Image, tiles: np.ndarray, cols: int, rows: int, settings: Settings) -> np.ndarray:
    k = min(settings.mosaic.features_k, tiles.shape[1])
    sample = max(k, settings.mosaic.sample_px)
    small = target.resize((cols * sample, rows * sample), Image.Resampling.BOX)
    cell_feats = kernels.cell_features(np.asarray(small, dtype=np.uint8), rows, cols, k)
    tile_feats = kernels.tile_features(tiles, k)
    return kernels.nearest_tiles(cell_feats, tile_feats).reshape(rows, cols)


def _encode_jpeg(mosaic: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(mosaic, "RGB").save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()
