"""Uploaded images kept on the web host and handed to workers as signed, expiring URLs.

An input outlives its URL's expiry while its job still needs it: a job waiting in a long backlog, or running,
is served its inputs on an authentic but expired signature, and the sweep keeps its folder; once the job is
final (or gone) and the TTL has passed, the URL is refused and the folder removed. A dead letter's folder is
kept while its status hash lasts, so that ``tessera retry`` (which signs its URLs again) can run it."""

from __future__ import annotations

import logging
from pathlib import Path

import redis

from config import Settings
from web.replies import queue_down
from workers.protocol.errors import DEAD_LETTER
from workers.protocol.files import remove_entries, sweep, write_atomic
from workers.protocol.keys import Keys
from workers.protocol.signing import UrlSigner
from workers.protocol.status import JobState

log = logging.getLogger("tessera.web")

LIVE = (JobState.QUEUED.value, JobState.RUNNING.value)
"""States of a job that will still fetch its inputs."""


class InputStore:
    """Files under ``uploads/<job id>/``; names are ours (never the client's file names).

    Without :meth:`track` (no Redis) a URL is good until its expiry and the sweep goes by age alone."""

    def __init__(self, folder: str, signing_key: str, public_url: str, ttl: int) -> None:
        self.folder = Path(folder)
        self.signer = UrlSigner(signing_key, public_url, ttl)
        self.public_url = self.signer.public_url
        self.ttl = ttl
        self._redis: redis.Redis | None = None
        self._keys = Keys()

    @classmethod
    def from_settings(cls, settings: Settings, r: redis.Redis) -> InputStore:
        """The uploads folder as the web host keeps it, tracking its jobs' states in ``r``."""
        inputs = cls(settings.paths.uploads, settings.web.signing_key, settings.web.public_url,
                     settings.web.input_url_ttl)
        inputs.track(r, Keys(settings.redis.prefix))
        return inputs

    def track(self, r: redis.Redis, keys: Keys) -> None:
        """Read job states from ``r`` so a job that is not final keeps its inputs past the TTL."""
        self._redis, self._keys = r, keys

    def save(self, job_id: str, name: str, data: bytes) -> str:
        """Store the bytes and return the signed URL a worker fetches them from."""
        write_atomic(self.folder / job_id / name, data)  # a worker fetches it from another process
        return self.url(job_id, name)

    def url(self, job_id: str, name: str, now: float | None = None) -> str:
        return self.signer.url(job_id, name, now)

    def path_if_valid(self, job_id: str, name: str, expires: str, signature: str) -> Path | None:
        """The file behind a signed URL, or None when the signature or name is wrong, or the URL has expired
        and its job no longer needs it (one HGET, only for an authentic expired URL).

        Raises an HTTP 503 when that job's state cannot be read, so the worker tries again later."""
        if not self.signer.authentic(job_id, name, expires, signature):
            return None
        if self.signer.expired(expires) and not self._still_running(job_id):
            return None
        path = self.folder / job_id / name
        return path if path.is_file() else None

    def remove(self, job_id: str) -> int:
        """Remove a job's uploads now (the job was deleted); 1 if it had a folder, else 0."""
        return remove_entries(self.folder, [job_id])

    def sweep(self, now: float | None = None) -> int:
        """Remove the uploads past the TTL whose jobs no longer need them; the count of files removed."""
        return sweep(str(self.folder), self.ttl, now, keep=self.kept if self._redis is not None else None)

    def kept(self, job_ids: list[str]) -> set[str]:
        """Of these upload folders (past the TTL), the ones to keep: job queued or running, or dead-lettered
        (``tessera retry`` may run it again); all of them while Redis cannot be read. One round trip."""
        if self._redis is None:
            return set()
        try:
            pipe = self._redis.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hmget(self._keys.job(job_id), ["state", "error_code"])
            replies = pipe.execute()
        except redis.RedisError as exc:
            log.warning("keeping every upload this pass: job states unreadable (%s)", exc)
            return set(job_ids)
        return {job_id for job_id, (state, code) in zip(job_ids, replies, strict=True)
                if state in LIVE or (state == JobState.FAILED.value and code == DEAD_LETTER)}

    def _still_running(self, job_id: str) -> bool:
        if self._redis is None:
            return False
        try:
            return self._redis.hget(self._keys.job(job_id), "state") in LIVE
        except redis.RedisError as exc:
            log.warning("input of job %s: its state is unreadable (%s)", job_id, exc)
            raise queue_down() from exc

    def _sign(self, job_id: str, name: str, expires: int) -> str:
        return self.signer.sign(job_id, name, expires)

