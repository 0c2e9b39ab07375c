"""Queue readings: the one place that turns the jobs stream, its group and the heartbeats into numbers.

`/metrics`, `/admin`, `tessera status` and the orchestrator all read the queue here, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis

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


def heartbeats(r: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    """Live worker heartbeats of every node, by node and consumer name."""
    beats = [cast(dict[str, str], r.hgetall(key)) for key in r.scan_iter(match=keys.worker("*", "*"), count=500)]
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
