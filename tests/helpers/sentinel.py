"""A Redis Sentinel topology of a test's own: a primary, one replica and three sentinels on free loopback ports.

Every Redis reads the SAME ACL file (the project's roles plus `replica` and `sentinel`, `default` off), rendered
by workers/service/redis_server.py, so the users a test logs in as are production's; the sentinels ask for a
password of their own (users `sentinel` and `client`). Timings are short (down after 1 s) so a failover takes
seconds, not minutes. Everything is started here and stopped here, by PID.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import cast

import redis

from config import RedisSettings, Settings
from tests.helpers.processes import free_port, stop_process, wait_until
from tests.helpers.settings import SettingsFactory, settings_factory
from workers.protocol.connection import SENTINEL_CLIENT
from workers.service import redis_server

HOST = "127.0.0.1"
DOWN_AFTER_MS = 2000
"""Sentinel's down-after-milliseconds: a primary silent this long is subjectively down. 1000 ms made the
sentinels declare a just-promoted primary down too on a loaded 2-core machine (a second, unplanned failover
back to the restarted old primary, seen once in 8 runs); 2000 ms is production's default."""
FAILOVER_TIMEOUT_MS = 3000
"""Sentinel's failover-timeout; a second failover of the same primary waits twice this after the first."""
ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks")
HA_KEYS = ("SENTINELS", "MASTER_NAME", "SENTINEL_CLIENT_PASSWORD", "MIN_REPLICAS_ACKED", "WAIT_TIMEOUT_MS")
"""The ``TESSERA_REDIS_*`` a client process needs for HA mode: where the sentinels are and how to ask them (not
the `sentinel` and `replica` users' passwords: only the Redis servers and the sentinels know those)."""


@dataclass
class Instance:
    """One redis-server (or sentinel) we started: its port, its own folder and conf, its process."""

    port: int
    folder: Path
    args: list[str]
    process: subprocess.Popen[bytes]

    @classmethod
    def launch(cls, port: int, folder: Path, args: list[str]) -> Instance:
        return cls(port, folder, args, _spawn(folder, args))

    def start(self) -> None:
        """Start it again (after a kill), with the same arguments, in the same folder."""
        self.process = _spawn(self.folder, self.args)

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Topology:
    """The servers, the settings of a test in HA mode (``settings``, ``make_settings``), and the faults."""

    make_settings: SettingsFactory
    """Settings in HA mode (sentinels, master name, every password), plus a test's own ``TESSERA_*``."""
    env: dict[str, str]
    """The ``TESSERA_REDIS_*`` of HA mode and every role's password: what a test's settings are made with."""
    settings: Settings
    """``make_settings()``, loaded once: what the topology itself reads (passwords, master name)."""
    redises: dict[int, Instance] = field(default_factory=dict)
    sentinels: list[Instance] = field(default_factory=list)
    kills: list[tuple[int, float]] = field(default_factory=list)
    """(port, time.time() just before its SIGKILL) of each kill_primary."""
    linked: list[tuple[int, float]] = field(default_factory=list)
    """(port, time.time()) of each restart_as_replica: when the primary first counted it as an online replica
    (polled every 0.05 s). From a kill to this, the primary has no replica: no write can be acknowledged."""


    @property
    def master_name(self) -> str:
        return self.settings.redis.master_name

    def client_env(self) -> dict[str, str]:
        """What a worker process gets on top of the web's settings (tests/helpers/worker.py ``extra``)."""
        return {f"TESSERA_REDIS_{key}": self.env[f"TESSERA_REDIS_{key}"] for key in HA_KEYS}

    # -- reading the topology ------------------------------------------------
    def sentinel(self, instance: Instance) -> redis.Redis:
        """A Sentinel as the operator: its own `sentinel` user, which may also SENTINEL FAILOVER."""
        return redis.Redis(host=HOST, port=instance.port, username="sentinel",
                           password=self.env["TESSERA_REDIS_SENTINEL_PASSWORD"], decode_responses=True,
                           socket_connect_timeout=1, socket_timeout=2)

    def sentinel_client(self, instance: Instance) -> redis.Redis:
        """A Sentinel as our processes see it: the `client` user, which may only ask where the primary is."""
        return redis.Redis(host=HOST, port=instance.port, username=SENTINEL_CLIENT,
                           password=self.env["TESSERA_REDIS_SENTINEL_CLIENT_PASSWORD"], decode_responses=True,
                           socket_connect_timeout=1, socket_timeout=2)

    def primaries(self) -> set[int]:
        """The primary's port as each live sentinel names it (one port once they agree)."""
        ports = set()
        for instance in self.sentinels:
            with self.sentinel(instance) as s:
                try:
                    answer = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                except redis.RedisError:
                    continue
                if answer:
                    ports.add(int(answer[1]))
        return ports

    def primary(self) -> int:
        """The primary's port, once every sentinel names the same one."""
        found: list[int] = []

        def agreed() -> bool:
            ports = self.primaries()
            found[:] = sorted(ports)
            return len(ports) == 1

        wait_until(agreed, timeout=30, what="the sentinels agreeing on a primary")
        return found[0]

    def admin(self, port: int) -> redis.Redis:
        """A direct client to one Redis as admin (not through the sentinels): to read its role and data."""
        return redis.Redis(host=HOST, port=port, username="admin", password=self.settings.redis.password,
                           decode_responses=True, socket_connect_timeout=1, socket_timeout=5)

    def as_sentinel(self, port: int) -> redis.Redis:
        """A direct client to one Redis as the `sentinel` user: ROLE and INFO are @dangerous, so not admin's."""
        password = self.env["TESSERA_REDIS_SENTINEL_PASSWORD"]
        return redis.Redis(host=HOST, port=port, username="sentinel", password=password, decode_responses=True,
                           socket_connect_timeout=1, socket_timeout=2)

    def role(self, port: int) -> list[object]:
        """ROLE of the Redis on ``port``: ["master", …] or ["slave", host, port, link state, offset]; [] if down."""
        with self.as_sentinel(port) as r:
            try:
                return cast(list[object], r.execute_command("ROLE"))
            except redis.RedisError:
                return []

    def replicas_ok(self, primary: int) -> list[int]:
        """Ports of the replicas every sentinel lists for ``primary`` as up and linked (no down flag)."""
        seen: list[set[int]] = []
        for instance in self.sentinels:
            with self.sentinel(instance) as s:
                try:
                    rows = s.execute_command("SENTINEL", "REPLICAS", self.master_name)
                except redis.RedisError:
                    return []
            ok = set()
            for row in rows:
                info = dict(zip(row[::2], row[1::2], strict=True)) if isinstance(row, list) else row
                if "down" not in info["flags"] and info.get("master-link-status") == "ok" \
                        and int(info["master-port"]) == primary:
                    ok.add(int(info["port"]))
            seen.append(ok)
        return sorted(set.intersection(*seen)) if seen else []

    # -- faults ----------------------------------------------------------------
    def kill_primary(self) -> int:
        """SIGKILL the current primary (by its PID); its port (and, in ``kills``, when)."""
        port = self.primary()
        instance = self.redises[port]
        self.kills.append((port, time.time()))
        instance.process.send_signal(signal.SIGKILL)
        instance.process.wait(timeout=10)
        return port

    def wait_for_failover(self, old: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a primary other than ``old`` and that Redis says it is one; its port."""
        found: list[int] = []

        def promoted() -> bool:
            ports = self.primaries()
            if len(ports) != 1 or old in ports:
                return False
            found[:] = list(ports)
            return bool(self.role(found[0])[:1] == ["master"])

        wait_until(promoted, timeout=timeout, what=f"a failover away from port {old}", interval=0.05)
        return found[0]

    def restart_as_replica(self, old: int, by_sentinel: bool = False, timeout: float = 60.0) -> None:
        """Start the killed Redis on ``old`` again; return once it is a replica of the new primary, in sync.

        As `tessera redis` restarts it (workers/service/redis_server.py exec_redis): it asks the Sentinels for the
        primary and starts as its replica (a second or so). ``by_sentinel``: with its old conf instead, so it comes
        back believing it is the primary until Sentinel demotes it (~20 s: Sentinel's fixed 10 s INFO period for
        a lost instance, then 8 s it waits before it reconfigures a returning primary)."""
        instance = self.redises[old]
        assert not instance.alive(), f"port {old} still runs"
        primary = self.wait_for_failover(old)
        if not by_sentinel:
            asked = redis_server.current_primary(self.settings.redis)
            assert asked == (HOST, primary), (asked, primary)
            (instance.folder / "redis.conf").write_text(_redis_conf(self.settings.redis, old, instance.folder, asked))
        instance.start()
        wait_until(lambda: self._online_replica(primary, old), timeout=timeout, interval=0.05,
                   what=f"port {old} back as a replica of {primary}")
        self.linked.append((old, time.time()))
        wait_until(lambda: old in self.replicas_ok(primary), timeout=timeout, interval=0.1,
                   what=f"the sentinels seeing port {old} as a replica of {primary}")

    def _online_replica(self, primary: int, port: int) -> bool:
        """Whether the primary counts the Redis on ``port`` as an online replica (one that a WAIT can count)."""
        with self.as_sentinel(primary) as r:
            try:
                info = r.info("replication")
            except redis.RedisError:
                return False
        return any(isinstance(v, dict) and int(v.get("port", 0)) == port and v.get("state") == "online"
                   for key, v in info.items() if key.startswith("slave"))

    def stop(self) -> None:
        for instance in [*self.sentinels, *self.redises.values()]:
            stop_process(instance.process, timeout=10)

    def failovers(self) -> int:
        """Failovers the first sentinel saw (its +switch-master lines): equal to the kills unless the sentinels
        also moved the primary on their own."""
        return (self.sentinels[0].folder / "server.log").read_text(errors="replace").count("+switch-master ")

    def logs(self) -> str:
        """Every server's log, for a failing test's message."""
        return "\n".join(f"--- {i.folder.name} ---\n" + (i.folder / "server.log").read_text(errors="replace")[-3000:]
                         for i in [*self.redises.values(), *self.sentinels])


def start_topology(folder: Path, root: Path, extra: Mapping[str, str] | None = None) -> Topology:
    """A primary, a replica and three sentinels under ``folder``; settings with files under ``root``."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it)"
    ports = {"primary": free_port(), "replica": free_port()}
    sentinel_ports = [free_port() for _ in range(3)]
    env = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES}
    env.update({"TESSERA_REDIS_SENTINELS": ",".join(f"{HOST}:{p}" for p in sentinel_ports),
                "TESSERA_REDIS_MASTER_NAME": "tessera",
                "TESSERA_REDIS_SENTINEL_PASSWORD": secrets.token_urlsafe(16),
                "TESSERA_REDIS_SENTINEL_CLIENT_PASSWORD": secrets.token_urlsafe(16),
                "TESSERA_REDIS_REPLICA_PASSWORD": secrets.token_urlsafe(16),
                "TESSERA_REDIS_MIN_REPLICAS_ACKED": "1", "TESSERA_REDIS_WAIT_TIMEOUT_MS": "1000",
                **(extra or {})})
    admin = secrets.token_urlsafe(16)
    base = settings_factory(root, f"redis://{HOST}:{ports['primary']}/0", admin)
    make: SettingsFactory = lambda **more: base(**{**env, **more})  # noqa: E731  (a factory, as tests pass them)
    topology = Topology(make_settings=make, env=env, settings=make())
    settings = topology.settings.redis
    try:
        for name, port in ports.items():
            here = folder / name
            here.mkdir(parents=True)
            replica_of = None if name == "primary" else (HOST, ports["primary"])
            (here / "redis.conf").write_text(_redis_conf(settings, port, here, replica_of))
            topology.redises[port] = Instance.launch(port, here, [binary, str(here / "redis.conf")])
        for port in ports.values():
            wait_until(partial(_answers, topology, port), timeout=10, what=f"redis-server on port {port}")
        for number, port in enumerate(sentinel_ports):
            here = folder / f"sentinel-{number}"
            here.mkdir(parents=True)
            (here / "sentinel.conf").write_text(_sentinel_conf(settings, port, here, ports["primary"]))
            topology.sentinels.append(Instance.launch(port, here, [binary, str(here / "sentinel.conf"), "--sentinel"]))
        wait_until(lambda: ports["replica"] in topology.replicas_ok(ports["primary"])
                   and _sentinels_known(topology), timeout=30, what="the sentinels seeing the replica and each other")
    except BaseException:
        topology.stop()
        raise
    return topology


def _spawn(folder: Path, args: list[str]) -> subprocess.Popen[bytes]:
    with (folder / "server.log").open("ab") as log:  # the child has its own copy of the file
        return subprocess.Popen(args, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def _answers(topology: Topology, port: int) -> bool:
    return topology.role(port)[:1] in (["master"], ["slave"])


def _sentinels_known(topology: Topology) -> bool:
    """Each sentinel knows the two others (they met through the primary's hello channel): a quorum can vote."""
    for instance in topology.sentinels:
        with topology.sentinel(instance) as s:
            try:
                if len(s.execute_command("SENTINEL", "SENTINELS", topology.master_name)) < 2:
                    return False
            except redis.RedisError:
                return False
    return True


def _redis_conf(settings: RedisSettings, port: int, folder: Path, replica_of: tuple[str, int] | None) -> str:
    """This Redis's conf from production's render_conf, and the ACL file it names (the same text for every Redis)."""
    here = dataclasses.replace(settings, url=f"redis://{HOST}:{port}/0", data_dir=str(folder))
    text = redis_server.render_conf(here, replica_of)
    acl_file = next(line.split(None, 1)[1].strip('"') for line in text.splitlines() if line.startswith("aclfile "))
    Path(acl_file).write_text(redis_server.acl_file_text(settings))
    return text


def _sentinel_conf(settings: RedisSettings, port: int, folder: Path, primary_port: int) -> str:
    """A sentinel's conf from production's render_sentinel_conf, with this file's short timings."""
    here = dataclasses.replace(settings, data_dir=str(folder))
    return redis_server.render_sentinel_conf(here, port, HOST, primary_port, quorum=2, down_after_ms=DOWN_AFTER_MS,
                                             failover_timeout_ms=FAILOVER_TIMEOUT_MS)
