"""How long results stay: each job's own ``keep`` (at most jobs.result_ttl), honoured by the web host's sweep.

A finished job's status hash expires ``keep`` seconds after its note (lua/note.lua sets the TTL and the
``expires_at`` the status shows). The sweep then removes the result and its zoomable view of every job whose
hash is gone (expired, or deleted while a worker was storing it), one EXISTS per job, pipelined; files older
than jobs.result_ttl go by age as ever (workers/protocol/files.py ``sweep``).

A hash can also be gone because Redis lost its data (a wipe, a replica promoted empty). Then nothing says when
those results should go, so they are left to the age rule: only a result written after the data began (the
keeper's ``epoch`` key, set once) is removed for its missing hash.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import redis

from workers.protocol.files import remove_entries, result_entries
from workers.protocol.keys import Keys
from workers.protocol.options import KEEP_MIN

log = logging.getLogger("tessera.web")

BATCH = 500
"""Jobs asked about per round trip."""


def _results(folder: Path, now: float, grace: float, since: float) -> Iterator[str]:
    """The job id of each result entry of ``folder`` older than ``grace`` and written after ``since``
    (temporaries, dot names, are not)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            written = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue  # removed meanwhile
        if since < written < now - grace:
            yield entry.name.split(".", 1)[0]


def sweep_expired(folder: str, r: redis.Redis, keys: Keys, now: float | None = None,
                  grace: float = KEEP_MIN) -> int:
    """Remove the results of jobs whose status hash is gone; the count of jobs whose files went.

    ``grace``: a result younger than this is left for the next pass (its job's hash is written before any
    worker stores, so this only spares a file caught mid-write by a clock step). While Redis cannot be read,
    nothing is removed."""
    now = time.time() if now is None else now
    try:
        epoch = r.get(keys.epoch)
    except redis.RedisError as exc:
        log.warning("keeping every result this pass: job states unreadable (%s)", exc)
        return 0
    if epoch is None:
        return 0  # no keeper has run on this data yet: nothing to tell an expired job from a lost one
    jobs = sorted(set(_results(Path(folder), now, grace, float(epoch))))
    removed = 0
    for start in range(0, len(jobs), BATCH):
        batch = jobs[start : start + BATCH]
        try:
            with r.pipeline(transaction=False) as pipe:
                for job_id in batch:
                    pipe.exists(keys.job(job_id))
                alive = cast(list[int], pipe.execute())
        except redis.RedisError as exc:
            log.warning("keeping every result this pass: job states unreadable (%s)", exc)
            return removed
        for job_id, exists in zip(batch, alive, strict=True):
            if not exists and remove_entries(Path(folder), result_entries(job_id)):
                removed += 1
    if removed:
        log.info("swept the results of %d jobs that expired or were deleted", removed)
    return removed
