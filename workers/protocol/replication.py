"""With Sentinel (``redis.ha``): a write counts once a replica holds it, so a failover cannot lose it.

Redis's WAIT counts the replicas that acknowledged the writes *of the connection it runs on*. A shared client
takes any idle connection of its pool for each command, so the write and its WAIT must run on one connection:
:func:`pinned` gives a client bound to one, for the write and the WAIT after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from config import RedisSettings
from config.errors import TesseraError


class NotReplicated(TesseraError, redis.RedisError):
    """Fewer replicas than ``redis.min_replicas_acked`` acknowledged a write within ``redis.wait_timeout_ms``.

    The write is on the primary (it may well survive); the caller answers as for an outage: a 503 to a client,
    a retry with backoff in a loop (``REDIS_DOWN`` includes it)."""

    code = "not_replicated"

    def __init__(self, acked: int, wanted: int) -> None:
        super().__init__(f"{acked} of {wanted} replicas acknowledged the write in time")
        self.acked, self.wanted = acked, wanted


def replicated(r: redis.Redis, settings: RedisSettings) -> None:
    """WAIT for ``min_replicas_acked`` replicas to hold this connection's writes; no-op without Sentinel.

    ``r`` must be the client (:func:`pinned`) that made the writes, else WAIT may count another connection's."""
    wanted = settings.min_replicas_acked
    if not settings.ha or wanted <= 0:
        return
    check(int(r.wait(wanted, settings.wait_timeout_ms)), settings)


def check(acked: int, settings: RedisSettings) -> None:
    """Raise :class:`NotReplicated` for a WAIT's reply (run in a pipeline of its own) below the minimum."""
    if settings.ha and acked < settings.min_replicas_acked:
        raise NotReplicated(acked, settings.min_replicas_acked)


class _OneConnection:
    """A pool of one connection borrowed from ``pool``: a client on it sends every command and pipeline over
    that connection (single_connection_client does not cover pipelines). Anything else is the real pool's."""

    def __init__(self, pool: redis.ConnectionPool, connection: Any) -> None:
        self._pool, self._connection = pool, connection

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        return self._connection

    def release(self, connection: Any) -> None:
        """Kept until :func:`pinned` ends, when the real pool gets it back."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


@contextmanager
def pinned(r: redis.Redis, settings: RedisSettings) -> Iterator[redis.Redis]:
    """``r`` itself without Sentinel (nothing changes), else a client bound to one connection of ``r``'s pool,
    for one thread, for a write and its :func:`replicated`."""
    if not settings.ha:
        yield r
        return
    pool = r.connection_pool
    connection = pool.get_connection()
    try:
        yield redis.Redis(connection_pool=_OneConnection(pool, connection))  # type: ignore[arg-type]
    finally:
        pool.release(connection)
