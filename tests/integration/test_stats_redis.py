"""Cluster stats in a real Redis: counted at enqueue and inside the FINISH script, once per job."""

from __future__ import annotations

import json
import time
from typing import cast

import pytest
import redis

from config import Settings
from workers.protocol import queue, scripts, stats, status, stream
from workers.protocol.keys import GROUP, STATS_MINUTE_TTL, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState

pytestmark = pytest.mark.integration


def queue_jobs(r: redis.Redis, keys: Keys, count: int) -> list[str]:
    packages = [JobPackage.create("http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0))
                for _ in range(count)]
    stream.ensure_group(r, keys)
    for package in packages:
        stream.enqueue(r, keys, package)
    assert r.fcall(scripts.ADMIT, 3, keys.inbox, keys.admitting, keys.jobs, keys.job_prefix, count) == count
    return [p.id for p in packages]


def done(r: redis.Redis, keys: Keys, job_id: str, seconds: float | None) -> int:
    details = {"build_seconds": seconds} if seconds is not None else {}
    return status.finish(r, keys, job_id, 60, JobState.DONE, build_seconds=seconds, result=f"{job_id}.jpg",
                         details=json.dumps(details))


def test_submitted_done_failed_and_the_histogram(r: redis.Redis, settings: Settings) -> None:
    keys = Keys(settings.redis.prefix)
    assert stats.read_counters(r, keys).submitted == 0
    jobs = queue_jobs(r, keys, 5)
    assert done(r, keys, jobs[0], 0.2) == 1
    assert done(r, keys, jobs[1], 3.0) == 1
    assert done(r, keys, jobs[2], None) == 1  # no build time (e.g. noop): counted, not in the histogram
    assert status.finish(r, keys, jobs[3], 60, JobState.FAILED, error="bad image") == 1
    counters = stats.read_counters(r, keys)
    assert (counters.submitted, counters.done, counters.failed) == (5, 3, 1)
    buckets = dict(counters.buckets)
    assert (buckets["0.5"], buckets["1.0"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (1, 1, 1, 2, 2)
    assert counters.build_count == 2 and counters.build_sum == pytest.approx(3.2)


def test_the_histogram_takes_the_number_not_the_details(r: redis.Redis, settings: Settings) -> None:
    keys = Keys(settings.redis.prefix)
    jobs = queue_jobs(r, keys, 2)
    status.finish(r, keys, jobs[0], 60, JobState.DONE, details=json.dumps({"build_seconds": 2.0}))
    status.finish(r, keys, jobs[1], 60, JobState.FAILED, build_seconds=2.0, error="x")  # failed: not timed
    assert stats.read_counters(r, keys).build_count == 0


def test_a_job_finished_twice_is_counted_once(r: redis.Redis, settings: Settings) -> None:
    keys = Keys(settings.redis.prefix)
    [job] = queue_jobs(r, keys, 1)
    assert done(r, keys, job, 1.5) == 1
    assert done(r, keys, job, 1.5) == 0
    assert status.finish(r, keys, job, 60, JobState.FAILED, error="late duplicate") == 0
    assert status.finish(r, keys, "no-such-job", 60, JobState.FAILED, error="unknown") == -1
    counters = stats.read_counters(r, keys)
    assert (counters.done, counters.failed, counters.build_count) == (1, 0, 1)
    assert sum(row[1] + row[2] for row in stats.per_minute(r, keys)) == 1


def test_per_minute_counts_expire_after_two_hours_and_read_oldest_first(r: redis.Redis, settings: Settings) -> None:
    keys = Keys(settings.redis.prefix)
    jobs = queue_jobs(r, keys, 3)
    done(r, keys, jobs[0], 1.0)
    done(r, keys, jobs[1], 1.0)
    status.finish(r, keys, jobs[2], 60, JobState.FAILED, error="x")
    now = time.time()
    rows = stats.per_minute(r, keys, now)
    assert len(rows) == 60 and rows[-1][0] == stats.minute_of(now) and rows[0][0] == stats.minute_of(now) - 59
    assert sum(d for _, d, _ in rows) == 2 and sum(f for _, _, f in rows) == 1
    busy = [minute for minute, d, f in rows if d or f]
    assert 0 < r.ttl(keys.stats_minute(busy[0])) <= STATS_MINUTE_TTL


def test_queue_numbers_depth_pending_and_dead(r: redis.Redis, settings: Settings) -> None:
    keys = Keys(settings.redis.prefix)
    assert queue.read_queue(r, keys) == queue.QueueNumbers()
    queue_jobs(r, keys, 3)
    taken = stream.take_new(r, keys, "w-0")
    assert taken is not None
    numbers = queue.read_queue(r, keys)
    assert (numbers.length, numbers.pending, numbers.depth, numbers.dead) == (3, 1, 2, 0)
    stream.dead_letter(r, keys, taken[0], taken[1], "gave up", 5)
    numbers = queue.read_queue(r, keys)
    assert (numbers.length, numbers.pending, numbers.depth, numbers.dead) == (3, 0, 2, 1)  # acked, not yet trimmed
    assert r.fcall(scripts.TRIM, 1, keys.jobs, GROUP) == 1
    numbers = queue.read_queue(r, keys)
    assert (numbers.length, numbers.pending, numbers.depth, numbers.dead) == (2, 0, 2, 1)


def test_metrics_and_autoscaler_agree_when_redis_cannot_tell_the_lag(r: redis.Redis, settings: Settings) -> None:
    """An undelivered entry deleted from the stream makes XINFO answer a nil lag: /metrics' depth and the
    orchestrator's backlog must both count what is left (they once read 0 and length - pending)."""
    from orchestrator.loop import read_load

    keys = Keys(settings.redis.prefix)
    queue_jobs(r, keys, 4)
    assert stream.take_new(r, keys, "w-0") is not None
    last = cast(list[tuple[str, dict[str, str]]], r.xrevrange(keys.jobs, count=1))[0][0]
    r.xdel(keys.jobs, last)  # undelivered: the group cannot tell its lag any more
    groups = cast(list[dict[str, object]], r.xinfo_groups(keys.jobs))
    group = next(g for g in groups if g["name"] == "workers")
    assert group["lag"] is None
    numbers = queue.read_queue(r, keys)
    assert (numbers.length, numbers.pending, numbers.depth) == (3, 1, 2)
    load = read_load(r, keys)
    assert load is not None and load.backlog == numbers.backlog == 3
