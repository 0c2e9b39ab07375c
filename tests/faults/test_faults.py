# ruff: noqa: F811  (pytest fixtures imported from tests.helpers.faults are parameters here)
"""Real faults against a real node (supervisord, redis-server with appendonly, web, workers, watchdog).

Each test keeps a ledger (deliveries and final state per job, result files and hashes,
completion notes) and asserts from it; each prints one summary line for the record.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import cast

import pytest

from tests.helpers.faults import Ledger, make_node, submit, tile_server  # noqa: F401  (fixtures used by name)
from tests.helpers.http import Hang
from tests.helpers.nodes import Node, wait_all_final
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.redis import start_redis
from workers.cli import client

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]  # a node boots, then each fault takes minutes
NodeFactory = Callable[..., Node]
TileServer = Callable[..., list[str]]


def busy_workers(node: Node) -> dict[str, int]:
    """job id → pid of the worker holding it, from the heartbeats, for this node's live workers only."""
    r, live = node.redis(), set(node.worker_pids().values())
    held = {}
    for key in r.scan_iter(match="tessera:worker:*"):
        beat = cast(dict[str, str], r.hgetall(key))
        if beat.get("job") and int(beat.get("pid", 0)) in live:
            held[beat["job"]] = int(beat["pid"])
    return held


def _gone(node: Node, pid: int) -> bool:
    return pid not in node.worker_pids().values()


def report(name: str, line: str) -> None:
    print(f"\nFAULT {name}: {line}")


def test_sigkill_busy_workers_loses_and_duplicates_nothing(make_node: NodeFactory, tile_server: TileServer) -> None:
    node = make_node()
    jobs = submit(node, tile_server(0.2, 8), count=200)  # ~0.2 s a job: ~20 s of work for 2 workers
    started, kills, rng = time.monotonic(), 0, random.Random(7)
    while time.monotonic() - started < 150:
        states = [node.redis().hget(f"tessera:job:{job}", "state") for job in jobs]
        if all(s in ("done", "failed") for s in states):
            break
        held = busy_workers(node)
        if held:
            os.kill(rng.choice(sorted(held.values())), signal.SIGKILL)
            kills += 1
        time.sleep(2)
    ledger = Ledger.read(node, jobs, timeout=120)
    report("sigkill", ledger.table(kills, time.monotonic() - started))
    assert kills >= 3
    ledger.assert_exactly_once_effects()
    assert any(d > 1 for d in ledger.deliveries.values())  # some jobs really were re-run


def test_redis_outage_no_worker_exits_web_answers_503(make_node: NodeFactory, tile_server: TileServer) -> None:
    node = make_node()
    tiles = tile_server(0.2, 8)
    jobs = submit(node, tiles, count=30)
    wait_until(lambda: sum(node.redis().hget(f"tessera:job:{j}", "state") == "done" for j in jobs) >= 3,
               timeout=60, what="first jobs done")
    pids = node.worker_pids()
    started = time.monotonic()
    assert node.ctl("stop", "redis").returncode == 0
    seen: set[int] = set()
    api: dict[str, set[int]] = {"GET": set(), "POST": set()}  # the job API's own answers, /healthz apart
    while time.monotonic() - started < 20:
        seen.add(client.request(node.base_url + "/healthz")[0])
        api["GET"].add(client.request(node.base_url + f"/api/mosaics/{jobs[-1]}")[0])
        body = json.dumps({"target_url": tiles[0], "tile_urls": tiles}).encode()
        api["POST"].add(client.request(node.base_url + "/api/mosaics", body, "application/json")[0])
        time.sleep(1)
    seen |= api["GET"] | api["POST"]
    assert node.ctl("start", "redis").returncode == 0
    ledger = Ledger.read(node, jobs, timeout=120)
    report("redis-outage", ledger.table(1, time.monotonic() - started)
           + f" http_seen={sorted(seen)} get={sorted(api['GET'])} post={sorted(api['POST'])}")
    ledger.assert_exactly_once_effects()
    assert node.worker_pids() == pids  # no worker exited or was restarted
    assert 503 in api["GET"] and 503 in api["POST"], api  # the job API says "try again", not only /healthz
    assert 202 not in api["POST"] and 500 not in seen  # nothing accepted that could not be queued
    assert "redis unreachable" in node.log("worker-0") + node.log("worker-1")


def test_node_booted_while_redis_down_recovers_by_itself(make_node: NodeFactory, tile_server: TileServer,
                                                         tmp_path: pytest.TempPathFactory) -> None:
    node = make_node({"redis": {"embedded": False}}, start=False)
    node.start(wait_healthy=False)
    try:
        wait_until(lambda: all(node.processes().get(f"worker:worker-{n}", ("", 0))[0] == "FATAL" for n in (0, 1)),
                   timeout=90, what="workers FATAL while Redis is down")
        server = start_redis(node.here / "var" / "external-redis", port=node.redis_port, password=node.password,
                             appendonly=True, acl=node.redis_acl())
        back = time.monotonic()
        wait_until(lambda: len(node.worker_pids()) == 2, timeout=30, what="workers revived by the watchdog")
        revived_in = time.monotonic() - back
        jobs = submit(node, tile_server(0.0, 4), count=3)
        ledger = Ledger.read(node, jobs, timeout=60)
        report("boot-without-redis", ledger.table(2, revived_in) + f" revived_in={revived_in:.1f}s")
        ledger.assert_exactly_once_effects()
        assert "Redis answers again" in node.log("watchdog")
    finally:
        node.stop()
        if "server" in locals():
            stop_process(server.process)


def test_poison_job_is_dead_lettered_others_done(make_node: NodeFactory, tile_server: TileServer) -> None:
    node = make_node({"queue": {"max_deliveries": 3}})
    poison = submit(node, tile_server(3.0, 8), count=1)[0]
    others = submit(node, tile_server(0.0, 4), count=5)
    started, kills, seen = time.monotonic(), 0, 0
    while time.monotonic() - started < 120:
        job = cast(dict[str, str], node.redis().hgetall(f"tessera:job:{poison}"))
        if job.get("state") in ("done", "failed"):
            break
        if job.get("state") == "running" and int(job.get("deliveries", 0)) > seen:
            slot = job["worker"].rsplit("-", 1)[1]  # consumer <node>-<slot> runs as worker:worker-<slot>
            pid = node.processes().get(f"worker:worker-{slot}", ("", 0))[1]  # RUNNING or still STARTING
            if pid <= 0:
                time.sleep(0.05)  # no pid reported yet: never signal 0 (our own process group)
                continue
            seen = int(job["deliveries"])
            os.kill(pid, signal.SIGKILL)  # its worker dies every time it runs it
            kills += 1
            wait_until(partial(_gone, node, pid), timeout=10, what="killed worker gone")
        time.sleep(0.05)
    final = wait_all_final(node, [poison, *others], timeout=60)
    report("poison", f"jobs=6 faults={kills} poison={final[poison]['state']} deliveries={final[poison]['deliveries']}"
                     f" seconds={time.monotonic() - started:.1f}")
    assert final[poison]["state"] == "failed"
    assert "gave up after 3 deliveries" in final[poison]["error"]
    assert kills == 3
    assert all(final[job]["state"] == "done" for job in others)
    dead = cast(list[tuple[str, dict[str, str]]], node.redis().xrange("tessera:dead"))
    assert len(dead) == 1 and json.loads(dead[0][1]["package"])["id"] == poison
    out = node.here / ".venv/bin/tessera"
    listing = subprocess.run([str(out), "--config", "config/local.yaml", "dead"], cwd=node.here, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert poison in listing


def test_hung_worker_is_restarted_by_the_watchdog(make_node: NodeFactory, tile_server: TileServer) -> None:
    node = make_node()
    job = submit(node, tile_server(1.5, 8), count=1)[0]
    wait_until(lambda: job in busy_workers(node), timeout=30, what="job taken")
    pid = busy_workers(node)[job]
    os.kill(pid, signal.SIGSTOP)  # hung: holds the job, no heartbeat, no progress
    started = time.monotonic()
    try:
        wait_until(lambda: pid not in node.worker_pids().values(), timeout=60, what="hung worker replaced")
        replaced_in = time.monotonic() - started
        ledger = Ledger.read(node, [job], timeout=60)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    report("hung-worker", ledger.table(1, time.monotonic() - started) + f" replaced_in={replaced_in:.1f}s")
    ledger.assert_exactly_once_effects()
    assert "heartbeat" in node.log("watchdog") and "KILL" in node.log("watchdog")


def test_worker_stuck_with_a_live_heartbeat_loses_its_job_and_is_restarted(make_node: NodeFactory,
                                                                           tile_server: TileServer) -> None:
    """The main thread blocked in a tile read (headers came, the body never does) while the heartbeat thread
    beats on: the claim must go stale (claim_stall) so another worker builds the job, and the watchdog must
    restart the stuck one for its lack of progress (hang_timeout), not for a stale heartbeat."""
    node = make_node({"queue": {"claim_idle": 2.0, "claim_stall": 3.0},
                      "watchdog": {"hang_timeout": 10.0},
                      "fetch": {"timeout": 300.0, "total_timeout": 600.0}})  # the fetch itself never gives up
    hang = Hang()
    job = submit(node, tile_server(0.0, 8, hang), count=1)[0]
    assert hang.hanging.wait(timeout=60), "the worker never asked for the hanging tile"
    wait_until(lambda: job in busy_workers(node), timeout=10, what="job held")
    stuck, started, beats = busy_workers(node)[job], time.monotonic(), set()
    r = node.redis()
    while stuck in node.worker_pids().values() and time.monotonic() - started < 60:
        for key in r.scan_iter(match="tessera:worker:*"):
            beat = cast(dict[str, str], r.hgetall(key))
            if beat.get("pid") == str(stuck) and time.time() - float(beat.get("at", 0)) < 2.0:
                beats.add(beat["at"])  # a fresh beat: the heartbeat thread is alive while the main thread hangs
        time.sleep(0.25)
    replaced_in = time.monotonic() - started
    hang.release.set()
    ledger = Ledger.read(node, [job], timeout=60)
    report("stuck-live-heartbeat", ledger.table(1, time.monotonic() - started)
           + f" replaced_in={replaced_in:.1f}s fresh_beats={len(beats)}")
    assert stuck not in node.worker_pids().values(), "the stuck worker was never restarted"
    assert len(beats) >= 5  # the heartbeat really lived on: this is not the frozen-process case
    ledger.assert_exactly_once_effects()
    assert ledger.deliveries[job] == 2  # taken from the stuck worker once, built by another
    watchdog = node.log("watchdog")
    assert f"job {job} made no progress" in watchdog and "KILL" in watchdog, watchdog[-2000:]


def test_long_job_keeps_its_claim_and_runs_once(make_node: NodeFactory, tile_server: TileServer) -> None:
    node = make_node({"queue": {"claim_idle": 2.0}})
    started = time.monotonic()
    job = submit(node, tile_server(2.5, 24), count=1)[0]  # 3 rounds of 8 parallel fetches: ~7.5 s > 3 x claim_idle
    ledger = Ledger.read(node, [job], timeout=90)
    seconds = time.monotonic() - started
    report("long-job", ledger.table(0, seconds))
    assert seconds > 6
    ledger.assert_exactly_once_effects()
    assert ledger.deliveries[job] == 1


def _keeper(node: Node) -> int:
    """The keeper's pid while supervisord shows it RUNNING, else 0."""
    state, pid = node.processes().get("keeper", ("", 0))
    return pid if state == "RUNNING" else 0


def _restarted(node: Node, killed: int) -> bool:
    return _keeper(node) not in (0, killed)


def test_sigkill_of_the_keeper_loses_and_duplicates_no_submitted_job(make_node: NodeFactory,
                                                                     tile_server: TileServer) -> None:
    """The stream's one writer killed again and again, with jobs submitted while it is down: each is admitted
    once when supervisord has it back (ids wait on the inbox, or on `admitting` if it died in between)."""
    node = make_node()
    urls, jobs, kills, started = tile_server(0.05, 4), [], 0, time.monotonic()
    for _round in range(4):
        jobs += submit(node, urls, count=8)
        wait_until(lambda: _keeper(node) != 0, timeout=30, what="the keeper RUNNING")
        pid = _keeper(node)
        os.kill(pid, signal.SIGKILL)
        kills += 1
        jobs += submit(node, urls, count=8)  # while no keeper runs: the web still answers 202
        wait_until(partial(_restarted, node, pid), timeout=60, what="supervisord to start the keeper again")
    ledger = Ledger.read(node, jobs, timeout=180)
    report("keeper-sigkill", ledger.table(kills, time.monotonic() - started))
    ledger.assert_exactly_once_effects()
    r = node.redis()
    assert not r.exists("tessera:inbox", "tessera:inbox:admitting")
    wait_until(lambda: r.xlen("tessera:jobs") == 0, timeout=30, what="the keeper to trim every acked entry")
