"""RQ's adapter: Queue.enqueue / enqueue_many of a no-op function, `rq worker` processes (runs in .venv-peers)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import redis
from common import utc_timestamp
from peer_tasks import noop
from procs import WorkerPool
from rq import Queue, Worker

HERE = Path(__file__).resolve().parent
QUEUE = "bench"
BATCH = 500
"""Jobs per pipeline in ``fill``, as Tessera's enqueue_many."""


class RqSystem:
    batched = True

    def __init__(self, url: str, worker_class: str, logs: Path, workers: int = 2) -> None:
        self.url, self.worker_class, self.logs, self.workers = url, worker_class, logs, workers
        self.r = redis.Redis.from_url(url)  # RQ stores pickled bytes: no decoding
        self.queue = Queue(QUEUE, connection=self.r)

    def submit(self) -> str:
        return str(self.queue.enqueue(noop).id)

    def fill(self, count: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, count, BATCH):
            with self.r.pipeline() as pipe:
                data = [Queue.prepare_data(noop) for _ in range(min(BATCH, count - start))]
                ids += [job.id for job in self.queue.enqueue_many(data, pipeline=pipe)]
                pipe.execute()
        return ids

    def done_times(self, ids: Sequence[str]) -> list[float | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "ended_at")
        return [utc_timestamp(ended.decode()) if status == b"finished" and ended else None
                for status, ended in pipe.execute()]

    def reset(self) -> None:
        self.r.flushdb()

    def start_workers(self) -> WorkerPool:
        rq = str(Path(sys.executable).parent / "rq")
        commands = [[rq, "worker", "--worker-class", self.worker_class, "--name", f"bench-{slot}", QUEUE]
                    for slot in range(self.workers)]
        env = {"RQ_REDIS_URL": self.url, "PYTHONPATH": str(HERE)}
        return WorkerPool(commands, env, cwd=HERE, logs=self.logs, name=f"rq-{self.worker_class.rsplit('.', 1)[-1]}")

    def workers_ready(self) -> bool:
        return len(Worker.all(connection=self.r)) >= self.workers
