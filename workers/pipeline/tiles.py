"""Prepare a job's tiles: fetch, hash, take from the tile cache or decode (spread over processes), square."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Container, Hashable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from workers.inputs import fastjpeg
from workers.inputs.images import decode, square_tile
from workers.pipeline.tilecache import TileCache, content_key
from workers.protocol.errors import JobRejected, TesseraError

FETCH_THREADS = 8
BATCH = 1024
"""Tiles fetched, looked up and decoded together: bounds the image bytes held at once."""
CHUNK = 64
"""Tiles per task handed to a thread or process: amortises the per-task overhead."""
NewTiles = tuple[list[bytes], list[int]]
"""Keys and positions (in the job's tile list) of the tiles decoded for a job, for the tile cache."""
IN_FLIGHT = 2
"""Batches fetched ahead while earlier ones decode."""
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
    keys: list[bytes] = field(default_factory=list)
    """The content key (workers/pipeline/tilecache.py) of each tile in ``tiles``: by position in the tile list while
    the tiles are being prepared."""
    remember: Callable[[], None] | None = None
    """Records the set, with what was derived from it, in the tile cache (pipeline/tilememo.py); None: no cache."""


def decode_tile(data: bytes, px: int, max_pixels: int) -> np.ndarray | str:
    """A square px×px tile, or the reason it cannot be used (a string: it crosses process boundaries)."""
    try:
        fast = fastjpeg.decode_small(data, px, max_pixels)
        if fast is not None and fast.shape[:2] == (px, px):
            return fast  # already the square tile (what square_tile would copy unchanged)
        image = Image.fromarray(fast, "RGB") if fast is not None else decode(data, max_pixels, draft_px=px)
        return square_tile(image, px)
    except TesseraError as exc:
        return exc.reason


def _decode_chunk(datas: Sequence[bytes], px: int, max_pixels: int) -> list[np.ndarray | str]:
    return [decode_tile(data, px, max_pixels) for data in datas]


_KNOWN: Container[bytes] = frozenset()
"""In a decoding process: the tile cache's keys (see _know)."""


def _know(keys: Container[bytes]) -> None:
    global _KNOWN
    _KNOWN = keys


def _read_chunk(reader: Callable[[str], bytes], refs: Sequence[str], px: int,
                max_pixels: int) -> list[tuple[bytes, np.ndarray | str | None] | str]:
    """In a decoding process: read, hash and (unless the cache has it: None) decode each tile; a reason for a
    file that cannot be read."""
    out: list[tuple[bytes, np.ndarray | str | None] | str] = []
    for ref in refs:
        try:
            data = reader(ref)
        except TesseraError as exc:
            out.append(exc.reason)
            continue
        key = content_key(data)
        out.append((key, None if key in _KNOWN else decode_tile(data, px, max_pixels)))
    return out


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
        """Tiles for ``refs``; ``report(done, total)`` as batches complete.

        Batches overlap: while the pool decodes one, the next is fetched and hashed here (at most IN_FLIGHT
        batches of image bytes are held at once)."""
        reader = getattr(self.source, "child_reader", None)
        if reader is not None and self.processes > 1 and len(refs) >= MIN_FOR_PROCESSES:
            return self.start(refs)(report)
        result = PreparedTiles(tiles=np.empty((len(refs), self.px, self.px, 3), np.uint8), keys=[b""] * len(refs))
        usable = np.zeros(len(refs), dtype=bool)
        seen: set[bytes] = set()
        new: NewTiles = ([], [])
        in_flight: deque[_Pending] = deque()
        with ThreadPoolExecutor(concurrency(self.source)) as threads:
            try:
                for start in range(0, len(refs), BATCH):
                    fetched = self._fetch(threads, refs[start : start + BATCH])
                    in_flight.append(self._start(fetched, start, seen, result, usable))
                    while len(in_flight) > IN_FLIGHT or (in_flight and start + BATCH >= len(refs)):
                        done = self._finish(in_flight.popleft(), result, usable, new)
                        report(min(done, len(refs)), len(refs))
            finally:
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
        return self._done(new, result, usable)

    def start(self, refs: Sequence[str]) -> Callable[[Callable[[int, int], None]], PreparedTiles]:
        """Begin preparing ``refs``; call the result (with ``report``) for the tiles.

        Local files start at once in the decoding processes, which also read and hash them (no image bytes
        pass through here, and the reading and hashing are spread over the cores), so the caller can do other
        work meanwhile; anything else is prepared when the result is called (:meth:`run`)."""
        reader = getattr(self.source, "child_reader", None)
        if reader is None or self.processes < 2 or len(refs) < MIN_FOR_PROCESSES:
            return lambda report: self.run(refs, report)
        size = max(CHUNK, -(-len(refs) // (8 * self.processes)))
        known = self.cache.known() if self.cache else frozenset()
        pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_know, initargs=(known,))  # forked: nothing is pickled
        futures = [pool.submit(_read_chunk, reader, refs[i : i + size], self.px, self.max_pixels)
                   for i in range(0, len(refs), size)]

        def finish(report: Callable[[int, int], None]) -> PreparedTiles:
            try:
                return self._collect(futures, size, reader, refs, report)
            finally:
                pool.shutdown(cancel_futures=True)

        return finish

    def _collect(self, futures: list[Future[list[tuple[bytes, np.ndarray | str | None] | str]]], size: int,
                 reader: Callable[[str], bytes], refs: Sequence[str],
                 report: Callable[[int, int], None]) -> PreparedTiles:
        """The tiles from the decoding processes: the first of equal tiles kept, cached ones from the cache."""
        result = PreparedTiles(tiles=np.empty((len(refs), self.px, self.px, 3), np.uint8), keys=[b""] * len(refs))
        usable = np.zeros(len(refs), dtype=bool)
        seen: set[bytes] = set()
        hits: tuple[list[int], list[bytes]] = ([], [])
        new: NewTiles = ([], [])
        for number, future in enumerate(futures):
            for offset, item in enumerate(future.result()):
                self._take(number * size + offset, item, seen, hits, new, result, usable)
            report(min(len(refs), (number + 1) * size), len(refs))
        self._take_cached(hits, reader, refs, result, usable)
        return self._done(new, result, usable)

    def _take(self, position: int, item: tuple[bytes, np.ndarray | str | None] | str, seen: set[bytes],
              hits: tuple[list[int], list[bytes]], new: NewTiles,
              result: PreparedTiles, usable: np.ndarray) -> None:
        """One tile from a decoding process: a reason, a duplicate, a cache hit (taken later) or a new tile."""
        if isinstance(item, str):
            result.skipped.append(item)
            return
        key, tile = item
        if key in seen:
            result.duplicates += 1
            return
        seen.add(key)
        if tile is None:
            hits[0].append(position)
            hits[1].append(key)
        elif isinstance(tile, str):
            result.skipped.append(tile)
        else:
            result.decoded += 1
            result.tiles[position] = tile
            result.keys[position] = key
            usable[position] = True
            new[0].append(key)
            new[1].append(position)

    def _take_cached(self, hits: tuple[list[int], list[bytes]], reader: Callable[[str], bytes], refs: Sequence[str],
                     result: PreparedTiles, usable: np.ndarray) -> None:
        """Fill the cache hits; a tile whose pack vanished meanwhile is read and decoded here after all."""
        if not hits[0] or self.cache is None:
            return
        found, tiles = self.cache.get(hits[1])
        where = np.asarray(hits[0], dtype=np.int64)
        result.tiles[where[found]] = tiles
        usable[where[found]] = True
        for i in found.tolist():
            result.keys[where[i]] = hits[1][i]
        result.cache_hits += len(found)
        for i in np.setdiff1d(np.arange(where.size), found):
            item = _read_chunk(reader, [refs[where[i]]], self.px, self.max_pixels)[0]  # _KNOWN is empty here
            tile = item[1] if isinstance(item, tuple) else item
            result.decoded += 1
            if isinstance(tile, np.ndarray):
                result.tiles[where[i]] = tile
                result.keys[where[i]] = hits[1][i]
                usable[where[i]] = True
            else:
                result.skipped.append(str(tile))

    def _fetch(self, threads: Executor, refs: Sequence[str]) -> list[bytes | str]:
        if concurrency(self.source) == 1:
            return _fetch_chunk(self.source, refs)
        # Spread even a small set over every thread: network waits, not CPU, dominate a fetch.
        size = max(1, min(CHUNK, -(-len(refs) // concurrency(self.source))))
        return [item for part in threads.map(lambda c: _fetch_chunk(self.source, c), _chunks(refs, size))
                for item in part]

    def _start(self, fetched: list[bytes | str], start: int, seen: set[bytes], result: PreparedTiles,
               usable: np.ndarray) -> _Pending:
        """Hash a fetched batch, take what the cache has, and start decoding the rest."""
        pending = _Pending(end=start + len(fetched))
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
            pending.positions.append(start + offset)
            pending.keys.append(key)
            datas.append(item)
        hit = np.zeros(len(pending.keys), dtype=bool)
        if self.cache:
            found, tiles = self.cache.get(pending.keys)
            hit[found] = True
            where = np.asarray(pending.positions, dtype=np.int64)[found]
            result.tiles[where] = tiles
            usable[where] = True
            for i in found.tolist():
                result.keys[pending.positions[i]] = pending.keys[i]
            result.cache_hits += len(found)
        pending.missing = np.flatnonzero(~hit)
        pending.decoding = self._decode([datas[i] for i in pending.missing])
        return pending

    def _finish(self, pending: _Pending, result: PreparedTiles, usable: np.ndarray, new: NewTiles) -> int:
        """Collect a batch's decoded tiles into ``result`` (noting them in ``new``); the end of the batch in refs."""
        decoded = [tile for part in pending.decoding for tile in (part.result() if isinstance(part, Future) else part)]
        result.decoded += len(pending.missing)
        for i, tile in zip(pending.missing, decoded, strict=True):
            if isinstance(tile, str):
                result.skipped.append(tile)
                continue
            result.tiles[pending.positions[i]] = tile
            result.keys[pending.positions[i]] = pending.keys[i]
            usable[pending.positions[i]] = True
            new[0].append(pending.keys[i])
            new[1].append(pending.positions[i])
        return pending.end

    def _done(self, new: NewTiles, result: PreparedTiles, usable: np.ndarray) -> PreparedTiles:
        """The job's newly decoded tiles into the cache, as one pack; the usable tiles, in order."""
        if self.cache and new[0]:
            self.cache.put(new[0], result.tiles[np.asarray(new[1], dtype=np.int64)])
        result.sources = np.flatnonzero(usable)
        result.tiles = result.tiles[usable]
        result.keys = [result.keys[i] for i in result.sources.tolist()]
        return result

    def _decode(self, datas: list[bytes]) -> list[Future[list[np.ndarray | str]] | list[np.ndarray | str]]:
        """Decoded parts of ``datas`` in order: done at once (few tiles), or futures of the process pool."""
        if len(datas) < MIN_FOR_PROCESSES or self.processes < 2:
            return [_decode_chunk(datas, self.px, self.max_pixels)]
        if self._pool is None:  # fork: children start at once, with the modules already imported
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"))
        chunks = _chunks(datas, max(CHUNK, len(datas) // (4 * self.processes) + 1))
        return [self._pool.submit(_decode_chunk, chunk, self.px, self.max_pixels) for chunk in chunks]


@dataclass
class _Pending:
    """A batch whose decoding may still be running."""

    end: int
    positions: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    missing: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    decoding: list[Future[list[np.ndarray | str]] | list[np.ndarray | str]] = field(default_factory=list)


def require_tiles(prepared: PreparedTiles, total: int, minimum: int) -> None:
    """Refuse the job when too few tiles could be used."""
    need = max(1, minimum)
    if len(prepared.tiles) < need:
        why = f" (first problem: {prepared.skipped[0]})" if prepared.skipped else ""
        raise JobRejected(f"only {len(prepared.tiles)} of {total} tiles could be used; at least {need} needed{why}")
