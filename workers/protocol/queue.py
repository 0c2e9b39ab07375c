"""Queue readings: the one place that turns the jobs stream, its group and the heartbeats into numbers.

`/metrics`, `/admin`, `tessera status` and the orchestrator all read the queue here, so they agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from workers.protocol import stats
from workers.protocol.keys import GROUP, Keys


@dataclass(frozen=True)
class QueueNumbers:
    length: int = 0
    """Entries in the jobs stream: undelivered, pending, and acked ones the keeper has not trimmed yet."""
    pending: int = 0
    """Entries delivered to a worker and not yet acknowledged."""
    depth: int = 0
    """Entries not yet delivered to any worker (the group's lag)."""
    dead: int = 0
    """Entries in the dead-letter stream."""
    inbox: int = 0
    """Jobs submitted and not yet admitted to the stream by the keeper (many only while no keeper runs)."""

    @property
    def backlog(self) -> int:
        """Jobs waiting or in progress: what the autoscaler sizes the fleet by."""
        return self.inbox + self.depth + self.pending


def read_queue(r: redis.Redis, keys: Keys) -> QueueNumbers:
    """Stream length, pending and lag of the jobs stream, and the dead letters (zeros before the first job)."""
    pipe = r.pipeline(transaction=False)
    pipe.exists(keys.jobs)
    pipe.xlen(keys.jobs)
    pipe.xlen(keys.dead)
    pipe.llen(keys.inbox)
    pipe.llen(keys.admitting)
    exists, length, dead, inbox, admitting = pipe.execute()
    waiting = int(inbox) + int(admitting)
    if not exists:
        return QueueNumbers(dead=int(dead), inbox=waiting)
    pending, lag = 0, None
    for group in r.xinfo_groups(keys.jobs):
        if group["name"] == GROUP:
            pending, lag = int(group.get("pending") or 0), group.get("lag")
    return QueueNumbers(length=int(length), pending=pending, depth=depth_of(int(length), pending, lag), dead=int(dead),
                        inbox=waiting)


def depth_of(length: int, pending: int, lag: int | str | None) -> int:
    """Undelivered entries: the group's lag, or length minus pending when Redis answers a nil lag.

    Redis cannot tell the lag once entries past the group's last id were deleted (nothing here deletes those:
    the keeper trims only acked entries); the fallback counts acked entries not yet trimmed as undelivered."""
    return int(lag) if lag is not None else max(length - pending, 0)


def heartbeats(r: redis.Redis, keys: Keys, node: str = "*") -> list[dict[str, str]]:
    """Live worker heartbeats of every node (or of ``node``), by node and consumer name."""
    beats = [cast(dict[str, str], r.hgetall(key)) for key in r.scan_iter(match=keys.worker(node, "*"), count=500)]
    return sorted((b for b in beats if b), key=lambda b: (b.get("node", ""), b.get("consumer", "")))


RECENT_FIELDS = ("state", "finished_at", "worker", "deliveries", "error")


def recent_jobs(r: redis.Redis, keys: Keys, count: int = 10) -> list[tuple[str, dict[str, str]]]:
    """The last ``count`` finished jobs, newest first, with the fields a listing shows."""
    ids = cast(list[str], r.lrange(keys.recent, 0, count - 1))
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(job_id), list(RECENT_FIELDS))
    rows = pipe.execute()
    return [(job_id, dict(zip(RECENT_FIELDS, (v or "" for v in row), strict=True)))
            for job_id, row in zip(ids, rows, strict=True)]


@dataclass(frozen=True)
class Waiting:
    """Where a queued job stands: ``position`` 1 is the next to start; ``eta`` seconds until it should be done, or
    None when there is no recent build time or no ready worker to go by."""

    position: int
    eta: float | None


def place(seq: int | None, entries_read: int | None, lag: int | None) -> int:
    """A queued job's position from its ``seq`` (its entry's number in the stream, lua/admit.lua) and the group's
    count of entries delivered (pure).

    A job already delivered and queued again after a transient failure is next (1); one not admitted yet (no seq,
    the keeper is behind) comes after every undelivered entry."""
    if seq is None:
        return (lag or 0) + 1
    return max(seq - (entries_read or 0), 1)  # Redis answers a nil entries-read until the group's first delivery


def eta(position: int, workers: int, build_seconds: float | None) -> float | None:
    """Seconds until a job at ``position`` is done: the rounds of ``workers`` builds ahead of it and its own, each
    of the recent build time (pure); None without a build time or a worker."""
    if build_seconds is None or workers <= 0:
        return None
    return math.ceil(position / workers) * build_seconds


def waiting(r: redis.Redis, keys: Keys, seq: str | None, now: float | None = None) -> Waiting:
    """A queued job's position and eta in one round trip, for the page's 1 s poll: the group's counters (XINFO
    GROUPS), the ready workers (ZCOUNT) and the recent build time; no scan of the stream or the inbox."""
    pipe = r.pipeline(transaction=False)
    pipe.xinfo_groups(keys.jobs)
    pipe.zcount(keys.ready_workers, time.time() if now is None else now, "+inf")
    pipe.hget(keys.stats, stats.RECENT_BUILD)
    groups, workers, recent = pipe.execute(raise_on_error=False)
    entries_read = lag = None
    if isinstance(groups, Exception) and "no such key" not in str(groups).lower():
        raise groups
    if not isinstance(groups, Exception):  # else no stream yet (nothing admitted so far): nobody is ahead
        for group in cast(list[dict[str, Any]], groups):
            if group["name"] == GROUP:
                entries_read, lag = group.get("entries-read"), group.get("lag")
    if isinstance(workers, Exception) or isinstance(recent, Exception):
        raise workers if isinstance(workers, Exception) else cast(Exception, recent)
    position = place(int(seq) if seq else None, _int(entries_read), _int(lag))
    return Waiting(position=position, eta=eta(position, int(workers), float(recent) if recent else None))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
