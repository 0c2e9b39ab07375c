"""A job's tile set: from the worker's memo, or prepared (fetched, decoded, cached), started as early as it can be.

No Numba here: `tessera build` starts the tiles (local files begin decoding in other processes at once)
before it imports the kernels, so the two overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from config import Settings
from workers.pipeline import tilememo
from workers.pipeline.tilecache import TileCache
from workers.pipeline.tiles import PreparedTiles, Source, TilePreparer, require_tiles
from workers.protocol.package import JobPackage

Progress = Callable[[str, float], None]
"""Called with a stage description and the overall progress in [0, 1]."""
Finish = Callable[[Progress], PreparedTiles]
"""Completes a started tile set (reporting its progress) and returns it."""
Started = Callable[[Callable[[int, int], None]], PreparedTiles]
"""TilePreparer.start's result: completes the set, reporting (done, total)."""

PREPARED = 0.6
"""Where the tile stage ends on the overall progress scale."""


def tile_cache(settings: Settings, px: int) -> TileCache | None:
    """The node's tile cache for tiles of ``px`` (None when mosaic.tile_cache is "")."""
    if not settings.mosaic.tile_cache:
        return None
    root = Path(settings.paths.root) / settings.mosaic.tile_cache
    return TileCache(root, px, settings.mosaic.tile_cache_max_mb * 1024 * 1024)


def start(package: JobPackage, source: Source, settings: Settings) -> Finish:
    """Begin the tiles of ``package``; call the result for them (too few usable tiles: JobRejected).

    A set this worker remembers is ready at once; a recorded one is checked meanwhile (tilememo.stamps_later);
    any other starts preparing now (local files decode in other processes while the caller goes on)."""
    px, refs, memo_bytes = package.options.tile_px, package.tiles, settings.mosaic.tile_memo_mb * 2**20
    cache = tile_cache(settings, px)
    key = tilememo.fingerprint(source, refs, px) if memo_bytes else None
    known = tilememo.MEMO.get(key) if key is not None else None
    record = tilememo.record_path(cache, px, refs) if cache is not None else None
    preparer = TilePreparer(source, px, settings.limits.max_image_pixels, cache, settings.mosaic.decode_processes)
    stamps = _stamps(source, refs, key)
    if known is not None:
        started: Started = lambda report: known  # noqa: E731
    elif cache is not None and record is not None and record.exists():
        if key is None:
            stamps = tilememo.stamps_later(source, refs)
        started = _from_record(cache, record, stamps, preparer, refs)
    else:
        started = preparer.start(refs)

    def finish(report: Progress) -> PreparedTiles:
        prepared = started(lambda done, n: report(f"preparing tiles {done}/{n}", 0.02 + (PREPARED - 0.02) * done / n))
        report(f"preparing tiles {len(refs)}/{len(refs)}", PREPARED)
        require_tiles(prepared, len(refs), settings.limits.min_tiles)
        if record is not None:
            _to_record(prepared, record, stamps)
        if key is not None and known is None:
            tilememo.MEMO.put(key, prepared, memo_bytes)
        return prepared

    return finish


def _stamps(source: Source, refs: Sequence[str], key: tilememo.Key | None) -> Callable[[], str | None]:
    """The digest of the references' stamps: from the memo key when there is one, else taken when asked."""
    if key is not None:
        digest = tilememo.key_stamps(key)
        return lambda: digest
    return lambda: tilememo.stamps_digest(source, refs)


def _from_record(cache: TileCache, record: Path, stamps: Callable[[], str | None], preparer: TilePreparer,
                 refs: Sequence[str]) -> Started:
    def started(report: Callable[[int, int], None]) -> PreparedTiles:
        recorded = tilememo.load(cache, record, stamps())
        return recorded or preparer.run(refs, report)  # a file changed, or a tile left the cache: prepare it

    return started


def _to_record(prepared: PreparedTiles, record: Path, stamps: Callable[[], str | None]) -> None:
    """Let the pipeline record ``prepared`` once its features are known (workers/pipeline/mosaic.py calls it)."""
    def remember() -> None:
        digest = stamps()
        if digest is not None:
            tilememo.save(record, digest, prepared)

    prepared.remember = remember
