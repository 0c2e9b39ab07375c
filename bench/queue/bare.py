"""The floor: a bare XADD producer and two bare XREADGROUP+XACK consumer processes, no status kept.

What any Redis-streams queue in Python costs at least on this machine; Tessera adds its
status hash, the delivery count and the completion note on top of it.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Barrier

import redis
from common import median
from redis_proc import RedisProcess

STREAM, GROUP = "bare:jobs", "workers"
BATCH = 500


def _client(server: RedisProcess) -> redis.Redis:
    return server.client("bare")


def enqueue_rate(server: RedisProcess, payload: str, count: int, repeats: int, batched: bool) -> float:
    """Jobs/s of XADD from one producer: one call per job, or pipelines of BATCH."""
    r, rates = _client(server), []
    for _ in range(repeats):
        r.delete(STREAM)
        started = time.perf_counter()
        if batched:
            for start in range(0, count, BATCH):
                pipe = r.pipeline(transaction=False)
                for _ in range(min(BATCH, count - start)):
                    pipe.xadd(STREAM, {"package": payload})
                pipe.execute()
        else:
            for _ in range(count):
                r.xadd(STREAM, {"package": payload})
        rates.append(count / (time.perf_counter() - started))
    r.delete(STREAM)
    return median(rates)


def _consume(server: RedisProcess, name: str, barrier: Barrier, ends: multiprocessing.Queue[float]) -> None:
    r = _client(server)
    r.ping()
    barrier.wait()
    while True:
        reply = r.xreadgroup(GROUP, name, {STREAM: ">"}, count=1)
        if not reply or not reply[0][1]:
            break
        r.xack(STREAM, GROUP, reply[0][1][0][0])
    ends.put(time.time())


def drain_rate(server: RedisProcess, payload: str, count: int, repeats: int, consumers: int = 2) -> float:
    """Jobs/s for ``consumers`` processes to read and acknowledge ``count`` pre-filled entries."""
    r, rates = _client(server), []
    context = multiprocessing.get_context("fork")
    for _ in range(repeats):
        r.delete(STREAM)
        r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        pipe = r.pipeline(transaction=False)
        for _ in range(count):
            pipe.xadd(STREAM, {"package": payload})
        pipe.execute()
        barrier, ends = context.Barrier(consumers + 1), context.Queue()
        processes = [context.Process(target=_consume, args=(server, f"bare-{i}", barrier, ends))
                     for i in range(consumers)]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.time()
        finished = max(ends.get(timeout=120) for _ in processes)
        for process in processes:
            process.join()
        rates.append(count / (finished - started))
    r.delete(STREAM)
    return median(rates)
