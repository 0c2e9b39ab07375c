"""Gathered friend lists kept on this node for ``friends.list_ttl`` seconds, then deleted.

A list is personal data, so it is kept no longer than that: a stale entry is removed when it is asked for, and
every write sweeps the folder of stale ones (a few files: one per handle and lists asked for).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from workers.protocol.files import write_atomic


class ListCache:
    """JSON entries named by their key's hash, in ``folder`` (made on the first write, owner-only)."""

    def __init__(self, folder: str | Path, ttl: float) -> None:
        self.folder = Path(folder)
        self.ttl = ttl

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def _stale(self, path: Path, now: float) -> bool:
        return now - path.stat().st_mtime > self.ttl

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            if self._stale(path, time.time()):
                path.unlink(missing_ok=True)
                return None
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, data: dict[str, Any]) -> None:
        """Keep ``data`` (nothing when ``ttl`` is 0); a cache that cannot be written is only a missed saving."""
        if self.ttl <= 0:
            return
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self._path(key), json.dumps(data).encode(), mode=0o600)
        except OSError:
            return
        self.sweep()

    def sweep(self) -> int:
        """Delete the stale entries; how many went."""
        now, gone = time.time(), 0
        for path in self.folder.glob("*.json"):
            try:
                if self._stale(path, now):
                    path.unlink()
                    gone += 1
            except OSError:
                continue  # removed meanwhile by another worker
        return gone
