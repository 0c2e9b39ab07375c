"""Result stores: where a finished mosaic goes so the web host can serve it."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


class LocalResultStore:
    """Results in the web host's media folder on this machine: temporary name, then rename."""

    def __init__(self, media_dir: str) -> None:
        self.media_dir = Path(media_dir)

    def put(self, job_id: str, data: bytes, ext: str) -> str:
        """Store atomically; a second run of the same job replaces the file with an equal one."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        name = f"{job_id}.{ext}"
        fd, tmp = tempfile.mkstemp(prefix=f".{job_id}.", suffix=".part", dir=self.media_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.media_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name


def sweep(folder: str, max_age: float, now: float | None = None) -> int:
    """Delete files older than ``max_age`` seconds (expired results and inputs); returns the count."""
    now = time.time() if now is None else now
    removed = 0
    for path in Path(folder).rglob("*"):
        try:
            if path.is_file() and now - path.stat().st_mtime > max_age:
                path.unlink()
                removed += 1
        except OSError:
            continue  # another process removed it first
    return removed
