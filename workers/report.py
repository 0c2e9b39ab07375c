"""`tessera status`: the workers, the queue and the last jobs, read from Redis."""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from config import Settings
from workers.connection import REDIS_DOWN, connect
from workers.exitcodes import RET_CONNECT, RET_OK
from workers.keys import GROUP, Keys


def queue_metrics(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    """Length, pending and lag of the jobs stream, and the dead letters (zeros before the first job)."""
    metrics = {"length": 0, "pending": 0, "lag": 0, "dead": int(r.xlen(keys.dead))}
    if not r.exists(keys.jobs):
        return metrics
    metrics["length"] = int(r.xlen(keys.jobs))
    for group in r.xinfo_groups(keys.jobs):
        if group["name"] == GROUP:
            metrics["pending"] = int(group.get("pending") or 0)
            metrics["lag"] = int(group.get("lag") or 0)
    return metrics


def workers(r: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    """Live heartbeats, all nodes."""
    beats = [cast(dict[str, str], r.hgetall(key)) for key in r.scan_iter(match=keys.worker("*", "*"), count=500)]
    return sorted((b for b in beats if b), key=lambda b: (b.get("node", ""), b.get("consumer", "")))


def recent_jobs(r: redis.Redis, keys: Keys, count: int = 10) -> list[tuple[str, dict[str, str]]]:
    ids = cast(list[str], r.lrange(keys.recent, 0, count - 1))
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(job_id), ["state", "finished_at", "worker", "deliveries", "error"])
    rows = pipe.execute()
    fields = ("state", "finished_at", "worker", "deliveries", "error")
    return [(job_id, dict(zip(fields, (v or "" for v in row), strict=True))) for job_id, row in zip(ids, rows,
                                                                                                     strict=True)]


def print_status(settings: Settings) -> int:
    r, keys = connect(settings.redis, "admin"), Keys(settings.redis.prefix)
    try:
        queue, beats, jobs = queue_metrics(r, keys), workers(r, keys), recent_jobs(r, keys)
    except REDIS_DOWN as exc:
        print(f"tessera status: redis unreachable: {exc}")
        return RET_CONNECT
    now = time.time()
    print("queue   " + "  ".join(f"{name} {value}" for name, value in queue.items()))
    print(f"\n{'node':<16} {'worker':<20} {'pid':>7} {'state':<8} {'beat':>6} {'rss MB':>7}  job")
    for beat in beats:
        age = now - float(beat.get("at", now))
        rss = int(beat.get("rss", 0)) / 2**20
        print(f"{beat.get('node', '?'):<16} {beat.get('consumer', '?'):<20} {beat.get('pid', '?'):>7} "
              f"{beat.get('state', '?'):<8} {age:>5.1f}s {rss:>7.0f}  {beat.get('job', '')}")
    if not beats:
        print("(no live workers)")
    print(f"\n{'last jobs':<24} {'state':<7} {'ago':>7} {'tries':>5}  {'worker':<20} error")
    for job_id, job in jobs:
        ago = f"{now - float(job['finished_at']):.0f}s" if job["finished_at"] else "?"
        print(f"{job_id:<24} {job['state']:<7} {ago:>7} {job['deliveries']:>5}  {job['worker']:<20} {job['error']}")
    return RET_OK
