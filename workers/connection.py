"""Open Redis clients from settings; library errors are translated at this boundary."""

from __future__ import annotations

import redis

from config import RedisSettings


def connect(settings: RedisSettings, timeout: float = 5.0) -> redis.Redis:
    """A client that decodes replies to str; short timeouts so an outage is noticed quickly."""
    return redis.Redis.from_url(
        settings.url,
        password=settings.password or None,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout + 10.0,  # longer than any XREADGROUP BLOCK
        health_check_interval=15,
    )


REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
"""Errors that mean Redis is unreachable or not ready, as opposed to a bad command."""
