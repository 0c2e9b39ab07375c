"""What KEDA's redis-streams scaler sees, logged in as our `monitor` user on a real redis-server with the
production ACL (workers/service/redis_server.py acl_lines).

The commands are those of KEDA v2.20's pkg/scalers/redis_streams_scaler.go (go-redis v9): the connection's
HELLO 3 with AUTH and a PING, then for ``lagCount`` INFO (it refuses a Redis older than 7), XINFO GROUPS and,
while the group does not exist yet, XLEN; for ``pendingEntriesCount`` the summary form of XPENDING (go-redis
v9.22's CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS at connect may be refused: it goes on after a Redis error,
so `monitor` is not granted them; SELECT is sent only for a database above 0). The numbers
must be our queue's (workers/protocol/queue.read_queue): jobs queued and jobs taken, before and after the
keeper trims what was acknowledged.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

import config
from config import Settings
from tests.helpers.processes import free_port, stop_process
from tests.helpers.redis import start_redis
from workers.protocol import queue, status, stream
from workers.protocol.connection import connect
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.keeper import Keeper
from workers.service.redis_server import acl_lines

pytestmark = pytest.mark.integration
ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks")
SCALED_OBJECT = Path(__file__).resolve().parents[2] / "config" / "k8s" / "keda-scaledobject.yaml"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    port, password = free_port(), secrets.token_urlsafe(16)
    env = {"TESSERA_REDIS_URL": f"redis://127.0.0.1:{port}/0", "TESSERA_REDIS_PASSWORD": password,
           **{f"TESSERA_REDIS_{role.upper()}_PASSWORD": f"{password}-{role}" for role in ROLES}}
    settings = config.load(env=env)  # the default prefix, as the manifests have it (tessera:jobs)
    server = start_redis(tmp_path_factory.mktemp("keda-redis"), port=port, password=password,
                         acl=acl_lines(settings.redis))
    Keeper(settings).prepare()  # the functions and the group, as the keeper makes them on a fresh Redis
    yield settings
    stop_process(server.process)


def triggers() -> dict[str, dict[str, str]]:
    """The redis-streams triggers of the manifest, by name: the stream, group and user KEDA will use."""
    with SCALED_OBJECT.open() as f:
        spec: dict[str, Any] = yaml.safe_load(f)["spec"]
    return {t["name"]: t["metadata"] for t in spec["triggers"] if t["type"] == "redis-streams"}


def as_keda(settings: Settings, username: str) -> redis.Redis:
    """A client that logs in as go-redis v9 does: HELLO 3 AUTH <user> <password> (RESP3), then PING."""
    _, password = settings.redis.credentials(username)
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port, username=username, password=password,
                         protocol=3, decode_responses=True)
    assert client.ping()
    return client


def lag_count(r: redis.Redis, stream_name: str, group: str) -> int:
    """KEDA's lagFactor: the Redis major version from INFO, the group's lag from XINFO GROUPS, else XLEN."""
    version = str(r.execute_command("INFO")["redis_version"])
    assert int(version.split(".")[0]) >= 7, f"KEDA refuses lagCount on Redis {version}"
    for entry in r.execute_command("XINFO", "GROUPS", stream_name):
        if entry["name"] == group:
            assert entry["lag"] is not None, "a nil lag: go-redis reads it as 0 and KEDA would scale to zero"
            return int(entry["lag"])
    return int(r.execute_command("XLEN", stream_name))


def pending_count(r: redis.Redis, stream_name: str, group: str) -> int:
    """KEDA's xPendingFactor: the count of XPENDING's summary form."""
    summary = r.execute_command("XPENDING", stream_name, group)
    return int(summary["pending"] if isinstance(summary, dict) else summary[0])


def submit(settings: Settings, count: int) -> None:
    web = connect(settings.redis, "web")
    for _ in range(count):
        stream.enqueue(web, Keys(settings.redis.prefix), JobPackage.create(
            "http://e.test/t.png", ["http://e.test/a.png"], Options(4, 4, 8, 0)))
    assert Keeper(settings).admit() == count


def test_the_manifest_triggers_name_our_stream_group_and_monitor(settings: Settings) -> None:
    for name, meta in triggers().items():
        assert (meta["stream"], meta["consumerGroup"], meta["username"]) == (
            Keys(settings.redis.prefix).jobs, GROUP, "monitor"), name


def test_monitor_reads_what_keda_reads_and_it_is_our_queue(settings: Settings) -> None:
    keys, meta = Keys(settings.redis.prefix), triggers()
    monitor = as_keda(settings, "monitor")
    lag_meta, pending_meta = meta["jobs-lag"], meta["jobs-pending"]
    assert (lag_count(monitor, lag_meta["stream"], lag_meta["consumerGroup"]),
            pending_count(monitor, pending_meta["stream"], pending_meta["consumerGroup"])) == (0, 0)

    submit(settings, 6)
    worker = connect(settings.redis, "worker")
    taken = [stream.take_new(worker, keys, f"pod-{n}") for n in range(3)]
    assert all(taken)
    first = taken[0]
    assert first is not None
    finish = status.finish_command(keys, first[1]["id"], 60, JobState.DONE, 50, first[0], 1.0,
                                   result=f"{first[1]['id']}.jpg", details=json.dumps({"build_seconds": 1.0}))
    assert worker.fcall(*finish) == 1  # one of the three done and acknowledged: 3 queued, 2 held
    ours = queue.read_queue(connect(settings.redis, "monitor"), keys)
    assert (ours.depth, ours.pending) == (3, 2)
    assert lag_count(monitor, keys.jobs, GROUP) == ours.depth
    assert pending_count(monitor, keys.jobs, GROUP) == ours.pending

    assert Keeper(settings).trim() == 1  # the acknowledged entry goes; the lag must stay defined and right
    assert (lag_count(monitor, keys.jobs, GROUP), pending_count(monitor, keys.jobs, GROUP)) == (3, 2)


def test_before_the_group_exists_the_lag_is_the_stream_length(settings: Settings) -> None:
    """A pool at zero whose group was lost (a Redis that lost its data): KEDA falls back to XLEN."""
    keys = Keys(settings.redis.prefix)
    admin = connect(settings.redis, "admin")
    admin.xgroup_destroy(keys.jobs, GROUP)
    try:
        monitor = as_keda(settings, "monitor")
        assert lag_count(monitor, keys.jobs, GROUP) == monitor.xlen(keys.jobs) > 0
    finally:
        admin.xgroup_create(keys.jobs, GROUP, id="0")


def test_monitor_still_writes_nothing(settings: Settings) -> None:
    """The grant KEDA needs (INFO) adds no write: the scaler's user cannot touch the queue."""
    monitor = as_keda(settings, "monitor")
    keys = Keys(settings.redis.prefix)
    for command in (("XADD", keys.jobs, "*", "id", "x"), ("XGROUP", "DESTROY", keys.jobs, GROUP),
                    ("XTRIM", keys.jobs, "MAXLEN", "0"), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            monitor.execute_command(*command)
