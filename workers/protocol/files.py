"""Files that another process reads: written whole or not at all, and swept once they expire.

Every place that writes a file another process (or a later run) reads goes through :func:`write_atomic`.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
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


def sweep(folder: str, max_age: float, now: float | None = None,
          keep: Callable[[list[str]], Collection[str]] | None = None) -> int:
    """Delete files older than ``max_age`` seconds (expired results and inputs), then the folders that held
    only such files (``<id>.dz``, an upload's folder); returns the count of files deleted.

    ``keep``, when given, is asked once with the names of the entries of ``folder`` that hold something past
    ``max_age`` (an upload's folder is its job's id) and answers those to leave whole this pass; if it raises,
    nothing is deleted."""
    now = time.time() if now is None else now
    expired_files: list[str] = []
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
                    expired_files.append(path)
            except OSError:
                continue  # another process removed it first
    if keep is not None:
        candidates = sorted({_entry_of(folder, path) for path in expired_files + expired_dirs})
        kept = set(keep(candidates)) if candidates else set()
        expired_files = [path for path in expired_files if _entry_of(folder, path) not in kept]
        expired_dirs = [path for path in expired_dirs if _entry_of(folder, path) not in kept]
    removed = 0
    for path in expired_files:
        try:
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


RESULT_FOLDER_SUFFIX = ".dz"
"""A job's folder of extra files next to its result (the zoomable view) is ``<id>.dz``."""


def result_entries(job_id: str) -> tuple[str, ...]:
    """The names a job's results may have in the media folder: the mosaic (JPEG or PNG) and its zoomable view.
    The result stores write them (workers/results/stores.py); the web serves, deletes and sweeps them."""
    return f"{job_id}.jpg", f"{job_id}.png", job_id + RESULT_FOLDER_SUFFIX


def remove_entries(folder: Path, names: Collection[str]) -> int:
    """Remove these entries of ``folder`` (files, or folders with all they hold; a link is removed, never
    followed); the count of entries that were there. Raises OSError when one cannot be removed."""
    removed = 0
    for name in names:
        path = folder / name
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            continue  # never stored, or removed by another process first
        removed += 1
    return removed


def _entry_of(folder: str, path: str) -> str:
    """The name of the entry of ``folder`` that ``path`` is or lies under."""
    return os.path.relpath(path, folder).split(os.sep, 1)[0]


@contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """:func:`write_atomic` for data written bit by bit (too big to hold as bytes): yields the file to write;
    when the block ends it replaces ``path`` whole, synced and then its folder; if the block raises, it is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".part", dir=path.parent)
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


def temp_prefix(name: str) -> str:
    """``.<name>.<pid>.``: the start of a temporary name (then random, then ``.part`` or ``.old``), naming the
    process that writes it, so what a killed writer leaves can be told from what a live one is writing."""
    return f".{name}.{os.getpid()}."


def remove_orphans(folder: Path) -> int:
    """Remove the temporaries in ``folder`` whose writer, a process of this machine, is gone (killed mid-write,
    its own clean-up never ran); those of a live writer stay. Returns the count removed."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        writer = _writer(entry.name)
        if writer is None or _alive(writer):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        except OSError:
            continue  # another process removed it first
    return removed


def _writer(name: str) -> int | None:
    """The pid in a temporary name ``.<name>.<pid>.<random>.part`` (or ``.old``); None for any other name."""
    parts = name.split(".")
    if not name.startswith(".") or parts[-1] not in ("part", "old") or len(parts) < 5 or not parts[-3].isdigit():
        return None
    return int(parts[-3])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True
