"""Result stores: where a finished mosaic goes so the web host can serve it."""

from __future__ import annotations

import os
import posixpath
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import paramiko

from config import Settings
from config.settings import ResultSettings
from workers.errors import TransientError


class ResultStore(Protocol):
    def put(self, job_id: str, data: bytes, ext: str) -> str:
        """Store a finished mosaic; the file name the web host serves it under."""


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


class StoreUnavailable(TransientError):
    """The result store cannot be reached (SFTP connection, auth, host key); the job is retried."""


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
            self._client, self._sftp = client, client.open_sftp()
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            raise StoreUnavailable(f"sftp {s.user}@{s.host}:{s.port}: {exc.__class__.__name__}: {exc}") from exc
        return self._sftp

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None


def make_store(settings: Settings) -> ResultStore:
    """The store that ``results.store`` names: local (paths.media) or sftp (the web host's media folder)."""
    if settings.results.store == "sftp":
        return SftpResultStore(settings.results)
    return LocalResultStore(settings.paths.media)


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
