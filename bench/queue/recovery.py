"""Tessera's recovery times: how soon a job taken by a worker that died runs again.

Both start from a job that a consumer took and never acknowledged, as a SIGKILLed
worker leaves it: the job is queued and read by that consumer in one transaction, so
no running worker can take it first.
"""

from __future__ import annotations

import time

from common import wait_done
from tessera_side import NODE, NOOP, TARGET, TILES, TesseraSystem

from workers.protocol import scripts, stream
from workers.protocol.keys import GROUP
from workers.protocol.package import JobPackage

ABANDONED_CLAIM_IDLE = 2.0
"""queue.claim_idle for the abandoned-job measure (the default, 60 s, would only measure the wait)."""


def _taken_by(tessera: TesseraSystem, consumer: str) -> str:
    """Queue one no-op job and read it as ``consumer``, atomically; returns the job id."""
    stream.ensure_group(tessera.r, tessera.keys)
    package = JobPackage.create(TARGET, TILES, NOOP)
    keys = tessera.keys
    scripts.load(tessera.r)  # as the keeper would (none runs yet)
    pipe = tessera.r.pipeline(transaction=True)
    stream.queue_in(pipe, keys, package)
    pipe.fcall(scripts.ADMIT, 3, keys.inbox, keys.admitting, keys.jobs, keys.job_prefix, 1)  # the keeper's part
    pipe.xreadgroup(GROUP, consumer, {keys.jobs: ">"}, count=1)
    pipe.execute()
    return package.id


def restart_rerun(tessera: TesseraSystem) -> float:
    """Seconds from starting slot 0 again (a new process) to its interrupted job being done."""
    tessera.reset()
    job = _taken_by(tessera, f"{NODE}-0")
    started = time.time()
    with tessera.start_workers(slots=[0]):
        return wait_done([job], tessera.done_times, timeout=60)[0] - started


def abandoned_rerun(tessera: TesseraSystem) -> float:
    """Seconds from a job being taken by a consumer that never comes back to another worker finishing it."""
    tessera.reset()
    with tessera.start_workers(slots=[0], TESSERA_QUEUE_CLAIM_IDLE=str(ABANDONED_CLAIM_IDLE)) as pool:
        pool.wait_ready(lambda: tessera.workers_ready(slots=[0]))
        started = time.time()
        job = _taken_by(tessera, f"{NODE}-gone")
        return wait_done([job], tessera.done_times, timeout=60)[0] - started
