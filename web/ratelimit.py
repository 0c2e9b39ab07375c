"""Per-client limits kept in Redis: submissions per minute, jobs not yet finished, failed admin logins."""

from __future__ import annotations

import hashlib
import time
from typing import cast

import redis

from workers.protocol.keys import Keys
from workers.protocol.status import FINAL

WINDOW = 60


def client_id(remote_addr: str) -> str:
    """A short hash of the peer address: enough to count by, nothing to read back."""
    return hashlib.sha256(remote_addr.encode()).hexdigest()[:16]


def rate_exceeded(r: redis.Redis, keys: Keys, client: str, per_minute: int) -> int:
    """Seconds until the client may submit again, or 0 (fixed one-minute windows)."""
    now = time.time()
    key = keys.rate(client, int(now // WINDOW))
    pipe = r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW * 2)
    count = int(pipe.execute()[0])
    return max(1, int(WINDOW - now % WINDOW)) if count > per_minute else 0


def login_blocked(r: redis.Redis, keys: Keys, client: str, max_failures: int) -> int:
    """Seconds until the client may try to log in again after ``max_failures`` in this window, or 0."""
    now = time.time()
    failures = int(cast(str | None, r.hget(keys.login_failures(int(now // WINDOW)), client)) or 0)
    return max(1, int(WINDOW - now % WINDOW)) if failures >= max_failures else 0


def login_failed(r: redis.Redis, keys: Keys, client: str) -> None:
    """Count one failed login of the client in this window (one hash per window, so HGET can read it)."""
    key = keys.login_failures(int(time.time() // WINDOW))
    pipe = r.pipeline(transaction=True)
    pipe.hincrby(key, client, 1)
    pipe.expire(key, WINDOW * 2)
    pipe.execute()


def active_jobs(r: redis.Redis, keys: Keys, client: str) -> int:
    """The client's jobs still queued or running; finished and expired ones are forgotten here."""
    key = keys.client_jobs(client)
    job_ids = sorted(cast(set[str], r.smembers(key)))
    if not job_ids:
        return 0
    pipe = r.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.job(job_id), "state")
    finished = [job for job, state in zip(job_ids, pipe.execute(), strict=True) if state in (None, *FINAL)]
    if finished:
        r.srem(key, *finished)
    return len(job_ids) - len(finished)


def remember_job(r: redis.Redis, keys: Keys, client: str, job_id: str, ttl: int) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.sadd(keys.client_jobs(client), job_id)
    pipe.expire(keys.client_jobs(client), ttl)
    pipe.execute()
