"""The pure scaling policy with a seconds target (target_backlog_seconds_per_worker): scale on work, not job count."""

from __future__ import annotations

import dataclasses

from config.scaling import NodeSpec, ScaleDown, ScaleUp, ScalingSettings
from orchestrator.policy import Beat, Decision, Load, Memory, NodeRecord, NodeState, decide
from workers.protocol.states import WorkerState

NAMES = ("a", "b", "c")
TARGET = 60.0


def settings(**changes: object) -> ScalingSettings:
    nodes = tuple(NodeSpec(name=n, host="h", key_file="k", known_hosts="kh", workers=2) for n in NAMES)
    base = ScalingSettings(interval=1, min_nodes=1, max_nodes=3, nodes=nodes, target_backlog_seconds_per_worker=TARGET,
                           scale_up=ScaleUp(backlog_per_worker=4, cpu_percent=90, for_seconds=10, max_step=1,
                                            cooldown=20),
                           scale_down=ScaleDown(idle_seconds=30, backlog_per_worker=0.5, cooldown=30))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def beats(nodes: dict[str, WorkerState], now: float) -> tuple[Beat, ...]:
    return tuple(Beat(node=name, state=state, cpu=10.0, at=now) for name, state in nodes.items() for _ in range(2))


def run(s: ScalingSettings, up: tuple[str, ...], backlog: int, seconds: float | None, state: WorkerState,
        steps: int = 40) -> list[Decision]:
    """``steps`` decisions, one a second, under a steady load on the ``up`` nodes (active since long ago; added
    nodes stay starting, without heartbeats)."""
    records = {name: NodeRecord(name, NodeState.ACTIVE, -1000.0) for name in up}
    memory, out = Memory(), []
    for t in range(steps):
        load = Load(backlog=backlog, beats=beats(dict.fromkeys(up, state), t), backlog_seconds=seconds)
        decision, memory = decide(s, load, records, memory, float(t))
        records.update({name: NodeRecord(name, NodeState.STARTING, float(t)) for name in decision.add})
        out.append(decision)
    return out


def adds(decisions: list[Decision]) -> list[tuple[str, ...]]:
    return [d.add for d in decisions if d.add]


def removes(decisions: list[Decision]) -> list[tuple[str, ...]]:
    return [d.remove for d in decisions if d.remove]


def test_many_tiny_jobs_do_not_scale_up_on_seconds() -> None:
    decisions = run(settings(), ("a",), backlog=400, seconds=40.0, state=WorkerState.BUSY)  # 200 jobs per worker
    assert adds(decisions) == []
    assert "20 s per worker" in decisions[-1].reason  # the figure it held on
    # the same load without a target scales up on the job count, as before
    assert adds(run(settings(target_backlog_seconds_per_worker=0.0), ("a",), 400, 40.0, WorkerState.BUSY))[0] == ("b",)


def test_few_huge_jobs_scale_up() -> None:
    decisions = run(settings(), ("a",), backlog=2, seconds=3000.0, state=WorkerState.BUSY)  # 1 job per worker
    assert adds(decisions) == [("b",), ("c",)]  # one per cooldown: the starting node has no workers yet
    reason = next(d.reason for d in decisions if d.add)
    assert "1500 s of work per worker above the target 60 s" in reason
    # without a target one job per worker is no pressure
    assert adds(run(settings(target_backlog_seconds_per_worker=0.0), ("a",), 2, 3000.0, WorkerState.BUSY)) == []


def test_seconds_pressure_waits_for_the_hysteresis_timer() -> None:
    decisions = run(settings(), ("a",), backlog=2, seconds=3000.0, state=WorkerState.BUSY, steps=10)
    assert adds(decisions) == []
    assert "for 9 s of 10 s" in decisions[-1].reason


def test_no_scale_down_while_the_rest_would_be_above_target() -> None:
    # 4 workers, 200 s: 50 s each now (not pressure), 100 s each without one node: hold
    decisions = run(settings(), ("a", "b"), backlog=1, seconds=200.0, state=WorkerState.IDLE)
    assert removes(decisions) == []
    assert "without a the backlog would be 100 s per worker, above the target 60 s" in decisions[-1].reason


def test_scale_down_when_the_rest_stays_below_target() -> None:
    decisions = run(settings(), ("a", "b"), backlog=30, seconds=100.0, state=WorkerState.IDLE)  # many tiny jobs
    assert removes(decisions) == [("a",)]  # 50 s per worker after: fine, though 30 jobs would hold by count


def test_unknown_seconds_fall_back_to_job_counts() -> None:
    assert adds(run(settings(), ("a",), backlog=400, seconds=None, state=WorkerState.BUSY))[0] == ("b",)


def test_no_workers_and_seconds_of_work_is_pressure() -> None:
    s = settings(min_nodes=0)
    records = {name: NodeRecord(name) for name in NAMES}
    memory, added = Memory(), list[str]()
    for t in range(12):
        decision, memory = decide(s, Load(backlog=1, backlog_seconds=5.0), records, memory, float(t))
        added += decision.add
    assert added == ["a"]  # no worker at all and some work: pressure, after the hysteresis timer
