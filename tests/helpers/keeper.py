"""The real keeper (workers/service/keeper.py) in a thread, for a test's prefix: what admits jobs to the stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from config import Settings
from workers.protocol.keys import Keys
from workers.service.keeper import Keeper

BLOCK = 0.1
"""Seconds the test keeper's BLMOVE waits: short, so a test's teardown does not wait for it."""


@contextmanager
def keeping(settings: Settings) -> Iterator[Keeper]:
    """A keeper running for ``settings``' prefix until the block ends."""
    keeper = Keeper(settings, block=BLOCK)
    thread = threading.Thread(target=keeper.run, daemon=True, name="keeper")
    thread.start()
    try:
        yield keeper
    finally:
        keeper.stop()
        thread.join(timeout=10)
        keeper.redis.close()


def queued_count(r: redis.Redis, keys: Keys) -> int:
    """Jobs queued in any form: on the inbox, being admitted, or entries of the stream. Unchanged by an admission
    (each step moves an id or adds its entry atomically), so a test may count while the keeper runs."""
    pipe = r.pipeline(transaction=True)
    pipe.llen(keys.inbox)
    pipe.llen(keys.admitting)
    pipe.xlen(keys.jobs)
    return sum(int(n) for n in pipe.execute())
