"""A worker's background beat: its liveness record in Redis, and the claim on the job it holds.

Kept out of the pipeline (STYLE 14): the build only calls ``progress()``. The thread
writes ``progress_at`` from the main thread's last progress, so a hung build shows up
as stale progress even though this thread keeps beating; a stopped or wedged process
stops beating altogether. Both are for the watchdog to judge.

The claim on the held entry is refreshed only while this consumer still holds it (never taken
from another) and while the build makes progress: once ``progress()`` has not been called for
``stall`` seconds the refreshes stop, so XAUTOCLAIM hands the job to another worker after
``queue.claim_idle`` even though this thread lives on. An error in a beat is logged and waited
out with backoff; it never ends the thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import redis

from workers.protocol import stream
from workers.protocol.backoff import backoff
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.keys import HEARTBEAT_TTL, Keys
from workers.protocol.states import READY, WorkerState

log = logging.getLogger("tessera.heartbeat")


@dataclass
class Holding:
    """What the worker is doing now; written by the main thread, read by the beat."""

    job_id: str = ""
    entry_id: str = ""
    progress_at: float = field(default_factory=time.time)
    """Epoch seconds of the build's last progress (for the watchdog, in the beat record)."""
    progressed: float = field(default_factory=time.monotonic)
    """The same moment on the monotonic clock, for the claim's stall check."""


class Heartbeat(threading.Thread):
    def __init__(self, r: redis.Redis, keys: Keys, node: str, consumer: str, interval: float,
                 claim_every: float, stall: float = float("inf")) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.r, self.keys, self.node, self.consumer = r, keys, node, consumer
        self.interval, self.claim_every, self.stall = interval, claim_every, stall
        self.holding = Holding()
        self.state = WorkerState.STARTING
        self.stopping = threading.Event()
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first reading only primes the counter
        self._last_claim = 0.0
        self._last_beat = 0.0
        self._failures = 0
        self._stalled = False
        self.lost = False
        """True once the held entry is no longer this consumer's (finished, or claimed by another worker)."""

    def hold(self, job_id: str, entry_id: str) -> None:
        self.holding = Holding(job_id=job_id, entry_id=entry_id)
        self.state = WorkerState.BUSY
        self._last_claim = time.monotonic()
        self.lost = self._stalled = False

    def release(self) -> None:
        self.holding = Holding()
        self.state = WorkerState.IDLE

    def progress(self) -> None:
        holding = self.holding
        holding.progress_at, holding.progressed = time.time(), time.monotonic()

    def run(self) -> None:
        # Wake often enough for the claim refresh; write the beat itself every `interval`. After a failed
        # beat, wait at least the backoff; nothing that goes wrong in a beat ends the thread.
        tick = min(self.interval, self.claim_every)
        while not self.stopping.wait(self._next_wait(tick)):
            ok = self._guarded(self.refresh_claim)
            if time.monotonic() - self._last_beat >= self.interval:
                ok = self._guarded(self.beat) and ok
            self._failures = 0 if ok else self._failures + 1

    def _guarded(self, step: Callable[[], None]) -> bool:
        """Run one step of a beat; any error is logged (an outage quietly) and reported as False."""
        try:
            step()
            return True
        except REDIS_DOWN:
            return False  # the main loop reports outages; beats resume when Redis is back
        except Exception:  # a bug or a refused command must not end the thread: the next beat tries again
            log.exception("heartbeat of %s: %s failed (%d in a row); going on", self.consumer, step.__name__,
                          self._failures + 1)
            return False

    def _next_wait(self, tick: float) -> float:
        """The usual tick; after failed beats a backoff, capped so a claim is still refreshed within claim_idle."""
        if not self._failures:
            return tick
        return max(tick, backoff(self._failures - 1, base=tick, cap=max(tick, self.claim_every / 2)))

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.r.delete(self.key)
            self.r.zrem(self.keys.ready_workers, self.member)
        except REDIS_DOWN:
            pass

    @property
    def key(self) -> str:
        return self.keys.worker(self.node, os.getpid())

    @property
    def member(self) -> str:
        """This worker in the ready set (Keys.ready_workers)."""
        return f"{self.node}:{os.getpid()}"

    def refresh_claim(self) -> None:
        """Refresh the held entry's claim every ``claim_every`` while we hold it and the build progresses."""
        holding = self.holding
        now = time.monotonic()
        if not holding.entry_id or self.lost or now - self._last_claim < self.claim_every:
            return
        if now - holding.progressed > self.stall:  # left to go idle: another worker takes it after claim_idle
            if not self._stalled:
                log.warning("job %s: no progress for %.0f s; its claim is no longer refreshed", holding.job_id,
                            now - holding.progressed)
            self._stalled = True
            return
        self._stalled = False
        if not stream.refresh_claim(self.r, self.keys, self.consumer, holding.entry_id):
            self.lost = True
            log.warning("job %s: entry %s is no longer held by %s; its claim is no longer refreshed",
                        holding.job_id, holding.entry_id, self.consumer)
            return
        self._last_claim = time.monotonic()

    def beat(self) -> None:
        self._last_beat = time.monotonic()
        holding = self.holding
        record = {"node": self.node, "consumer": self.consumer, "pid": os.getpid(), "state": self.state.value,
                  "job": holding.job_id, "progress_at": holding.progress_at, "at": time.time(),
                  "rss": self.process.memory_info().rss, "cpu": self.process.cpu_percent()}
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.key, mapping=record)  # type: ignore[arg-type]
        pipe.expire(self.key, HEARTBEAT_TTL)
        now = time.time()  # the ready set, for a queued job's eta: listed while ready, dropped once its beat expires
        if self.state in READY:
            pipe.zadd(self.keys.ready_workers, {self.member: now + HEARTBEAT_TTL})
        else:
            pipe.zrem(self.keys.ready_workers, self.member)
        pipe.zremrangebyscore(self.keys.ready_workers, "-inf", now)
        pipe.execute()
