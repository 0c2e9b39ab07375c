"""`tessera dead` and `tessera retry`: look at dead letters and put one back on the queue."""

from __future__ import annotations

import json
import time
from typing import cast

import redis

from workers.protocol.keys import Keys
from workers.protocol.status import JobState

DeadLetter = tuple[str, dict[str, str]]


def dead_letters(r: redis.Redis, keys: Keys, count: int = 100) -> list[DeadLetter]:
    """Newest first."""
    return cast(list[DeadLetter], r.xrevrange(keys.dead, count=count))


def job_id_of(letter: DeadLetter) -> str:
    try:
        return str(json.loads(letter[1].get("package", "{}")).get("id", ""))
    except (ValueError, AttributeError):
        return ""


def retry(r: redis.Redis, keys: Keys, job_id: str) -> bool:
    """Queue the job again with a fresh delivery count; False when no dead letter names it."""
    for letter_id, fields in dead_letters(r, keys, count=10_000):
        if job_id_of((letter_id, fields)) != job_id:
            continue
        pipe = r.pipeline(transaction=True)
        pipe.hset(keys.job(job_id), mapping={"state": JobState.QUEUED.value, "stage": "queued again by an operator",
                                             "deliveries": 0, "progress": 0, "error": "", "finished_at": "",
                                             "created_at": time.time()})
        pipe.persist(keys.job(job_id))
        pipe.xadd(keys.jobs, {"package": fields["package"]})
        pipe.xdel(keys.dead, letter_id)
        pipe.execute()
        return True
    return False


def print_dead(r: redis.Redis, keys: Keys) -> int:
    letters = dead_letters(r, keys)
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'job':<24} {'deliveries':>10}  {'failed':<19}  last error")
    for letter in letters:
        fields = letter[1]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(fields.get("failed_at", 0))))
        print(f"{job_id_of(letter):<24} {fields.get('deliveries', '?'):>10}  {when:<19}  {fields.get('error', '')}")
    return 0
