"""Prepare a job's tiles: fetch, hash, take from the tile cache or decode (spread over processes), square.

A tile that cannot be used (not an image, 404, too large, refused) is skipped with its reason. A transient
fetch failure (timeout, connection, 5xx, 429) is no reason to skip a tile: its batch's failed tiles are
fetched again together with backoff, and if that does not help the TransientError goes up (the job is retried).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Container, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from PIL import Image

from workers.inputs import fastjpeg
from workers.inputs.images import decode, square_tile
from workers.pipeline.tilecache import TileCache, content_key
from workers.protocol.backoff import backoff
from workers.protocol.errors import FetchFailed, JobRejected, TesseraError, TransientError

FETCH_THREADS = 8
BATCH = 1024
"""Tiles fetched, looked up and decoded together: bounds the image bytes held at once."""
CHUNK = 64
"""Tiles per task handed to a thread or process: amortises the per-task overhead."""
IN_FLIGHT = 2
"""Batches fetched ahead while earlier ones decode."""
MIN_FOR_PROCESSES = 256
"""Fewer tiles than this to decode are decoded in this process: forking would cost more than it saves."""
RETRY_BASE = 0.5
"""Seconds before the first retry round of a batch's transient failures (then doubled, with jitter)."""


class Source(Protocol):
    """Where image bytes come from: the URL fetcher in a worker, files for `tessera build`."""

    def get(self, ref: str) -> bytes: ...


def concurrency(source: Source) -> int:
    """Threads worth using to fetch from ``source``: many for the network, one for local files (the GIL)."""
    return int(getattr(source, "concurrency", FETCH_THREADS))


@dataclass(frozen=True)
class TileFeatures:
    """A tile set's features under one ``k`` and lightness weight, in the tiles' principal frame
    (kernels.principal_frame): what matching computes from the tiles alone, so it is kept with them."""

    k: int
    lightness_weight: float
    mean: np.ndarray
    """float32 (D,): the frame's origin."""
    rotation: np.ndarray
    """float32 (D, D): the frame's axes, largest variance first."""
    values: np.ndarray
    """float32 (N, D): the tiles' weighted features in the frame, in the order of the set's tiles."""

    @property
    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, self.rotation


@dataclass
class PreparedTiles:
    """A job's tile set: the usable tiles, where each came from in the tile list, their keys and features."""

    tiles: np.ndarray
    """uint8 (N, px, px, 3), in the order of the job's tile list, unusable and duplicate tiles left out."""
    sources: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """int64 (N,): the index in the job's tile list of each tile in ``tiles``."""
    keys: list[bytes] = field(default_factory=list)
    """The content key (workers/pipeline/tilecache.py) of each tile in ``tiles``."""
    features: tuple[TileFeatures, ...] = ()
    """What matching computed from these tiles before, one entry per (k, lightness weight)."""
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0
    cache_hits: int = 0
    decoded: int = 0

    def features_for(self, k: int, lightness_weight: float) -> TileFeatures | None:
        """The features computed before under these rules, if any."""
        return next((f for f in self.features if (f.k, f.lightness_weight) == (k, lightness_weight)), None)


@dataclass
class Keyed:
    """Tiles by their position in the job's tile list, with the content key of each, in the order found."""

    positions: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)

    def add(self, position: int, key: bytes) -> None:
        self.positions.append(position)
        self.keys.append(key)


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


@dataclass(frozen=True)
class Retries:
    """How a batch's transient tile failures are tried again inside one build (settings ``fetch.tries`` and
    ``fetch.retry_within``)."""

    tries: int = 3
    """Tries of each tile in all, the first included."""
    within: float = 20.0
    """Seconds, from the end of the batch's first fetch, after which no tile of it is tried again."""


def _read_chunk(reader: Callable[[str], bytes], refs: Sequence[str], px: int,
                max_pixels: int) -> list[tuple[bytes, np.ndarray | str | None] | str]:
    """In a decoding process: read, hash and (unless the cache has it: None) decode each tile; a reason for a
    file that cannot be read."""
    out: list[tuple[bytes, np.ndarray | str | None] | str] = []
    for data in _fetch_chunk(reader, refs):
        if isinstance(data, TransientError):
            raise data  # local files never fail so; were one to, the build would be retried, not the tile skipped
        if isinstance(data, str):
            out.append(data)
            continue
        key = content_key(data)
        out.append((key, None if key in _KNOWN else decode_tile(data, px, max_pixels)))
    return out


Fetched = bytes | str | TransientError
"""A tile's bytes, the reason it cannot be used, or the transient failure that kept it (try it again)."""


def _fetch_chunk(get: Callable[[str], bytes], refs: Sequence[str]) -> list[Fetched]:
    """The bytes of each of ``refs``, the reason they cannot be had, or the transient failure of this try."""
    out: list[Fetched] = []
    for ref in refs:
        try:
            out.append(get(ref))
        except TransientError as exc:
            out.append(exc)
        except TesseraError as exc:
            out.append(exc.reason)
    return out


def _usable(fetched: list[Fetched]) -> list[bytes | str]:
    """``fetched``, which must hold no transient failure (the first one is raised)."""
    out: list[bytes | str] = []
    for item in fetched:
        if isinstance(item, TransientError):
            raise item
        out.append(item)
    return out


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class TilePreparer:
    """Prepares the tiles of one job; see :meth:`start`."""

    def __init__(self, source: Source, px: int, max_pixels: int, cache: TileCache | None, processes: int,
                 retries: Retries = Retries()) -> None:  # noqa: B008  # frozen: one shared default is safe
        self.source, self.px, self.max_pixels, self.cache, self.retries = source, px, max_pixels, cache, retries
        self.processes = processes or os.cpu_count() or 1
        self._pool: Executor | None = None

    def run(self, refs: Sequence[str], report: Callable[[int, int], None]) -> PreparedTiles:
        """Tiles for ``refs``; ``report(done, total)`` as batches complete."""
        return self.start(refs)(report)

    def start(self, refs: Sequence[str]) -> Callable[[Callable[[int, int], None]], PreparedTiles]:
        """Begin preparing ``refs``; call the result (with ``report``) for the tiles.

        Local files start at once in the decoding processes, which also read and hash them (no image bytes
        pass through here, and the reading and hashing are spread over the cores), so the caller can do other
        work meanwhile; anything else is fetched here when the result is called (:meth:`_fetched`)."""
        reader = getattr(self.source, "child_reader", None)
        if reader is None or self.processes < 2 or len(refs) < MIN_FOR_PROCESSES:
            return lambda report: self._fetched(refs, report)
        size = max(CHUNK, -(-len(refs) // (8 * self.processes)))
        known = self.cache.known() if self.cache else frozenset()
        pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_know, initargs=(known,))  # forked: nothing is pickled
        futures = [pool.submit(_read_chunk, reader, refs[i : i + size], self.px, self.max_pixels)
                   for i in range(0, len(refs), size)]

        def finish(report: Callable[[int, int], None]) -> PreparedTiles:
            try:
                return self._read(futures, size, reader, refs, report)
            finally:
                pool.shutdown(cancel_futures=True)

        return finish

    def _read(self, futures: list[Future[list[tuple[bytes, np.ndarray | str | None] | str]]], size: int,
              reader: Callable[[str], bytes], refs: Sequence[str],
              report: Callable[[int, int], None]) -> PreparedTiles:
        """The tiles the decoding processes read: the first of equal tiles kept, cached ones from the cache."""
        into = _Collected(len(refs), self.px, self.cache)
        hits = Keyed()
        for number, future in enumerate(futures):
            for offset, item in enumerate(future.result()):
                if isinstance(item, str):
                    into.skipped(item)
                elif into.first(item[0]):
                    key, tile = item
                    if tile is None:  # the cache has it: taken below, all at once
                        hits.add(number * size + offset, key)
                    else:
                        into.decoded(number * size + offset, key, tile)
            report(min(len(refs), (number + 1) * size), len(refs))
        for i in into.from_cache(hits).tolist():  # a tile whose pack vanished meanwhile: read and decoded here
            data = _usable(_fetch_chunk(reader, [refs[hits.positions[i]]]))[0]
            tile = data if isinstance(data, str) else decode_tile(data, self.px, self.max_pixels)
            into.decoded(hits.positions[i], hits.keys[i], tile)
        return into.done()

    def _fetched(self, refs: Sequence[str], report: Callable[[int, int], None]) -> PreparedTiles:
        """Tiles fetched and hashed here, decoded in the pool.

        Batches overlap: while the pool decodes one, the next is fetched and hashed here (at most IN_FLIGHT
        batches of image bytes are held at once)."""
        into = _Collected(len(refs), self.px, self.cache)
        in_flight: deque[_Pending] = deque()
        with ThreadPoolExecutor(concurrency(self.source)) as threads:
            try:
                for start in range(0, len(refs), BATCH):
                    in_flight.append(self._start(self._fetch(threads, refs[start : start + BATCH]), start, into))
                    while len(in_flight) > IN_FLIGHT or (in_flight and start + BATCH >= len(refs)):
                        report(min(self._finish(in_flight.popleft(), into), len(refs)), len(refs))
            finally:
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
        return into.done()

    def _fetch(self, threads: Executor, refs: Sequence[str]) -> list[bytes | str]:
        if concurrency(self.source) == 1:
            fetched = _fetch_chunk(self.source.get, refs)
        else:
            # Spread even a small set over every thread: network waits, not CPU, dominate a fetch.
            size = max(1, min(CHUNK, -(-len(refs) // concurrency(self.source))))
            fetched = [item for part in threads.map(lambda c: _fetch_chunk(self.source.get, c), _chunks(refs, size))
                       for item in part]
        return self._retry(threads, refs, fetched)

    def _retry(self, threads: Executor, refs: Sequence[str], fetched: list[Fetched]) -> list[bytes | str]:
        """``fetched`` with its transient failures fetched again, all of them at once on the threads, in rounds
        with backoff between them, ``retries.tries`` in all and none after ``retries.within`` seconds; a failure
        left after that is raised (FetchFailed naming how many tiles failed), not skipped."""
        failed = [i for i, item in enumerate(fetched) if isinstance(item, TransientError)]
        deadline, tries = time.monotonic() + self.retries.within, 1
        while failed and tries < self.retries.tries:
            wait = backoff(tries - 1, base=RETRY_BASE)
            if time.monotonic() + wait >= deadline:
                break
            time.sleep(wait)
            again = threads.map(lambda i: _fetch_chunk(self.source.get, [refs[i]])[0], failed)
            for i, item in zip(failed, again, strict=True):
                fetched[i] = item
            failed = [i for i in failed if isinstance(fetched[i], TransientError)]
            tries += 1
        if not failed:
            return _usable(fetched)
        first = next(item for item in (fetched[i] for i in failed) if isinstance(item, TransientError))
        raise FetchFailed(f"{len(failed)} of {len(refs)} tiles could not be fetched in {tries} "
                          f"{'try' if tries == 1 else 'tries'} (first: {first.reason})") from first

    def _start(self, fetched: list[bytes | str], start: int, into: _Collected) -> _Pending:
        """Hash a fetched batch, take what the cache has, and start decoding the rest."""
        pending = _Pending(end=start + len(fetched))
        datas: list[bytes] = []
        for offset, data in enumerate(fetched):
            if isinstance(data, str):
                into.skipped(data)
                continue
            key = content_key(data)
            if into.first(key):
                pending.wanted.add(start + offset, key)
                datas.append(data)
        pending.missing = into.from_cache(pending.wanted)
        pending.decoding = self._decode([datas[i] for i in pending.missing])
        return pending

    def _finish(self, pending: _Pending, into: _Collected) -> int:
        """Collect a batch's decoded tiles; the end of the batch in refs."""
        decoded = [tile for part in pending.decoding for tile in (part.result() if isinstance(part, Future) else part)]
        for i, tile in zip(pending.missing.tolist(), decoded, strict=True):
            into.decoded(pending.wanted.positions[i], pending.wanted.keys[i], tile)
        return pending.end

    def _decode(self, datas: list[bytes]) -> list[Future[list[np.ndarray | str]] | list[np.ndarray | str]]:
        """Decoded parts of ``datas`` in order: done at once (few tiles), or futures of the process pool."""
        if len(datas) < MIN_FOR_PROCESSES or self.processes < 2:
            return [_decode_chunk(datas, self.px, self.max_pixels)]
        if self._pool is None:  # fork: children start at once, with the modules already imported
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"))
        chunks = _chunks(datas, max(CHUNK, len(datas) // (4 * self.processes) + 1))
        return [self._pool.submit(_decode_chunk, chunk, self.px, self.max_pixels) for chunk in chunks]


class _Collected:
    """A job's tiles as they come in, by position in its tile list: the one place that counts, dedupes, takes
    from the tile cache and places tiles, whichever way (fetched here, or read in the decoding processes)."""

    def __init__(self, count: int, px: int, cache: TileCache | None) -> None:
        self.set = PreparedTiles(tiles=np.empty((count, px, px, 3), np.uint8))
        self.keys = [b""] * count
        self.usable = np.zeros(count, dtype=bool)
        self.seen: set[bytes] = set()
        self.new = Keyed()
        """Tiles decoded for this job, for the tile cache."""
        self.cache = cache

    def skipped(self, reason: str) -> None:
        """A tile that cannot be used (unreadable, not an image)."""
        self.set.skipped.append(reason)

    def first(self, key: bytes) -> bool:
        """Whether the tile of ``key`` goes on: not when the same bytes came earlier in the list."""
        if key in self.seen:
            self.set.duplicates += 1
            return False
        self.seen.add(key)
        return True

    def from_cache(self, wanted: Keyed) -> np.ndarray:
        """Place the tiles of ``wanted`` the cache has; the indices in ``wanted`` of the others, ascending."""
        if self.cache is None or not wanted.keys:
            return np.arange(len(wanted.keys))
        found, tiles = self.cache.get(wanted.keys)
        where = np.asarray(wanted.positions, dtype=np.int64)[found]
        self.set.tiles[where] = tiles
        self.usable[where] = True
        for i in found.tolist():
            self.keys[wanted.positions[i]] = wanted.keys[i]
        self.set.cache_hits += len(found)
        hit = np.zeros(len(wanted.keys), dtype=bool)
        hit[found] = True
        return np.flatnonzero(~hit)

    def decoded(self, position: int, key: bytes, tile: np.ndarray | str) -> None:
        """A tile decoded for this job, or the reason it could not be."""
        if isinstance(tile, str):
            self.skipped(tile)
            return
        self.set.decoded += 1
        self.set.tiles[position] = tile
        self.keys[position] = key
        self.usable[position] = True
        self.new.add(position, key)

    def done(self) -> PreparedTiles:
        """The job's newly decoded tiles into the cache, as one pack; the usable tiles, in order."""
        result = self.set
        if self.cache and self.new.keys:
            self.cache.put(self.new.keys, result.tiles[np.asarray(self.new.positions, dtype=np.int64)])
        result.sources = np.flatnonzero(self.usable)
        result.tiles = result.tiles[self.usable]
        result.keys = [self.keys[i] for i in result.sources.tolist()]
        return result


@dataclass
class _Pending:
    """A fetched batch whose decoding may still be running."""

    end: int
    wanted: Keyed = field(default_factory=Keyed)
    """The batch's tiles that are neither unusable nor duplicates."""
    missing: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Indices in ``wanted`` of the tiles the cache did not have: those being decoded."""
    decoding: list[Future[list[np.ndarray | str]] | list[np.ndarray | str]] = field(default_factory=list)


def require_tiles(prepared: PreparedTiles, total: int, minimum: int) -> None:
    """Refuse the job when too few tiles could be used."""
    need = max(1, minimum)
    if len(prepared.tiles) < need:
        why = f" (first problem: {prepared.skipped[0]})" if prepared.skipped else ""
        raise JobRejected(f"only {len(prepared.tiles)} of {total} tiles could be used; at least {need} needed{why}")
