"""Redis with Sentinel (issue 17, item 1) through the real web app and keeper: a primary, a replica and three
sentinels of the test's own (tests/helpers/sentinel.py). A 202 means a replica holds the job; with the replica
stopped a submission is a 503 `not_replicated` with Retry-After, never a 500; after a failover the very clients
made by connect() before it (the web's, the keeper's, a worker's) go on against the new primary."""

from __future__ import annotations

import dataclasses
import json
import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from tests.helpers.processes import free_port, wait_until
from tests.helpers.sentinel import Topology, start_topology
from tests.helpers.web import WebServer, serving
from workers.protocol import replication, stream
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.keys import Keys
from workers.service.daemon import Worker
from workers.service.redis_server import current_primary

pytestmark = pytest.mark.integration
T = TypeVar("T")
BODY = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    ha = start_topology(tmp_path / "ha", tmp_path / "root")
    try:
        yield ha
    finally:
        ha.stop()


def post(web: WebServer, key: str | None = None) -> tuple[int, dict[str, object], str | None]:
    """(status, JSON body, Retry-After) of one JSON submission, with an Idempotency-Key when ``key``; 4xx/5xx
    returned, not raised."""
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               **({"Idempotency-Key": key} if key else {})}
    req = urllib.request.Request(web.base_url + "/api/mosaics", data=BODY, method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as reply:
            return reply.status, json.loads(reply.read()), reply.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Retry-After")


def test_a_202_is_on_the_replica_a_lone_primary_answers_503_and_clients_follow_a_failover(
        topology: Topology) -> None:
    primary = topology.primary()
    (replica,) = (port for port in topology.redises if port != primary)
    with serving(topology.make_settings) as web:
        keys = Keys(web.settings.redis.prefix)
        worker = connect(web.settings.redis, "worker")  # made before the failover, used after it
        code, body, _ = post(web)
        assert code == 202, body
        accepted = [str(body["id"])]
        with topology.admin(replica) as direct:  # WAIT: the replica had the job before the 202 was sent
            assert direct.hget(keys.job(accepted[0]), "state") == "queued"

        topology.redises[replica].process.send_signal(signal.SIGSTOP)
        try:
            code, body, retry_after = post(web)
        finally:
            topology.redises[replica].process.send_signal(signal.SIGCONT)
        assert (code, body["error"]["code"], retry_after) == (503, "not_replicated", "5"), body  # type: ignore[index]
        wait_until(lambda: replica in topology.replicas_ok(primary), timeout=30, what="the replica back in sync")

        with topology.sentinel(topology.sentinels[0]) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", topology.master_name)
        assert topology.wait_for_failover(primary) == replica
        refusals: list[tuple[int, object]] = []

        def resubmitted() -> bool:  # 503s until the old primary, demoted, has synced from the new one
            code, body, _ = post(web)
            if code == 202:
                accepted.append(str(body["id"]))
                return True
            refusals.append((code, body.get("error")))
            return False

        wait_until(resubmitted, timeout=60, what="a 202 from the web app on the new primary", interval=0.2)
        assert all(code == 503 for code, _ in refusals), refusals  # never a 500 while it switches
        with topology.admin(replica) as new_primary:  # the keeper admitted both there: the FUNCTIONs came along

            def admitted() -> bool:
                entries = {fields["id"] for _, fields in new_primary.xrange(keys.jobs)}
                return set(accepted) <= entries and new_primary.llen(keys.inbox) == 0

            wait_until(admitted, timeout=30, what="the keeper admitting the accepted jobs on the new primary")
        taken = _until_up(lambda: stream.take_new(worker, keys, "ha-0"))
        assert taken is not None and taken[1]["id"]


def test_a_replayed_202_too_waits_for_a_replica(topology: Topology) -> None:
    """The first answer to a key may have been a 503 not_replicated (the job on the primary alone): its replay is
    a 202 only once a replica holds the job, so a replay never promises what a failover could lose."""
    primary = topology.primary()
    (replica,) = (port for port in topology.redises if port != primary)
    with serving(topology.make_settings) as web:
        first = post(web, key="replay-1")
        assert first[0] == 202, first
        topology.redises[replica].process.send_signal(signal.SIGSTOP)
        try:
            code, body, retry_after = post(web, key="replay-1")
        finally:
            topology.redises[replica].process.send_signal(signal.SIGCONT)
        assert (code, body["error"]["code"], retry_after) == (503, "not_replicated", "5"), body  # type: ignore[index]
        wait_until(lambda: replica in topology.replicas_ok(primary), timeout=30, what="the replica back in sync")
        code, body, _ = post(web, key="replay-1")
        assert (code, body["id"]) == (202, first[1]["id"]), body


def test_writes_and_their_wait_share_one_connection(topology: Topology) -> None:
    """WAIT counts its own connection's writes: pinned() keeps a write, a pipeline and the WAIT on one."""
    settings = topology.settings.redis
    admin = connect(settings, "admin")
    with replication.pinned(admin, settings) as r:
        own = r.execute_command("CLIENT", "ID")
        busy = [admin.connection_pool.get_connection() for _ in range(2)]  # another thread's commands meanwhile
        for connection in busy:
            admin.connection_pool.release(connection)
        pipe = r.pipeline(transaction=True)
        pipe.set(settings.prefix + ":ha-test", "1")
        pipe.execute_command("CLIENT", "ID")
        assert pipe.execute()[1] == own
        replication.replicated(r, settings)
    others = [admin.execute_command("CLIENT", "ID") for _ in range(2)]
    assert own in others  # handed back to the pool afterwards


def test_a_starting_redis_asks_the_sentinels_whom_to_follow(topology: Topology) -> None:
    settings = topology.settings.redis
    assert current_primary(settings) == ("127.0.0.1", topology.primary())  # `tessera redis` follows this one
    nowhere = dataclasses.replace(settings, sentinels=[f"127.0.0.1:{free_port()}"])
    assert current_primary(nowhere, wait=0) is None  # no Sentinel up: its --replica-of, or it starts as primary


def _until_up(step: Callable[[], T]) -> T:
    """``step()`` retried over REDIS_DOWN, as the services' loops do while a failover settles."""
    found: list[T] = []

    def once() -> bool:
        try:
            found.append(step())
            return True
        except REDIS_DOWN:
            return False

    wait_until(once, timeout=30, what="redis answering after the failover")
    return found[0]


def test_unreplicated_writes_are_reported_and_a_worker_goes_on(topology: Topology,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    settings = topology.settings.redis
    primary = topology.primary()
    replica = next(port for port in topology.redises if port != primary)
    admin = connect(settings, "admin")
    worker = Worker(topology.settings, slot=7)
    topology.redises[replica].process.send_signal(signal.SIGSTOP)
    try:
        with replication.pinned(admin, settings) as r, pytest.raises(replication.NotReplicated) as caught:
            r.set(settings.prefix + ":ha-test", "2")
            replication.replicated(r, settings)
        with replication.pinned(worker.redis, settings) as r:  # a completion note no replica takes: logged, no raise
            r.hset(Keys(settings.prefix).job("j" * 22), "state", "done")
            worker._until_replicated(r, "j" * 22)
    finally:
        topology.redises[replica].process.send_signal(signal.SIGCONT)
    assert "no replica acknowledged its completion note" in caplog.text
    assert isinstance(caught.value, REDIS_DOWN) and isinstance(caught.value, redis.RedisError)
    assert (caught.value.acked, caught.value.wanted) == (0, 1)
