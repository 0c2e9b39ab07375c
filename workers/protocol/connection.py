"""Open Redis clients from settings; library errors are translated at this boundary."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from config import RedisSettings
from workers.protocol.backoff import backoff


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


def run_until_stopped(stop: threading.Event, step: Callable[[], object], log: logging.Logger, pause: float = 0.0,
                      on_outage: Callable[[], None] | None = None) -> None:
    """Run ``step`` until ``stop`` is set, ``pause`` seconds apart; a Redis outage is waited out with backoff
    (and told to ``on_outage``), never the end: the loop of the services on the Redis host (keeper, webhooks)."""
    attempt = 0
    while not stop.is_set():
        try:
            step()
            attempt = 0
            if pause:
                stop.wait(pause)
        except REDIS_DOWN as exc:
            log.warning("redis unavailable: %s; trying again", exc)
            if on_outage is not None:
                on_outage()
            stop.wait(backoff(attempt))
            attempt += 1
