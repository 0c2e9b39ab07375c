"""The scaling policy: a pure function from thresholds, load and node states to a decision with a reason.

No I/O and no clock: the caller passes ``now`` and keeps the returned ``Memory`` (the hysteresis timers)
for the next call. Missing metrics (``load=None``) never remove a node, and a node without heartbeats
never counts as idle.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from config.scaling import ScalingSettings
from workers.protocol.backoff import backoff
from workers.protocol.states import WorkerState


class NodeState(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    DRAINING = "draining"
    FAILED = "failed"
    REMOVED = "removed"


UP = (NodeState.STARTING, NodeState.ACTIVE)
"""States that count toward min_nodes and max_nodes."""


@dataclass(frozen=True)
class NodeRecord:
    """A node's entry in the registry: its state, since when, and why."""

    name: str
    state: NodeState = NodeState.REMOVED
    since: float = 0.0
    reason: str = ""
    failures: int = 0


@dataclass(frozen=True)
class Beat:
    """One live worker heartbeat."""

    node: str
    state: WorkerState
    cpu: float = 0.0
    at: float = 0.0


@dataclass(frozen=True)
class Load:
    """What the queue and the heartbeats say now; ``backlog`` is inbox + stream lag + pending."""

    backlog: int
    beats: tuple[Beat, ...] = ()
    backlog_seconds: float | None = None
    """Predicted seconds of work in that backlog (workers/protocol/backlog.py); None when it could not be read."""

    @property
    def per_worker(self) -> float:
        return _per(self.backlog, len(self.beats))

    @property
    def seconds_per_worker(self) -> float:
        return _per(self.backlog_seconds or 0.0, len(self.beats))

    def seconds_per_worker_without(self, nodes: tuple[str, ...]) -> float:
        """Backlog seconds per worker once the workers of ``nodes`` are gone."""
        return _per(self.backlog_seconds or 0.0, sum(1 for b in self.beats if b.node not in nodes))

    def by_seconds(self, s: ScalingSettings) -> bool:
        """Whether the seconds rule replaces the job-count rule: a target is set and the seconds are known."""
        return s.target_backlog_seconds_per_worker > 0 and self.backlog_seconds is not None

    @property
    def cpu(self) -> float:
        return sum(b.cpu for b in self.beats) / len(self.beats) if self.beats else 0.0


def _per(amount: float, workers: int) -> float:
    if not workers:
        return math.inf if amount else 0.0
    return amount / workers


@dataclass(frozen=True)
class Memory:
    """Timers carried from one decision to the next (all times in the caller's clock)."""

    pressure_since: float | None = None
    idle_since: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    last_up: float = -math.inf
    last_down: float = -math.inf


@dataclass(frozen=True)
class Decision:
    reason: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    fail: tuple[tuple[str, str], ...] = ()
    """(node, reason) for nodes that stopped heartbeating."""

    @property
    def action(self) -> str:
        return "add" if self.add else "remove" if self.remove else "fail" if self.fail else "hold"

    def __str__(self) -> str:
        nodes = self.add or self.remove or tuple(name for name, _ in self.fail)
        return f"{self.action} {' '.join(nodes)}: {self.reason}" if nodes else f"hold: {self.reason}"


def retry_delay(s: ScalingSettings, failures: int) -> float:
    """Seconds a failed node waits before the next try: capped exponential backoff, without jitter (pure)."""
    return backoff(failures - 1, base=s.health.retry_base, cap=s.health.retry_cap, jitter=False)


def decide(s: ScalingSettings, load: Load | None, nodes: Mapping[str, NodeRecord], memory: Memory,
           now: float) -> tuple[Decision, Memory]:
    """What to do now, and the timers for the next call."""
    records = {spec.name: nodes.get(spec.name, NodeRecord(spec.name)) for spec in s.nodes}
    up = [name for name, rec in records.items() if rec.state in UP]
    free = [name for name, rec in records.items() if _can_start(s, rec, now)]
    if load is None:  # an outage: forget the timers, so nothing is removed on stale evidence
        memory = Memory(last_up=memory.last_up, last_down=memory.last_down)
        if len(up) < s.min_nodes and free:
            return _add(free, s.min_nodes - len(up), s, f"{len(up)} nodes up, below min_nodes {s.min_nodes}",
                        memory, now)
        return Decision("metrics unavailable: holding (never scaling down without metrics)"), memory
    memory = _observe(records, load, memory, now)
    lost = _lost(s, records, memory, now)
    if lost:
        return Decision("nodes stopped heartbeating", fail=lost), memory
    if len(up) < s.min_nodes and free:
        return _add(free, s.min_nodes - len(up), s, f"{len(up)} nodes up, below min_nodes {s.min_nodes}", memory,
                    now)
    if len(up) > s.max_nodes:
        extra = sorted(up, key=lambda name: memory.idle_since.get(name, math.inf))[:len(up) - s.max_nodes]
        return Decision(f"{len(up)} nodes up, above max_nodes {s.max_nodes}", remove=tuple(extra)), \
            dataclasses.replace(memory, last_down=now)
    state = f"backlog {load.backlog}, {load.per_worker:.1f} per worker, {len(load.beats)} workers, {len(up)} nodes up"
    if load.backlog_seconds is not None:
        state += f", backlog {load.backlog_seconds:.0f} s of work, {load.seconds_per_worker:.0f} s per worker"
    hot = _pressure(s, load)
    if hot:
        since = memory.pressure_since if memory.pressure_since is not None else now
        memory = dataclasses.replace(memory, pressure_since=since)
        lasted = now - since
        if lasted < s.scale_up.for_seconds:
            return Decision(f"{hot} for {lasted:.0f} s of {s.scale_up.for_seconds:.0f} s; {state}"), memory
        if len(up) >= s.max_nodes:
            return Decision(f"{hot}, but already at max_nodes {s.max_nodes}; {state}"), memory
        wait = memory.last_up + s.scale_up.cooldown - now
        if wait > 0:
            return Decision(f"{hot}; scale-up cooldown {wait:.0f} s left; {state}"), memory
        if not free:
            return Decision(f"{hot}, but no candidate node is free (failed ones wait for their retry); {state}"), \
                memory
        count = min(s.scale_up.max_step, s.max_nodes - len(up))
        return _add(free, count, s, f"{hot} for {lasted:.0f} s; {state}", memory, now)
    memory = dataclasses.replace(memory, pressure_since=None)
    return _maybe_remove(s, load, records, up, memory, now, state)


def _maybe_remove(s: ScalingSettings, load: Load, records: Mapping[str, NodeRecord], up: list[str], memory: Memory,
                  now: float, state: str) -> tuple[Decision, Memory]:
    if len(up) <= s.min_nodes:
        return Decision(f"steady at {len(up)} nodes (min_nodes {s.min_nodes}); {state}"), memory
    if not load.by_seconds(s) and load.per_worker > s.scale_down.backlog_per_worker:
        return Decision(f"steady: backlog per worker above {s.scale_down.backlog_per_worker}; {state}"), memory
    idle = [name for name in up if records[name].state is NodeState.ACTIVE and name in memory.idle_since
            and now - memory.idle_since[name] >= s.scale_down.idle_seconds]
    if not idle:
        return Decision(f"steady: no node idle for {s.scale_down.idle_seconds:.0f} s; {state}"), memory
    wait = max(memory.last_up, memory.last_down) + s.scale_down.cooldown - now
    if wait > 0:
        return Decision(f"scale-down cooldown {wait:.0f} s left; {state}"), memory
    idle.sort(key=lambda name: memory.idle_since[name])
    chosen = tuple(idle[:min(s.scale_up.max_step, len(up) - s.min_nodes)])
    if load.by_seconds(s) and (after := load.seconds_per_worker_without(chosen)) > s.target_backlog_seconds_per_worker:
        return Decision(f"steady: without {' '.join(chosen)} the backlog would be {after:.0f} s per worker, above "
                        f"the target {s.target_backlog_seconds_per_worker:.0f} s; {state}"), memory
    longest = now - memory.idle_since[chosen[0]]
    return Decision(f"idle for {longest:.0f} s; {state}", remove=chosen), dataclasses.replace(memory, last_down=now)


def _pressure(s: ScalingSettings, load: Load) -> str:
    """Why the load is too high, or "" when it is not. With a seconds target, the backlog's predicted seconds per
    worker replace its job count (many tiny jobs are little work); the CPU rule holds either way."""
    if load.by_seconds(s):
        if load.seconds_per_worker > s.target_backlog_seconds_per_worker:
            return (f"backlog {load.seconds_per_worker:.0f} s of work per worker above the target "
                    f"{s.target_backlog_seconds_per_worker:.0f} s")
    elif load.per_worker > s.scale_up.backlog_per_worker:
        return f"backlog per worker above {s.scale_up.backlog_per_worker}"
    if load.beats and load.cpu > s.scale_up.cpu_percent:
        return f"worker CPU {load.cpu:.0f} % above {s.scale_up.cpu_percent:.0f} %"
    return ""


def _observe(records: Mapping[str, NodeRecord], load: Load, memory: Memory, now: float) -> Memory:
    """Update the last heartbeat seen and the idle timer of each node from this load."""
    last_seen = dict(memory.last_seen)
    idle_since: dict[str, float] = {}
    for name in records:
        beats = [b for b in load.beats if b.node == name]
        if beats:
            last_seen[name] = max(last_seen.get(name, -math.inf), *(b.at for b in beats))
        if beats and all(b.state is WorkerState.IDLE for b in beats):
            idle_since[name] = memory.idle_since.get(name, now)
    return dataclasses.replace(memory, last_seen=last_seen, idle_since=idle_since)


def _lost(s: ScalingSettings, records: Mapping[str, NodeRecord], memory: Memory,
          now: float) -> tuple[tuple[str, str], ...]:
    lost = []
    for name, rec in records.items():
        if rec.state is not NodeState.ACTIVE:
            continue
        seen = max(rec.since, memory.last_seen.get(name, -math.inf))
        if now - seen > s.health.lost_after:
            lost.append((name, f"no heartbeat for {now - seen:.0f} s"))
    return tuple(lost)


def _can_start(s: ScalingSettings, rec: NodeRecord, now: float) -> bool:
    if rec.state is NodeState.REMOVED:
        return True
    return rec.state is NodeState.FAILED and now >= rec.since + retry_delay(s, rec.failures)


def _add(free: list[str], count: int, s: ScalingSettings, reason: str, memory: Memory,
         now: float) -> tuple[Decision, Memory]:
    chosen = tuple(free[:min(count, s.scale_up.max_step)])
    return Decision(reason, add=chosen), dataclasses.replace(memory, last_up=now)
