"""Dead letters in one script, and the reconciler, on a real redis-server with the ACL users (issue 13: 2, 3).

Each test connects as the role that does the work in production: `web` queues, `worker` takes, dead-letters and
reconciles (the watchdog connects as `worker`); `admin` only sets up the faults (a lost entry, a lost hash)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis

from config import Settings
from tests.helpers.settings import SettingsFactory
from web.metrics import ClusterCollector
from workers.protocol import stats, status, stream
from workers.protocol.connection import connect
from workers.protocol.errors import DEAD_LETTER
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.keeper import Keeper
from workers.service.reconcile import READ_FIELDS, VANISHED, PassReport, Reconciler
from workers.service.watchdog import Watchdog

pytestmark = pytest.mark.integration
TTL = 3600


@pytest.fixture
def acl_settings(make_settings: SettingsFactory) -> Settings:
    """The session's Redis, with the production ACL users made for this test's prefix (tests/conftest.py)."""
    return make_settings(TESSERA_JOBS_RESULT_TTL=str(TTL), TESSERA_WATCHDOG_RECONCILE_GRACE="60")


@pytest.fixture
def keys(acl_settings: Settings) -> Iterator[Keys]:
    keys = Keys(acl_settings.redis.prefix)
    admin = connect(acl_settings.redis, "admin")
    yield keys
    names = list(admin.scan_iter(match=keys.everything))
    if names:
        admin.delete(*names)
    admin.close()


@pytest.fixture
def worker(acl_settings: Settings) -> Iterator[redis.Redis]:
    client = connect(acl_settings.redis, "worker")
    yield client
    client.close()


@pytest.fixture
def admin(acl_settings: Settings) -> Iterator[redis.Redis]:
    client = connect(acl_settings.redis, "admin")
    yield client
    client.close()


def queue_and_take(settings: Settings, keys: Keys, worker: redis.Redis) -> tuple[str, str, dict[str, str]]:
    """One job queued by `web` and taken (started, `running`) by consumer node-0: (job id, entry id, fields)."""
    web = connect(settings.redis, "web")
    stream.ensure_group(worker, keys)
    package = JobPackage.create("http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0))
    stream.enqueue(web, keys, package)
    web.close()
    assert Keeper(settings).admit() == 1
    taken = stream.take_new(worker, keys, "node-0")
    assert taken is not None and taken[2] == 1
    return package.id, taken[0], taken[1]


def lose_entry(admin: redis.Redis, keys: Keys, entry_id: str) -> None:
    """What a kill between two writes, or a lost AOF tail, leaves: the hash `running`, its entry gone."""
    admin.xack(keys.jobs, GROUP, entry_id)
    admin.xdel(keys.jobs, entry_id)


def later(settings: Settings) -> float:
    """A clock past the reconciler's grace, so the pass may act on what the test just left."""
    return time.time() + settings.watchdog.reconcile_grace + 1


# -- finding 2: the dead letter is one script --------------------------------------------------------------------

def test_a_dead_letter_writes_letter_ack_and_failed_note_in_one_script(acl_settings: Settings, keys: Keys,
                                                                       worker: redis.Redis,
                                                                       admin: redis.Redis) -> None:
    job_id, entry_id, fields = queue_and_take(acl_settings, keys, worker)
    assert stream.dead_letter(worker, keys, entry_id, fields, "HTTP 503", 5, ttl=TTL, recent=10)
    # One call, every effect: had the process died right after it, nothing would be left half-done.
    job = cast(dict[str, str], worker.hgetall(keys.job(job_id)))
    assert job["state"] == JobState.FAILED.value and job["error_code"] == DEAD_LETTER
    assert job["error"] == "gave up after 5 deliveries; last error: HTTP 503"
    assert 0 < admin.ttl(keys.job(job_id)) <= TTL
    assert worker.lrange(keys.recent, 0, -1) == [job_id]
    assert stats.read_counters(worker, keys).failed == 1
    assert worker.hget(keys.stats_minute(stats.minute_of(time.time())), stats.FAILED) == "1"
    letters = cast(list[tuple[str, dict[str, str]]], worker.xrange(keys.dead))
    assert [(f["id"], f["error"], f["deliveries"], f["entry"]) for _, f in letters] == [(job_id, "HTTP 503", "5",
                                                                                        entry_id)]
    assert admin.xpending(keys.jobs, GROUP)["pending"] == 0  # acked: the keeper trims it (workers may not XDEL)
    assert Keeper(acl_settings).trim() == 1 and admin.xlen(keys.jobs) == 0
    # Run again, as the outage-tolerant write loop does after a lost reply: no second letter, no second count.
    assert not stream.dead_letter(worker, keys, entry_id, fields, "HTTP 503", 5, ttl=TTL, recent=10)
    assert admin.xlen(keys.dead) == 1 and stats.read_counters(worker, keys).failed == 1
    assert worker.lrange(keys.recent, 0, -1) == [job_id]


def test_the_old_two_step_dead_letter_left_a_running_job_that_the_reconciler_now_queues_again(
        acl_settings: Settings, keys: Keys, worker: redis.Redis, admin: redis.Redis) -> None:
    job_id, entry_id, fields = queue_and_take(acl_settings, keys, worker)
    # The old path's first write (the dead-letter MULTI) without its second (the note): the process died between.
    pipe = admin.pipeline(transaction=True)  # as the worker role could then (it may no longer XDEL)
    letter: dict[Any, Any] = {**fields, "error": "HTTP 503"}
    pipe.xadd(keys.dead, letter)
    pipe.xack(keys.jobs, GROUP, entry_id)
    pipe.xdel(keys.jobs, entry_id)
    pipe.execute()
    assert worker.hget(keys.job(job_id), "state") == JobState.RUNNING.value
    assert admin.ttl(keys.job(job_id)) == -1 and admin.xlen(keys.jobs) == 0  # stuck for ever, no TTL
    report = Reconciler(worker, acl_settings).run_pass(now=later(acl_settings))
    assert report.requeued == [job_id]
    assert worker.hget(keys.job(job_id), "state") == JobState.QUEUED.value


# -- finding 2: the reconciler -------------------------------------------------------------------------------------

def test_an_orphaned_running_job_is_queued_again_with_its_count_kept(acl_settings: Settings, keys: Keys,
                                                                     worker: redis.Redis, admin: redis.Redis) -> None:
    job_id, entry_id, _ = queue_and_take(acl_settings, keys, worker)
    lose_entry(admin, keys, entry_id)
    reconciler = Reconciler(worker, acl_settings)
    assert reconciler.run_pass().requeued == []  # within the grace: left alone
    report = reconciler.run_pass(now=later(acl_settings))
    assert report.requeued == [job_id] and report.failed == []
    job = cast(dict[str, str], worker.hgetall(keys.job(job_id)))
    assert job["state"] == JobState.QUEUED.value and job["deliveries"] == "1" and job["requeued_at"]
    assert worker.lrange(keys.inbox, 0, -1) == [job_id] and Keeper(acl_settings).admit() == 1  # queued again
    taken = stream.take_new(worker, keys, "node-1")  # a worker takes it as any queued job
    assert taken is not None and taken[1]["id"] == job_id and taken[2] == 2
    assert reconciler.counts["requeued"] == 1


def test_a_job_with_a_pending_entry_or_a_live_holder_is_left_alone(acl_settings: Settings, keys: Keys,
                                                                   worker: redis.Redis, admin: redis.Redis) -> None:
    pending_job, _, _ = queue_and_take(acl_settings, keys, worker)  # its entry pending: XAUTOCLAIM's to handle
    held_job, held_entry, _ = queue_and_take(acl_settings, keys, worker)
    lose_entry(admin, keys, held_entry)
    worker.hset(keys.worker("node", 123), mapping={"node": "node", "consumer": "node-0", "job": held_job,
                                                   "at": time.time()})
    report = Reconciler(worker, acl_settings).run_pass(now=later(acl_settings))
    assert report.requeued == [] and report.failed == []
    for job_id in (pending_job, held_job):
        assert worker.hget(keys.job(job_id), "state") == JobState.RUNNING.value
    assert admin.xlen(keys.jobs) == 1


def test_a_queued_job_is_left_alone_while_the_stream_has_undelivered_entries(
        acl_settings: Settings, keys: Keys, worker: redis.Redis, admin: redis.Redis) -> None:
    job_id, entry_id, _ = queue_and_take(acl_settings, keys, worker)
    status.requeue(worker, keys, job_id, "HTTP 503")  # queued after a transient failure
    lose_entry(admin, keys, entry_id)
    web = connect(acl_settings.redis, "web")
    stream.enqueue(web, keys, JobPackage.create("http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0)))
    reconciler = Reconciler(worker, acl_settings)
    assert reconciler.run_pass(now=later(acl_settings)).requeued == []  # its id might be the one on the inbox
    assert Keeper(acl_settings).admit() == 1
    assert reconciler.run_pass(now=later(acl_settings)).requeued == []  # its entry might be the undelivered one
    assert stream.take_new(worker, keys, "node-0") is not None  # once nothing is undelivered, it is found
    assert reconciler.run_pass(now=later(acl_settings)).requeued == [job_id]


def test_a_stuck_job_without_a_readable_package_is_failed_with_a_reason(acl_settings: Settings, keys: Keys,
                                                                        worker: redis.Redis,
                                                                        admin: redis.Redis) -> None:
    missing, missing_entry, _ = queue_and_take(acl_settings, keys, worker)
    garbled, garbled_entry, _ = queue_and_take(acl_settings, keys, worker)
    for entry_id in (missing_entry, garbled_entry):
        lose_entry(admin, keys, entry_id)
    admin.hdel(keys.job(missing), "package")
    admin.hset(keys.job(garbled), "package", "{not json")
    report = Reconciler(worker, acl_settings).run_pass(now=later(acl_settings))
    assert sorted(report.failed) == sorted([missing, garbled]) and report.requeued == []
    for job_id, words in ((missing, "no stored package"), (garbled, "cannot be read")):
        job = cast(dict[str, str], worker.hgetall(keys.job(job_id)))
        assert job["state"] == JobState.FAILED.value and words in job["error"] and job["error_code"] == "bad_package"
        assert 0 < admin.ttl(keys.job(job_id)) <= TTL
    assert stats.read_counters(worker, keys).failed == 2 and admin.xlen(keys.jobs) == 0


def test_two_reconcilers_at_once_queue_a_job_once(acl_settings: Settings, keys: Keys, worker: redis.Redis,
                                                  admin: redis.Redis) -> None:
    job_id, entry_id, _ = queue_and_take(acl_settings, keys, worker)
    lose_entry(admin, keys, entry_id)
    now = later(acl_settings)
    # Both read the job before either acts (the interleaving of two nodes' passes), then both act.
    values = cast(list[str | None], worker.hmget(keys.job(job_id), list(READ_FIELDS)))
    first, second = Reconciler(worker, acl_settings), Reconciler(connect(acl_settings.redis, "worker"), acl_settings)
    reports = [PassReport(), PassReport()]
    first.act(job_id, values, now, reports[0])
    second.act(job_id, values, now, reports[1])
    assert [report.requeued for report in reports] == [[job_id], []]
    assert admin.lrange(keys.inbox, 0, -1) == [job_id]
    # And whole passes on several threads at once, on a second orphan.
    assert Keeper(acl_settings).admit() == 1
    assert stream.take_new(worker, keys, "node-0") is not None  # the first job's new entry: delivered, pending
    other, other_entry, _ = queue_and_take(acl_settings, keys, worker)
    lose_entry(admin, keys, other_entry)
    barrier, results = threading.Barrier(6), []

    def one_pass() -> None:
        reconciler = Reconciler(connect(acl_settings.redis, "worker"), acl_settings)
        barrier.wait()
        results.append(reconciler.run_pass(now=now))

    threads = [threading.Thread(target=one_pass) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(job for report in results for job in report.requeued) == [other]
    assert admin.lrange(keys.inbox, 0, -1) == [other]


def test_the_watchdog_runs_the_reconciler(acl_settings: Settings, keys: Keys, worker: redis.Redis,
                                          admin: redis.Redis) -> None:
    job_id, entry_id, _ = queue_and_take(acl_settings, keys, worker)
    lose_entry(admin, keys, entry_id)
    long_ago = time.time() - acl_settings.watchdog.reconcile_grace - 1
    admin.hset(keys.job(job_id), mapping={"created_at": long_ago, "started_at": long_ago})

    class Supervisor:
        def getAllProcessInfo(self) -> list[dict[str, Any]]:  # noqa: N802 (supervisord's XML-RPC name)
            return []

    class Rpc:
        supervisor = Supervisor()

    watchdog = Watchdog(acl_settings, rpc=Rpc())
    watchdog.on_event("TICK_5", "")
    assert worker.hget(keys.job(job_id), "state") == JobState.QUEUED.value
    watchdog.on_event("TICK_5", "")  # rate-limited: no second pass yet
    assert watchdog.reconciler.counts["requeued"] == 1


# -- finding 3: a vanished job is said ---------------------------------------------------------------------------

def test_a_job_whose_hash_vanished_before_its_ttl_is_counted_once(acl_settings: Settings, keys: Keys,
                                                                  worker: redis.Redis, admin: redis.Redis) -> None:
    finished = []
    for _ in range(3):
        job_id, entry_id, _ = queue_and_take(acl_settings, keys, worker)
        assert status.finish(worker, keys, job_id, TTL, JobState.DONE, 10, entry_id) == 1
        finished.append(job_id)
    oldest, middle, newest = finished
    admin.delete(keys.job(middle), keys.job(newest))  # lost, while the oldest one is still kept
    reconciler = Reconciler(worker, acl_settings)
    assert sorted(reconciler.run_pass().vanished) == sorted([middle, newest])
    assert Reconciler(worker, acl_settings).run_pass().vanished == []  # another node: counted once
    assert worker.hget(keys.stats, VANISHED) == "2" and reconciler.counts[VANISHED] == 2
    assert worker.lrange(keys.recent, 0, -1) == [oldest]
    monitor = connect(acl_settings.redis, "monitor")  # and /metrics says so, read as /metrics reads it
    scraped = {m.name: m.samples[0].value for m in ClusterCollector(monitor, keys).collect() if m.samples}
    assert scraped["tessera_jobs_vanished"] == 2 and scraped["tessera_queue_inbox"] == 0
    admin.delete(keys.job(oldest))  # the oldest gone with nothing kept before it: it may simply have expired
    assert reconciler.run_pass().vanished == []
