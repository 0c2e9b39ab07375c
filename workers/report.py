"""`tessera status`: the queue and the live workers, read from Redis."""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from config import Settings
from workers.connection import REDIS_DOWN, connect
from workers.keys import GROUP, Keys


def queue_metrics(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    """Length, pending and lag of the jobs stream (zeros before the first job)."""
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
    beats = [cast(dict[str, str], r.hgetall(key)) for key in r.scan_iter(match=keys.worker("*", "*"), count=500)]
    return sorted((b for b in beats if b), key=lambda b: b.get("consumer", ""))


def print_status(settings: Settings) -> int:
    r, keys = connect(settings.redis), Keys(settings.redis.prefix)
    try:
        queue, beats = queue_metrics(r, keys), workers(r, keys)
    except REDIS_DOWN as exc:
        print(f"tessera status: redis unreachable: {exc}")
        return 3
    print("queue: " + "  ".join(f"{name} {value}" for name, value in queue.items()))
    print(f"{'worker':<24} {'pid':>7} {'state':<6} {'heartbeat':>9} {'rss MB':>7}  job")
    now = time.time()
    for beat in beats:
        age = now - float(beat.get("at", now))
        rss = int(beat.get("rss", 0)) / 2**20
        print(f"{beat.get('consumer', '?'):<24} {beat.get('pid', '?'):>7} {beat.get('state', '?'):<6} "
              f"{age:>8.1f}s {rss:>7.0f}  {beat.get('job', '')}")
    if not beats:
        print("(no live workers)")
    return 0
