"""Claims on a real redis-server with the ACL users: a refresh never steals, a stalled job is let go, the
heartbeat outlives a failed beat, and XAUTOCLAIM reaches an orphan behind many live entries (issue 13: 4, 5)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis

from config import Settings
from tests.helpers.processes import wait_until
from tests.helpers.settings import SettingsFactory
from workers.protocol import stream
from workers.protocol.connection import connect
from workers.protocol.keys import GROUP, Keys
from workers.service.heartbeat import Heartbeat

pytestmark = pytest.mark.integration


@pytest.fixture
def acl_settings(make_settings: SettingsFactory) -> Settings:
    """The session's Redis, with the production ACL users made for this test's prefix (tests/conftest.py)."""
    return make_settings()


@pytest.fixture
def keys(acl_settings: Settings) -> Iterator[Keys]:
    keys = Keys(acl_settings.redis.prefix)
    admin = connect(acl_settings.redis, "admin")
    admin.delete(keys.jobs)
    stream.ensure_group(admin, keys)
    yield keys
    admin.delete(keys.jobs)
    admin.close()


@pytest.fixture
def worker(acl_settings: Settings) -> Iterator[redis.Redis]:
    client = connect(acl_settings.redis, "worker")
    yield client
    client.close()


@pytest.fixture
def keeper(acl_settings: Settings) -> Iterator[redis.Redis]:
    """The stream's one writer (workers/service/keeper.py): workers may not XADD to it."""
    client = connect(acl_settings.redis, "keeper")
    yield client
    client.close()


def add_and_take(keeper: redis.Redis, r: redis.Redis, keys: Keys, consumer: str, count: int = 1) -> list[str]:
    """``count`` new entries (added as the keeper), read by ``consumer``: pending for it."""
    for _ in range(count):
        keeper.xadd(keys.jobs, {"id": "j" + secrets.token_hex(6)})
    reply = cast(Any, r.xreadgroup(GROUP, consumer, {keys.jobs: ">"}, count=count))
    return [entry_id for entry_id, _ in reply[0][1]]


def owner(r: redis.Redis, keys: Keys, entry_id: str) -> tuple[str, int]:
    """The consumer holding the entry, and its idle milliseconds."""
    row = cast(list[dict[str, Any]], r.xpending_range(keys.jobs, GROUP, entry_id, entry_id, 1))[0]
    return str(row["consumer"]), int(row["time_since_delivered"])


def test_a_refresh_by_another_consumer_does_not_steal_the_entry(keeper: redis.Redis, worker: redis.Redis,
                                                                keys: Keys) -> None:
    [entry] = add_and_take(keeper, worker, keys, "node-a")
    assert stream.refresh_claim(worker, keys, "node-b", entry) is False
    assert owner(worker, keys, entry)[0] == "node-a"
    time.sleep(0.2)
    assert stream.refresh_claim(worker, keys, "node-a", entry) is True  # its holder's own refresh still works
    who, idle = owner(worker, keys, entry)
    assert who == "node-a" and idle < 150
    delivered = cast(list[dict[str, Any]], worker.xpending_range(keys.jobs, GROUP, entry, entry, 1))[0]
    assert delivered["times_delivered"] == 1  # a refresh counts no delivery


def test_a_stalled_job_loses_its_claim_and_a_progressing_one_keeps_it(keeper: redis.Redis, worker: redis.Redis,
                                                                      keys: Keys) -> None:
    claim_idle, stall = 1.0, 0.4
    [moving_entry], [stuck_entry] = add_and_take(keeper, worker, keys, "node-a"), add_and_take(keeper, worker, keys,
                                                                                               "node-b")
    moving = Heartbeat(worker, keys, "node-a", "node-a", interval=0.5, claim_every=0.1, stall=stall)
    stuck = Heartbeat(worker, keys, "node-b", "node-b", interval=0.5, claim_every=0.1, stall=stall)
    moving.hold("moving", moving_entry)
    stuck.hold("stuck", stuck_entry)  # its build never reports progress: a main thread that is blocked
    done = threading.Event()

    def build() -> None:
        while not done.wait(0.05):
            moving.progress()

    builder = threading.Thread(target=build, daemon=True)
    for thread in (moving, stuck, builder):
        thread.start()
    try:
        claimed: list[str] = []
        cursor = stream.START
        deadline = time.monotonic() + stall + claim_idle + 3.0
        while not claimed and time.monotonic() < deadline:
            entry, cursor = stream.claim_stale(worker, keys, "node-c", claim_idle, cursor)
            if entry is not None:
                claimed.append(entry[0])
            time.sleep(0.1)
        assert claimed == [stuck_entry]
        assert owner(worker, keys, stuck_entry)[0] == "node-c"
        time.sleep(0.3)  # the stalled heartbeat does not take it back, and the moving one still holds its own
        assert owner(worker, keys, stuck_entry)[0] == "node-c"
        assert owner(worker, keys, moving_entry)[0] == "node-a"
        assert stream.claim_stale(worker, keys, "node-c", claim_idle)[0] is None
    finally:
        done.set()
        for beat in (moving, stuck):
            beat.stop()
            beat.join(timeout=5)


def test_the_heartbeat_survives_an_error_inside_a_beat(acl_settings: Settings, keeper: redis.Redis, worker: redis.Redis,
                                                       keys: Keys) -> None:
    admin = connect(acl_settings.redis, "admin")
    beat = Heartbeat(worker, keys, "node-a", "node-a", interval=0.1, claim_every=0.1)
    admin.set(beat.key, "not a hash")  # every beat's HSET now fails with WRONGTYPE (not an outage)
    [entry] = add_and_take(keeper, worker, keys, "node-a")
    beat.hold("job", entry)
    beat.start()
    try:
        time.sleep(0.6)
        assert beat.is_alive()
        assert owner(worker, keys, entry)[1] < 400  # the claim was refreshed all along
        admin.delete(beat.key)
        wait_until(lambda: admin.hget(beat.key, "consumer") == "node-a", timeout=5, what="a beat after the error")
        assert beat.is_alive() and admin.hget(beat.key, "pid") == str(os.getpid())
    finally:
        beat.stop()
        beat.join(timeout=5)
        admin.delete(beat.key)
        admin.close()


def test_an_orphan_behind_many_live_entries_is_reclaimed(keeper: redis.Redis, worker: redis.Redis,
                                                         keys: Keys) -> None:
    min_idle = 0.3
    live = add_and_take(keeper, worker, keys, "node-a", 12)  # more than one XAUTOCLAIM COUNT 1 call looks at (10)
    [orphan] = add_and_take(keeper, worker, keys, "node-dead")
    time.sleep(min_idle + 0.1)
    for entry_id in live:  # long jobs whose workers keep their claims fresh
        assert stream.refresh_claim(worker, keys, "node-a", entry_id)
    cursor = stream.START
    entry, cursor = stream.claim_stale(worker, keys, "node-b", min_idle, cursor)
    assert entry is not None and entry[0] == orphan
    assert owner(worker, keys, orphan)[0] == "node-b"
    assert all(owner(worker, keys, live_id)[0] == "node-a" for live_id in live)
    entry, cursor = stream.claim_stale(worker, keys, "node-b", min_idle, cursor)
    assert entry is None and cursor == stream.START  # nothing else idle: the scan wrapped to the start
