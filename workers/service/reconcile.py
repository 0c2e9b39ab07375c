"""The reconciler: jobs that nothing will ever finish, found and put right; jobs that vanished, said.

A status hash ``queued`` or ``running`` normally has its stream entry, undelivered or pending (XAUTOCLAIM
hands a pending one to another worker when its holder dies). A kill, a Redis blip or a lost AOF tail can
leave one without: nothing would ever take it, and it holds a slot of its client's active-job limit. Each
pass of :meth:`Reconciler.run_pass` (from each node's watchdog, every ``watchdog.reconcile_every``):

1. reads what is alive: whether the stream has undelivered entries, the job of every pending entry, and the
   job every live heartbeat holds;
2. looks at one SCAN batch of status hashes (``watchdog.reconcile_batch``, the cursor kept for the next
   pass, so a pass is bounded however many jobs are kept);
3. a hash ``running``, or ``queued`` while no entry is undelivered, whose job has no pending entry and no
   live holder, and that nothing touched for ``watchdog.reconcile_grace``, is re-queued from its stored
   package (its delivery count kept) or, when the package is missing or unreadable, failed with that reason.
   The act is one script (``lua/reconcile.lua``) that first checks the job is still as read: reconcilers on
   several nodes at once re-queue a job once.

A queued hash while the stream has undelivered entries is left alone: its entry may be among them.

Vanished jobs (``redis.appendfsync`` other than ``always``, or a lost AOF): the recent list holds finished jobs
newest first, each hash kept ``jobs.result_ttl`` from its finish, so hashes expire from the end of the list. A
finished id whose hash is gone while one finished before it still exists vanished before its TTL could run out:
logged at warning and counted once (stats field ``vanished``, ``lua/vanished.lua``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from config import Settings
from workers.protocol import queue, scripts, stats, status
from workers.protocol.errors import BadPackage
from workers.protocol.keys import GROUP, STATS_MINUTE_TTL, Keys
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState

log = logging.getLogger("tessera.reconcile")

VANISHED = stats.VANISHED
TOKEN_FIELDS = ("state", "deliveries", "started_at", "requeued_at")
"""The fields the check-and-act script compares with what the pass read (lua/reconcile.lua)."""
READ_FIELDS = (*TOKEN_FIELDS, "created_at")
PENDING_PAGE = 500
"""Pending entries read per XPENDING call; a pass reads at most PENDING_PAGES of them (else it waits)."""
PENDING_PAGES = 20
REQUEUED_STAGE = "queued again: its delivery was lost"


@dataclass
class PassReport:
    """What one pass did: the job ids it re-queued, failed, and found vanished."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    skipped: str = ""
    """Why the pass looked at no job ("" when it did)."""


def token(values: list[str | None]) -> str:
    return "|".join(value or "" for value in values[: len(TOKEN_FIELDS)])


def entry_job(fields: dict[str, str]) -> str:
    """The job id a stream entry names: its ``id`` field, or the package's (``tessera retry`` adds none)."""
    if fields.get("id"):
        return fields["id"]
    try:
        value = json.loads(fields.get("package", "")).get("id")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return value if isinstance(value, str) else ""


class Reconciler:
    def __init__(self, r: redis.Redis, settings: Settings) -> None:
        self.r, self.settings = r, settings
        self.keys = Keys(settings.redis.prefix)
        self.cursor = 0
        self.last_run: float | None = None
        self.counts: Counter[str] = Counter()
        """Actions of this process: requeued, failed, vanished."""

    def maybe_run(self) -> PassReport | None:
        """A pass when ``watchdog.reconcile_every`` has passed since the last one (never when it is 0)."""
        every = self.settings.watchdog.reconcile_every
        now = time.monotonic()
        if every <= 0 or (self.last_run is not None and now - self.last_run < every):
            return None
        self.last_run = now
        return self.run_pass()

    # -- one pass --------------------------------------------------------------
    def run_pass(self, now: float | None = None) -> PassReport:
        report = PassReport()
        report.vanished = self.find_vanished()
        undelivered = self._has_undelivered()
        pending = self._pending_jobs()
        if pending is None:
            report.skipped = f"more than {PENDING_PAGE * PENDING_PAGES} pending entries"
            return report
        holders = {beat["job"] for beat in queue.heartbeats(self.r, self.keys) if beat.get("job")}
        cursor, names = cast(tuple[int, list[str]], self.r.scan(self.cursor, match=self.keys.job("*"),
                                                                 count=self.settings.watchdog.reconcile_batch))
        self.cursor = int(cursor)
        if not names:
            return report
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, list(READ_FIELDS))
        now = time.time() if now is None else now
        grace = self.settings.watchdog.reconcile_grace
        prefix = len(self.keys.job_prefix)
        for name, values in zip(names, cast(list[list[str | None]], pipe.execute()), strict=True):
            job_id, state = name[prefix:], values[0]
            if state not in (JobState.QUEUED.value, JobState.RUNNING.value) or job_id in pending or job_id in holders:
                continue
            if state == JobState.QUEUED.value and undelivered:
                continue  # its entry may be among the undelivered ones
            touched = max((float(v) for v in (values[2], values[3], values[4]) if v), default=0.0)
            if now - touched < grace:
                continue
            self.act(job_id, values, now, report)
        return report

    def act(self, job_id: str, values: list[str | None], now: float, report: PassReport) -> None:
        """Re-queue or fail one stuck job, only if it is still as ``values`` (READ_FIELDS) show it."""
        raw = cast(str | None, self.r.hget(self.keys.job(job_id), "package"))
        reason = ""
        if not raw:
            reason = "its delivery was lost and it has no stored package to queue it again"
        else:
            try:
                JobPackage.decode(raw, self.settings.limits)
            except BadPackage as exc:
                reason = f"its delivery was lost and its stored package cannot be read: {exc.reason}"
        if reason:
            note = {"state": JobState.FAILED.value, "finished_at": now, "error": reason, "error_code": BadPackage.code}
            done = self._script(job_id, values, "fail", now, "", *[item for pair in note.items() for item in pair])
            if done == 1:
                report.failed.append(job_id)
                self.counts["failed"] += 1
                log.warning("reconcile: job %s (%s, no entry, no holder) failed: %s", job_id, values[0], reason)
            return
        entry = self._script(job_id, values, "requeue", now, REQUEUED_STAGE)
        if entry:
            report.requeued.append(job_id)
            self.counts["requeued"] += 1
            log.warning("reconcile: job %s was %s with no stream entry and no live holder; queued again "
                        "(deliveries so far: %s)", job_id, values[0], values[1] or 0)

    def _script(self, job_id: str, values: list[str | None], action: str, now: float, *extra: Any) -> Any:
        return scripts.call(self.r, scripts.RECONCILE, 6, self.keys.job(job_id), self.keys.recent, self.keys.inbox,
                            self.keys.stats, self.keys.stats_minute(stats.minute_of(now)), self.keys.webhook_outbox,
                            self.settings.jobs.result_ttl, self.settings.queue.recent_jobs, job_id, GROUP, "", "",
                            0, STATS_MINUTE_TTL, token(values), action, now, *extra)

    # -- what is alive -----------------------------------------------------------
    def _has_undelivered(self) -> bool:
        """Whether a job may be waiting unseen: ids on the inbox not yet admitted, or an entry after the group's
        last delivered id (unknown counts as yes)."""
        if self.r.exists(self.keys.inbox, self.keys.admitting):
            return True
        try:
            groups = self.r.xinfo_groups(self.keys.jobs)
        except redis.ResponseError:
            return True  # no stream or no group yet: nothing to judge queued jobs by
        group = next((g for g in groups if g.get("name") == GROUP), None)
        if group is None:
            return True
        after = cast(list[Any], self.r.xrange(self.keys.jobs, min=f"({group['last-delivered-id']}", count=1))
        return bool(after)

    def _pending_jobs(self) -> set[str] | None:
        """The job ids of every pending entry (an entry deleted meanwhile names none); None when too many."""
        entry_ids: list[str] = []
        start = "-"
        for _page in range(PENDING_PAGES):
            try:
                rows = self.r.xpending_range(self.keys.jobs, GROUP, start, "+", PENDING_PAGE)
            except redis.ResponseError:  # no stream or group yet: nothing is pending
                return set()
            entry_ids += [str(row["message_id"]) for row in rows]
            if len(rows) < PENDING_PAGE:
                break
            start = f"({entry_ids[-1]}"
        else:
            return None
        pipe = self.r.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xrange(self.keys.jobs, min=entry_id, max=entry_id, count=1)
        jobs = {entry_job(reply[0][1]) for reply in cast(list[list[Any]], pipe.execute()) if reply}
        return jobs - {""}

    # -- vanished jobs -------------------------------------------------------------
    def _vanished(self, job_id: str) -> bool:
        return bool(scripts.call(self.r, scripts.VANISHED, 3, self.keys.job(job_id), self.keys.recent, self.keys.stats,
                                 job_id, VANISHED))

    def find_vanished(self) -> list[str]:
        """Finished ids of the recent list whose hash is gone while a job finished before them still has its own."""
        ids = list(dict.fromkeys(cast(list[str], self.r.lrange(self.keys.recent, 0, -1))))  # latest finish first
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.keys.job(job_id), "state")
        states = cast(list[str | None], pipe.execute())
        witnesses = [index for index, state in enumerate(states) if state in status.FINAL]
        if not witnesses:
            return []
        vanished = []
        for job_id, state in zip(ids[: witnesses[-1]], states, strict=False):
            if state is None and self._vanished(job_id):
                vanished.append(job_id)
                self.counts[VANISHED] += 1
                log.warning("reconcile: job %s vanished: its status hash is gone, yet a job that finished before it "
                            "still has its own (a lost AOF tail? redis.appendfsync is %s here)", job_id,
                            self.settings.redis.appendfsync)
        return vanished
