"""A per-node cache of fetched images keyed by URL, so a friend's picture is fetched once."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from workers.protocol.files import write_atomic


class FetchCache:
    """Files named by the URL's hash; entries older than ``max_age`` seconds are fetched again."""

    def __init__(self, folder: str, max_age: float) -> None:
        self.folder = Path(folder)
        self.max_age = max_age

    def _path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()
        return self.folder / digest[:2] / digest

    def get(self, url: str) -> bytes | None:
        path = self._path(url)
        try:
            if time.time() - path.stat().st_mtime > self.max_age:
                return None
            return path.read_bytes()
        except OSError:
            return None

    def stamp(self, url: str) -> int | None:
        """When the fresh entry for ``url`` was written (ns), or None when there is none: a new stamp means
        new bytes may be behind the URL."""
        try:
            written = self._path(url).stat().st_mtime_ns
        except OSError:
            return None
        return written if time.time() - written / 1e9 <= self.max_age else None

    def put(self, url: str, data: bytes) -> None:
        """Write atomically; a cache that cannot be written is only a missed saving."""
        try:
            write_atomic(self._path(url), data, mode=0o600)
        except OSError:
            pass
