"""A web host and candidate worker nodes, with an orchestrator to run: what the orchestrator tests drive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.scaling import ScalingSettings
from orchestrator.loop import Orchestrator
from orchestrator.policy import NodeState
from orchestrator.registry import Registry
from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.netns import Network
from tests.helpers.processes import wait_until
from tests.helpers.sshd import SshServer
from workers.cli import client
from workers.protocol.keys import Keys


@dataclass
class Cluster:
    """The web host (app, Redis, an sshd for results) and candidate nodes, with an orchestrator to run."""

    web_url: str
    settings: Any
    scaling: ScalingSettings
    servers: dict[str, SshServer]
    results_server: SshServer
    r: redis.Redis
    network: Network = field(default_factory=Network)
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

    def timeline(self, since: float | None = None) -> list[str]:
        """Node state changes, in seconds from ``since`` (default: the cluster's creation), with reasons."""
        zero = self.started if since is None else since
        return [f"{float(str(e['at'])) - zero:+7.1f} s  {e['node']:<3} {e['state']:<9} {e['reason']}"
                for e in self.registry().events()]


ClusterFactory = Callable[..., Cluster]
