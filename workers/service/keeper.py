"""The keeper: the one process that writes the jobs stream (supervisord's `keeper`, on the host of the Redis).

The web tier and the reconcilers only LPUSH a job's id on the inbox; the keeper admits them to the stream
(lua/admit.lua) as they come (BLMOVE wakes it at once), trims the entries the workers have acknowledged
(lua/trim.lua: workers may ack but not delete), creates the consumer group, and loads this release's Redis
functions as admin when they are missing (a fresh Redis, or one whose data was lost). So neither a role that
faces users nor one on a worker node can trim or rewrite the queue (workers/service/redis_server.py grants).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from config import Settings
from workers.protocol import backlog, scripts, stream
from workers.protocol.connection import connect, run_until_stopped
from workers.protocol.keys import GROUP, Keys

log = logging.getLogger("tessera.keeper")

ADMIT_BATCH = 500
"""Most ids one admit call takes from the inbox besides the one BLMOVE woke it with: bounds a call's time."""
TRIM_EVERY = 1.0
"""Seconds between trims of acknowledged entries (each trim is one call, however many entries go)."""
PRUNE_EVERY = 30.0
"""Seconds between prunes of the backlog index (workers/protocol/backlog.py): one read of each member's state, so
rarer than trims; readers skip closed ids meanwhile, so a late prune costs reads, never a wrong figure."""
CHECK_EVERY = 10.0
"""Seconds between checks that the functions and the group are still there (a Redis that lost its data)."""


class Keeper:
    def __init__(self, settings: Settings, block: float = 1.0) -> None:
        self.settings, self.keys, self.block = settings, Keys(settings.redis.prefix), block
        self.role = settings.redis.own_or_admin("keeper")
        self.redis = connect(settings.redis, self.role, timeout=block + 5.0)
        self.stop_requested = threading.Event()
        self._checked = self._trimmed = self._pruned = float("-inf")

    def run(self) -> int:
        run_until_stopped(self.stop_requested, self.step, log, on_outage=self._look_again)
        return 0

    def _look_again(self) -> None:
        self._checked = float("-inf")  # after an outage, look again whether the Redis lost its data

    def step(self) -> int:
        """One round: make sure of the functions and group, wait for an id, admit, and trim when due."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY:
            self.prepare()
            self._checked = now
        moved = self.redis.blmove(self.keys.inbox, self.keys.admitting,
                                  self.block, "RIGHT", "LEFT")  # type: ignore[arg-type]  # seconds, fractions too
        added = self.admit() if moved is not None or self.redis.exists(self.keys.admitting) else 0
        if now - self._trimmed >= TRIM_EVERY:
            self.trim()
            self._trimmed = now
        if now - self._pruned >= PRUNE_EVERY:
            backlog.prune(self.redis, self.keys)  # the backlog index loses the ids of finished and deleted jobs
            self._pruned = now
        return added

    def prepare(self) -> None:
        if not scripts.is_loaded(self.redis):
            if self.role == "admin":
                scripts.load(self.redis)
            else:
                with connect(self.settings.redis, "admin") as admin:
                    scripts.load(admin)
            log.info("loaded the Redis functions %s", scripts.LIBRARY)
        stream.ensure_group(self.redis, self.keys)
        self.redis.set(self.keys.epoch, repr(time.time()), nx=True)  # once per Redis data set: web/retention.py

    def admit(self) -> int:
        return int(scripts.call(self.redis, scripts.ADMIT, 3, self.keys.inbox, self.keys.admitting, self.keys.jobs,
                                self.keys.job_prefix, ADMIT_BATCH, GROUP))

    def trim(self) -> int:
        return int(scripts.call(self.redis, scripts.TRIM, 1, self.keys.jobs, GROUP))

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: self.stop_requested.set())

    def stop(self) -> None:
        self.stop_requested.set()
