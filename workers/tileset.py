"""A job's tile set: from the worker's memo, or prepared (fetched, decoded, cached), started as early as it can be.

No Numba here: `tessera build` starts the tiles (local files begin decoding in other processes at once)
before it imports the kernels, so the two overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from config import Settings
from workers import tilememo
from workers.package import JobPackage
from workers.tilecache import TileCache
from workers.tiles import PreparedTiles, Source, TilePreparer, require_tiles

Progress = Callable[[str, float], None]
"""Called with a stage description and the overall progress in [0, 1]."""
Finish = Callable[[Progress], PreparedTiles]
"""Completes a started tile set (reporting its progress) and returns it."""

PREPARED = 0.6
"""Where the tile stage ends on the overall progress scale."""


def tile_cache(settings: Settings, px: int) -> TileCache | None:
    """The node's tile cache for tiles of ``px`` (None when mosaic.tile_cache is "")."""
    if not settings.mosaic.tile_cache:
        return None
    root = Path(settings.paths.root) / settings.mosaic.tile_cache
    return TileCache(root, px, settings.mosaic.tile_cache_max_mb * 1024 * 1024)


def start(package: JobPackage, source: Source, settings: Settings) -> Finish:
    """Begin the tiles of ``package``; call the result for them (too few usable tiles: JobRejected)."""
    px, total, memo_bytes = package.options.tile_px, len(package.tiles), settings.mosaic.tile_memo_mb * 2**20
    cache = tile_cache(settings, px)
    key = tilememo.fingerprint(source, package.tiles, px) if memo_bytes or cache else None
    known = _known(key, cache, memo_bytes)
    if known is not None:
        _to_record(known, cache, key)

        def remembered(report: Progress) -> PreparedTiles:
            report(f"preparing tiles {total}/{total}", PREPARED)
            return known

        return remembered
    preparer = TilePreparer(source, px, settings.limits.max_image_pixels, cache, settings.mosaic.decode_processes)
    started = preparer.start(package.tiles)

    def finish(report: Progress) -> PreparedTiles:
        prepared = started(lambda done, n: report(f"preparing tiles {done}/{n}", 0.02 + (PREPARED - 0.02) * done / n))
        require_tiles(prepared, total, settings.limits.min_tiles)
        if key is not None:
            _to_record(prepared, cache, key)
            if memo_bytes:
                tilememo.MEMO.put(key, prepared, memo_bytes)
        return prepared

    return finish


def _to_record(prepared: PreparedTiles, cache: TileCache | None, key: tilememo.Key | None) -> None:
    """Let the pipeline record ``prepared`` once its features are known (workers/pipeline.py calls it)."""
    if cache is not None and key is not None:
        prepared.remember = lambda: tilememo.save(cache, key, prepared)


def _known(key: tilememo.Key | None, cache: TileCache | None, memo_bytes: int) -> PreparedTiles | None:
    """The set prepared before under ``key``: from this process's memo, else from the tile cache's records."""
    if key is None:
        return None
    known = tilememo.MEMO.get(key) if memo_bytes else None
    if known is None and cache is not None:
        known = tilememo.load(cache, key)
        if known is not None and memo_bytes:
            tilememo.MEMO.put(key, known, memo_bytes)
    return known
