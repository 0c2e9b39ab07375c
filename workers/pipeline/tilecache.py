"""A per-node cache of prepared tiles, keyed by the hash of the image bytes, so a tile set used again skips decoding.

Layout: ``ROOT/v1-<px>px/<pack>.tiles.npy`` (uint8 ``(n, px, px, 3)``) beside ``<pack>.keys`` (n keys of
KEY_BYTES each). A job adds at most one pack, written atomically (workers/protocol/files.py), tiles first and
keys last: a pack is visible only when complete, so worker processes on a node share the cache without locks.
Past ``max_bytes`` the packs least recently used are removed; a pack that vanishes under a reader is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Container
from pathlib import Path

import numpy as np

from workers.protocol import files
from workers.protocol.files import atomic_file, write_atomic

log = logging.getLogger(__name__)

KEY_BYTES = 16
VERSION = 1
"""Bump when the way tiles are prepared changes, so old entries are not used."""


def content_key(data: bytes) -> bytes:
    """The cache key of an image: a 128-bit BLAKE2b hash of its bytes."""
    return hashlib.blake2b(data, digest_size=KEY_BYTES).digest()


class TileCache:
    """Prepared ``px`` x ``px`` tiles under ``root``; see the module docstring."""

    def __init__(self, root: str | os.PathLike[str], px: int, max_bytes: int) -> None:
        self.dir = Path(root) / f"v{VERSION}-{px}px"
        self.px = px
        self.max_bytes = max_bytes
        self._known: dict[bytes, tuple[Path, int]] | None = None

    def _packs(self) -> list[Path]:
        try:
            return sorted(self.dir.glob("*.keys"))
        except OSError:
            return []

    def _index(self) -> dict[bytes, tuple[Path, int]]:
        if self._known is None:
            self._known = {}
            for keys_path in self._packs():
                try:
                    raw = keys_path.read_bytes()
                except OSError:
                    continue
                for row in range(len(raw) // KEY_BYTES):
                    self._known.setdefault(raw[row * KEY_BYTES : (row + 1) * KEY_BYTES], (keys_path, row))
        return self._known

    def known(self) -> Container[bytes]:
        """Every key the cache holds (as listed once for this object)."""
        return self._index()

    def get(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """The cached tiles among ``keys``: (positions in ``keys``, uint8 ``(len(positions), px, px, 3)``).

        The packs are listed once per TileCache object: make one per job."""
        index = self._index()
        by_pack: dict[Path, tuple[list[int], list[int]]] = {}
        for position, key in enumerate(keys):
            if key in index:
                pack, row = index[key]
                positions, rows = by_pack.setdefault(pack, ([], []))
                positions.append(position)
                rows.append(row)
        found_positions: list[int] = []
        found: list[np.ndarray] = []
        for keys_path, (positions, rows) in by_pack.items():
            try:
                pack = np.load(_tiles_path(keys_path), mmap_mode="c")  # copy-on-write: writable, never written
                whole = len(rows) == len(pack) and rows == list(range(len(pack)))
                # A whole pack in order (a warm set) stays mapped: no copy, and its pages come from the page cache.
                found.append(np.asarray(pack) if whole else np.asarray(pack[rows]))
                os.utime(keys_path)  # recently used: evicted last
            except (OSError, ValueError, IndexError) as exc:
                log.info("tile cache pack %s unreadable (%s); decoding its tiles", keys_path.name, exc)
                continue
            found_positions.extend(positions)
        tiles = (found[0] if len(found) == 1 else np.concatenate(found)) if found \
            else np.empty((0, self.px, self.px, 3), np.uint8)
        return np.asarray(found_positions, dtype=np.int64), tiles

    def put(self, keys: list[bytes], tiles: np.ndarray) -> None:
        """Add tiles (uint8 ``(n, px, px, 3)``) as one pack; best effort, a full disk only logs."""
        if not keys:
            return
        if tiles.shape != (len(keys), self.px, self.px, 3) or tiles.dtype != np.uint8:
            raise ValueError(f"tiles must be uint8 {(len(keys), self.px, self.px, 3)}, got {tiles.dtype} {tiles.shape}")
        name = secrets.token_hex(8)
        keys_path = self.dir / f"{name}.keys"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_file(_tiles_path(keys_path)) as f:  # streamed: no copy of the tiles in memory
                np.save(f, tiles, allow_pickle=False)
            write_atomic(keys_path, b"".join(keys))  # last: the pack is listed only once its tiles are there
            self._evict()
        except OSError as exc:
            log.warning("tile cache: cannot write %s: %s", self.dir, exc)

    def _evict(self) -> None:
        packs = []
        for keys_path in self._packs():
            try:
                packs.append((keys_path.stat().st_mtime, _tiles_path(keys_path).stat().st_size, keys_path))
            except OSError:
                continue
        total = sum(size for _, size, _ in packs)
        for _, size, keys_path in sorted(packs)[:-1]:  # oldest first; the newest pack always stays
            if total <= self.max_bytes:
                break
            keys_path.unlink(missing_ok=True)
            _tiles_path(keys_path).unlink(missing_ok=True)
            total -= size


ORPHAN_SECONDS = 600.0
"""Age past which a pack's tiles with no keys file are a killed writer's (a live one writes the keys at once)."""


def remove_orphans(root: str | os.PathLike[str], now: float | None = None) -> int:
    """What writers killed mid-pack left under ``root``: temporaries of dead processes, and tiles files whose keys
    never came (older than ORPHAN_SECONDS). A worker runs it at start, as it does for the media folder."""
    removed, now = 0, time.time() if now is None else now
    for folder in Path(root).glob(f"v{VERSION}-*px"):
        removed += files.remove_orphans(folder)
        for tiles in folder.glob("*.tiles.npy"):
            try:
                lone = not tiles.with_name(tiles.name.removesuffix(".tiles.npy") + ".keys").exists()
                if lone and now - tiles.stat().st_mtime > ORPHAN_SECONDS:
                    tiles.unlink()
                    removed += 1
            except OSError:
                continue  # gone meanwhile, or not ours to remove
    return removed


def _tiles_path(keys_path: Path) -> Path:
    return keys_path.with_suffix(".tiles.npy")
