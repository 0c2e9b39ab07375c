"""Worker nodes as real sshd servers on loopback ports, each with its own host key and folder.

The wheels are built once (dependency wheels cached in var/wheels) and provisioned over SSH once
per session into var/test-nodes/venv; every node here lives on this machine and names that virtualenv,
so the orchestrator's own provisioning finds it up to date and skips it (as on a rerun).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import waitress.server
import yaml
from sshd import SshServer, assert_tools, keygen, kill_tree, start_sshd
from support import encode, free_port, make_target, make_tiles, wait_until

from config.scaling import NodeSpec, ScalingSettings, SshSettings, load_scaling
from orchestrator.loop import Orchestrator
from orchestrator.nodes import NodeControl
from orchestrator.policy import NodeState
from orchestrator.registry import Registry
from orchestrator.wheels import build_wheels
from workers import client
from workers.keys import Keys

ROOT = Path(__file__).resolve().parent.parent.parent
WHEELS = ROOT / "var" / "wheels"
SHARED_VENV = ROOT / "var" / "test-nodes" / "venv"
PYTHON = getattr(sys, "_base_executable", sys.executable)


@dataclass(frozen=True)
class ClientKey:
    path: Path
    authorized_keys: Path


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    assert_tools()
    folder = tmp_path_factory.mktemp("client")
    line = keygen(folder / "id_ed25519")
    (folder / "authorized_keys").write_text(line + "\n")
    return ClientKey(folder / "id_ed25519", folder / "authorized_keys")


@pytest.fixture(scope="session")
def provisioned(client_key: ClientKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels built and installed over SSH into the shared node virtualenv, once per session."""
    build_wheels(WHEELS)
    folder = tmp_path_factory.mktemp("provisioner")
    server = start_sshd(folder / "sshd", "provisioner", client_key.authorized_keys)
    try:
        (folder / "known_hosts").write_text(server.known_hosts_line + "\n")
        spec = NodeSpec(name="provisioner", host="127.0.0.1", port=server.port, key_file=str(client_key.path),
                        known_hosts=str(folder / "known_hosts"), install_path=str(folder / "node"),
                        venv=str(SHARED_VENV), python=PYTHON)
        NodeControl(spec, SshSettings(command_timeout=900)).provision(WHEELS)
    finally:
        server.stop()
    return SHARED_VENV


NODE_SETTINGS: dict[str, Any] = {
    "queue": {"claim_idle": 4.0},
    "worker": {"block_ms": 300, "heartbeat_interval": 1.0},
    "fetch": {"allow_hosts": ["127.0.0.1"]},
    "mosaic": {"decode_processes": 1},
}


@dataclass
class Cluster:
    """The web host (app, Redis, an sshd for results) and candidate nodes, with an orchestrator to run."""

    web_url: str
    settings: Any
    scaling: ScalingSettings
    servers: dict[str, SshServer]
    results_server: SshServer
    r: redis.Redis
    orchestrator: Orchestrator | None = None
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.time)

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.prefix)

    def registry(self) -> Registry:
        return Registry(self.r, self.keys)

    def state(self, name: str) -> NodeState:
        return self.registry().get(name).state

    def up(self) -> list[str]:
        return [n for n, rec in self.registry().all().items() if rec.state in (NodeState.STARTING, NodeState.ACTIVE)]

    def start_orchestrator(self) -> Orchestrator:
        self.orchestrator = Orchestrator(self.settings, self.scaling)
        self.thread = threading.Thread(target=self.orchestrator.run, name="orchestrator", daemon=True)
        self.thread.start()
        return self.orchestrator

    def stop_orchestrator(self) -> None:
        if self.orchestrator is not None and self.thread is not None:
            self.orchestrator.stop_requested.set()
            self.thread.join(timeout=30)
            self.orchestrator.wait_idle(timeout=60)

    def wait_state(self, name: str, state: NodeState, timeout: float) -> None:
        wait_until(lambda: self.state(name) is state, timeout=timeout, what=f"node {name} {state.value}",
                   interval=0.2)

    def install(self, name: str) -> Path:
        return Path(self.scaling.node(name).install_path)

    def submit(self, count: int, grid: str = "48x32", seed: int = 1, tile_urls: list[str] | None = None) -> list[str]:
        """Jobs with uploaded tiles, or with ``tile_urls`` (made unique per job, past the fetch cache)."""
        target, tiles = encode(make_target(320, 200, seed=seed)), [encode(t) for t in make_tiles(48)]
        ids = []
        for number in range(count):
            urls = [f"{url}?job={number}" for url in tile_urls] if tile_urls else None
            status, reply = client.submit(self.web_url, target, [] if urls else tiles, {"grid": grid, "tile_px": "8"},
                                          tile_urls=urls)
            assert status == 202, reply
            ids.append(reply["id"])
        return ids

    def jobs(self, ids: list[str]) -> dict[str, dict[str, str]]:
        return {job: self.r.hgetall(self.keys.job(job)) for job in ids}  # type: ignore[misc]

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, dict[str, str]]:
        wait_until(lambda: all(j.get("state") in ("done", "failed") for j in self.jobs(ids).values()),
                   timeout=timeout, what=f"{len(ids)} jobs final", interval=0.25)
        return self.jobs(ids)

    def timeline(self) -> list[str]:
        return [f"{float(str(e['at'])) - self.started:7.1f} s  {e['node']:<3} {e['state']:<9} {e['reason']}"
                for e in self.registry().events()]


ClusterFactory = Callable[..., Cluster]


@dataclass(frozen=True)
class WebHost:
    base_url: str
    settings: Any


@pytest.fixture
def web_host(make_settings: Callable[..., Any]) -> Iterator[WebHost]:
    """The real app on waitress, with the per-client limits out of the way of a burst."""
    from web.app import make_app

    port = free_port()
    settings = make_settings(TESSERA_WEB_PORT=str(port), TESSERA_WEB_PUBLIC_URL=f"http://127.0.0.1:{port}",
                             TESSERA_WEB_RATE_LIMIT_PER_MINUTE="100000", TESSERA_WEB_MAX_ACTIVE_JOBS="100000")
    server = waitress.server.create_server(make_app(settings), host="127.0.0.1", port=port, threads=4,
                                           max_request_body_size=settings.limits.max_request_bytes)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield WebHost(f"http://127.0.0.1:{port}", settings)
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def cluster(provisioned: Path, client_key: ClientKey, web_host: WebHost, r: redis.Redis,
            tmp_path: Path) -> Iterator[ClusterFactory]:
    web = web_host
    made: list[Cluster] = []

    def create(names: tuple[str, ...] = ("a", "b", "c"), workers: int = 1, **scaling: Any) -> Cluster:
        results = start_sshd(tmp_path / "webhost-sshd", "webhost", client_key.authorized_keys)
        servers = {name: start_sshd(tmp_path / f"sshd-{name}", name, client_key.authorized_keys) for name in names}
        (tmp_path / "known_hosts").write_text("".join(s.known_hosts_line + "\n" for s in servers.values()))
        (tmp_path / "webhost_known_hosts").write_text(results.known_hosts_line + "\n")
        Path(web.settings.paths.media).mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "interval": 0.5,
            "health": {"start_timeout": 120, "lost_after": 5, "retry_base": 300},
            "ssh": {"connect_timeout": 5, "keepalive": 5},
            "remote": {"wheels": str(WHEELS), "settings": NODE_SETTINGS,
                       "results": {"store": "sftp", "host": "127.0.0.1", "port": results.port, "user": "root",
                                   "key_file": str(client_key.path),
                                   "known_hosts": str(tmp_path / "webhost_known_hosts")}},
            "nodes": [{"name": name, "host": "127.0.0.1", "port": server.port, "user": "root",
                       "key_file": str(client_key.path), "known_hosts": str(tmp_path / "known_hosts"),
                       "workers": workers, "install_path": str(tmp_path / "nodes" / name),
                       "venv": str(provisioned), "python": PYTHON} for name, server in servers.items()],
            **scaling,
        }
        path = tmp_path / "scaling.yaml"
        path.write_text(yaml.safe_dump(data))
        made.append(Cluster(web_url=web.base_url, settings=web.settings, scaling=load_scaling(path),
                            servers=servers, results_server=results, r=r))
        return made[-1]

    yield create
    for made_cluster in made:
        made_cluster.stop_orchestrator()
        for name, server in made_cluster.servers.items():
            kill_tree(made_cluster.install(name) / "var" / "supervisord.pid")
            server.stop()
        made_cluster.results_server.stop()
