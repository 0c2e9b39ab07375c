"""Worker nodes as real sshd servers, each with its own host key and folder, and in a network namespace
with its own address where one can be made (see tests/helpers/netns.py), else on a loopback port.

The wheels are built once (dependency wheels cached in var/wheels) and provisioned over SSH once
per session into var/test-nodes/venv (under a file lock: parallel runs share it); every node here lives
on this machine and names that virtualenv, so the orchestrator's own provisioning finds it up to date
and skips it (as on a rerun).

The Redis of these tests has a user per role (ACL), so a node proves it works with the worker's
password alone; it listens on the network's host address too, where the nodes reach it.
"""

from __future__ import annotations

import fcntl
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from config.scaling import NodeSpec, SshSettings, load_scaling
from orchestrator.nodes import NodeControl
from orchestrator.wheels import build_wheels
from tests.helpers.cluster import Cluster, ClusterFactory
from tests.helpers.netns import Network, make_network
from tests.helpers.processes import stop_process
from tests.helpers.redis import RedisServer, start_redis
from tests.helpers.settings import SettingsFactory
from tests.helpers.sshd import assert_tools, keygen, kill_tree, start_sshd
from tests.helpers.web import WebServer, serving
from workers.service.redis_server import acl_lines

ROOT = Path(__file__).resolve().parent.parent.parent
WHEELS = ROOT / "var" / "wheels"
SHARED_VENV = ROOT / "var" / "test-nodes" / "venv"
PROVISION_LOCK = ROOT / "var" / "test-nodes" / "provision.lock"
NODE_NAMES = ("a", "b", "c")
ROLES = ("web", "worker", "orchestrator")
PYTHON = getattr(sys, "_base_executable", sys.executable)


@dataclass(frozen=True)
class ClientKey:
    path: Path
    authorized_keys: Path


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    """Namespaces for the nodes a, b and c, made once and always deleted (their processes killed)."""
    net = make_network(NODE_NAMES)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="session")
def redis_server(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Overrides the session Redis: ACL users (admin here; the roles per test), on the host address too."""
    password = secrets.token_urlsafe(16)
    acl = ["user default off resetpass ~* &* +@all", f"user admin on >{password} ~* &* +@all"]
    bind = "127.0.0.1" if not network.namespaced else f"127.0.0.1 {network.host}"
    server = start_redis(tmp_path_factory.mktemp("redis"), password=password, acl=acl, bind=bind)
    yield server
    stop_process(server.process)


@pytest.fixture
def make_settings(make_settings: SettingsFactory, redis_server: RedisServer) -> Iterator[SettingsFactory]:
    """The shared factory, with a password per role and those users made in Redis for this test's prefix."""
    roles = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES}
    admin = redis.Redis(port=redis_server.port, username="admin", password=redis_server.password)

    def create(**env: str) -> Any:
        settings = make_settings(**{**roles, **env})
        for line in acl_lines(settings.redis):
            user, *rules = line.split()[1:]
            if user in ROLES:
                admin.execute_command("ACL", "SETUSER", user, "reset", *rules)
        return settings

    yield create
    admin.close()


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    assert_tools()
    folder = tmp_path_factory.mktemp("client")
    line = keygen(folder / "id_ed25519")
    (folder / "authorized_keys").write_text(line + "\n")
    return ClientKey(folder / "id_ed25519", folder / "authorized_keys")


@pytest.fixture(scope="session")
def provisioned(client_key: ClientKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Wheels built and installed over SSH into the shared node virtualenv, once per session.

    Built under an exclusive lock, then used under a shared one until the session ends: a parallel run
    waits to rebuild the wheels or reinstall the virtualenv until no run has nodes running from it."""
    PROVISION_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(PROVISION_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _provision(client_key, tmp_path_factory.mktemp("provisioner"))
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield SHARED_VENV


def _provision(client_key: ClientKey, folder: Path) -> None:
    build_wheels(WHEELS)
    server = start_sshd(folder / "sshd", "provisioner", client_key.authorized_keys)
    try:
        (folder / "known_hosts").write_text(server.known_hosts_line + "\n")
        spec = NodeSpec(name="provisioner", host="127.0.0.1", port=server.port, key_file=str(client_key.path),
                        known_hosts=str(folder / "known_hosts"), install_path=str(folder / "node"),
                        venv=str(SHARED_VENV), python=PYTHON)
        NodeControl(spec, SshSettings(command_timeout=900)).provision(WHEELS)
    finally:
        server.stop()


def node_settings(network: Network) -> dict[str, Any]:
    """Quick timings; the web host's address (tile servers there) is the one private address nodes may fetch."""
    return {"queue": {"claim_idle": 4.0}, "worker": {"block_ms": 300, "heartbeat_interval": 1.0},
            "fetch": {"allow_hosts": [network.host]}, "mosaic": {"decode_processes": 1}}


@pytest.fixture
def web_host(make_settings: SettingsFactory, network: Network, tmp_path: Path) -> Iterator[WebServer]:
    """The real app on waitress at the host address, with the per-client limits out of the way of a burst; the
    orchestrator writes each node's results key into this test's own keys file (never /etc/ssh)."""
    with serving(make_settings, host=network.host,
                 TESSERA_FETCH_ALLOW_HOSTS=network.host,  # tile URLs the tests serve there
                 TESSERA_RESULTS_AUTHORIZED_KEYS=str(tmp_path / "results.keys"),
                 TESSERA_WEB_RATE_LIMIT_PER_MINUTE="100000", TESSERA_WEB_MAX_ACTIVE_JOBS="100000") as server:
        yield server


@pytest.fixture
def cluster(provisioned: Path, client_key: ClientKey, web_host: WebServer, r: redis.Redis, network: Network,
            tmp_path: Path) -> Iterator[ClusterFactory]:
    web = web_host
    made: list[Cluster] = []

    def create(names: tuple[str, ...] = ("a", "b", "c"), workers: int = 1, **scaling: Any) -> Cluster:
        # the web host's sshd takes the test's own key and the orchestrator's node keys (as root: the chrooted
        # account itself is tested in test_results_account.py)
        results = start_sshd(tmp_path / "webhost-sshd", "webhost", client_key.authorized_keys, address=network.host,
                             more_keys=(Path(web.settings.results.authorized_keys),))
        servers = {name: start_sshd(tmp_path / f"sshd-{name}", name, client_key.authorized_keys,
                                    address=network.address(name), netns=network.netns(name)) for name in names}
        (tmp_path / "known_hosts").write_text("".join(s.known_hosts_line + "\n" for s in servers.values()))
        (tmp_path / "webhost_known_hosts").write_text(results.known_hosts_line + "\n")
        Path(web.settings.paths.media).mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "interval": 0.5,
            "health": {"start_timeout": 120, "lost_after": 5, "retry_base": 300},
            "ssh": {"connect_timeout": 5, "keepalive": 5},
            "remote": {"wheels": str(WHEELS), "settings": node_settings(network),
                       "redis_url": f"redis://{network.host}:{web.settings.redis.port}/0",
                       "results": {"store": "sftp", "host": network.host, "port": results.port, "user": "root",
                                   "key_file": str(client_key.path), "path": web.settings.paths.media,
                                   "known_hosts": str(tmp_path / "webhost_known_hosts")}},
            "nodes": [{"name": name, "host": server.address, "port": server.port, "user": "root",
                       "key_file": str(client_key.path), "known_hosts": str(tmp_path / "known_hosts"),
                       "workers": workers, "install_path": str(tmp_path / "nodes" / name),
                       "venv": str(provisioned), "python": PYTHON} for name, server in servers.items()],
            **scaling,
        }
        path = tmp_path / "scaling.yaml"
        path.write_text(yaml.safe_dump(data))
        made.append(Cluster(web_url=web.base_url, settings=web.settings, scaling=load_scaling(path),
                            servers=servers, results_server=results, r=r, network=network))
        return made[-1]

    try:
        yield create
    finally:
        for made_cluster in made:
            made_cluster.stop_orchestrator()
            for name, server in made_cluster.servers.items():
                network.kill(name)  # with namespaces: sshd, supervisord, workers, all by PID
                kill_tree(made_cluster.install(name) / "var" / "supervisord.pid")
                server.stop()
                network.mend(name)
                assert not network.pids(name), f"processes left in node {name}'s namespace"
            made_cluster.results_server.stop()
