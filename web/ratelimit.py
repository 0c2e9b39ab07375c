"""Per-client limits kept in Redis: submissions per minute, jobs not yet finished, failed admin logins.

Who the client is comes from web/clients.py `client_id`, the one place that decides it."""

from __future__ import annotations

import time
from typing import cast

import redis

from workers.protocol.keys import Keys
from workers.protocol.status import FINAL

WINDOW = 60


def rate_exceeded(r: redis.Redis, keys: Keys, client: str, per_minute: int) -> int:
    """Seconds until the client may submit again, or 0 (fixed one-minute windows)."""
    now = time.time()
    key = keys.rate(client, int(now // WINDOW))
    pipe = r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW * 2)
    count = int(pipe.execute()[0])
    return max(1, int(WINDOW - now % WINDOW)) if count > per_minute else 0


def login_blocked(r: redis.Redis, keys: Keys, client: str, per_client: int, account: str | None = None,
                  per_account: int = 0) -> int:
    """Seconds until this client may try to log in (to ``account``) again, or 0.

    Blocked after ``per_client`` failures of the client (any account) or ``per_account`` failures on the
    account (from any client) in this window: many addresses guessing one account lock that account only."""
    now = time.time()
    window = int(now // WINDOW)
    pipe = r.pipeline(transaction=False)
    pipe.hget(keys.login_failures(window), client)
    if account is not None:
        pipe.hget(keys.login_account_failures(window), account)
    by_client, *by_account = (int(cast(str | None, count) or 0) for count in pipe.execute())
    blocked = by_client >= per_client or any(count >= per_account for count in by_account)
    return max(1, int(WINDOW - now % WINDOW)) if blocked else 0


def login_failed(r: redis.Redis, keys: Keys, client: str, account: str | None = None) -> None:
    """Count one failed login of the client (and on the account) in this window (one hash each per window)."""
    window = int(time.time() // WINDOW)
    counts = [(keys.login_failures(window), client)]
    if account is not None:
        counts.append((keys.login_account_failures(window), account))
    pipe = r.pipeline(transaction=True)
    for key, name in counts:
        pipe.hincrby(key, name, 1)
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
