"""Redis ACL roles on a real redis-server: each role does its part of a job's life (web submits, the keeper
admits, a worker takes and finishes; `monitor` reads what /admin and /metrics need and writes nothing), and
every command that could wipe or rewrite the queue, or run code of its own, is NOPERM for every role that
has no business with it (issue 13, finding 9)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

import config
from config import Settings
from tests.helpers.processes import free_port, stop_process
from tests.helpers.redis import start_redis
from web import ratelimit
from web.metrics import monitor_client
from workers.protocol import queue, scripts, stats, status, stream
from workers.protocol.connection import connect
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.keeper import Keeper
from workers.service.redis_server import acl_lines

pytestmark = pytest.mark.integration
ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks")


def role_settings(port: int, password: str, roles: tuple[str, ...] = ROLES) -> Settings:
    env = {"TESSERA_REDIS_URL": f"redis://127.0.0.1:{port}/0", "TESSERA_REDIS_PASSWORD": password,
           **{f"TESSERA_REDIS_{role.upper()}_PASSWORD": f"{password}-{role}" for role in roles}}
    return config.load(env=env)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    port, password = free_port(), secrets.token_urlsafe(16)
    settings = role_settings(port, password)
    server = start_redis(tmp_path_factory.mktemp("acl-redis"), port=port, password=password,
                         acl=acl_lines(settings.redis))
    Keeper(settings).prepare()  # loads the functions as admin, as the keeper does on a fresh Redis
    yield settings
    stop_process(server.process)


@pytest.fixture(scope="module")
def finished_job(settings: Settings) -> str:
    """Two jobs submitted by web and admitted by the keeper, one taken and finished by a worker (with a
    heartbeat), one dead letter."""
    keys = Keys(settings.redis.prefix)
    web, worker = connect(settings.redis, "web"), connect(settings.redis, "worker")
    packages = [JobPackage.create("http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0))
                for _ in range(2)]
    stream.ensure_group(worker, keys)
    for package in packages:
        stream.enqueue(web, keys, package)
    assert Keeper(settings).admit() == 2
    taken = stream.take_new(worker, keys, "node-0")
    assert taken is not None
    job_id = taken[1]["id"]
    finish = status.finish_command(keys, job_id, 60, JobState.DONE, 50, taken[0], 1.25, result=f"{job_id}.jpg",
                                   details=json.dumps({"build_seconds": 1.25}))
    assert worker.fcall(*finish) == 1
    worker.hset(keys.worker("node", 123), mapping={"node": "node", "consumer": "node-0", "state": "idle"})
    worker.xadd(keys.dead, {"error": "gave up"})
    return job_id


def test_web_and_worker_count_their_stats(settings: Settings, finished_job: str) -> None:
    counters = stats.read_counters(connect(settings.redis, "admin"), Keys(settings.redis.prefix))
    assert (counters.submitted, counters.done, counters.build_count) == (2, 1, 1)


def test_monitor_reads_what_the_pages_show(settings: Settings, finished_job: str) -> None:
    monitor, keys = connect(settings.redis, "monitor"), Keys(settings.redis.prefix)
    assert monitor.ping()
    assert stats.read_counters(monitor, keys).done == 1
    assert queue.read_queue(monitor, keys) == queue.QueueNumbers(length=2, pending=0, depth=1, dead=1)
    assert sum(row[1] for row in stats.per_minute(monitor, keys)) == 1
    assert [beat["consumer"] for beat in queue.heartbeats(monitor, keys)] == ["node-0"]
    assert queue.recent_jobs(monitor, keys)[0][0] == finished_job


def forbidden_for_monitor(r: redis.Redis, keys: Keys, job_id: str) -> list[Callable[[], object]]:
    return [
        lambda: r.hset(keys.job(job_id), "state", "queued"),
        lambda: r.hincrby(keys.stats, "done", 1),
        lambda: r.xadd(keys.jobs, {"id": "x"}),
        lambda: r.xack(keys.jobs, "workers", "0-1"),
        lambda: r.xgroup_create(keys.jobs, "evil", id="0"),
        lambda: r.delete(keys.dead),
        lambda: r.expire(keys.stats, 1),
        lambda: r.lpush(keys.recent, "x"),
        lambda: r.eval("return 1", 0),
        lambda: r.set("tessera:x", "1"),
        lambda: r.get("tessera:x"),
        lambda: r.hgetall(keys.rate("client", 1)),  # a key outside its patterns
        lambda: r.smembers(keys.client_jobs("client")),
        lambda: r.flushall(),
        lambda: r.config_get("requirepass"),
        lambda: r.keys("*"),
        lambda: r.acl_list(),
        lambda: r.publish("ch", "x"),
    ]


def test_monitor_can_write_nothing(settings: Settings, finished_job: str) -> None:
    monitor, keys = connect(settings.redis, "monitor"), Keys(settings.redis.prefix)
    for index, attempt in enumerate(forbidden_for_monitor(monitor, keys, finished_job)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
            pytest.fail(f"forbidden call {index} went through")
    admin = connect(settings.redis, "admin")
    assert admin.hget(keys.job(finished_job), "state") == "done" and admin.xlen(keys.dead) == 1


def test_web_still_cannot_read_heartbeats_dead_letters_or_minute_stats(settings: Settings, finished_job: str) -> None:
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    for attempt in (lambda: web.hgetall(keys.worker("node", 123)), lambda: web.xlen(keys.dead),
                    lambda: web.hgetall(keys.stats_minute(stats.minute_of(0)))):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def test_the_webhooks_role_reads_jobs_and_keeps_the_outbox_only(settings: Settings, finished_job: str) -> None:
    hooks, keys, now = connect(settings.redis, "webhooks"), Keys(settings.redis.prefix), time.time()
    assert hooks.hgetall(keys.job(finished_job))["state"] == "done"  # what the message says
    assert scripts.call(hooks, scripts.WEBHOOK_TAKE, 1, keys.webhook_outbox, now, now + 30, 10) == []
    for attempt in (lambda: hooks.hset(keys.worker("node", 123), "state", "x"), lambda: hooks.lpush(keys.inbox, "x"),
                    lambda: hooks.hgetall(keys.stats), lambda: hooks.xrange(keys.jobs),
                    lambda: hooks.get(keys.idempotency("client", "key")), lambda: hooks.hgetall(keys.worker("n", 1)),
                    lambda: hooks.zadd(keys.job(finished_job), {"x": 1})):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def test_without_a_monitor_password_there_is_no_monitor_user(tmp_path: Path) -> None:
    settings = role_settings(6399, "pw", roles=("web", "worker", "orchestrator"))
    assert settings.redis.acl
    assert not any(line.startswith("user monitor ") for line in acl_lines(settings.redis))
    assert monitor_client(settings) is None
    assert monitor_client(role_settings(6399, "pw")) is not None


def test_web_counts_failed_admin_logins(settings: Settings) -> None:
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    for _ in range(3):
        ratelimit.login_failed(web, keys, "client-a")
    assert ratelimit.login_blocked(web, keys, "client-a", 3) > 0
    assert ratelimit.login_blocked(web, keys, "client-b", 3) == 0


def test_the_keeper_trims_what_workers_acked_and_nothing_else(settings: Settings, finished_job: str) -> None:
    admin, keys = connect(settings.redis, "admin"), Keys(settings.redis.prefix)
    assert Keeper(settings).trim() == 1  # the finished job's entry; the undelivered one stays
    assert admin.xlen(keys.jobs) == 1 and queue.read_queue(admin, keys).depth == 1


Attempt = Callable[[redis.Redis, Keys], object]
WIPE_THE_QUEUE: dict[str, Attempt] = {
    "XADD jobs MAXLEN 0": lambda r, k: r.xadd(k.jobs, {"a": "b"}, maxlen=0),
    "XTRIM jobs": lambda r, k: r.xtrim(k.jobs, maxlen=0),
    "EXPIRE jobs": lambda r, k: r.expire(k.jobs, 1),
    "DEL jobs": lambda r, k: r.delete(k.jobs),
    "XDEL jobs": lambda r, k: r.xdel(k.jobs, "0-1"),
    "XGROUP SETID": lambda r, k: r.xgroup_setid(k.jobs, GROUP, "$"),
    "XGROUP DESTROY": lambda r, k: r.xgroup_destroy(k.jobs, GROUP),
    "XGROUP DELCONSUMER": lambda r, k: r.xgroup_delconsumer(k.jobs, GROUP, "node-0"),
    "DEL inbox": lambda r, k: r.delete(k.inbox),
    "LTRIM inbox": lambda r, k: r.ltrim(k.inbox, 0, 0),
    "RPOP inbox": lambda r, k: r.rpop(k.inbox),
    "DEL dead": lambda r, k: r.delete(k.dead),
    "XTRIM dead": lambda r, k: r.xtrim(k.dead, maxlen=0),
    "DEL a job": lambda r, k: r.delete(k.job("j1")),
    "EXPIRE a job": lambda r, k: r.expire(k.job("j1"), 1),
    "EVAL": lambda r, k: r.eval("return 1", 0),
    "EVALSHA": lambda r, k: r.evalsha("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
    "SCRIPT LOAD": lambda r, k: r.script_load("return 1"),
    "FUNCTION LOAD": lambda r, k: r.function_load("#!lua name=evil\nredis.register_function('evil', "
                                                  "function() return 1 end)"),
    "FUNCTION DELETE": lambda r, k: r.function_delete("anything"),
    "FUNCTION FLUSH": lambda r, k: r.function_flush(),
    "FLUSHALL": lambda r, k: r.flushall(),
    "CONFIG SET": lambda r, k: r.config_set("appendonly", "no"),
}
"""Commands that would lose or rewrite queued jobs, or run a role's own code."""
ALLOWED = {"keeper": {"XADD jobs MAXLEN 0", "XTRIM jobs", "RPOP inbox"}, "worker": {"EXPIRE a job"},
           "web": {"DEL a job", "EXPIRE a job"}}
"""The keeper is the stream's one writer: adding and trimming it is its job (it runs on the Redis host only).
A worker gives a finished job's hash its TTL (lua/note.lua); so does the web to a job canceled while queued
(lua/cancel.lua), and it deletes a job its owner deletes (web/lifecycle.py). Neither is new power over queued
jobs: the web could always overwrite their hashes, which it writes at submission."""


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_wipe_the_queue_or_run_its_own_code(settings: Settings, finished_job: str, role: str) -> None:
    r, keys = connect(settings.redis, role), Keys(settings.redis.prefix)
    went_through = []
    for name, attempt in WIPE_THE_QUEUE.items():
        if name in ALLOWED.get(role, set()):
            continue
        try:
            attempt(r, keys)
        except redis.exceptions.NoPermissionError:
            continue
        went_through.append(name)
    assert went_through == []
    admin = connect(settings.redis, "admin")
    assert admin.xlen(keys.jobs) >= 1 and admin.xinfo_groups(keys.jobs)[0]["name"] == GROUP


def test_web_submits_only_through_the_inbox(settings: Settings, finished_job: str) -> None:
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    with pytest.raises(redis.exceptions.NoPermissionError):
        web.xadd(keys.jobs, {"id": "x", "package": "{}"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        web.fcall(scripts.ADMIT, 3, keys.inbox, keys.admitting, keys.jobs, keys.job_prefix, 10)
    assert web.lpush(keys.inbox, "no-such-job") >= 1
    assert Keeper(settings).admit() == 0  # an id without a queued job adds no entry


def test_web_cancels_and_deletes_through_its_grants_and_no_further(settings: Settings) -> None:
    """The web's cancel (a function) writes the queued job's note, TTL, recent list and counts as the web; its
    FCALL grant reads nothing by hand, and the worker's functions still refuse it what only workers do."""
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    package = JobPackage.create("http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0))
    stream.enqueue(web, keys, package)
    assert status.cancel(web, keys, package.id, 120) == (status.Cancel.CANCELED, "canceled")
    assert status.cancel(web, keys, package.id, 120) == (status.Cancel.ALREADY_FINAL, "canceled")
    admin = connect(settings.redis, "admin")
    assert 0 < admin.ttl(keys.job(package.id)) <= 120 and package.id in admin.lrange(keys.recent, 0, -1)
    assert web.delete(keys.job(package.id)) == 1 and web.lrem(keys.recent, 0, package.id) == 1
    for attempt in (lambda: web.lrange(keys.recent, 0, -1), lambda: web.hgetall(keys.stats_minute(0)),
                    lambda: stream.take_new(web, keys, "web-0"),
                    lambda: web.fcall(scripts.TRIM, 1, keys.jobs, GROUP)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def test_web_reads_a_queued_jobs_place_and_nothing_more_of_the_queue(settings: Settings, finished_job: str) -> None:
    """The status poll's counters (queue.waiting) as web: the group's counts, the ready workers, the recent build
    time; never the stream's entries (packages), and no write to the ready set."""
    web, keys = connect(settings.redis, "web"), Keys(settings.redis.prefix)
    worker = connect(settings.redis, "worker")
    worker.zadd(keys.ready_workers, {"node:1": 2**40})  # as a heartbeat does
    admin = connect(settings.redis, "admin")
    entries = cast(list[tuple[str, dict[str, str]]], admin.xrange(keys.jobs))
    unfinished = [fields["id"] for _entry, fields in entries if fields["id"] != finished_job]
    seq = cast(str | None, admin.hget(keys.job(unfinished[0]), "seq"))
    assert seq == "2"  # the keeper numbered both jobs as it admitted them
    waiting = queue.waiting(web, keys, seq)
    assert waiting.position == 1 and waiting.eta == pytest.approx(1.25)
    for attempt in (lambda: web.xrange(keys.jobs), lambda: web.xreadgroup(GROUP, "x", {keys.jobs: ">"}),
                    lambda: web.zadd(keys.ready_workers, {"evil": 2**40}),
                    lambda: web.zrange(keys.ready_workers, 0, -1),
                    lambda: web.hset(keys.stats, stats.RECENT_BUILD, 0)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
