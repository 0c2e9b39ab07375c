"""The orchestrator's thresholds and candidate nodes, from config/scaling.yaml, into frozen dataclasses.

Every key has a default, so a file names only what it changes. Errors read ``file: key.path: message``,
and the consistency rules (min_nodes ≤ max_nodes, down threshold below the up threshold, …) are checked here.
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.build import build
from config.errors import ConfigError
from config.settings import ResultSettings
from config.yamlfile import read_mapping

SCALING_FILE = Path("config") / "scaling.yaml"


@dataclass(frozen=True)
class NodeSpec:
    """One candidate worker node the orchestrator may bring up over SSH."""

    name: str = ""
    host: str = ""
    port: int = 22
    user: str = "root"
    key_file: str = ""
    known_hosts: str = ""
    workers: int = 2
    install_path: str = "/opt/tessera"
    venv: str = ""
    """The virtualenv on the node; "" = <install_path>/venv. Nodes on one machine may share one."""
    python: str = "python3"
    """The interpreter on the node that creates the virtualenv."""

    @property
    def venv_path(self) -> str:
        return self.venv or f"{self.install_path.rstrip('/')}/venv"


@dataclass(frozen=True)
class ScaleUp:
    backlog_per_worker: float = 4.0
    cpu_percent: float = 90.0
    for_seconds: float = 20.0
    max_step: int = 1
    cooldown: float = 60.0


@dataclass(frozen=True)
class ScaleDown:
    idle_seconds: float = 300.0
    backlog_per_worker: float = 0.5
    cooldown: float = 120.0
    drain_timeout: float = 300.0


@dataclass(frozen=True)
class SshSettings:
    connect_timeout: float = 10.0
    keepalive: float = 15.0
    command_timeout: float = 900.0


@dataclass(frozen=True)
class NodeHealth:
    start_timeout: float = 300.0
    lost_after: float = 30.0
    retry_base: float = 30.0
    retry_cap: float = 900.0


@dataclass(frozen=True)
class Remote:
    """What each node's config/local.yaml gets, besides its name and the web host's secrets."""

    redis_url: str = ""
    public_url: str = ""
    wheels: str = "var/wheels"
    results: ResultSettings = field(default_factory=ResultSettings)
    """How worker nodes deliver results (SFTP into the web host's media folder); the node's own settings class."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Extra settings merged into each node's local.yaml (e.g. queue.claim_idle)."""


@dataclass(frozen=True)
class ScalingSettings:
    interval: float = 5.0
    min_nodes: int = 0
    max_nodes: int = 0
    scale_up: ScaleUp = field(default_factory=ScaleUp)
    scale_down: ScaleDown = field(default_factory=ScaleDown)
    health: NodeHealth = field(default_factory=NodeHealth)
    ssh: SshSettings = field(default_factory=SshSettings)
    remote: Remote = field(default_factory=Remote)
    nodes: tuple[NodeSpec, ...] = ()
    target_backlog_seconds_per_worker: float = 0.0
    """Predicted seconds of backlog work per live worker (tessera_backlog_seconds) to scale by, in place of the job
    counts of scale_up/scale_down.backlog_per_worker; 0 = the job-count rule only."""

    def node(self, name: str) -> NodeSpec:
        return next(spec for spec in self.nodes if spec.name == name)


def load_scaling(path: str | os.PathLike[str]) -> ScalingSettings:
    """Read and check one scaling file; raises ConfigError naming the file and key."""
    source = str(path)
    data = read_mapping(path)
    scaling = typing.cast(ScalingSettings, build(ScalingSettings, data, lambda _path: source))
    for where, problem in _inconsistencies(scaling):
        raise ConfigError(f"{source}: {where}: {problem}")
    return scaling


def _inconsistencies(s: ScalingSettings) -> list[tuple[str, str]]:
    """(key, problem) for every rule the file breaks, first one first."""
    problems = []
    if s.min_nodes > s.max_nodes:
        problems.append(("min_nodes", f"{s.min_nodes} is above max_nodes ({s.max_nodes})"))
    if s.max_nodes > len(s.nodes):
        problems.append(("max_nodes", f"{s.max_nodes} is more than the {len(s.nodes)} nodes listed under nodes"))
    if s.interval <= 0:
        problems.append(("interval", "must be above 0"))
    target = s.target_backlog_seconds_per_worker
    if not math.isfinite(target) or target < 0:
        problems.append(("target_backlog_seconds_per_worker", f"must be 0 (off) or a number of seconds above 0, "
                         f"not {target}"))
    if s.scale_up.max_step < 1:
        problems.append(("scale_up.max_step", "must be at least 1"))
    if s.scale_down.backlog_per_worker >= s.scale_up.backlog_per_worker:
        problems.append(("scale_down.backlog_per_worker", f"{s.scale_down.backlog_per_worker} must be below "
                         f"scale_up.backlog_per_worker ({s.scale_up.backlog_per_worker}), or nodes would flap"))
    if s.remote.results.store not in ("local", "sftp"):
        problems.append(("remote.results.store", f"must be local or sftp, not {s.remote.results.store!r}"))
    seen: set[str] = set()
    for i, node in enumerate(s.nodes):
        for key in ("name", "host", "key_file", "known_hosts", "install_path"):
            if not getattr(node, key):
                problems.append((f"nodes[{i}].{key}", "required"))
        if node.name in seen:
            problems.append((f"nodes[{i}].name", f"{node.name!r} is listed twice"))
        if node.workers < 1:
            problems.append((f"nodes[{i}].workers", "must be at least 1"))
        seen.add(node.name)
    return problems
