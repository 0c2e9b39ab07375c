"""The orchestrator against real sshd nodes: a burst scales min → max → min; a node killed mid-run.

With network namespaces the node is killed by cutting its link (its processes live on, cut off); on
loopback ports by stopping its sshd and every process it started.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator import nodekeys
from orchestrator.policy import NodeState
from tests.helpers.cluster import Cluster, ClusterFactory
from tests.helpers.http import TileServers
from tests.helpers.processes import wait_until
from tests.helpers.sshd import kill_tree
from workers.protocol import queue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # the first test may provision the nodes


def most_up(events: list[dict[str, object]]) -> int:
    """The most nodes starting or active at once, replayed from the registry's events."""
    up: set[str] = set()
    most = 0
    for event in events:
        (up.add if event["state"] in ("starting", "active") else up.discard)(str(event["node"]))
        most = max(most, len(up))
    return most


def test_a_burst_scales_from_min_to_max_and_back(cluster: ClusterFactory) -> None:
    c = cluster(names=("a", "b", "c"), min_nodes=1, max_nodes=3,
                scale_up={"backlog_per_worker": 2, "for_seconds": 1, "cooldown": 1, "max_step": 1},
                scale_down={"idle_seconds": 4, "backlog_per_worker": 0.5, "cooldown": 2, "drain_timeout": 60})
    c.start_orchestrator()
    c.wait_state("a", NodeState.ACTIVE, timeout=120)
    burst = time.time()
    ids = c.submit(60, grid="120x80")
    jobs = c.wait_final(ids, timeout=240)
    assert [j.get("state") for j in jobs.values()] == ["done"] * len(ids), jobs
    wait_until(lambda: len(c.up()) == 1 and all(c.state(n) is not NodeState.DRAINING for n in "abc"),
               timeout=90, what="back to min_nodes", interval=0.5)
    events = c.registry().events()
    print(f"\nscale-up/scale-down timeline (seconds from the burst of {len(ids)} jobs; "
          f"{'namespaces' if c.network.namespaced else 'loopback ports'}):")
    last = max(float(j["finished_at"]) for j in jobs.values()) - burst
    print("\n".join(sorted([*c.timeline(since=burst), f"{last:+7.1f} s  all {len(ids)} jobs done"],
                           key=lambda line: float(line.split()[0]))))
    assert most_up(events) == 3
    assert len([e for e in events if e["state"] == "removed"]) == 2  # back to min_nodes by draining two
    nodes = {j["worker"].rsplit("-", 1)[0] for j in jobs.values()}
    assert len(nodes) >= 2, nodes  # the new nodes took part
    assert all(int(j.get("deliveries", "1")) == 1 for j in jobs.values())  # draining lost and redid nothing
    assert not any(e["state"] == "failed" for e in events)
    keys = Path(c.settings.results.authorized_keys).read_text()
    assert nodekeys.nodes_in(keys) == c.up()  # the two drained nodes took their results keys with them


def test_a_node_killed_mid_run_is_failed_and_its_jobs_finish_elsewhere(cluster: ClusterFactory,
                                                                       tmp_path: Path) -> None:
    c = cluster(names=("a", "b"), min_nodes=2, max_nodes=2)
    c.start_orchestrator()
    c.wait_state("a", NodeState.ACTIVE, timeout=120)
    c.wait_state("b", NodeState.ACTIVE, timeout=120)
    with TileServers(tmp_path, host=c.network.host) as slow:
        _kill_b_mid_run(c, c.submit(12, tile_urls=slow.serve(1.5, 8)))


def _kill_b_mid_run(c: Cluster, ids: list[str]) -> None:
    held: list[str] = []

    def b_is_busy() -> bool:
        held[:] = [w["job"] for w in queue.heartbeats(c.r, c.keys) if w.get("node") == "b" and w.get("job")]
        return bool(held)

    wait_until(b_is_busy, timeout=60, what="node b running a job", interval=0.05)
    if c.network.namespaced:
        c.network.cut("b")  # the cable pulled: b's workers run on, cut off from Redis and the web host
    else:
        c.servers["b"].stop()  # the machine goes away: its sshd and every process on it
        assert kill_tree(c.install("b") / "var" / "supervisord.pid")
    jobs = c.wait_final(ids, timeout=180)
    assert [j.get("state") for j in jobs.values()] == ["done"] * len(ids)
    assert jobs[held[0]]["worker"].startswith("a-"), jobs[held[0]]  # reclaimed by the other node
    c.wait_state("b", NodeState.FAILED, timeout=60)
    record = c.registry().get("b")
    assert "no heartbeat" in record.reason, record
    keys = Path(c.settings.results.authorized_keys)  # given up on: its results key is taken out, a's kept
    wait_until(lambda: "b" not in nodekeys.nodes_in(keys.read_text()), timeout=60, what="b's results key revoked")
    assert nodekeys.nodes_in(keys.read_text()) == ["a"]
    if c.network.namespaced:  # cut off, not dead: the teardown kills what runs there, by PID
        assert c.network.pids("b")
    print("\n" + "\n".join(c.timeline()))
    assert json.dumps(record.reason)
