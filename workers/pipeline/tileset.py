"""A job's tile set: from the worker's memo, or prepared (fetched, decoded, cached), started as early as it can be.

No Numba here: `tessera build` starts the tiles (local files begin decoding in other processes at once)
before it imports the kernels, so the two overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from workers.pipeline import tilememo
from workers.pipeline.budget import Budget
from workers.pipeline.fetching import Retries
from workers.pipeline.tilecache import TileCache
from workers.pipeline.tiles import TilePreparer
from workers.pipeline.tiletypes import PreparedTiles, Source, require_tiles
from workers.protocol.package import JobPackage

Progress = Callable[[str, float], None]
"""Called with a stage description and the overall progress in [0, 1]."""
Started = Callable[[Callable[[int, int], None]], PreparedTiles]
"""TilePreparer.start's result: completes the set, reporting (done, total)."""

PREPARED = 0.6
"""Where the tile stage ends on the overall progress scale."""


def cache_root(settings: Settings) -> Path | None:
    """The node's tile cache folder (None when mosaic.tile_cache is "")."""
    return Path(settings.paths.root) / settings.mosaic.tile_cache if settings.mosaic.tile_cache else None


def tile_cache(settings: Settings, px: int) -> TileCache | None:
    """The node's tile cache for tiles of ``px`` (None when mosaic.tile_cache is "")."""
    root = cache_root(settings)
    return None if root is None else TileCache(root, px, settings.mosaic.tile_cache_max_mb * 1024 * 1024)


@dataclass(frozen=True)
class StartedSet:
    """A job's tile set on its way (see :func:`start`): :meth:`finish` gives the set; :meth:`save` keeps it,
    with the features the pipeline added, for later builds."""

    started: Started
    refs: Sequence[str]
    min_tiles: int
    memo_key: tilememo.Key | None
    """The set's key in this worker's memo; None: not memoised."""
    memo_bytes: int
    in_memo: bool
    """Whether the set came from the memo (it is there already)."""
    record: Path | None
    """Where the set's record is kept in the tile cache; None: no cache."""
    stamps: Callable[[], str | None]
    """The digest of the references' stamps, worked out when first asked (it takes a stat of every file)."""

    def finish(self, report: Progress) -> PreparedTiles:
        """The tile set (too few usable tiles: JobRejected)."""
        total = len(self.refs)
        prepared = self.started(lambda done, n: report(f"preparing tiles {done}/{n}",
                                                       0.02 + (PREPARED - 0.02) * done / n))
        report(f"preparing tiles {total}/{total}", PREPARED)
        require_tiles(prepared, total, self.min_tiles)
        if self.memo_key is not None and not self.in_memo:
            tilememo.MEMO.put(self.memo_key, prepared, self.memo_bytes)
        return prepared

    def save(self, prepared: PreparedTiles) -> None:
        """Keep ``prepared`` (now with more features) in the memo and the set's record: the next build starts
        from them."""
        if self.memo_key is not None:
            tilememo.MEMO.put(self.memo_key, prepared, self.memo_bytes)
        digest = self.stamps() if self.record is not None else None
        if self.record is not None and digest is not None:
            tilememo.save(self.record, digest, prepared)


def start(package: JobPackage, source: Source, settings: Settings) -> StartedSet:
    """Begin the tiles of ``package``; call ``finish`` on the result for them.

    A set this worker remembers is ready at once; a recorded one is checked meanwhile (tilememo.stamps_later);
    any other starts preparing now (local files decode in other processes while the caller goes on)."""
    px, refs, memo_bytes = package.options.tile_px, package.tiles, settings.mosaic.tile_memo_mb * 2**20
    cache = tile_cache(settings, px)
    key = tilememo.fingerprint(source, refs, px) if memo_bytes else None
    known = tilememo.MEMO.get(key) if key is not None else None
    record = tilememo.record_path(cache, px, refs) if cache is not None else None
    limits = settings.limits
    preparer = TilePreparer(source, px, limits.max_image_pixels, cache, settings.mosaic.decode_processes,
                            Retries(settings.fetch.tries, settings.fetch.retry_within),
                            Budget(limits.max_job_tile_bytes, limits.max_job_tile_pixels, limits.max_job_held_bytes,
                                   settings.fetch.max_bytes))
    stamps = _stamps(source, refs, key)
    if known is not None:
        started: Started = lambda report: known  # noqa: E731
    elif cache is not None and record is not None and record.exists():
        if key is None:
            stamps = tilememo.stamps_later(source, refs)
        started = _from_record(cache, record, stamps, preparer, refs)
    else:
        started = preparer.start(refs)
    return StartedSet(started, refs, settings.limits.min_tiles, key, memo_bytes, known is not None, record, stamps)


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
