"""A running job's progress reports: written to its status hash at most every ``worker.progress_interval``, and
the way its worker hears of a cancel.

The reply to each progress write says whether the job should go on (lua/update.lua): a cancel was asked for,
or the job is final or gone (deleted), and then the report raises :class:`Canceled` where the build is, so the
build stops within one interval of the request plus the time to its next report (reports come as tiles arrive
and as strips render). Stage boundaries that come with no report (before storing) ask the same with
:meth:`Progress.check`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from workers.protocol import status
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.errors import Canceled
from workers.protocol.keys import Keys

log = logging.getLogger("tessera.worker")


class Progress:
    """The ``report(stage, fraction)`` of one build (pipeline/mosaic.py calls it) for one job."""

    def __init__(self, r: redis.Redis, keys: Keys, job_id: str, interval: float, beat: Callable[[], None],
                 on_redis_down: Callable[[Exception], None]) -> None:
        self.r, self.keys, self.job_id, self.interval = r, keys, job_id, interval
        self.beat, self.on_redis_down = beat, on_redis_down
        self.last = 0.0
        self.pending: dict[str, str] = {}
        """Extra status fields (the friends stage's counts) not written yet: they go with the next write."""

    def __call__(self, stage: str, fraction: float, **fields: str) -> None:
        self.beat()  # the heartbeat's progress time: the build is alive
        self.pending.update(fields)
        now = time.monotonic()
        if now - self.last < self.interval and fraction < 1:
            return
        self.last = now
        self._write(stage=stage, progress=round(fraction, 3))

    def check(self, stage: str) -> None:
        """A stage boundary: say the stage, and stop here if the job was canceled or deleted meanwhile."""
        self._write(stage=stage)

    def _write(self, **fields: str | float) -> None:
        fields, self.pending = {**self.pending, **fields}, {}
        try:  # progress is best effort: an outage must not stop the build
            going = status.keep_going(self.r, self.keys, self.job_id, **fields)
        except REDIS_DOWN as exc:
            self.on_redis_down(exc)
            return
        if not going:
            log.info("job %s: canceled or deleted; stopping at %r", self.job_id, fields.get("stage", ""))
            raise Canceled(f"canceled while {fields.get('stage', 'running')}")
