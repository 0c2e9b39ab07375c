"""Files that another process reads: written whole or not at all, and swept once they expire.

Every place that writes a file another process (or a later run) reads goes through :func:`write_atomic`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (permissions ``mode``); readers see the old file or the new, never a part.

    The file is synced before the rename and its folder after it, so the new name survives a power cut too."""
    with atomic_file(path, mode) as out:
        out.write(data)


def sync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a rename is only on disk once its folder is synced)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep(folder: str, max_age: float, now: float | None = None) -> int:
    """Delete files older than ``max_age`` seconds (expired results and inputs), then the folders that held
    only such files (``<id>.dz``, an upload's folder); returns the count of files deleted."""
    now = time.time() if now is None else now
    removed = 0
    expired_dirs: list[str] = []
    for current, _, names in os.walk(folder):
        try:  # the folder's age before its files go (removing them makes it look new)
            if current != folder and now - os.stat(current).st_mtime > max_age:
                expired_dirs.append(current)
        except OSError:
            pass
        for name in names:
            path = os.path.join(current, name)
            try:
                if now - os.lstat(path).st_mtime > max_age:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue  # another process removed it first
    for path in reversed(expired_dirs):  # children before their parents
        try:
            os.rmdir(path)  # only if empty: a folder still in use keeps newer files
        except OSError:
            continue
    return removed


@contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """:func:`write_atomic` for data written bit by bit (too big to hold as bytes): yields the file to write;
    when the block ends it replaces ``path`` whole, synced and then its folder; if the block raises, it is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
