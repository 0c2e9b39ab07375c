"""The two users a Sentinel setup adds (issue 17): `replica` replicates and does nothing else; `sentinel` watches
and reconfigures but reads no job; the Sentinels themselves want their own password. On a real topology
(tests/helpers/sentinel.py), whose replica is linked as `replica` and whose sentinels log in as `sentinel`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.sentinel import HOST, Topology, start_topology
from workers.protocol.keys import Keys
from workers.service.redis_server import acl_file_text

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("ha-users")
    ha = start_topology(folder / "ha", folder / "root")
    try:
        yield ha
    finally:
        ha.stop()


def login(topology: Topology, user: str) -> redis.Redis:
    password = topology.env[f"TESSERA_REDIS_{user.upper()}_PASSWORD"]
    return redis.Redis(host=HOST, port=topology.primary(), username=user, password=password, decode_responses=True,
                       socket_timeout=5)


def refused(call: Callable[[], Any]) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_the_replica_links_as_replica_and_that_user_can_do_nothing_else(topology: Topology) -> None:
    primary = topology.primary()
    (replica,) = (port for port in topology.redises if port != primary)
    conf = (topology.redises[replica].folder / "redis.conf").read_text()
    assert "masteruser replica\n" in conf  # it logs in as `replica`, and is linked:
    assert topology.role(replica)[:1] == ["slave"] and topology.role(replica)[3] == "connected"
    job = Keys(topology.settings.redis.prefix).job("x" * 22)
    with login(topology, "replica") as r:
        assert r.ping()
        for call in (lambda: r.hgetall(job), lambda: r.keys("*"), lambda: r.info(), lambda: r.config_get("dir"),
                     lambda: r.set(job, "1"), lambda: r.execute_command("FUNCTION", "LIST"),
                     lambda: r.execute_command("SLAVEOF", "NO", "ONE"), lambda: r.publish("__sentinel__:hello", "x")):
            assert refused(call)


def test_the_sentinel_user_reads_no_job_and_holds_only_its_channel(topology: Topology) -> None:
    job = Keys(topology.settings.redis.prefix).job("x" * 22)
    with login(topology, "sentinel") as s:
        assert s.ping() and "role" in s.info("replication")
        for call in (lambda: s.hgetall(job), lambda: s.get(job), lambda: s.keys("*"), lambda: s.xlen(job),
                     lambda: s.set(job, "1"), lambda: s.config_get("dir"), lambda: s.execute_command("PSYNC", "?", -1),
                     lambda: s.execute_command("FUNCTION", "LIST"), lambda: s.publish("other", "x"),
                     lambda: s.execute_command("ACL", "LIST"), lambda: s.flushall()):
            assert refused(call)


def test_sentinels_want_their_password(topology: Topology) -> None:
    with redis.Redis(host=HOST, port=topology.sentinels[0].port, socket_timeout=2) as anonymous, \
            pytest.raises(redis.AuthenticationError):
        anonymous.execute_command("SENTINEL", "MASTERS")
    with topology.sentinel_client(topology.sentinels[0]) as sentinel:
        assert sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", topology.master_name)


def test_our_processes_may_ask_a_sentinel_for_the_primary_and_nothing_else(topology: Topology) -> None:
    """The Sentinels' `client` user (every process, worker nodes and KEDA too): discovery only, so no holder of
    its password can move the primary, forget it or change the quorum."""
    name = topology.master_name
    with topology.sentinel_client(topology.sentinels[0]) as client:
        assert client.execute_command("SENTINEL", "MASTERS") and client.execute_command("SENTINEL", "REPLICAS", name)
        for command in (("FAILOVER", name), ("REMOVE", name), ("SET", name, "quorum", "1"), ("RESET", "*"),
                        ("MONITOR", "other", "127.0.0.1", "1", "2"), ("CONFIG", "GET", "*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command("SENTINEL", *command)


def test_every_redis_reads_the_same_acl_file(topology: Topology, tmp_path: Path) -> None:
    text = acl_file_text(topology.settings.redis)
    assert text.splitlines()[0].startswith("user default off ")
    assert sum(line.startswith(("user replica ", "user sentinel ")) for line in text.splitlines()) == 2
    files = [instance.folder / "users.acl" for instance in topology.redises.values()]
    assert [path.read_text() for path in files] == [text] * len(files)
