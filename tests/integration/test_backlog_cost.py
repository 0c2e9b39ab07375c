"""The backlog's predicted seconds in a real Redis, each role with its own ACL user: every way a job leaves the
backlog (done, canceled, dead-lettered, deleted, lost), the keeper's pruning, the sample past the cap, the
seconds-per-unit average of the note, and the readers (/metrics' collector, the orchestrator's read_load)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest

from config import Settings
from orchestrator.loop import read_load
from web.metrics import ClusterCollector
from workers.cli.status import print_status
from workers.protocol import backlog, cost, scripts, stats, status, stream
from workers.protocol.connection import connect
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.keeper import Keeper

pytestmark = pytest.mark.integration

TILES = ["http://e.test/a.png"] * 50


@pytest.fixture
def clients(settings: Settings) -> Iterator[dict[str, redis.Redis]]:
    made = {role: connect(settings.redis, role) for role in ("web", "worker", "keeper", "monitor", "orchestrator")}
    yield made
    for client in made.values():
        client.close()


def package(cols: int) -> JobPackage:
    return JobPackage.create("http://e.test/t.png", TILES, Options(cols, cols, 16, 0))


def submit(web: redis.Redis, keys: Keys, packages: list[JobPackage]) -> None:
    for p in packages:
        stream.enqueue(web, keys, p)


def admit(r: redis.Redis, keys: Keys, count: int) -> None:
    stream.ensure_group(r, keys)
    assert r.fcall(scripts.ADMIT, 3, keys.inbox, keys.admitting, keys.jobs, keys.job_prefix, count, GROUP) == count


def test_each_way_out_of_the_backlog(r: redis.Redis, settings: Settings, clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    web, worker, monitor = clients["web"], clients["worker"], clients["monitor"]
    jobs = [package(cols) for cols in (8, 16, 32, 64, 96, 128)]
    units = {p.id: cost.work_units(p) for p in jobs}
    submit(web, keys, jobs)
    reading = backlog.read_backlog(monitor, keys)
    assert reading.jobs == 6 and reading.work == pytest.approx(sum(units.values()), rel=1e-3)
    assert reading.seconds == pytest.approx(reading.work * cost.PRIOR_SECONDS_PER_UNIT)  # no build yet: the prior
    admit(r, keys, 4)  # four in the stream, two still on the inbox: the same work
    assert backlog.read_backlog(monitor, keys).work == pytest.approx(sum(units.values()), rel=1e-3)

    entry, fields, _count = cast(stream.Taken, stream.take_new(worker, keys, "w1"))  # running, half done
    running = fields["id"]
    assert running == jobs[0].id
    assert status.update(worker, keys, running, progress=0.5)
    left = sum(units.values()) - units[running] / 2
    assert backlog.read_backlog(monitor, keys).work == pytest.approx(left, rel=1e-3)

    assert status.cancel(web, keys, jobs[5].id, ttl=60)[0] is status.Cancel.CANCELED  # queued, on the inbox
    left -= units[jobs[5].id]
    dead_entry, dead_fields, _ = cast(stream.Taken, stream.take_new(worker, keys, "w1"))
    assert stream.dead_letter(worker, keys, dead_entry, dead_fields, "boom", 5)
    left -= units[dead_fields["id"]]
    web.delete(keys.job(jobs[2].id))  # DELETE /api/mosaics/<id> (web/lifecycle.py forget)
    left -= units[jobs[2].id]
    r.delete(keys.job(jobs[3].id))  # a status hash lost with Redis data (the reconciler counts it vanished)
    left -= units[jobs[3].id]
    assert backlog.read_backlog(monitor, keys).work == pytest.approx(left, rel=1e-3)

    assert status.finish(worker, keys, running, 60, JobState.DONE, ack_entry=entry, build_seconds=3.0) == 1
    left -= units[running] / 2
    reading = backlog.read_backlog(monitor, keys)
    assert reading.jobs == 1 and reading.work == pytest.approx(left, rel=1e-3) == units[jobs[4].id]
    assert reading.per_unit == pytest.approx(3.0 / units[running], rel=1e-3)  # learned from the one build
    assert reading.seconds == pytest.approx(units[jobs[4].id] * reading.per_unit, rel=1e-3)

    assert r.scard(keys.backlog) == 6  # closed ids stay until the keeper prunes them; readers skip them
    assert backlog.prune(clients["keeper"], keys) == 5
    assert r.smembers(keys.backlog) == {jobs[4].id}
    assert backlog.read_backlog(monitor, keys) == reading


def test_past_the_cap_a_sample_stands_for_the_set(settings: Settings, clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    jobs = [package(20) for _ in range(30)]
    submit(clients["web"], keys, jobs)
    exact = backlog.read_backlog(clients["monitor"], keys)
    sampled = backlog.read_backlog(clients["monitor"], keys, cap=10)
    assert not exact.sampled and sampled.sampled
    assert sampled.jobs == exact.jobs == 30 and sampled.work == pytest.approx(exact.work)  # equal jobs: exact


def test_seconds_per_unit_follow_builds_and_an_outlier_moves_them_little(
        r: redis.Redis, settings: Settings, clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    jobs = [package(32) for _ in range(3)]
    work = cost.work_units(jobs[0])
    submit(clients["web"], keys, jobs)
    for p, seconds in zip(jobs, (2.0, 1000.0), strict=False):
        status.finish(clients["worker"], keys, p.id, 60, JobState.DONE, build_seconds=seconds)
    per_unit = float(cast(str, r.hget(keys.stats, stats.RECENT_PER_WORK)))
    first = 2.0 / round(work, 4)
    assert per_unit == pytest.approx(first + (first * stats.PER_WORK_CLAMP - first) * 0.2)  # clamped, then a fifth
    status.finish(clients["worker"], keys, jobs[2].id, 60, JobState.FAILED, build_seconds=1.0, error="x")
    assert float(cast(str, r.hget(keys.stats, stats.RECENT_PER_WORK))) == per_unit  # only done builds count


def test_the_readers_report_it(settings: Settings, clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    submit(clients["web"], keys, [package(64), package(64)])
    expected = 2 * cost.work_units(package(64)) * cost.PRIOR_SECONDS_PER_UNIT
    registry = CollectorRegistry()
    registry.register(ClusterCollector(clients["monitor"], keys))
    text = generate_latest(registry).decode()
    line = next(line for line in text.splitlines() if line.startswith("tessera_backlog_seconds "))
    assert float(line.split()[1]) == pytest.approx(expected, rel=1e-3)
    assert "tessera_backlog_estimated 0.0" in text
    load = read_load(clients["orchestrator"], keys)
    assert load is not None and load.backlog == 2 and load.backlog_seconds == pytest.approx(expected, rel=1e-3)


def test_a_package_without_work_counts_one_unit(r: redis.Redis, settings: Settings,
                                                clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    p = package(8)
    submit(clients["web"], keys, [p])
    r.hdel(keys.job(p.id), cost.FIELD)  # queued by a release before the field
    r.hset(keys.job(p.id), "details", json.dumps({}))
    assert backlog.read_backlog(clients["monitor"], keys).work == backlog.UNKNOWN_WORK


def test_the_keeper_prunes_the_index(r: redis.Redis, settings: Settings,
                                                 clients: dict[str, redis.Redis]) -> None:
    keys = Keys(settings.redis.prefix)
    jobs = [package(8) for _ in range(3)]
    submit(clients["web"], keys, jobs)
    stream.ensure_group(r, keys)
    status.finish(clients["worker"], keys, jobs[0].id, 60, JobState.FAILED, error="x")
    keeper = Keeper(settings, block=0.1)
    try:
        keeper.step()  # the first step prunes at once
    finally:
        keeper.redis.close()
    assert r.smembers(keys.backlog) == {jobs[1].id, jobs[2].id}


def test_tessera_status_shows_it(r: redis.Redis, settings: Settings, clients: dict[str, redis.Redis],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    keys = Keys(settings.redis.prefix)
    submit(clients["web"], keys, [package(128)])
    r.hset(keys.stats, stats.RECENT_PER_WORK, 2.5)  # as if learned from builds
    assert print_status(settings) == 0
    work = cost.work_units(package(128))
    assert f"work    {work * 2.5:.0f} s predicted in 1 open jobs ({work:.1f} units at 2.5 s each)" \
        in capsys.readouterr().out
