"""Tessera's adapter for the bench: its own stream.enqueue / enqueue_many, real worker processes and the keeper.

Runs in the project's virtualenv. Workers are `python -m workers worker --slot N`, beside one
`python -m workers keeper` (which admits submitted jobs to the stream: a job's whole path is measured),
configured only through TESSERA_* environment variables (no config/local.yaml).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import redis
from procs import WorkerPool
from redis_proc import RedisProcess

import config
from workers.protocol import replication, stream
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

REPO = Path(__file__).resolve().parents[2]
PREFIX = "bench"
NODE = "bench"
TARGET = "http://127.0.0.1:9/target.png"
TILES = ["http://127.0.0.1:9/tile.png"]
"""Never fetched: a no-op job finishes before any fetch."""
NOOP = Options(cols=4, rows=4, tile_px=32, seed=0, noop=True)

def tessera_env(server: RedisProcess, workdir: Path) -> dict[str, str]:
    """Everything a Tessera process needs, as env overrides on the defaults."""
    empty = workdir / "bench.yaml"
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_text("{}\n")
    return {
        "TESSERA_CONFIG": str(empty),
        "TESSERA_REDIS_URL": server.url("tessera"),
        "TESSERA_REDIS_PASSWORD": server.password,
        "TESSERA_REDIS_PREFIX": PREFIX,
        "TESSERA_QUEUE_ALLOW_NOOP": "true",
        "TESSERA_WEB_SIGNING_KEY": "bench-signing-key",
        "TESSERA_PATHS_ROOT": str(workdir),
        "TESSERA_NODE": NODE,
        "TESSERA_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "TESSERA_WEB_RATE_LIMIT_PER_MINUTE": "100000000",  # one bench client sends thousands of jobs
        "TESSERA_WEB_MAX_ACTIVE_JOBS": "100000000",
        "NUMBA_CACHE_DIR": str(REPO / "var" / "numba-cache"),
    }

class TesseraSystem:
    batched = True

    def __init__(self, server: RedisProcess, workdir: Path, workers: int = 2) -> None:
        self.env = tessera_env(server, workdir)
        self.settings = config.load(None, env=self.env)
        self.r = server.client("tessera")  # as workers.protocol.connection.connect makes it: decoded replies
        self.keys = Keys(self.settings.redis.prefix)
        self.logs = workdir / "logs"
        self.workers = workers

    def submit(self) -> str:
        package = JobPackage.create(TARGET, TILES, NOOP)
        stream.enqueue(self.r, self.keys, package)
        return package.id

    def fill(self, count: int) -> list[str]:
        packages = [JobPackage.create(TARGET, TILES, NOOP) for _ in range(count)]
        stream.enqueue_many(self.r, self.keys, packages)
        return [package.id for package in packages]

    def done_times(self, ids: Sequence[str]) -> list[float | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.keys.job(job_id), "state", "finished_at")
        replies = cast(list[list[str | None]], pipe.execute())
        return [float(at) if state == "done" and at else None for state, at in replies]

    def reset(self) -> None:
        self.r.flushdb()

    def start_workers(self, slots: Sequence[int] | None = None, **env: str) -> WorkerPool:
        """The keeper and `python -m workers worker --slot N` for each slot (default: 0 .. workers-1), ``env``
        added; pausing the pool pauses the keeper too, so a drain includes the jobs' admission."""
        slots = range(self.workers) if slots is None else slots
        commands = [[sys.executable, "-m", "workers", "keeper"],
                    *([sys.executable, "-m", "workers", "worker", "--slot", str(slot)] for slot in slots)]
        return WorkerPool(commands, {**self.env, **env}, cwd=REPO, logs=self.logs, name="tessera")

    def workers_ready(self, slots: Sequence[int] | None = None) -> bool:
        slots = range(self.workers) if slots is None else slots
        try:
            consumers = cast(list[dict[str, object]], self.r.xinfo_consumers(self.keys.jobs, GROUP))
        except redis.ResponseError:  # no stream or group yet
            return False
        names = {str(consumer["name"]) for consumer in consumers}
        return {f"{NODE}-{slot}" for slot in slots} <= names


class ReplicatedSystem(TesseraSystem):
    """Tessera's submission as the web makes it under Sentinel (``redis.ha``): the job's transaction, then WAIT
    for one replica on the same connection (workers/protocol/replication.py), before the next job."""

    def __init__(self, server: RedisProcess, workdir: Path, workers: int = 2) -> None:
        super().__init__(server, workdir, workers)
        # The bench's client talks to the primary directly; the placeholder Sentinel only switches the WAIT on.
        self.redis_settings = dataclasses.replace(self.settings.redis, sentinels=["127.0.0.1:1"], min_replicas_acked=1)

    def submit(self) -> str:
        package = JobPackage.create(TARGET, TILES, NOOP)
        with replication.pinned(self.r, self.redis_settings) as r:
            stream.enqueue(r, self.keys, package)
            replication.replicated(r, self.redis_settings)
        return package.id
