"""The pure scaling policy on scripted load traces: a ramp, a spike, a drop to zero, flapping load, an outage."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from config.scaling import NodeSpec, ScaleDown, ScaleUp, ScalingSettings
from orchestrator.policy import Beat, Decision, Load, Memory, NodeRecord, NodeState, decide, retry_delay
from workers.protocol.states import WorkerState

NAMES = ("a", "b", "c", "d")


def settings(**changes: object) -> ScalingSettings:
    nodes = tuple(NodeSpec(name=n, host="h", key_file="k", known_hosts="kh", workers=2) for n in NAMES)
    base = ScalingSettings(interval=1, min_nodes=1, max_nodes=4, nodes=nodes,
                           scale_up=ScaleUp(backlog_per_worker=4, cpu_percent=90, for_seconds=10, max_step=1,
                                            cooldown=20),
                           scale_down=ScaleDown(idle_seconds=30, backlog_per_worker=0.5, cooldown=30))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Cluster:
    """A simulated fleet: nodes start after ``start_delay`` seconds; each worker is busy while there is backlog."""

    s: ScalingSettings
    start_delay: float = 5.0
    records: dict[str, NodeRecord] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    log: list[tuple[float, Decision]] = field(default_factory=list)

    def up(self) -> list[str]:
        return [n for n, r in self.records.items() if r.state in (NodeState.STARTING, NodeState.ACTIVE)]

    def active(self) -> list[str]:
        return [n for n, r in self.records.items() if r.state is NodeState.ACTIVE]

    def load(self, backlog: int, now: float, cpu: float = 10.0) -> Load:
        beats = []
        busy = backlog
        for name in self.active():
            for _ in range(self.s.node(name).workers):
                beats.append(Beat(node=name, state=WorkerState.BUSY if busy > 0 else WorkerState.IDLE, cpu=cpu, at=now))
                busy -= 1
        return Load(backlog=backlog, beats=tuple(beats))

    def step(self, now: float, load: Load | None) -> Decision:
        for name, rec in list(self.records.items()):
            if rec.state is NodeState.STARTING and now - rec.since >= self.start_delay:
                self.records[name] = NodeRecord(name, NodeState.ACTIVE, now)
        decision, self.memory = decide(self.s, load, self.records, self.memory, now)
        for name in decision.add:
            self.records[name] = NodeRecord(name, NodeState.STARTING, now)
        for name in decision.remove:
            self.records[name] = NodeRecord(name, NodeState.REMOVED, now)
        for name, reason in decision.fail:
            old = self.records[name]
            self.records[name] = NodeRecord(name, NodeState.FAILED, now, reason, old.failures + 1)
        if decision.action != "hold":
            self.log.append((now, decision))
        return decision

    def run(self, seconds: int, backlog: Callable[[float], int], start: float = 0.0) -> list[int]:
        """One step per second; the number of nodes up after each step."""
        sizes = []
        for t in range(int(start), int(start) + seconds):
            self.step(t, self.load(backlog(t), t))
            sizes.append(len(self.up()))
        return sizes


def warm(s: ScalingSettings) -> Cluster:
    """A cluster that has reached min_nodes under no load."""
    cluster = Cluster(s)
    cluster.run(40, lambda t: 0)
    assert len(cluster.active()) == s.min_nodes
    cluster.log.clear()
    return cluster


def test_starts_min_nodes_without_any_load() -> None:
    cluster = Cluster(settings(min_nodes=2))
    cluster.run(3, lambda t: 0)
    assert len(cluster.up()) == 2
    assert all("below min_nodes" in d.reason for _, d in cluster.log)


def test_ramp_adds_one_node_per_cooldown_up_to_max() -> None:
    cluster = warm(settings())
    sizes = cluster.run(200, lambda t: int(t - 40) * 2, start=40)  # backlog grows 2 jobs a second
    adds = [(t, d.add) for t, d in cluster.log if d.add]
    assert [names for _, names in adds] == [("b",), ("c",), ("d",)]
    times = [t for t, _ in adds]
    assert all(later - earlier >= 20 for earlier, later in zip(times, times[1:], strict=False))
    assert max(sizes) == 4 and sizes[-1] == 4  # never above max_nodes
    assert "backlog per worker above 4" in cluster.log[0][1].reason


def test_short_spike_is_ignored_and_long_spike_scales() -> None:
    cluster = warm(settings())
    cluster.run(8, lambda t: 100, start=40)  # shorter than for_seconds
    cluster.run(30, lambda t: 0, start=48)
    assert not [d for _, d in cluster.log if d.add]
    cluster.run(15, lambda t: 100, start=78)
    assert [d.add for _, d in cluster.log if d.add] == [("b",)]


def test_drop_to_zero_removes_idle_nodes_down_to_min_one_per_cooldown() -> None:
    cluster = warm(settings())
    cluster.run(120, lambda t: 200, start=40)
    assert len(cluster.up()) == 4
    cluster.log.clear()
    sizes = cluster.run(300, lambda t: 0, start=160)
    removes = [(t, d.remove) for t, d in cluster.log if d.remove]
    assert len(removes) == 3 and sizes[-1] == 1
    first = removes[0][0]
    assert first - 160 >= 30  # only after idle_seconds
    assert all(b - a >= 30 for (a, _), (b, _) in zip(removes, removes[1:], strict=False))
    assert "idle for" in cluster.log[0][1].reason


def test_flapping_load_does_not_flap_nodes() -> None:
    cluster = warm(settings())
    cluster.run(400, lambda t: 60 if (t // 7) % 2 else 0, start=40)  # 7 s on, 7 s off, forever
    assert not cluster.log  # never hot for for_seconds in a row, never idle for idle_seconds


def test_metrics_outage_never_scales_down() -> None:
    cluster = warm(settings())
    cluster.run(100, lambda t: 200, start=40)
    up = len(cluster.up())
    cluster.log.clear()
    for t in range(140, 500):
        decision = cluster.step(t, None)
        assert decision.action == "hold" and "metrics unavailable" in decision.reason
    assert len(cluster.up()) == up
    # metrics back and idle: the idle timer starts again from zero
    cluster.run(29, lambda t: 0, start=500)
    assert not cluster.log


def test_node_without_heartbeats_is_never_idle_and_is_failed_when_lost() -> None:
    s = settings(min_nodes=1, max_nodes=2)
    cluster = warm(s)
    cluster.run(60, lambda t: 200, start=40)
    assert len(cluster.active()) == 2
    cluster.log.clear()
    # node b goes silent: no beats from it
    for t in range(100, 140):
        load = cluster.load(0, t)
        load = Load(backlog=0, beats=tuple(b for b in load.beats if b.node != "b"))
        decision = cluster.step(t, load)
        assert "b" not in decision.remove
    fails = [d for _, d in cluster.log if d.fail]
    assert fails and fails[0].fail[0][0] == "b" and "no heartbeat" in fails[0].fail[0][1]
    assert cluster.records["b"].state is NodeState.FAILED


def test_failed_node_is_retried_with_backoff() -> None:
    s = settings(min_nodes=1, max_nodes=1)
    records = {"a": NodeRecord("a", NodeState.FAILED, since=100.0, reason="timed out", failures=2),
               "b": NodeRecord("b", NodeState.FAILED, since=100.0, reason="auth", failures=5)}
    s2 = dataclasses.replace(s, nodes=s.nodes[:2])
    delay = retry_delay(s2, 2)
    decision, _ = decide(s2, Load(0), records, Memory(), 100.0 + delay - 1)
    assert decision.action == "hold"
    decision, _ = decide(s2, Load(0), records, Memory(), 100.0 + delay)
    assert decision.add == ("a",)
    assert retry_delay(s2, 50) == s2.health.retry_cap


def test_cpu_pressure_scales_up() -> None:
    cluster = warm(settings())
    for t in range(40, 60):
        cluster.step(t, cluster.load(1, t, cpu=150.0))
    adds = [d for _, d in cluster.log if d.add]
    assert adds and "CPU" in adds[0].reason


def test_no_workers_and_a_backlog_is_pressure() -> None:
    s = settings(min_nodes=0)
    decision, memory = decide(s, Load(backlog=3), {}, Memory(), 0.0)
    assert decision.action == "hold" and "for 0 s" in decision.reason
    decision, _ = decide(s, Load(backlog=3), {}, memory, 10.0)
    assert decision.add == ("a",)
    assert str(decision).startswith("add a: backlog per worker above 4")


def test_above_max_removes_idle_first() -> None:
    s = settings(min_nodes=0, max_nodes=1)
    records = {n: NodeRecord(n, NodeState.ACTIVE, 0.0) for n in ("a", "b")}
    load = Load(backlog=0, beats=(Beat("a", WorkerState.BUSY), Beat("b", WorkerState.IDLE)))
    decision, _ = decide(s, load, records, Memory(), 5.0)
    assert decision.remove == ("b",) and "above max_nodes" in decision.reason
