"""Tile sets this worker prepared lately, by their tile list: a friend set used again skips even reading its bytes.

The node's tile cache (workers/tilecache.py) still needs every image's bytes to hash them; for 10,000 tiles
that reading is most of a warm build's tile stage. Here a set is found by its references and a stamp of each
(a file's size and mtime, a URL's fetch-cache entry), so it is reused exactly while the bytes behind it
cannot have changed. Sources that cannot stamp a reference (uploads, uncached URLs) are never memoised.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence

from workers.tiles import PreparedTiles, Source

Key = tuple[int, tuple[str, ...], tuple[Hashable, ...]]


def fingerprint(source: Source, refs: Sequence[str], px: int) -> Key | None:
    """The memo key of ``refs`` at ``px``, or None when ``source`` cannot vouch for every reference."""
    stamp = getattr(source, "stamp", None)
    if stamp is None:
        return None
    stamps = []
    for ref in refs:
        value = stamp(ref)
        if value is None:
            return None
        stamps.append(value)
    return px, tuple(refs), tuple(stamps)


class TileSetMemo:
    """The most recently used prepared sets, within ``max_bytes`` of tile pixels in all."""

    def __init__(self) -> None:
        self._sets: OrderedDict[Key, PreparedTiles] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> PreparedTiles | None:
        with self._lock:
            found = self._sets.get(key)
            if found is None:
                return None
            self._sets.move_to_end(key)
        return dataclasses.replace(found, skipped=list(found.skipped), cache_hits=len(found.tiles), decoded=0)

    def put(self, key: Key, prepared: PreparedTiles, max_bytes: int) -> None:
        if prepared.tiles.nbytes > max_bytes:
            return
        prepared.tiles.flags.writeable = False  # shared by later jobs
        with self._lock:
            self._sets[key] = prepared
            self._sets.move_to_end(key)
            while sum(p.tiles.nbytes for p in self._sets.values()) > max_bytes:
                self._sets.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()


MEMO = TileSetMemo()
"""This process's memo (a worker handles one job at a time; `tessera build` turns it off)."""
