"""Uploaded images kept on the web host and handed to workers as signed, expiring URLs."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from urllib.parse import urlencode

from workers.protocol.files import write_atomic

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[a-z]{2,4}")
_JOB = re.compile(r"[A-Za-z0-9_-]{8,64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class InputStore:
    """Files under ``uploads/<job id>/``; names are ours (never the client's file names)."""

    def __init__(self, folder: str, signing_key: str, public_url: str, ttl: int) -> None:
        self.folder = Path(folder)
        self.key = signing_key.encode()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def save(self, job_id: str, name: str, data: bytes) -> str:
        """Store the bytes and return the signed URL a worker fetches them from."""
        write_atomic(self.folder / job_id / name, data)  # a worker fetches it from another process
        return self.url(job_id, name)

    def url(self, job_id: str, name: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.ttl)
        query = urlencode({"exp": expires, "sig": self._sign(job_id, name, expires)})
        return f"{self.public_url}/inputs/{job_id}/{name}?{query}"

    def path_if_valid(self, job_id: str, name: str, expires: str, signature: str) -> Path | None:
        """The file behind a signed URL, or None when the signature, expiry or name is wrong."""
        checks = ((_NAME, name), (_JOB, job_id), (_EXPIRES, expires), (_SIGNATURE, signature))
        if not all(pattern.fullmatch(value) for pattern, value in checks):
            return None
        if int(expires) < time.time():
            return None
        if not hmac.compare_digest(self._sign(job_id, name, int(expires)), signature):
            return None
        path = self.folder / job_id / name
        return path if path.is_file() else None

    def _sign(self, job_id: str, name: str, expires: int) -> str:
        message = f"{job_id}/{name}:{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()
