"""Helpers shared by every side of the bench, in both virtualenvs: stdlib and redis-py only.

The peers' scripts run under .venv-peers and import this module by path, so nothing
here may import Tessera, RQ or Celery.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

POLL_S = 0.01
"""Seconds between checks while waiting for jobs to finish."""


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 1,000 values is the 990th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def latency_summary(submitted: Sequence[float], done: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of submit→done in milliseconds (both timestamps from time.time() on this host)."""
    millis = [(d - s) * 1000.0 for s, d in zip(submitted, done, strict=True)]
    return {"p50": percentile(millis, 0.50), "p99": percentile(millis, 0.99)}


def utc_timestamp(text: str) -> float:
    """An ISO 8601 time as written by RQ or Celery (naive means UTC) → seconds since the epoch."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def paced(count: int, interval_s: float, submit: Callable[[int], None]) -> list[float]:
    """Call ``submit(i)`` every ``interval_s`` on an absolute schedule; returns each call's start time."""
    stamps: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stamps.append(time.time())
        submit(i)
    return stamps


def wait_done(ids: Sequence[str], done_times: Callable[[Sequence[str]], list[float | None]],
              timeout: float) -> list[float]:
    """Wait until every job has a completion time; returns them in the order of ``ids``.

    Checks the last id alone until it is done (cheap while the queue drains), then all."""
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    while time.monotonic() < deadline:
        if not found and done_times(ids[-1:])[0] is None:
            time.sleep(POLL_S)
            continue
        missing = [job for job in ids if job not in found]
        for job, stamp in zip(missing, done_times(missing), strict=True):
            if stamp is not None:
                found[job] = stamp
        if len(found) == len(ids):
            return [found[job] for job in ids]
        time.sleep(POLL_S)
    raise TimeoutError(f"{len(ids) - len(found)} of {len(ids)} jobs not done after {timeout:.0f} s")


def pause(pids: Iterable[int]) -> None:
    """SIGSTOP the workers we started, so a queue can be filled before any of them takes a job."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def resume(pids: Iterable[int]) -> float:
    """SIGCONT them all at once; returns the moment the drain starts."""
    start = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    return start


def emit(results: dict[str, float]) -> None:
    """A peer script's only stdout line: its results as JSON, for run.py."""
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
