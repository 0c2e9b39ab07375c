"""Cluster-wide job statistics kept in Redis, read by /metrics and /admin.

Web, workers and the orchestrator are separate processes on separate machines, so
counts live in Redis and are written where things happen: ``submitted`` at enqueue
(workers/protocol/stream.py), ``done``/``failed`` and the build-seconds histogram inside the
FINISH script (workers/protocol/status.py), so a job finished twice is counted once.

The histogram keeps one non-cumulative count per bucket (HINCRBY on the one bucket a
build falls into); :func:`read_counters` makes them cumulative, as Prometheus wants.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import cast

import redis

from workers.protocol.keys import Keys

BUILD_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Upper bounds (seconds) of the build-time histogram; +Inf is added after the last."""

SUBMITTED, DONE, FAILED = "submitted", "done", "failed"
CANCELED = "canceled"
"""Jobs that ended canceled: counted by the note (lua/note.lua bumps the field its state names)."""
VANISHED = "vanished"
"""Jobs whose status hash vanished before its TTL (the reconciler counts them: workers/service/reconcile.py)."""
BUILD_SUM, BUILD_COUNT = "build_seconds_sum", "build_seconds_count"
RECENT_BUILD = "build_seconds_recent"
"""The recent build time: a moving average that each done build moves a fifth of the way to its own time
(lua/note.lua), so it follows the last ten or so builds; absent before the first. A queued job's eta is made of it
(workers/protocol/queue.py ``waiting``)."""
RECENT_PER_WORK = "seconds_per_work_recent"
"""Seconds per work unit (workers/protocol/cost.py) of recent builds: a moving average of build_seconds / work that
each done build with a ``work`` field moves a fifth of the way, its sample clamped to PER_WORK_CLAMP times the
current figure either way (lua/note.lua), so one slow fetch does not swing it; absent before the first."""
PER_WORK_CLAMP = 4.0
"""Documents the clamp in lua/note.lua (keep the two equal)."""


def le_label(bound: float) -> str:
    """A bucket bound as Prometheus writes it: 0.5, 1.0, +Inf."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_field(seconds: float) -> str:
    """The stats-hash field of the one bucket a build of ``seconds`` falls into."""
    for bound in BUILD_BUCKETS:
        if seconds <= bound:
            return "build_le:" + le_label(bound)
    return "build_le:+Inf"


def minute_of(now: float) -> int:
    return int(now // 60)


@dataclass(frozen=True)
class Counters:
    """Totals since the stats hash was created, and the histogram with cumulative buckets."""

    submitted: int = 0
    done: int = 0
    failed: int = 0
    buckets: list[tuple[str, int]] = field(default_factory=list)
    build_sum: float = 0.0
    build_count: int = 0
    vanished: int = 0
    canceled: int = 0


def counters_from(raw: dict[str, str]) -> Counters:
    """Counters from the raw stats hash (pure, for unit tests)."""
    running, buckets = 0, []
    for bound in (*BUILD_BUCKETS, math.inf):
        label = le_label(bound)
        running += int(raw.get("build_le:" + label, 0))
        buckets.append((label, running))
    return Counters(submitted=int(raw.get(SUBMITTED, 0)), done=int(raw.get(DONE, 0)), failed=int(raw.get(FAILED, 0)),
                    buckets=buckets, build_sum=float(raw.get(BUILD_SUM, 0.0)),
                    build_count=int(raw.get(BUILD_COUNT, 0)), vanished=int(raw.get(VANISHED, 0)),
                    canceled=int(raw.get(CANCELED, 0)))


def read_counters(r: redis.Redis, keys: Keys) -> Counters:
    return counters_from(cast(dict[str, str], r.hgetall(keys.stats)))


def per_minute(r: redis.Redis, keys: Keys, now: float | None = None, minutes: int = 60) -> list[tuple[int, int, int]]:
    """(minute, done, failed) for the last ``minutes`` minutes, oldest first, the current one last."""
    last = minute_of(time.time() if now is None else now)
    span = list(range(last - minutes + 1, last + 1))
    pipe = r.pipeline(transaction=False)
    for minute in span:
        pipe.hmget(keys.stats_minute(minute), [DONE, FAILED])
    rows = pipe.execute()
    return [(minute, int(done or 0), int(failed or 0)) for minute, (done, failed) in zip(span, rows, strict=True)]
