"""Celery's adapter: apply_async of a no-op task, 2 `celery worker --pool solo` processes (runs in .venv-peers).

Redis is both broker and result backend; the settings are Celery's defaults otherwise
(prefetch multiplier 4, JSON, results kept a day)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import redis
from celery_app import QUEUE, app, noop
from common import utc_timestamp
from procs import WorkerPool

HERE = Path(__file__).resolve().parent
META = "celery-task-meta-"


class CelerySystem:
    batched = False

    def __init__(self, url: str, logs: Path, workers: int = 2) -> None:
        self.url, self.logs, self.workers = url, logs, workers
        self.r = redis.Redis.from_url(url, decode_responses=True)

    def submit(self) -> str:
        return str(noop.apply_async().id)

    def fill(self, count: int) -> list[str]:
        return [self.submit() for _ in range(count)]

    def done_times(self, ids: Sequence[str]) -> list[float | None]:
        pipe = self.r.pipeline(transaction=False)
        for task_id in ids:
            pipe.get(META + task_id)
        metas = [json.loads(raw) if raw else {} for raw in pipe.execute()]
        return [utc_timestamp(meta["date_done"]) if meta.get("status") == "SUCCESS" else None for meta in metas]

    def reset(self) -> None:
        """Drop the queue and results, but keep kombu's exchange bindings (FLUSHDB would lose them)."""
        doomed = [QUEUE, "unacked", "unacked_index", *self.r.scan_iter(match=META + "*", count=1000)]
        for start in range(0, len(doomed), 1000):
            self.r.unlink(*doomed[start : start + 1000])

    def start_workers(self) -> WorkerPool:
        celery = str(Path(sys.executable).parent / "celery")
        commands = [[celery, "-A", "celery_app", "worker", "--pool", "solo", "--hostname", f"bench{slot}@%h",
                     "--queues", QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "--loglevel", "WARNING"] for slot in range(self.workers)]
        env = {"BENCH_REDIS_URL": self.url, "PYTHONPATH": str(HERE)}
        return WorkerPool(commands, env, cwd=HERE, logs=self.logs, name="celery")

    def workers_ready(self) -> bool:
        return len(app.control.ping(timeout=0.5) or []) >= self.workers
