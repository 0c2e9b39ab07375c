"""Open Redis clients from settings; library errors are translated at this boundary."""

from __future__ import annotations

import redis

from config import RedisSettings


def connect(settings: RedisSettings, role: str, timeout: float = 5.0) -> redis.Redis:
    """A client for one role (web, worker, orchestrator, admin); short timeouts so an outage is noticed quickly."""
    username, password = settings.credentials(role)
    return redis.Redis.from_url(
        settings.url,
        username=username,
        password=password,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout + 10.0,  # longer than any XREADGROUP BLOCK
        health_check_interval=15,
    )


REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
"""Errors that mean Redis is unreachable or not ready, as opposed to a bad command."""
