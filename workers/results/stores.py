"""Result stores: where a finished mosaic goes so the web host can serve it."""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import paramiko

from config import Settings
from config.settings import ResultSettings
from workers.protocol.errors import StoreUnavailable
from workers.protocol.files import (
    RESULT_FOLDER_SUFFIX,
    remove_entries,
    remove_orphans,
    result_entries,
    sync_folder,
    temp_prefix,
    write_atomic,
)

FOLDER_SUFFIX = RESULT_FOLDER_SUFFIX
"""A job's folder of extra files (the zoomable view) is ``<id>.dz``."""
REPLACE_TRIES = 3
"""Tries to swap a folder into place when another run of the same job swaps at the same moment."""

Files = Mapping[str, bytes]
"""Files of a folder: relative ``/``-separated path → bytes."""


class ResultStore(Protocol):
    def put(self, job_id: str, data: bytes, ext: str) -> str:
        """Store a finished mosaic; the file name the web host serves it under."""

    def put_folder(self, job_id: str, files: Files) -> str:
        """Store a folder of files as a whole (``<id>.dz``); its name, as the web host serves it."""

    def remove_orphans(self) -> int:
        """Remove what a store cut short by a kill left behind, where that can be told; the count removed."""

    def remove(self, job_id: str) -> int:
        """Remove a job's result and its folder (a job canceled or deleted while it was stored); the count of
        entries removed."""


def _relative_parts(path: str) -> tuple[str, ...]:
    """The parts of a relative path inside a folder; anything that could leave it is refused."""
    parts = tuple(path.split("/"))
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise ValueError(f"not a plain relative path: {path!r}")
    return parts


def _folders(files: Files) -> list[str]:
    """Every folder the files need, parents before children."""
    found = {"/".join(_relative_parts(name)[:depth]) for name in files
             for depth in range(1, len(_relative_parts(name)))}
    return sorted(found, key=lambda folder: (folder.count("/"), folder))


class LocalResultStore:
    """Results in the web host's media folder on this machine: temporary name, then rename.

    A disk that is full, read-only or failing (any ``OSError``) is ``StoreUnavailable``, retried as the SFTP
    store's errors are; every file and folder is synced before its name is returned, so before the note."""

    def __init__(self, media_dir: str) -> None:
        self.media_dir = Path(media_dir)

    def remove_orphans(self) -> int:
        """Temporary files and folders of writers on this machine that were killed mid-store."""
        return remove_orphans(self.media_dir)

    def remove(self, job_id: str) -> int:
        with self._unavailable_on_oserror(job_id):
            return remove_entries(self.media_dir, result_entries(job_id))

    def put(self, job_id: str, data: bytes, ext: str) -> str:
        """Store atomically; a second run of the same job replaces the file with an equal one."""
        name = f"{job_id}.{ext}"
        with self._unavailable_on_oserror(name):
            write_atomic(self.media_dir / name, data)
        return name

    @contextmanager
    def _unavailable_on_oserror(self, name: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreUnavailable(f"media folder {self.media_dir}: cannot store {name}: "
                                   f"{exc.__class__.__name__}: {exc}") from exc

    def put_folder(self, job_id: str, files: Files) -> str:
        """Write a temporary folder in the media folder, then rename it into place (an old one is moved away
        first, then removed: a rename cannot replace a folder that has files)."""
        name = job_id + FOLDER_SUFFIX
        with self._unavailable_on_oserror(name):
            self._put_folder(job_id, name, files)
        return name

    def _put_folder(self, job_id: str, name: str, files: Files) -> None:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(job_id), suffix=".part", dir=self.media_dir))
        try:
            for folder in _folders(files):
                (tmp / folder).mkdir(mode=0o755)
            for rel, data in files.items():
                _write_synced(tmp / rel, data)
            for folder in (*_folders(files), "."):  # the names inside, before the folder is renamed in
                sync_folder(tmp / folder)
            os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
            _swap_folder(tmp, self.media_dir / name)
            sync_folder(self.media_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _write_synced(path: Path, data: bytes) -> None:
    """A new file inside a temporary folder (renamed into place whole later), on disk before that rename."""
    with path.open("xb") as out:  # umask gives 0644 at most, as the web host needs
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _swap_folder(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; a folder already there is moved away first, then removed."""
    for attempt in range(REPLACE_TRIES):
        away = final.with_name(f"{temp_prefix(final.name)}{secrets.token_hex(4)}.old")
        try:
            os.rename(final, away)
            old: Path | None = away
        except FileNotFoundError:
            old = None
        try:
            os.rename(tmp, final)
            return
        except OSError:
            if attempt + 1 == REPLACE_TRIES:  # another run of the job keeps putting its own in place
                raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


class SftpResultStore:
    """Results in the web host's media folder over SFTP: temporary name, then an atomic rename.

    The web host's key must be in ``known_hosts`` (never added on the fly); one connection is kept and
    opened again after a failure.
    """

    def __init__(self, settings: ResultSettings) -> None:
        self.settings = settings
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()

    def remove_orphans(self) -> int:
        """Nothing here: the writers' processes live on other machines; the web host's sweep removes what a
        killed writer left once it expires (jobs.result_ttl)."""
        return 0

    def remove(self, job_id: str) -> int:
        """The job's entries in the web host's media folder, over SFTP (a folder with all it holds)."""
        removed = 0
        with self._lock:
            sftp = self._connect()
            try:
                for name in result_entries(job_id):
                    path = posixpath.join(self.settings.path, name)
                    try:
                        mode = sftp.lstat(path).st_mode or 0
                    except FileNotFoundError:
                        continue
                    if stat.S_ISDIR(mode):
                        _remove_tree(sftp, path)
                    else:
                        sftp.remove(path)
                    removed += 1
            except (OSError, paramiko.SSHException) as exc:
                self.close()
                raise StoreUnavailable(f"sftp {self.settings.host}: cannot remove the files of {job_id}: {exc}") \
                    from exc
        return removed

    def put(self, job_id: str, data: bytes, ext: str) -> str:
        name = f"{job_id}.{ext}"
        final = posixpath.join(self.settings.path, name)
        tmp = posixpath.join(self.settings.path, f".{job_id}.{secrets.token_hex(4)}.part")
        with self._lock:
            sftp = self._connect()
            try:
                with sftp.open(tmp, "wb") as out:
                    out.set_pipelined(True)
                    out.write(data)
                sftp.chmod(tmp, 0o644)
                sftp.posix_rename(tmp, final)
            except (OSError, paramiko.SSHException) as exc:
                self.close()
                raise StoreUnavailable(f"sftp {self.settings.host}: cannot store {name}: {exc}") from exc
        return name

    def put_folder(self, job_id: str, files: Files) -> str:
        """Write a temporary folder next to the results (pipelined writes), then posix-rename it into place;
        an old one is renamed away first, then removed."""
        name = job_id + FOLDER_SUFFIX
        root = self.settings.path
        tmp = posixpath.join(root, f".{job_id}.{secrets.token_hex(4)}.part")
        with self._lock:
            sftp = self._connect()
            try:
                sftp.mkdir(tmp, 0o755)
                for folder in _folders(files):
                    sftp.mkdir(posixpath.join(tmp, folder), 0o755)
                for rel, data in files.items():
                    with sftp.open(posixpath.join(tmp, rel), "wb") as out:  # sftp-server's umask: 0644
                        out.set_pipelined(True)
                        out.write(data)
                self._swap(sftp, tmp, posixpath.join(root, name))
            except (OSError, paramiko.SSHException) as exc:
                self.close()  # what is left of tmp is swept once it expires
                raise StoreUnavailable(f"sftp {self.settings.host}: cannot store {name}: {exc}") from exc
        return name

    def _swap(self, sftp: paramiko.SFTPClient, tmp: str, final: str) -> None:
        old = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.{secrets.token_hex(4)}.old")
        try:
            sftp.posix_rename(final, old)
        except FileNotFoundError:
            old = ""
        sftp.posix_rename(tmp, final)
        if old:
            _remove_tree(sftp, old)

    def _connect(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        s = self.settings
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(s.known_hosts)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(s.host, port=s.port, username=s.user, key_filename=s.key_file, timeout=s.timeout,
                           banner_timeout=s.timeout, auth_timeout=s.timeout, allow_agent=False,
                           look_for_keys=False)
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:  # every SFTP request after this waits at most s.timeout for its answer
                channel.settimeout(s.timeout)
            self._client, self._sftp = client, sftp
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            raise StoreUnavailable(f"sftp {s.user}@{s.host}:{s.port}: {exc.__class__.__name__}: {exc}") from exc
        return self._sftp

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None


def _remove_tree(sftp: paramiko.SFTPClient, path: str) -> None:
    """Remove a folder over SFTP: files, then the emptied folders."""
    for entry in sftp.listdir_attr(path):
        child = posixpath.join(path, entry.filename)
        if stat.S_ISDIR(entry.st_mode or 0):
            _remove_tree(sftp, child)
        else:
            sftp.remove(child)
    sftp.rmdir(path)


def make_store(settings: Settings) -> ResultStore:
    """The store that ``results.store`` names: local (paths.media) or sftp (the web host's media folder)."""
    if settings.results.store == "sftp":
        return SftpResultStore(settings.results)
    return LocalResultStore(settings.paths.media)
