"""`tessera webhooks` (supervisord's `webhooks`, on the web host): sends the webhooks of final jobs.

The completion note puts a job that has a webhook on the outbox in the same call (lua/note.lua), so a worker that
dies right after loses none. This process takes what is due (lua/webhook_take.lua, under a lease), POSTs each
message, signed the Standard Webhooks way (workers/protocol/webhooks.py), on a pool of threads through the SSRF-safe
pinned connections of fetches (workers/inputs/fetch.py Poster), and records each attempt in the job's hash and in a
log line (lua/webhook_note.lua): delivered on a 2xx; else tried again with capped backoff until
``webhooks.max_attempts`` or ``webhooks.give_up_after``; refused at once when the URL policy refuses the address.
Nothing here runs in a worker, so a receiver that hangs holds up neither a build nor the next job, only one of
this pool's threads, for at most the timeout.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from config import Settings
from workers.inputs.fetch import Poster
from workers.protocol import scripts, status, webhooks
from workers.protocol.backoff import backoff
from workers.protocol.connection import REDIS_DOWN, connect, run_until_stopped
from workers.protocol.errors import BadPackage, FetchFailed, UrlRefused
from workers.protocol.keys import Keys
from workers.protocol.package import JobPackage

log = logging.getLogger("tessera.webhooks")

TAKE_BATCH = 50
"""Most ids one look at the outbox takes."""
GONE = 410
"""An answer that says: stop sending (as Standard Webhooks senders treat it)."""


class Sender:
    def __init__(self, settings: Settings, poster: Poster | None = None) -> None:
        hooks = settings.webhooks
        self.settings, self.hooks, self.keys = settings, hooks, Keys(settings.redis.prefix)
        self.key = webhooks.secret_key(hooks.secret)  # BadSecret (a ValueError) before anything starts
        self.role = settings.redis.own_or_admin("webhooks")
        self.redis = connect(settings.redis, self.role)
        self.poster = poster or Poster(settings.fetch.allow_hosts, hooks.timeout, hooks.ca_file)
        self.lease = 2 * hooks.timeout + 30.0
        """Seconds a taken message is not taken again: longer than one attempt can last (connect, then headers)."""
        self.pool = ThreadPoolExecutor(max_workers=max(1, hooks.concurrency), thread_name_prefix="webhook")
        self.stop_requested = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def run(self) -> int:
        run_until_stopped(self.stop_requested, self.step, log, pause=self.hooks.poll)
        self.pool.shutdown(wait=False, cancel_futures=True)  # an attempt cut short is taken again after its lease
        return 0

    def step(self) -> int:
        """Take what is due and start sending it; how many attempts were started."""
        now = time.time()
        taken = scripts.call(self.redis, scripts.WEBHOOK_TAKE, 1, self.keys.webhook_outbox, now, now + self.lease,
                             TAKE_BATCH)
        started = 0
        for job_id in cast(list[str], taken):
            with self._lock:
                if job_id in self._busy:
                    continue  # its lease ran out while an attempt still waits for a thread
                self._busy.add(job_id)
            self.pool.submit(self._attempt, job_id)
            started += 1
        return started

    def _attempt(self, job_id: str) -> None:
        try:
            self.deliver(job_id)
        except REDIS_DOWN as exc:  # unrecorded: the lease runs out and it is taken again
            log.warning("webhook of job %s: redis unavailable (%s); tried again later", job_id, exc)
        except Exception:
            log.exception("webhook of job %s: internal error; tried again after its lease", job_id)
        finally:
            with self._lock:
                self._busy.discard(job_id)

    def deliver(self, job_id: str) -> str | None:
        """One attempt at ``job_id``'s webhook; the delivery state it leaves (None: the job is gone)."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.job(job_id)))
        state = raw.get("state", "")
        if not raw or state not in status.FINAL:  # gone; or queued again (`tessera retry`): its next note re-adds it
            if not raw:
                self._forget(job_id)
                return None
            return self._record(job_id, "", {webhooks.FIELD: webhooks.WAITING})
        now = time.time()
        attempts = int(raw.get(webhooks.ATTEMPTS) or 0) + 1
        first = float(raw.get(webhooks.FIRST_AT) or now)
        msg_id = webhooks.message_id(job_id, state)
        event_at = float(raw.get("finished_at") or now)  # the body is the same on every attempt; only its stamp moves
        payload = webhooks.body(state, self._data(job_id, raw), event_at)
        result, delivered, permanent = self._send(raw, payload, msg_id, int(now))
        delay = backoff(attempts - 1, self.hooks.retry_base, self.hooks.retry_cap)
        last = attempts >= self.hooks.max_attempts or time.time() + delay - first > self.hooks.give_up_after
        after = webhooks.DELIVERED if delivered else webhooks.FAILED if permanent or last else webhooks.PENDING
        record: dict[str, Any] = {webhooks.FIELD: after, webhooks.ATTEMPTS: attempts, webhooks.FIRST_AT: first,
                                  webhooks.LAST_AT: now, webhooks.LAST_RESULT: result}
        if delivered:
            record[webhooks.DELIVERED_AT] = time.time()
        due = time.time() + delay if after == webhooks.PENDING else ""
        outcome = {webhooks.DELIVERED: "delivered", webhooks.FAILED: "given up",
                   webhooks.PENDING: f"next attempt in {delay:.1f} s"}[after]
        log.info("webhook %s of job %s, attempt %d: %s; %s", msg_id, job_id, attempts, result, outcome,
                 extra={"job_id": job_id})
        return self._record(job_id, due, record)

    def _send(self, raw: dict[str, str], payload: bytes, msg_id: str, stamp: int) -> tuple[str, bool, bool]:
        """(what happened, delivered, not worth another try)."""
        started = time.monotonic()
        try:
            url = JobPackage.decode(raw.get("package", "")).options.webhook
            code = self.poster.post(url, payload, webhooks.headers(self.key, msg_id, stamp, payload))
        except BadPackage as exc:
            return f"bad package: {exc.reason}", False, True
        except UrlRefused as exc:
            return f"refused: {exc.reason}", False, True
        except FetchFailed as exc:
            return f"{exc.reason} after {time.monotonic() - started:.1f} s", False, False
        return f"HTTP {code} in {time.monotonic() - started:.2f} s", 200 <= code < 300, code == GONE

    def _data(self, job_id: str, raw: dict[str, str]) -> dict[str, Any]:
        """The job's status as GET /api/mosaics/<id> shows it, with absolute URLs, without the delivery record."""
        base = self.settings.web.public_url.rstrip("/")
        view = status.public_view(job_id, raw, media_prefix=f"{base}/media/")
        view.pop("webhook", None)
        return {**view, "status_url": f"{base}/api/mosaics/{job_id}", "page_url": f"{base}/mosaics/{job_id}"}

    def _record(self, job_id: str, due: float | str, record: dict[str, Any]) -> str | None:
        pairs = [item for pair in record.items() for item in pair]
        kept = scripts.call(self.redis, scripts.WEBHOOK_NOTE, 2, self.keys.job(job_id), self.keys.webhook_outbox,
                            job_id, due, *pairs)
        return str(record[webhooks.FIELD]) if kept else None

    def _forget(self, job_id: str) -> None:
        log.info("webhook of job %s: the job is gone (deleted or expired); dropped", job_id, extra={"job_id": job_id})
        self._record(job_id, "", {webhooks.FIELD: webhooks.FAILED})

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: self.stop_requested.set())

    def stop(self) -> None:
        self.stop_requested.set()
