"""Tile sets prepared lately, by their tile list: a friend set used again skips even reading its bytes.

The node's tile cache (workers/pipeline/tilecache.py) still needs every image's bytes to hash them; for 10,000 tiles
that reading is most of a warm build's tile stage. Here a set is found by its references and a stamp of each
(a file's size, times and inode; a URL's fetch-cache entry), so it is reused exactly while the bytes behind
it cannot have changed. Sources that cannot stamp a reference (uploads, uncached URLs) are never memoised.

Two layers: a worker keeps its last sets in memory (:data:`MEMO`), and every process that has a tile cache
keeps a small record per tile list in it (:func:`load`, :func:`save`): a digest of the stamps, the content
keys of the usable tiles in order, what was skipped, the tiles' features and identity groups. A record is used
only while every stamp is unchanged and the cache still holds every one of its tiles. Checking 10,000 stamps takes
0.04 s, so :func:`stamps_later` does it in a forked process while the caller goes on (importing Numba).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workers.pipeline.tilecache import KEY_BYTES, TileCache
from workers.pipeline.tiletypes import IDENTITY_VERSION, Identity, PreparedTiles, Source, TileFeatures
from workers.protocol.files import write_atomic

log = logging.getLogger(__name__)
SETS = "sets"
"""The records' folder in the tile cache's folder for the tile size."""
KEEP_SETS = 64
"""Records kept; the least recently used go first."""

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


def stamps_digest(source: Source, refs: Sequence[str]) -> str | None:
    """A digest of every reference's stamp, or None when ``source`` cannot vouch for one of them."""
    key = fingerprint(source, refs, 0)
    return None if key is None else key_stamps(key)


def key_stamps(key: Key) -> str:
    """The :func:`stamps_digest` of a memo key's references (it holds their stamps already)."""
    return _digest(key[2])


def stamps_later(source: Source, refs: Sequence[str]) -> Callable[[], str | None]:
    """:func:`stamps_digest`, computed meanwhile in a forked process; call the result for it.

    In this process instead where threads run (a worker: a fork copies their locks) or no fork can be made."""
    forked = _fork_stamps(source, refs) if threading.active_count() == 1 and hasattr(os, "fork") else None
    if forked is None:
        here = stamps_digest(source, refs)
        return lambda: here
    pid, readable = forked

    @functools.cache
    def answer() -> str | None:
        with os.fdopen(readable, "rb") as pipe:
            line = pipe.read().decode()
        os.waitpid(pid, 0)
        return line or None  # also when the child failed: the record is not trusted

    return answer


def _fork_stamps(source: Source, refs: Sequence[str]) -> tuple[int, int] | None:
    """A child that writes :func:`stamps_digest` to a pipe: (its pid, the pipe's end to read), or None."""
    readable, writable = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no memory or processes to spare
        os.close(readable)
        os.close(writable)
        return None
    if pid == 0:  # the child: only stats files and writes a line
        try:
            os.close(readable)
            os.write(writable, (stamps_digest(source, refs) or "").encode())
        finally:
            os._exit(0)
    os.close(writable)
    return pid, readable


def _digest(value: object) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=16).hexdigest()


def record_path(cache: TileCache, px: int, refs: Sequence[str]) -> Path:
    """Where the record of a tile list is (if it has one): named by a digest of the list."""
    return cache.dir / SETS / f"{_digest((px, tuple(refs)))}.npz"


def load(cache: TileCache, path: Path, stamps: str | None) -> PreparedTiles | None:
    """The set recorded at ``path``, its tiles from ``cache``; None when unknown, stale or a tile is gone."""
    if stamps is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as record:
            if str(record["stamps"]) != stamps:
                return None
            raw, sources = record["keys"].tobytes(), record["sources"]
            skipped, duplicates = [str(s) for s in record["skipped"]], int(record["duplicates"])
            features = _features_from(record)
            grouped = _identity_from(record)
        os.utime(path)  # recently used: removed last
    except (OSError, ValueError, KeyError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.info("tile set record %s unreadable (%s); preparing the set", path.name, exc)
        return None
    keys = [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)]
    found, tiles = cache.get(keys)
    if found.size != len(keys) or sources.shape != (len(keys),):
        return None
    ordered = tiles
    if not np.array_equal(found, np.arange(len(keys))):  # from several packs
        ordered = np.empty_like(tiles)
        ordered[found] = tiles
    return PreparedTiles(tiles=ordered, sources=sources.astype(np.int64), skipped=skipped, duplicates=duplicates,
                         cache_hits=len(keys), keys=keys, features=features,
                         identity=grouped if grouped is not None and len(grouped.groups) == len(keys) else None)


def _feature_arrays(features: tuple[TileFeatures, ...]) -> dict[str, np.ndarray]:
    """The tiles' features as arrays: per (k, weight) its frame (mean, rotation) and values."""
    arrays: dict[str, np.ndarray] = {}
    for f in features:
        tag = json.dumps(["features", f.k, f.lightness_weight])  # the names records had when features were keyed so
        arrays.update({f"mean {tag}": f.mean, f"rotation {tag}": f.rotation, f"features {tag}": f.values})
    return arrays


def _features_from(record: Any) -> tuple[TileFeatures, ...]:
    features = []
    for tag in (name[len("features ") :] for name in record.files if name.startswith("features ")):
        _, k, weight = json.loads(tag)
        features.append(TileFeatures(k=int(k), lightness_weight=float(weight), mean=record[f"mean {tag}"],
                                     rotation=record[f"rotation {tag}"], values=record[f"features {tag}"]))
    return tuple(features)


IDENTITY = f"identity v{IDENTITY_VERSION}"
"""The prefix of a record's identity arrays: records of another version (or none) are grouped again."""


def _identity_arrays(found: Identity | None) -> dict[str, np.ndarray]:
    return {} if found is None else {f"{IDENTITY} groups": found.groups, f"{IDENTITY} avatars": found.avatars}


def _identity_from(record: Any) -> Identity | None:
    if f"{IDENTITY} groups" not in record.files or f"{IDENTITY} avatars" not in record.files:
        return None
    groups, avatars = record[f"{IDENTITY} groups"], record[f"{IDENTITY} avatars"]
    if groups.dtype != np.int32 or avatars.dtype != np.bool_ or groups.shape != avatars.shape or groups.ndim != 1:
        return None
    if groups.size and (groups.min() < 0 or groups.max() >= groups.size):
        return None
    return Identity(groups=groups, avatars=avatars)


def save(path: Path, stamps: str, prepared: PreparedTiles) -> None:
    """Record ``prepared`` at ``path`` (best effort: a full disk only logs), keeping the newest KEEP_SETS."""
    out = io.BytesIO()
    arrays = {"stamps": np.asarray(stamps), "keys": np.frombuffer(b"".join(prepared.keys), np.uint8),
              "sources": prepared.sources,
              "skipped": np.asarray(prepared.skipped, dtype=str), "duplicates": np.asarray(prepared.duplicates),
              **_feature_arrays(prepared.features), **_identity_arrays(prepared.identity)}
    np.savez(out, allow_pickle=False, **arrays)
    try:
        write_atomic(path, out.getvalue())
        records = sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
        for old in records[:-KEEP_SETS]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("tile set record: cannot write %s: %s", path, exc)
