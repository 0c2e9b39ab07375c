"""Signed input URLs: ``<public url>/inputs/<job id>/<name>?exp=…&sig=…``, an HMAC of the job, name and expiry.

The web host signs them for uploads (web/inputs.py) and checks them when a worker fetches one; ``tessera retry``
signs a dead letter's again (workers/cli/deadletters.py). Both use this one signer, so a URL means the same thing
to both: it names one file of one job, and its signature proves the web host's key made it."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from config import WebSettings

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[a-z]{2,4}")
"""An input's file name (ours, never the client's)."""
JOB = re.compile(r"[A-Za-z0-9_-]{8,64}")
EXPIRES = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")
_PATH = re.compile(r"/inputs/(?P<job>[^/]+)/(?P<name>[^/]+)")


class UrlSigner:
    """Makes and checks the signature of an input URL; knows no files and no Redis."""

    def __init__(self, signing_key: str, public_url: str, ttl: int) -> None:
        self.key = signing_key.encode()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    @classmethod
    def from_settings(cls, web: WebSettings) -> UrlSigner:
        return cls(web.signing_key, web.public_url, web.input_url_ttl)

    def url(self, job_id: str, name: str, now: float | None = None) -> str:
        """The URL of one input, valid for ``ttl`` seconds from ``now``."""
        expires = int((time.time() if now is None else now) + self.ttl)
        return f"{self.public_url}/inputs/{job_id}/{name}?{self._query(job_id, name, expires)}"

    def authentic(self, job_id: str, name: str, expires: str, signature: str) -> bool:
        """Whether this key signed exactly this job, name and expiry (expired or not: see :meth:`expired`)."""
        checks = ((NAME, name), (JOB, job_id), (EXPIRES, expires), (SIGNATURE, signature))
        if not all(pattern.fullmatch(value) for pattern, value in checks):
            return False
        return hmac.compare_digest(self.sign(job_id, name, int(expires)), signature)

    @staticmethod
    def expired(expires: str, now: float | None = None) -> bool:
        return int(expires) < (time.time() if now is None else now)

    def resign(self, url: str, now: float | None = None) -> str:
        """``url`` with a fresh expiry and signature when this key signed it (however long ago); else unchanged.

        The scheme, host and path stay as they were: only the URLs the web host made are renewed."""
        parts = urlsplit(url)
        match = _PATH.fullmatch(parts.path)
        query = parse_qs(parts.query)
        if match is None or len(query.get("exp", ())) != 1 or len(query.get("sig", ())) != 1:
            return url
        job_id, name = match["job"], match["name"]
        if not self.authentic(job_id, name, query["exp"][0], query["sig"][0]):
            return url
        expires = int((time.time() if now is None else now) + self.ttl)
        return urlunsplit(parts._replace(query=self._query(job_id, name, expires)))

    def sign(self, job_id: str, name: str, expires: int) -> str:
        message = f"{job_id}/{name}:{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def _query(self, job_id: str, name: str, expires: int) -> str:
        return urlencode({"exp": expires, "sig": self.sign(job_id, name, expires)})
