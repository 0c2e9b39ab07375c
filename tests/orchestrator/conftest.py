"""Worker nodes as real sshd servers on loopback ports, each with its own host key and folder.

The wheels are built once (dependency wheels cached in var/wheels) and provisioned over SSH once
per session into var/test-nodes/venv; every node here lives on this machine and names that virtualenv,
so the orchestrator's own provisioning finds it up to date and skips it (as on a rerun).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import waitress.server
import yaml
from cluster import Cluster, ClusterFactory
from sshd import assert_tools, keygen, kill_tree, start_sshd
from support import free_port

from config.scaling import NodeSpec, SshSettings, load_scaling
from orchestrator.nodes import NodeControl
from orchestrator.wheels import build_wheels

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
