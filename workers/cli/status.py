"""`tessera status`: the workers, the queue and the last jobs, read from Redis (workers/protocol/queue.py)."""

from __future__ import annotations

import time

from config import Settings
from workers.protocol.backlog import read_backlog
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.exitcodes import RET_CONNECT, RET_OK
from workers.protocol.keys import Keys
from workers.protocol.queue import heartbeats, read_queue, recent_jobs


def print_status(settings: Settings) -> int:
    r, keys = connect(settings.redis, "admin"), Keys(settings.redis.prefix)
    try:
        queue, beats, jobs = read_queue(r, keys), heartbeats(r, keys), recent_jobs(r, keys)
        work = read_backlog(r, keys)
    except REDIS_DOWN as exc:
        print(f"tessera status: redis unreachable: {exc}")
        return RET_CONNECT
    now = time.time()
    print(f"queue   inbox {queue.inbox}  length {queue.length}  pending {queue.pending}  lag {queue.depth}  "
          f"dead {queue.dead}")
    print(f"work    {work.seconds:.0f} s predicted in {work.jobs} open jobs ({work.work:.1f} units at "
          f"{work.per_unit:.3g} s each{', from a sample' if work.sampled else ''})")
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
