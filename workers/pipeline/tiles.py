"""Prepare a job's tiles: fetch, hash, take from the tile cache or decode (spread over processes), square.

A tile that cannot be used (not an image, 404, too large, refused) is skipped with its reason; a transient fetch
failure is tried again (workers/pipeline/fetching.py). Fetched tiles stream: each is taken as it comes, in the
list's order, charged to the job's budget (workers/pipeline/budget.py) and reported as progress; they go to
decoding in groups, and what is decoded goes into the tile cache as it is made (a job stopped midway does not
decode it again).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Container, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from workers.inputs import fastjpeg
from workers.inputs.images import declared_pixels, decode, square_tile
from workers.pipeline.budget import Budget, Held, Spent
from workers.pipeline.fetching import Arrived, Fetches, Got, Retries, fetch
from workers.pipeline.tilecache import TileCache, content_key
from workers.pipeline.tiletypes import Keyed, PreparedTiles, Source, concurrency
from workers.protocol.errors import TesseraError, TransientError

BATCH = 1024
"""Most fetched tiles looked up in the cache and sent to decoding together (the held bytes bound them too)."""
CHUNK = 64
"""Tiles per task handed to a process: amortises the per-task overhead."""
MIN_FOR_PROCESSES = 256
"""Fewer tiles than this to decode are decoded in this process: forking would cost more than it saves…"""
MIN_PIXELS_FOR_PROCESSES = 16_000_000
"""…unless they declare this many pixels: large tiles cost far more to decode than to send to a process."""
GROUP_SECONDS = 1.0
"""Longest a fetched tile waits for its group to go to decoding: a trickle of tiles is decoded (and cached) as it
comes, a fast stream still in full groups."""
PACK_TILES = 1024
"""Decoded tiles that go into the tile cache as one pack at most (fewer, larger packs are cheaper to list)."""
PACK_SECONDS = 2.0
"""Longest a decoded tile waits for its pack: bounds the decoding a job stopped midway would have to redo."""


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
    for data in _fetch_chunk(reader, refs):
        if isinstance(data, TransientError):
            raise data  # local files never fail so; were one to, the build would be retried, not the tile skipped
        if isinstance(data, str):
            out.append(data)
            continue
        key = content_key(data)
        out.append((key, None if key in _KNOWN else decode_tile(data, px, max_pixels)))
    return out


def _fetch_chunk(get: Callable[[str], bytes], refs: Sequence[str]) -> list[Got]:
    return [fetch(get, ref) for ref in refs]


def _usable(fetched: list[Got]) -> list[bytes | str]:
    """``fetched``, which must hold no transient failure (the first one is raised)."""
    out: list[bytes | str] = []
    for item in fetched:
        if isinstance(item, TransientError):
            raise item
        out.append(item)
    return out


class TilePreparer:
    """Prepares the tiles of one job; see :meth:`start`."""

    def __init__(self, source: Source, px: int, max_pixels: int, cache: TileCache | None, processes: int,
                 retries: Retries = Retries(), budget: Budget = Budget()) -> None:  # noqa: B008  # frozen: safe to share
        self.source, self.px, self.max_pixels, self.cache, self.retries = source, px, max_pixels, cache, retries
        self.budget = budget
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def run(self, refs: Sequence[str], report: Callable[[int, int], None]) -> PreparedTiles:
        """Tiles for ``refs``; ``report(done, total)`` as tiles come and as they are decoded."""
        return self.start(refs)(report)

    def start(self, refs: Sequence[str]) -> Callable[[Callable[[int, int], None]], PreparedTiles]:
        """Begin preparing ``refs``; call the result (with ``report``) for the tiles.

        Local files start at once in the decoding processes, which also read and hash them (no image bytes
        pass through here, and the reading and hashing are spread over the cores), so the caller can do other
        work meanwhile: `tessera build`'s own files, not held to a job's budget. Anything else is fetched here,
        within the budget, when the result is called (:class:`_Stream`)."""
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
            into.keep()
            report(min(len(refs), (number + 1) * size), len(refs))
        for i in into.from_cache(hits).tolist():  # a tile whose pack vanished meanwhile: read and decoded here
            data = _usable(_fetch_chunk(reader, [refs[hits.positions[i]]]))[0]
            tile = data if isinstance(data, str) else decode_tile(data, self.px, self.max_pixels)
            into.decoded(hits.positions[i], hits.keys[i], tile)
        return into.done()

    def _fetched(self, refs: Sequence[str], report: Callable[[int, int], None]) -> PreparedTiles:
        """Tiles fetched and hashed on threads, taken here in the list's order, decoded here or in the pool."""
        threads = ThreadPoolExecutor(concurrency(self.source))
        try:
            return _Stream(self, refs, report, threads).run()
        finally:
            # Past the budget the job fails now: fetches under way end on their own, their bytes unused.
            threads.shutdown(wait=False, cancel_futures=True)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def part_size(self, count: int, pixels: int) -> int | None:
        """Tiles per task for decoding ``count`` tiles declaring ``pixels`` in the pool; None: not worth it,
        decode them here (:meth:`decode_here`)."""
        if self.processes < 2 or (count < MIN_FOR_PROCESSES and pixels < MIN_PIXELS_FOR_PROCESSES):
            return None
        if count < MIN_FOR_PROCESSES:  # a few large tiles: a share for each process
            return -(-count // self.processes)
        return max(CHUNK, count // (4 * self.processes) + 1)

    def decode_there(self, datas: Sequence[bytes]) -> Future[list[np.ndarray | str]]:
        """Decode ``datas`` in the pool."""
        if self._pool is None:  # fork: children start at once, with the modules already imported
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"))
        return self._pool.submit(_decode_chunk, datas, self.px, self.max_pixels)

    def decode_here(self, datas: Sequence[bytes], tick: Callable[[], None]) -> list[np.ndarray | str]:
        """Decode ``datas`` in this process, calling ``tick()`` after each (a large tile takes a while)."""
        tiles = []
        for data in datas:
            tiles.append(decode_tile(data, self.px, self.max_pixels))
            tick()
        return tiles


@dataclass
class _Group:
    """Fetched tiles waiting to go to decoding together, with the bytes held for them."""

    wanted: Keyed = field(default_factory=Keyed)
    datas: list[bytes] = field(default_factory=list)
    size: int = 0
    pixels: int = 0
    """Declared pixels of those to decode (not those the cache holds)."""
    since: float = 0.0
    """When the first came (monotonic)."""

    def add(self, position: int, key: bytes, data: bytes, pixels: int = 0) -> None:
        if not self.datas:
            self.since = time.monotonic()
        self.wanted.add(position, key)
        self.datas.append(data)
        self.size += len(data)
        self.pixels += pixels

    def due(self) -> float | None:
        """Seconds until the group should go even if not full; None: it is empty."""
        return max(0.0, self.since + GROUP_SECONDS - time.monotonic()) if self.datas else None


@dataclass
class _Part:
    """Tiles being decoded together (in the pool, or already here) and the bytes held until they are."""

    wanted: Keyed
    size: int
    tiles: Future[list[np.ndarray | str]] | list[np.ndarray | str]

    def ready(self) -> bool:
        return not isinstance(self.tiles, Future) or self.tiles.done()


class _Stream:
    """One job's fetched tiles on their way: taken in the list's order as they come (so the first of equal
    tiles is always the same one), charged to the budget, reported, and sent to decoding in groups.

    A group goes when it is :data:`BATCH` tiles, when its first has waited :data:`GROUP_SECONDS`, or when the held
    bytes leave no room for another fetch (decoding lets them go: the bound slows the job, never stalls it)."""

    def __init__(self, preparer: TilePreparer, refs: Sequence[str], report: Callable[[int, int], None],
                 threads: Executor) -> None:
        self.preparer, self.refs, self.report = preparer, refs, report
        self.into = _Collected(len(refs), preparer.px, preparer.cache)
        self.held = Held(preparer.budget)
        self.spent = Spent(preparer.budget, len(refs))
        self.fetches = Fetches(threads, concurrency(preparer.source), preparer.source.get, refs, self.held,
                               self.spent, preparer.retries)
        self.known = preparer.cache.known() if preparer.cache else frozenset()
        self.group = _Group()
        self.parts: list[_Part] = []
        self.taken = 0

    def run(self) -> PreparedTiles:
        try:
            for position in range(len(self.refs)):
                self._take(position, self._next(position))
                if len(self.group.datas) >= BATCH or self.group.due() == 0.0:
                    self._ship()
            self._ship()
            while self.parts:
                if decoding := self._decoding():
                    wait(decoding, self.into.keep_due(), FIRST_COMPLETED)
                self._settle()
            self.into.set.held_peak = self.held.peak
            return self.into.done()
        finally:  # failed midway: what was decoded is kept all the same, so a retry does not decode it again
            if not self.into.finished:
                self._settle(keep_going=True)
                self.into.keep(now=True)

    def tick(self) -> None:
        """Progress: the tiles taken so far (said again as decoding goes on, which is progress too)."""
        self.report(self.taken, len(self.refs))

    def _next(self, position: int) -> Arrived:
        """The tile at ``position`` once it has come; meanwhile fetches start, finished parts are placed, and the
        waiting group goes to decoding."""
        self._advance()
        while (item := self.fetches.pop(position)) is None:
            if not self.held.room() or self.group.due() == 0.0:
                self._ship()  # decode what is held, so its bytes can be let go
                self._advance()
                if position in self.fetches.arrived:
                    continue
            waiting: list[Future[Any]] = [*self.fetches.running, *self._decoding()]
            timeouts = [t for t in (self.fetches.timeout(), self.into.keep_due(), self.group.due()) if t is not None]
            if not waiting and not timeouts:
                raise RuntimeError(f"tile {position} is neither fetched nor under way")  # a bug, never a hang
            wait(waiting, min(timeouts, default=None), FIRST_COMPLETED)
            self._advance()
        return item

    def _decoding(self) -> list[Future[list[np.ndarray | str]]]:
        return [part.tiles for part in self.parts if isinstance(part.tiles, Future)]

    def _advance(self) -> None:
        self.fetches.collect()
        self._settle()
        self.fetches.start()

    def _take(self, position: int, item: Arrived) -> None:
        """A tile that has come: skipped, a copy, found in the cache, or to decode (its pixels charged first)."""
        self.taken = position + 1
        if isinstance(item, str):
            self.into.skipped(item)
        else:
            data, key = item
            if not self.into.first(key):  # a copy of an earlier tile
                self.held.release(len(data))
            elif key in self.known:  # the cache has it: no decoding, no pixels
                self.group.add(position, key, data)
            elif isinstance(pixels := self._charge(data), str):
                self.into.skipped(pixels)
                self.held.release(len(data))
            else:
                self.group.add(position, key, data, pixels)
        self.tick()

    def _charge(self, data: bytes) -> int | str:
        """The declared pixels of a tile to decode, charged to the budget (TooLarge past it); or the reason it
        cannot be decoded when its header already says so."""
        try:
            pixels = declared_pixels(data, self.preparer.max_pixels)
        except TesseraError as exc:
            return exc.reason
        self.spent.decode(pixels)
        return pixels

    def _ship(self) -> None:
        """Send the waiting group to decoding: what the cache holds is placed now (its bytes let go)."""
        group, self.group = self.group, _Group()
        if not group.wanted.keys:
            return
        missing = self.into.from_cache(group.wanted).tolist()
        datas = [group.datas[i] for i in missing]
        self.held.release(group.size - sum(len(d) for d in datas))
        wanted = Keyed([group.wanted.positions[i] for i in missing], [group.wanted.keys[i] for i in missing])
        size = self.preparer.part_size(len(datas), group.pixels)
        for start in range(0, len(datas), size or len(datas) or 1):
            part = datas[start : start + (size or len(datas))]
            tiles = self.preparer.decode_here(part, self.tick) if size is None else self.preparer.decode_there(part)
            self.parts.append(_Part(Keyed(wanted.positions[start : start + len(part)],
                                          wanted.keys[start : start + len(part)]), sum(len(d) for d in part), tiles))

    def _settle(self, keep_going: bool = False) -> None:
        """Place the tiles of the parts decoded, let their bytes go, and keep them in the cache when due.

        ``keep_going``: after a failure, parts that failed or were cancelled are passed over."""
        waiting = []
        for part in self.parts:
            if not part.ready():
                waiting.append(part)
                continue
            try:
                tiles = part.tiles.result() if isinstance(part.tiles, Future) else part.tiles
            except BaseException:
                if keep_going:
                    continue
                raise
            for position, key, tile in zip(part.wanted.positions, part.wanted.keys, tiles, strict=True):
                self.into.decoded(position, key, tile)
            self.held.release(part.size)
            self.tick()
        self.parts = waiting
        self.into.keep()


class _Collected:
    """A job's tiles as they come in, by position in its tile list: the one place that counts, dedupes, takes
    from the tile cache and places tiles, whichever way (fetched here, or read in the decoding processes)."""

    def __init__(self, count: int, px: int, cache: TileCache | None) -> None:
        self.set = PreparedTiles(tiles=np.empty((count, px, px, 3), np.uint8))
        self.keys = [b""] * count
        self.usable = np.zeros(count, dtype=bool)
        self.seen: set[bytes] = set()
        self.new = Keyed()
        """Tiles decoded for this job and not yet in the tile cache."""
        self.new_since: float | None = None
        """When the oldest of them was decoded (monotonic)."""
        self.cache = cache
        self.finished = False
        """Set by :meth:`done`: the set now holds only the usable tiles, in order."""

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
        if self.cache is not None:
            self.new.add(position, key)
            self.new_since = self.new_since or time.monotonic()

    def keep_due(self) -> float | None:
        """Seconds until the tiles decoded so far are due in the cache; None: none are waiting."""
        if self.new_since is None:
            return None
        return max(0.0, self.new_since + PACK_SECONDS - time.monotonic())

    def keep(self, now: bool = False) -> None:
        """Put the tiles decoded so far into the cache as one pack, once there are PACK_TILES of them, the
        oldest has waited PACK_SECONDS, or ``now``: a job stopped midway (failed, killed, retried) finds them
        there instead of decoding them again."""
        if self.cache is None or not self.new.keys:
            return
        if not now and len(self.new.keys) < PACK_TILES and (self.keep_due() or 0.0) > 0.0:
            return
        self.cache.put(self.new.keys, self.set.tiles[np.asarray(self.new.positions, dtype=np.int64)])
        self.new, self.new_since = Keyed(), None

    def done(self) -> PreparedTiles:
        """The rest of the newly decoded tiles into the cache; the usable tiles, in order."""
        self.keep(now=True)
        self.finished = True
        result = self.set
        result.sources = np.flatnonzero(self.usable)
        result.tiles = result.tiles[self.usable]
        result.keys = [self.keys[i] for i in result.sources.tolist()]
        return result
