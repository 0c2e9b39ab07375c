"""Prepare a job's tiles: fetch, hash, take from the tile cache or decode (spread over processes), square."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from workers import fastjpeg
from workers.errors import JobRejected, TesseraError
from workers.images import decode, square_tile
from workers.tilecache import TileCache, content_key

FETCH_THREADS = 8
BATCH = 1024
"""Tiles fetched, looked up and decoded together: bounds the image bytes held at once."""
CHUNK = 64
"""Tiles per task handed to a thread or process: amortises the per-task overhead."""
MIN_FOR_PROCESSES = 256
"""Fewer tiles than this to decode are decoded in this process: forking would cost more than it saves."""


class Source(Protocol):
    """Where image bytes come from: the URL fetcher in a worker, files for `tessera build`."""

    def get(self, ref: str) -> bytes: ...


def concurrency(source: Source) -> int:
    """Threads worth using to fetch from ``source``: many for the network, one for local files (the GIL)."""
    return int(getattr(source, "concurrency", FETCH_THREADS))


@dataclass
class PreparedTiles:
    tiles: np.ndarray
    """uint8 (N, px, px, 3), in the order of the job's tile list, unusable and duplicate tiles left out."""
    sources: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """int64 (N,): the index in the job's tile list of each tile in ``tiles``."""
    skipped: list[str] = field(default_factory=list)
    derived: dict[Hashable, Any] = field(default_factory=dict)
    """What later stages computed from these tiles alone (their features), kept with them in the memo."""
    duplicates: int = 0
    cache_hits: int = 0
    decoded: int = 0


def decode_tile(data: bytes, px: int, max_pixels: int) -> np.ndarray | str:
    """A square px×px tile, or the reason it cannot be used (a string: it crosses process boundaries)."""
    try:
        fast = fastjpeg.decode_small(data, px, max_pixels)
        image = Image.fromarray(fast, "RGB") if fast is not None else decode(data, max_pixels, draft_px=px)
        return square_tile(image, px)
    except TesseraError as exc:
        return exc.reason


def _decode_chunk(datas: Sequence[bytes], px: int, max_pixels: int) -> list[np.ndarray | str]:
    return [decode_tile(data, px, max_pixels) for data in datas]


def _fetch_chunk(source: Source, refs: Sequence[str]) -> list[bytes | str]:
    out: list[bytes | str] = []
    for ref in refs:
        try:
            out.append(source.get(ref))
        except TesseraError as exc:
            out.append(exc.reason)
    return out


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class TilePreparer:
    """Prepares the tiles of one job; see :meth:`run`."""

    def __init__(self, source: Source, px: int, max_pixels: int, cache: TileCache | None, processes: int) -> None:
        self.source, self.px, self.max_pixels, self.cache = source, px, max_pixels, cache
        self.processes = processes or os.cpu_count() or 1
        self._pool: Executor | None = None

    def run(self, refs: Sequence[str], report: Callable[[int, int], None]) -> PreparedTiles:
        """Tiles for ``refs``; ``report(done, total)`` after each batch."""
        result = PreparedTiles(tiles=np.empty((len(refs), self.px, self.px, 3), np.uint8))
        usable = np.zeros(len(refs), dtype=bool)
        seen: set[bytes] = set()
        with ThreadPoolExecutor(concurrency(self.source)) as threads:
            try:
                for start in range(0, len(refs), BATCH):
                    batch = refs[start : start + BATCH]
                    fetched = self._fetch(threads, batch)
                    self._batch(fetched, start, seen, result, usable)
                    report(start + len(batch), len(refs))
            finally:
                if self._pool is not None:
                    self._pool.shutdown()
        result.tiles = result.tiles[usable]
        result.sources = np.flatnonzero(usable)
        return result

    def _fetch(self, threads: Executor, refs: Sequence[str]) -> list[bytes | str]:
        if concurrency(self.source) == 1:
            return _fetch_chunk(self.source, refs)
        # Spread even a small set over every thread: network waits, not CPU, dominate a fetch.
        size = max(1, min(CHUNK, -(-len(refs) // concurrency(self.source))))
        return [item for part in threads.map(lambda c: _fetch_chunk(self.source, c), _chunks(refs, size))
                for item in part]

    def _batch(self, fetched: list[bytes | str], start: int, seen: set[bytes], result: PreparedTiles,
               usable: np.ndarray) -> None:
        """Fill ``result.tiles[start + i]`` for each usable fetched tile and mark it in ``usable``."""
        positions: list[int] = []
        keys: list[bytes] = []
        datas: list[bytes] = []
        for offset, item in enumerate(fetched):
            if isinstance(item, str):
                result.skipped.append(item)
                continue
            key = content_key(item)
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            positions.append(start + offset)
            keys.append(key)
            datas.append(item)
        hit = np.zeros(len(keys), dtype=bool)
        if self.cache:
            found, tiles = self.cache.get(keys)
            hit[found] = True
            result.tiles[np.asarray(positions, dtype=np.int64)[found]] = tiles
            usable[np.asarray(positions, dtype=np.int64)[found]] = True
            result.cache_hits += len(found)
        missing = np.flatnonzero(~hit)
        decoded = self._decode([datas[i] for i in missing])
        result.decoded += len(missing)
        new = [(keys[i], tile) for i, tile in zip(missing, decoded, strict=True) if not isinstance(tile, str)]
        result.skipped.extend(tile for tile in decoded if isinstance(tile, str))
        for i, tile in zip(missing, decoded, strict=True):
            if not isinstance(tile, str):
                result.tiles[positions[i]] = tile
                usable[positions[i]] = True
        if self.cache and new:
            self.cache.put([key for key, _ in new], np.stack([tile for _, tile in new]))

    def _decode(self, datas: list[bytes]) -> list[np.ndarray | str]:
        if len(datas) < MIN_FOR_PROCESSES or self.processes < 2:
            return _decode_chunk(datas, self.px, self.max_pixels)
        if self._pool is None:  # fork: children start at once, with the modules already imported
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"))
        chunks = _chunks(datas, max(CHUNK, len(datas) // (4 * self.processes) + 1))
        futures = [self._pool.submit(_decode_chunk, chunk, self.px, self.max_pixels) for chunk in chunks]
        return [tile for future in futures for tile in future.result()]


def require_tiles(prepared: PreparedTiles, total: int, minimum: int) -> None:
    """Refuse the job when too few tiles could be used."""
    need = max(1, minimum)
    if len(prepared.tiles) < need:
        why = f" (first problem: {prepared.skipped[0]})" if prepared.skipped else ""
        raise JobRejected(f"only {len(prepared.tiles)} of {total} tiles could be used; at least {need} needed{why}")
