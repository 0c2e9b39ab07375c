"""The three measures, the same for every system: enqueue rate, drain rate, submit→done latency.

Each system (Tessera, RQ, Celery) is a small adapter with the methods of ``System``;
this module holds the timing so that all of them are measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from common import latency_summary, median, paced, wait_done
from procs import WorkerPool

WARM_UP_JOBS = 50
"""Jobs run through fresh workers before any timing (imports, connections, first-call costs)."""


@dataclass(frozen=True)
class Sizes:
    enqueue: int = 5000
    drain: int = 2000
    latency: int = 1000
    interval_ms: float = 5.0
    repeats: int = 3


class System(Protocol):
    batched: bool
    """Whether ``fill`` uses a batch API (else it is ``submit`` in a loop)."""

    def submit(self) -> str:
        """Queue one no-op job the way an application would; returns its id."""
        ...

    def fill(self, count: int) -> list[str]:
        """Queue ``count`` no-op jobs as fast as the system allows (batched where it can)."""
        ...

    def done_times(self, ids: Sequence[str]) -> list[float | None]:
        """Each job's stored completion time (epoch seconds), or None while it is not done."""
        ...

    def reset(self) -> None:
        """Drop every key of this system (queue, statuses, results) before workers start."""
        ...

    def start_workers(self) -> WorkerPool:
        ...

    def workers_ready(self) -> bool:
        ...


def timeout_for(jobs: int) -> float:
    """Generous: the slowest peer (RQ forking per job) drains about 50 jobs/s."""
    return 60.0 + jobs / 10.0


def enqueue_rate(system: System, queue_jobs: Callable[[int], object], count: int, repeats: int) -> float:
    """Jobs/s from one producer queueing ``count`` jobs with ``queue_jobs(count)``, no worker running."""
    rates = []
    for _ in range(repeats):
        system.reset()
        started = time.perf_counter()
        queue_jobs(count)
        rates.append(count / (time.perf_counter() - started))
    system.reset()
    return median(rates)


def one_at_a_time(system: System) -> Callable[[int], object]:
    return lambda count: [system.submit() for _ in range(count)]


def warm_up(system: System, pool: WorkerPool) -> None:
    pool.wait_ready(system.workers_ready)
    ids = [system.submit() for _ in range(WARM_UP_JOBS)]
    wait_done(ids, system.done_times, timeout_for(WARM_UP_JOBS))


def drain_rate(system: System, pool: WorkerPool, count: int, repeats: int) -> float:
    """Jobs/s for the workers to finish ``count`` jobs queued while they were paused (SIGSTOP).

    The clock starts when both are resumed and stops at the last stored completion time."""
    rates = []
    for _ in range(repeats):
        pool.pause()
        try:
            ids = system.fill(count)
        finally:
            started = pool.resume()
        finished = wait_done(ids, system.done_times, timeout_for(count))
        pool.check_alive()
        rates.append(count / (max(finished) - started))
        time.sleep(0.2)
    return median(rates)


def latency(system: System, count: int, interval_ms: float, repeats: int) -> dict[str, float]:
    """p50/p99 ms from submit to stored completion, one job every ``interval_ms`` (medians over repeats)."""
    runs = []
    for _ in range(repeats):
        ids: list[str] = []
        submitted = paced(count, interval_ms / 1000.0, lambda _i, ids=ids: ids.append(system.submit()))
        runs.append(latency_summary(submitted, wait_done(ids, system.done_times, timeout_for(count))))
        time.sleep(0.2)
    return {key: median([run[key] for run in runs]) for key in ("p50", "p99")}


def measure(system: System, sizes: Sizes, enqueue: bool = True, drain_repeats: int | None = None,
            latency_repeats: int | None = None) -> dict[str, float]:
    """All measures of one system; ``enqueue=False`` when another variant already measured it."""
    results: dict[str, float] = {}
    if enqueue:
        results["enqueue"] = enqueue_rate(system, one_at_a_time(system), sizes.enqueue, sizes.repeats)
        if system.batched:
            results["enqueue_batch"] = enqueue_rate(system, system.fill, sizes.enqueue, sizes.repeats)
    system.reset()
    with system.start_workers() as pool:
        warm_up(system, pool)
        results["drain"] = drain_rate(system, pool, sizes.drain, drain_repeats or sizes.repeats)
        results.update(latency(system, sizes.latency, sizes.interval_ms, latency_repeats or sizes.repeats))
    return results
