"""Open Redis clients from settings; library errors are translated at this boundary."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from config import RedisSettings
from workers.protocol.backoff import backoff
from workers.protocol.replication import NotReplicated

SENTINEL_CLIENT = "client"
"""The Sentinels' user for our processes (and KEDA): it may ask which Redis is the primary, and nothing else; a
failover, SENTINEL SET or REMOVE is for the Sentinels' own `sentinel` user (workers/service/redis_server.py)."""


def connect(settings: RedisSettings, role: str, timeout: float = 5.0) -> redis.Redis:
    """A client for one role (web, worker, orchestrator, admin); short timeouts so an outage is noticed quickly.

    With ``redis.sentinels`` the client asks the Sentinels for the primary of ``redis.master_name`` on every new
    connection, so after a failover (a connection error, or a READONLY reply from a demoted primary, which drops
    the connection) the next try reaches the new primary: no restart."""
    username, password = settings.credentials(role)
    options = {"username": username, "password": password, "decode_responses": True,
               "socket_connect_timeout": timeout,
               "socket_timeout": timeout + 10.0,  # longer than any XREADGROUP BLOCK
               "health_check_interval": 15}
    if not settings.ha:
        return redis.Redis.from_url(settings.url, **options)
    sentinel_user, sentinel_password = sentinel_login(settings)
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs={  # type: ignore[no-untyped-call]
        "username": sentinel_user, "password": sentinel_password,
        "socket_connect_timeout": timeout, "socket_timeout": timeout})
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.master_name, db=_db(settings.url), **options)
    return client


def sentinel_login(settings: RedisSettings) -> tuple[str | None, str | None]:
    """(username, password) our processes log into a Sentinel with: `client`'s, else none."""
    password = settings.sentinel_client_password or None
    return (SENTINEL_CLIENT if password else None), password


def _db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError,
              MasterNotFoundError, NotReplicated)
"""Errors that mean Redis is unreachable or not ready, as opposed to a bad command. With Sentinel also a failover
under way: no primary known yet (MasterNotFoundError, a ConnectionError), a demoted primary's READONLY, and a
write no replica acknowledged in time (NotReplicated)."""


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
