"""The backlog's predicted seconds: the cost (workers/protocol/cost.py) of every job not finished, summed.

The jobs are found through an index, the set ``Keys.backlog``: each id goes in with its job (stream.py queue_in,
in the job's own transaction), so no job waiting on the inbox, undelivered in the stream or pending at a worker
is missing from it. Reading the stream would carry every package (up to thousands of tile URLs each) to the
reader. The sum reads each member's status hash and counts only jobs still queued or running: an id whose job
was canceled, dead-lettered, finished, deleted or lost with Redis data adds nothing, so the figure is right
before the keeper prunes such ids (:func:`prune`). A running job counts its remaining part (1 - progress).

Bounded: at most ``cap`` hashes are read per reading (pipelined HMGET); past that a random sample of ``cap``
members stands for the set (SRANDMEMBER) and the reading says it is an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from workers.protocol import cost, stats
from workers.protocol.keys import Keys
from workers.protocol.status import JobState, number

CAP = 2000
"""Most status hashes one reading reads: about 40 ms (bench/cost.py --index). A sample of 2000 misses the set's
mean by about cv/45 (cv: the spread of job sizes over their mean), so a few % for usual mixes."""
FIELDS = ("state", cost.FIELD, "progress")
OPEN = (JobState.QUEUED.value, JobState.RUNNING.value)
"""States of a job not finished."""
UNKNOWN_WORK = 1.0
"""Work units of a job queued before jobs had a ``work`` field (one unit: about a second on the fit machine)."""
PRUNE_BATCH = 500


@dataclass(frozen=True)
class Backlog:
    seconds: float = 0.0
    """Predicted seconds of work in the jobs not finished (a sum over workers' time, not a wall time)."""
    work: float = 0.0
    """Their work units."""
    jobs: int = 0
    """Jobs counted (an estimate of the set's open jobs when ``sampled``)."""
    per_unit: float = cost.PRIOR_SECONDS_PER_UNIT
    """Seconds per work unit used: the recent builds' (stats.RECENT_PER_WORK), else the prior."""
    sampled: bool = False
    """True when the index held more than the cap, and a sample stands for it."""


def remaining(row: Sequence[str | None]) -> float | None:
    """Work units left of one job from its (state, work, progress) fields; None when it is not open (pure)."""
    state, work, progress = row
    if state not in OPEN:
        return None
    units = _or(number(work), UNKNOWN_WORK)
    if state == "running":
        units *= 1.0 - min(max(_or(number(progress), 0.0), 0.0), 1.0)
    return max(units, 0.0)


def summed(rows: Iterable[Sequence[str | None]], members: int, per_unit: float | None) -> Backlog:
    """The backlog from the hash fields of ``members`` ids or of a sample of them (pure)."""
    read, work, jobs = 0, 0.0, 0
    for row in rows:
        read += 1
        left = remaining(row)
        if left is not None:
            work, jobs = work + left, jobs + 1
    scale = members / read if read and members > read else 1.0  # a sample stands for the whole set
    rate = per_unit if per_unit is not None and per_unit > 0 else cost.PRIOR_SECONDS_PER_UNIT
    return Backlog(seconds=cost.seconds(work * scale, rate), work=work * scale, jobs=round(jobs * scale),
                   per_unit=rate, sampled=scale > 1.0)


def read_backlog(r: redis.Redis, keys: Keys, cap: int = CAP) -> Backlog:
    """The backlog now: two round trips and one pipelined read of at most ``cap`` status hashes."""
    pipe = r.pipeline(transaction=False)
    pipe.scard(keys.backlog)
    pipe.hget(keys.stats, stats.RECENT_PER_WORK)
    members, per_unit = pipe.execute()
    members = int(members)
    if not members:
        return Backlog(per_unit=summed((), 0, number(per_unit)).per_unit)
    ids = cast(Iterable[str], r.smembers(keys.backlog) if members <= cap else r.srandmember(keys.backlog, cap))
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(job_id), list(FIELDS))
    return summed(pipe.execute(), members, number(per_unit))


def prune(r: redis.Redis, keys: Keys, batch: int = PRUNE_BATCH) -> int:
    """Take the ids of jobs no longer open off the index (the keeper, now and then); returns how many went.

    A job is only ever final or gone after it was open, never open again, so an id removed here is never wanted
    back (a reconciled job that is queued again is still open, so never removed)."""
    removed, cursor = 0, 0
    while True:
        cursor, ids = cast(tuple[int, list[str]], r.sscan(keys.backlog, cursor, count=batch))
        if ids:
            pipe = r.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(keys.job(job_id), ["state"])  # HMGET: the keeper's one read of status hashes
            closed = [job_id for job_id, (state,) in zip(ids, pipe.execute(), strict=True) if state not in OPEN]
            if closed:
                removed += int(r.srem(keys.backlog, *closed))
        if not cursor:
            return removed


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
