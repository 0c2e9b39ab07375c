"""The worker daemon: one job at a time from the stream, the completion note, then XACK."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psutil

import kernels
from config import Settings
from workers import status, stream
from workers.backoff import backoff
from workers.connection import REDIS_DOWN, connect
from workers.errors import BadPackage, JobRejected, TransientError
from workers.fetch import Fetcher
from workers.keys import HEARTBEAT_TTL, Keys
from workers.package import JobPackage
from workers.pipeline import BuildResult, build_mosaic
from workers.results import LocalResultStore
from workers.status import JobState

log = logging.getLogger("tessera.worker")
T = TypeVar("T")

TRANSIENT_TRIES = 3
"""Tries of one job on transient errors (fetch timeouts, 5xx) before it fails."""


class Worker:
    """A long-lived consumer with a stable name per process slot, so restarts reuse it."""

    def __init__(self, settings: Settings, slot: int = 0) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis.prefix)
        self.consumer = f"{settings.node}-{slot}"
        self.redis = connect(settings.redis)
        inputs = settings.web.public_url.rstrip("/") + "/inputs/"
        self.fetcher = Fetcher(settings.fetch, trusted_prefixes=[inputs])
        self.store = LocalResultStore(settings.paths.media)
        self.stop_requested = threading.Event()
        self.redis_down = False
        self.current_job: str | None = None
        self._last_beat = 0.0

    # -- life cycle --------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Warm stop: only record it. A second signal gets the default action (cold stop);
        # the job then stays pending and another worker claims it.
        self.stop_requested.set()
        signal.signal(signum, signal.SIG_DFL)

    def run(self) -> int:
        kernels.warm_up()  # pay compile cost before the first job, not during it
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
        log.info("worker %s stopped", self.consumer)
        return 0

    def run_once(self) -> bool:
        """Take at most one job and run it; False when the stream had nothing."""
        stream.ensure_group(self.redis, self.keys)
        self.heartbeat()
        entry = stream.read_one(self.redis, self.keys, self.consumer, self.settings.worker.block_ms)
        if entry is None:
            return False
        self.handle(*entry)
        return True

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
    def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        raw = fields.get("package", "")
        try:
            package = JobPackage.decode(raw, self.settings.limits)
        except BadPackage as exc:
            self._reject_package(entry_id, raw, exc)
            return
        if not status.mark_running(self.redis, self.keys, package.id):
            log.info("job %s already finished or expired; acknowledging", package.id)
            stream.ack(self.redis, self.keys, entry_id)
            return
        self.current_job = package.id
        try:
            state, note = self._build(package)
        finally:
            self.current_job = None
        ttl = self.settings.jobs.result_ttl
        self._until_written(lambda: status.finish(self.redis, self.keys, package.id, ttl, state, **note))
        self._until_written(lambda: stream.ack(self.redis, self.keys, entry_id))
        log.info("job %s %s", package.id, state.value)

    def _build(self, package: JobPackage) -> tuple[JobState, dict[str, Any]]:
        started = time.monotonic()
        for attempt in range(TRANSIENT_TRIES):
            try:
                result = build_mosaic(package, self.fetcher, self.settings, self._reporter(package.id))
                return JobState.DONE, self._store(package, result, time.monotonic() - started)
            except JobRejected as exc:
                return JobState.FAILED, {"error": exc.reason, "error_code": exc.code}
            except TransientError as exc:
                if attempt + 1 == TRANSIENT_TRIES:
                    return JobState.FAILED, {"error": f"gave up after {TRANSIENT_TRIES} tries: {exc.reason}",
                                             "error_code": exc.code}
                log.warning("job %s: %s; trying again", package.id, exc.reason)
                time.sleep(backoff(attempt))
            except Exception as exc:  # a bug must fail one job, never the worker
                log.exception("job %s: internal error", package.id)
                return JobState.FAILED, {"error": f"internal error ({exc.__class__.__name__})",
                                         "error_code": "internal"}
        raise AssertionError("unreachable")

    def _store(self, package: JobPackage, result: BuildResult, seconds: float) -> dict[str, Any]:
        name = self.store.put(package.id, result.data, result.ext)
        details = {**result.details, "build_seconds": round(seconds, 3), "worker": self.consumer}
        return {"result": name, "details": json.dumps(details)}

    def _reject_package(self, entry_id: str, raw: str, exc: BadPackage) -> None:
        """A package we cannot read fails its job (when it names one) and the worker goes on."""
        log.warning("entry %s: %s", entry_id, exc.reason)
        job_id = _guess_id(raw)
        if job_id:
            status.finish(self.redis, self.keys, job_id, self.settings.jobs.result_ttl, JobState.FAILED,
                          error=exc.reason, error_code=exc.code)
        stream.ack(self.redis, self.keys, entry_id)

    def _reporter(self, job_id: str) -> Callable[[str, float], None]:
        interval, last = self.settings.worker.progress_interval, [0.0]

        def report(stage: str, fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < interval and fraction < 1:
                return
            last[0] = now
            try:  # progress is best effort: an outage must not stop the build
                status.update(self.redis, self.keys, job_id, stage=stage, progress=round(fraction, 3))
                self.heartbeat()
            except REDIS_DOWN as exc:
                self._redis_lost(exc)

        return report

    def heartbeat(self) -> None:
        now = time.time()
        if now - self._last_beat < 2:
            return
        self._last_beat = now
        key = self.keys.worker(self.settings.node, os.getpid())
        beat = {"node": self.settings.node, "consumer": self.consumer, "pid": os.getpid(),
                "job": self.current_job or "", "state": "busy" if self.current_job else "idle",
                "rss": psutil.Process().memory_info().rss, "at": now}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=beat)  # type: ignore[arg-type]
        pipe.expire(key, HEARTBEAT_TTL)
        pipe.execute()


def _guess_id(raw: str) -> str | None:
    try:
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None

