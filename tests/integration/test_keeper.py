"""The keeper on a real redis-server with the production ACL users: it loads the functions a fresh Redis lacks
(workers wait for them as for an outage), admits every submitted job once and in order (a keeper killed mid-way
loses none), and trims only what the workers acknowledged."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from config import Settings
from tests.helpers.keeper import keeping, queued_count
from tests.helpers.processes import free_port, stop_process, wait_until
from tests.helpers.redis import start_redis
from tests.helpers.settings import settings_factory
from workers.protocol import queue, scripts, status, stream
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.daemon import Worker
from workers.service.keeper import Keeper
from workers.service.redis_server import ROLES, acl_lines

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Settings]:
    """A Redis of this test's own, as a fresh embedded one starts: ACL users, no functions loaded."""
    port, password = free_port(), secrets.token_urlsafe(16)
    roles = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES if role != "admin"}
    settings = settings_factory(tmp_path, f"redis://127.0.0.1:{port}/0", password)(
        **roles, TESSERA_QUEUE_ALLOW_NOOP="true")
    server = start_redis(tmp_path / "redis", port=port, password=password, acl=acl_lines(settings.redis))
    yield settings
    stop_process(server.process)


def submit(settings: Settings, count: int) -> list[str]:
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    packages = [JobPackage.create("http://127.0.0.1:9/t.png", ["http://127.0.0.1:9/a.png"],
                                  Options(4, 4, 8, 0, noop=True)) for _ in range(count)]
    for package in packages:
        stream.enqueue(web, keys, package)
    web.close()
    return [package.id for package in packages]


def stream_jobs(r: redis.Redis, keys: Keys) -> list[str]:
    return [fields["id"] for _, fields in cast(list[tuple[str, dict[str, str]]], r.xrange(keys.jobs))]


def test_a_worker_waits_for_the_functions_until_the_keeper_loads_them(fresh: Settings) -> None:
    admin, keys = connect(fresh.redis, "admin"), Keys(fresh.redis.prefix)
    assert not scripts.is_loaded(admin)
    [job] = submit(fresh, 1)
    worker = Worker(fresh, slot=0)
    with pytest.raises(scripts.FunctionsMissing) as missing:
        worker.run_once()
    assert isinstance(missing.value, REDIS_DOWN)  # waited out by the worker's outage loop, never a crash
    assert admin.hget(keys.job(job), "state") == JobState.QUEUED.value and queued_count(admin, keys) == 1
    with keeping(fresh):
        wait_until(lambda: scripts.is_loaded(admin) and admin.xlen(keys.jobs) == 1, timeout=10,
                   what="the keeper to load the functions and admit the job")
        assert worker.run_once()
    assert admin.hget(keys.job(job), "state") == JobState.DONE.value
    assert scripts.is_loaded(admin) and not Keeper(fresh).redis.exists(keys.inbox)


def test_a_keeper_killed_between_taking_and_admitting_loses_nothing_and_adds_nothing_twice(fresh: Settings) -> None:
    admin, keys = connect(fresh.redis, "admin"), Keys(fresh.redis.prefix)
    keeper = Keeper(fresh)
    keeper.prepare()
    jobs = submit(fresh, 3)
    # What a keeper killed after its BLMOVE (and before its admit call) leaves: the oldest id on `admitting`.
    assert keeper.redis.blmove(keys.inbox, keys.admitting, 1, "RIGHT", "LEFT") == jobs[0]
    assert queued_count(admin, keys) == 3
    assert Keeper(fresh).step() == 3  # the next keeper: the held id first, then the rest, oldest first
    assert stream_jobs(admin, keys) == jobs
    assert not admin.exists(keys.inbox, keys.admitting)
    assert keeper.admit() == 0 and stream_jobs(admin, keys) == jobs
    # An id queued twice (a reconciler racing a slow admission) adds one entry: its job is no longer `queued`
    # once a worker started it.
    taken = stream.take_new(connect(fresh.redis, "worker"), keys, "node-0")
    assert taken is not None and taken[1]["id"] == jobs[0]
    connect(fresh.redis, "worker").lpush(keys.inbox, jobs[0])
    assert keeper.admit() == 0 and stream_jobs(admin, keys) == jobs


def test_the_keeper_trims_acknowledged_entries_only(fresh: Settings) -> None:
    admin, keys, worker = connect(fresh.redis, "admin"), Keys(fresh.redis.prefix), connect(fresh.redis, "worker")
    keeper = Keeper(fresh)
    keeper.prepare()
    jobs = submit(fresh, 5)
    assert keeper.admit() == 5
    first, second = (stream.take_new(worker, keys, "node-0") for _ in range(2))
    assert first is not None and second is not None
    assert keeper.trim() == 0  # nothing acked
    status.finish(worker, keys, jobs[1], 60, JobState.DONE, ack_entry=second[0])
    assert keeper.trim() == 0  # the second is acked, but the first, older, is pending: nothing before it goes
    assert admin.xlen(keys.jobs) == 5
    status.finish(worker, keys, jobs[0], 60, JobState.DONE, ack_entry=first[0])
    assert keeper.trim() == 2 and stream_jobs(admin, keys) == jobs[2:]
    numbers = queue.read_queue(admin, keys)
    assert (numbers.length, numbers.pending, numbers.depth, numbers.inbox) == (3, 0, 3, 0)
    assert keeper.trim() == 0
    reply = cast(list[Any], admin.xreadgroup(GROUP, "node-1", {keys.jobs: ">"}, count=10))
    assert [fields["id"] for _, fields in reply[0][1]] == jobs[2:]  # the undelivered ones all still there
