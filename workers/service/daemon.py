"""The worker daemon: one job at a time from the stream, the completion note, then XACK.

Delivery is at-least-once: an entry is acknowledged only after its note is written.
A worker that dies leaves its entry pending; its own slot reads it first on restart,
and any worker takes it over with XAUTOCLAIM once it has been idle ``claim_idle``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import redis

import kernels
from config import Settings
from workers.inputs.fetch import Fetcher
from workers.inputs.fetchcache import FetchCache
from workers.pipeline import friends, tilecache, tileset
from workers.pipeline.mosaic import BuildResult, build_mosaic
from workers.protocol import logs, replication, scripts, status, stream
from workers.protocol.backoff import backoff
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.errors import INTERNAL, BadPackage, Canceled, JobRejected, TransientError
from workers.protocol.exitcodes import RET_CONNECT, RET_OK
from workers.protocol.keys import Keys
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.results.stores import make_store
from workers.service.heartbeat import Heartbeat
from workers.service.progress import Progress

log = logging.getLogger("tessera.worker")
T = TypeVar("T")
REPLICATION_TRIES = 3
"""WAITs for a replica after a completion note before the worker goes on without one (redis.sentinels set)."""


@dataclass(frozen=True)
class Outcome:
    """How one run of a job ended: its final state, the note's fields, and the build time for the histogram.

    None instead of an Outcome: a transient failure, delivered again later."""

    state: JobState
    note: dict[str, Any] = field(default_factory=dict)
    build_seconds: float | None = None

    @classmethod
    def failed(cls, reason: str, code: str) -> Outcome:
        return cls(JobState.FAILED, {"error": reason, "error_code": code})



class Worker:
    """A long-lived consumer with a stable name per process slot, so restarts reuse it."""

    def __init__(self, settings: Settings, slot: int = 0) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis.prefix)
        self.consumer = f"{settings.node}-{slot}"
        self.redis = connect(settings.redis, "worker")
        inputs = settings.web.public_url.rstrip("/") + "/inputs/"
        cache = FetchCache(settings.paths.fetch_cache, settings.fetch.cache_max_age) if settings.paths.fetch_cache \
            else None
        self.fetcher = Fetcher(settings.fetch, trusted_prefixes=[inputs], cache=cache)
        self.friends_api = friends.make_api(settings, self.fetcher)  # one per process: the APIs' rate-limit state
        self.store = make_store(settings)
        self.beat = Heartbeat(self.redis, self.keys, settings.node, self.consumer,
                              settings.worker.heartbeat_interval, claim_every=settings.queue.claim_idle / 3,
                              stall=settings.queue.claim_stall)
        self.stop_requested = threading.Event()
        self.redis_down = False
        self._own_pending_checked = False
        self._prefetched: stream.Taken | None = None
        self._group_ready = False
        self._last_autoclaim = 0.0
        self._autoclaim_cursor = stream.START  # XAUTOCLAIM goes on from here, so every idle entry is reached

    # -- life cycle --------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Warm stop: only record it. A second signal gets the default action (cold stop);
        # the job then stays pending and is delivered again.
        self.stop_requested.set()
        signal.signal(signum, signal.SIG_DFL)

    def run(self) -> int:
        logs.bind(worker=self.consumer)  # every log line of this process names the worker
        try:
            self.redis.ping()
        except REDIS_DOWN as exc:
            # Only at start: supervisord retries, and the watchdog revives us once Redis answers.
            log.error("redis unreachable at start: %s", exc)
            return RET_CONNECT
        self.beat.start()
        if removed := self.store.remove_orphans():  # a worker of this node killed while storing a result
            log.info("removed %d temporary files left by killed writers", removed)
        cache = tileset.cache_root(self.settings)
        if cache is not None and (removed := tilecache.remove_orphans(cache)):  # killed while packing tiles
            log.info("removed %d tile cache files left by killed writers", removed)
        kernels.warm_up()  # pay compile cost before the first job, not during it
        self.beat.release()
        log.info("worker %s ready (pid %d)", self.consumer, os.getpid())
        attempt = 0
        while not self.stop_requested.is_set():
            try:
                self.run_once()
                self._redis_back()
                attempt = 0
            except REDIS_DOWN as exc:
                self._redis_lost(exc)
                self.stop_requested.wait(backoff(attempt))
                attempt += 1
            except Exception:  # never let a bug end the process; the entry stays pending
                log.exception("worker %s: unexpected error; going on", self.consumer)
                self.stop_requested.wait(backoff(attempt))
                attempt += 1
        self._until_written(self._release_prefetched)
        self._until_written(self.beat.stop)
        log.info("worker %s stopped", self.consumer)
        return RET_OK

    def run_once(self) -> bool:
        """Take at most one job and run it; False when there was nothing to do."""
        if not self._group_ready:
            stream.ensure_group(self.redis, self.keys)
            self._group_ready = True
        try:
            entry = self._next_entry()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # Redis lost its data (no AOF?): create the group again
            return False
        if entry is None:
            return False
        with logs.bound(job_id=entry[1].get("id", "")):  # log lines while handling it carry the job id
            self.handle(*entry)
        return True

    def _next_entry(self) -> stream.Taken | None:
        """Our own pending entry after a restart, else a stale one of another consumer, else a new one.

        A new entry is taken and started in one round trip when the stream has one; only an
        empty stream costs the blocking read."""
        if not self._own_pending_checked:
            entry = stream.read_own_pending(self.redis, self.keys, self.consumer)
            self._own_pending_checked = True
            if entry is not None:
                return (*entry, None)
        if self._prefetched is not None:
            prefetched, self._prefetched = self._prefetched, None
            return prefetched
        claim_idle = self.settings.queue.claim_idle
        if time.monotonic() - self._last_autoclaim >= claim_idle / 2:
            self._last_autoclaim = time.monotonic()
            entry, self._autoclaim_cursor = stream.claim_stale(self.redis, self.keys, self.consumer, claim_idle,
                                                               self._autoclaim_cursor)
            if entry is not None:
                log.info("claimed entry %s left idle by another worker", entry[0])
                return (*entry, None)
        taken = stream.take_new(self.redis, self.keys, self.consumer)
        if taken is not None:
            return taken
        entry = stream.read_new(self.redis, self.keys, self.consumer, self.settings.worker.block_ms)
        return None if entry is None else (*entry, None)

    def _redis_lost(self, exc: Exception) -> None:
        if not self.redis_down:
            log.warning("redis unreachable, retrying with backoff: %s", exc)
            self.redis_down = True

    def _redis_back(self) -> None:
        if self.redis_down:
            log.info("redis reachable again")
            self.redis_down = False

    def _until_written(self, action: Callable[[], T]) -> T:
        """Run a Redis write, waiting out an outage: a finished job's note must not be lost."""
        attempt = 0
        while True:
            try:
                result = action()
                self._redis_back()
                return result
            except REDIS_DOWN as exc:
                self._redis_lost(exc)
                time.sleep(backoff(attempt))
                attempt += 1

    # -- one job -----------------------------------------------------------
    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int | None = None) -> None:
        """Run one entry; ``deliveries`` is given when TAKE already started the delivery in Redis."""
        raw = fields.get("package", "")
        try:
            package = JobPackage.decode(raw, self.settings.limits)
            if fields.get("id", package.id) != package.id:
                raise BadPackage(f"the entry names job {fields['id']!r} but carries job {package.id!r}", raw)
        except BadPackage as exc:
            self._reject_package(entry_id, raw, exc)
            return
        if deliveries is None:
            deliveries = status.start_delivery(self.redis, self.keys, package.id, self.consumer)
        if deliveries <= 0:
            log.info("job %s already finished or expired; acknowledging", package.id)
            stream.ack(self.redis, self.keys, entry_id)
            return
        if deliveries > self.settings.queue.max_deliveries:
            self._dead_letter(package.id, entry_id, fields, deliveries - 1)
            return
        self.beat.hold(package.id, entry_id)
        try:
            outcome = self._build(package)
        finally:
            self.beat.release()
        self._conclude(package, entry_id, outcome)

    def _conclude(self, package: JobPackage, entry_id: str, outcome: Outcome | None) -> None:
        if outcome is None:
            return  # left pending: claimed again after claim_idle, counted as another delivery
        result_ttl = self.settings.jobs.result_ttl
        ttl = package.options.ttl(result_ttl)  # the job's own `keep`
        finish = status.finish_command(self.keys, package.id, ttl, outcome.state,
                                       status.listed(self.settings.queue.recent_jobs, ttl, result_ttl), entry_id,
                                       outcome.build_seconds, **outcome.note)
        written = self._until_written(lambda: self._finish_and_take(finish, package.id))
        if written != 1 and outcome.state is JobState.DONE:
            self._until_written(partial(self._discard_if_canceled, package.id))
        log.info("job %s %s", package.id, outcome.state.value)

    def _finish_and_take(self, finish: tuple[Any, ...], job_id: str) -> int:
        """The note and ack of this job, and the take of the next one, in one round trip; the note's reply.
        With Sentinel, then a WAIT for a replica on the same connection (protocol/replication.py)."""
        with replication.pinned(self.redis, self.settings.redis) as r, scripts.loaded():
            if self.stop_requested.is_set():
                written = int(r.fcall(*finish))
            else:
                pipe = r.pipeline(transaction=False)
                pipe.fcall(*finish)
                pipe.fcall(*stream.take_command(self.keys, self.consumer))
                written, taken = pipe.execute()
                self._prefetched = stream.parse_taken(taken)
            self._until_replicated(r, job_id)
            return int(written)

    def _until_replicated(self, r: redis.Redis, job_id: str) -> None:
        """WAIT for a replica to hold the note, a few times with backoff; then go on, never raise: the note is on
        the primary, and if a failover loses it the entry, unacknowledged there too, is delivered again and built
        once more (results are written idempotently). Running the note again here would take a second job."""
        for attempt in range(REPLICATION_TRIES):
            try:
                replication.replicated(r, self.settings.redis)
                return
            except replication.NotReplicated as exc:
                log.warning("job %s: completion note not replicated yet (%s); waiting again", job_id, exc)
            except REDIS_DOWN as exc:  # the primary went away meanwhile: a WAIT elsewhere would prove nothing
                log.warning("job %s: redis lost while waiting for a replica: %s", job_id, exc)
                return
            time.sleep(backoff(attempt, cap=2.0))
        log.error("job %s: no replica acknowledged its completion note; going on", job_id)

    def _discard_if_canceled(self, job_id: str) -> None:
        """Stored, but the note found the job canceled or deleted meanwhile: its files go, on whichever store
        (another run's equal files of a job that is done stay)."""
        state = self.redis.hget(self.keys.job(job_id), "state")
        if state in (None, JobState.CANCELED.value):
            removed = self.store.remove(job_id)
            log.info("job %s was %s while it was stored; removed %d of its files", job_id,
                     "deleted" if state is None else "canceled", removed)

    def _release_prefetched(self) -> None:
        """Stopping with a job taken but not begun: show it queued; it stays pending for this slot or XAUTOCLAIM."""
        if self._prefetched is not None:
            entry_id, fields, _ = self._prefetched
            job_id = fields.get("id", "")
            if job_id:
                status.update(self.redis, self.keys, job_id, state=JobState.QUEUED.value, stage="waiting in the queue")
            self._prefetched = None

    def _build(self, package: JobPackage) -> Outcome | None:
        if package.options.noop:
            return self._noop()
        started = time.monotonic()
        tries = self.settings.queue.transient_tries
        result: BuildResult | None = None  # built once: a store that failed is tried again with the same files
        progress = Progress(self.redis, self.keys, package.id, self.settings.worker.progress_interval,
                            self.beat.progress, self._redis_lost)
        for attempt in range(tries):
            try:
                if result is None:
                    result = self._build_once(package, progress)
                progress.check("storing")  # a stage boundary with no report of its own: stop before storing
                return self._store(package, result, time.monotonic() - started)
            except Canceled as exc:
                return Outcome(JobState.CANCELED, {"stage": exc.reason})
            except JobRejected as exc:
                return Outcome.failed(exc.reason, exc.code)
            except TransientError as exc:
                reason = exc.reason
                log.warning("job %s: %s (try %d of %d)", package.id, reason, attempt + 1, tries)
                if attempt + 1 == tries:
                    self._until_written(partial(status.requeue, self.redis, self.keys, package.id, reason))
                    return None
                time.sleep(backoff(attempt))
            except Exception as exc:  # a bug must fail one job, never the worker
                log.exception("job %s: internal error", package.id)
                return Outcome.failed(f"internal error ({exc.__class__.__name__})", INTERNAL)
        return None

    def _build_once(self, package: JobPackage, progress: Progress) -> BuildResult:
        """The mosaic of ``package``, its friends gathered first when it asks for them (pipeline/friends.py)."""
        if package.friends is None:
            return build_mosaic(package, self.fetcher, self.settings, progress, deepzoom=True)
        gathered = friends.gather_tiles(package, self.friends_api, self.settings.limits.max_tiles, progress)
        result = build_mosaic(gathered.package, self.fetcher, self.settings, progress, deepzoom=True,
                              labels=gathered.labels)
        result.details["friends"] = friends.details(result.details, gathered)
        return result

    def _noop(self) -> Outcome:
        if not self.settings.queue.allow_noop:
            return Outcome.failed("noop jobs are not enabled on this worker", JobRejected.code)
        return Outcome(JobState.DONE)

    def _store(self, package: JobPackage, result: BuildResult, seconds: float) -> Outcome:
        """Store the results (the zoomable view first: once the image is there, its view is too); the note."""
        note: dict[str, Any] = {}
        if result.deepzoom is not None:
            note["deepzoom"] = self.store.put_folder(package.id, result.deepzoom.files)
        note["result"] = self.store.put(package.id, result.data, result.ext)
        details = {**result.details, "build_seconds": round(seconds, 3), "worker": self.consumer}
        return Outcome(JobState.DONE, {**note, "details": json.dumps(details)}, build_seconds=seconds)

    def _dead_letter(self, job_id: str, entry_id: str, fields: dict[str, str], deliveries: int) -> None:
        """The letter, the ack and the failed note in one script (lua/dead_letter.lua), written through an outage
        as a normal finish is: never a job left `running` without its entry."""
        def write() -> str:
            last = str(self.redis.hget(self.keys.job(job_id), "last_error") or "its worker stopped while running it")
            stream.dead_letter(self.redis, self.keys, entry_id, {**fields, "id": job_id}, last, deliveries,
                               ttl=self.settings.jobs.result_ttl, recent=self.settings.queue.recent_jobs,
                               reason=f"gave up after {deliveries} deliveries; last error: {last}")
            return last

        last = self._until_written(write)
        log.warning("job %s dead-lettered: gave up after %d deliveries; last error: %s", job_id, deliveries, last)

    def _reject_package(self, entry_id: str, raw: str, exc: BadPackage) -> None:
        """A package we cannot read fails its job (when it names one) and the worker goes on."""
        log.warning("entry %s: %s", entry_id, exc.reason)
        job_id = _guess_id(raw)
        if job_id:
            status.finish(self.redis, self.keys, job_id, self.settings.jobs.result_ttl, JobState.FAILED,
                          error=exc.reason, error_code=exc.code)
        stream.ack(self.redis, self.keys, entry_id)


def _guess_id(raw: str) -> str | None:
    try:
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and value else None
