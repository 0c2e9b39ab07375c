"""The policy's hysteresis timers survive an orchestrator restart (kept in Redis beside the registry)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import redis
import yaml

from config import Settings
from config.scaling import load_scaling
from orchestrator.loop import Orchestrator
from orchestrator.policy import Memory, NodeState
from orchestrator.registry import Registry
from workers.protocol.keys import GROUP, Keys

pytestmark = pytest.mark.integration


def test_timers_round_trip(settings: Settings, r: redis.Redis) -> None:
    registry = Registry(r, Keys(settings.redis.prefix))
    assert registry.load_timers() == Memory()
    memory = Memory(pressure_since=10.5, idle_since={"a": 3.0}, last_seen={"a": 4.0}, last_up=7.0)
    registry.save_timers(memory)
    assert registry.load_timers() == memory and registry.load_timers().last_down == -math.inf
    r.set(registry.timers_key, "{not json")
    assert registry.load_timers() == Memory()


def test_a_restarted_orchestrator_keeps_its_timers_and_cooldown(settings: Settings, r: redis.Redis,
                                                                tmp_path: Path) -> None:
    keys = Keys(settings.redis.prefix)
    r.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    for number in range(5):  # a backlog no worker takes: pressure
        r.xadd(keys.jobs, {"n": number})
    (tmp_path / "kh").write_text("")
    nodes = [{"name": name, "host": "127.0.0.1", "port": 9, "key_file": str(tmp_path / "k"),
              "known_hosts": str(tmp_path / "kh"), "install_path": str(tmp_path / name)} for name in ("a", "b")]
    path = tmp_path / "scaling.yaml"
    path.write_text(yaml.safe_dump({"min_nodes": 0, "max_nodes": 2, "nodes": nodes, "health": {"retry_base": 900},
                                    "scale_up": {"backlog_per_worker": 1, "for_seconds": 10, "cooldown": 100}}))
    scaling = load_scaling(path)

    def one_pass(at: float) -> str:
        """A fresh orchestrator (a restart) for every pass, at a given time."""
        orchestrator = Orchestrator(settings, scaling, clock=lambda: at)
        decision = str(orchestrator.tick())
        orchestrator.wait_idle(timeout=30)  # a node that cannot be reached: failed, with the reason
        return decision

    assert one_pass(1000.0).startswith("hold: backlog per worker above 1.0 for 0 s of 10 s")
    assert one_pass(1011.0).startswith("add a: backlog per worker above 1.0 for 11 s")  # the pressure timer held
    assert Registry(r, keys).get("a").state is NodeState.FAILED
    assert one_pass(1020.0).startswith("hold: backlog per worker above 1.0; scale-up cooldown 91 s left")
    assert one_pass(1112.0).startswith("add b:")
