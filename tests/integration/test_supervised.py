"""The whole system under the real supervisord.conf: redis, web, two workers and the watchdog."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from typing import cast

import numpy as np
import pytest
import redis
from PIL import Image

from tests.helpers.images import encode, make_target, make_tiles, resemblance
from tests.helpers.nodes import Node, lay_out
from tests.helpers.processes import wait_until
from workers.cli import client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a whole node boots (supervisord)
PROGRAMS = {"redis", "keeper", "web", "webhooks", "worker:worker-0", "worker:worker-1", "watchdog", "orchestrator"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = lay_out(tmp_path_factory.mktemp("node"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


def running(node: Node) -> set[str]:
    return {name for name, (state, _pid) in node.processes().items() if state == "RUNNING"}


def test_supervisorctl_lists_every_program_running(node: Node) -> None:
    wait_until(lambda: running(node) == PROGRAMS, timeout=60, what="all programs RUNNING")


def test_redis_requires_a_user_and_the_default_user_is_off(node: Node) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=node.redis_port).ping()
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        redis.Redis(port=node.redis_port, password=node.password).ping()  # as `default`
    assert node.redis().ping()


def test_each_role_only_gets_what_it_needs(node: Node) -> None:
    wait_until(lambda: list(node.redis().scan_iter("tessera:worker:*")), timeout=30, what="a heartbeat")
    beat_key = next(node.redis().scan_iter("tessera:worker:*"))
    web = node.redis("web")
    assert web.ping()
    forbidden: Callable[[], object]
    for forbidden in (web.flushall, lambda: web.config_get("appendonly"), lambda: web.hgetall(beat_key),
                      lambda: web.xrange("tessera:dead"), lambda: web.keys("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    worker = node.redis("worker")
    assert worker.hgetall(beat_key)
    for forbidden in (worker.flushdb, lambda: worker.config_set("appendonly", "no"), lambda: worker.get("x")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    monitor = node.redis("monitor")  # /admin and /metrics: reads, never writes
    assert monitor.hgetall(beat_key) and monitor.xlen("tessera:dead") == 0
    for forbidden in (monitor.flushall, lambda: monitor.hset(beat_key, "state", "idle"),
                      lambda: monitor.delete(beat_key), lambda: monitor.xadd("tessera:jobs", {"id": "x"}),
                      lambda: monitor.eval("return 1", 0),
                      lambda: monitor.hincrby("tessera:stats", "done", 1), lambda: monitor.get("x")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    with pytest.raises(redis.exceptions.NoPermissionError):
        node.redis().flushall()  # not even the admin user


def test_a_job_goes_through_the_whole_loop(node: Node) -> None:
    target, tiles = make_target(), make_tiles(48)
    status, reply = client.submit(node.base_url, encode(target), [encode(t) for t in tiles],
                                  {"grid": "30x20", "tile_px": "8"})
    assert status == 202, reply
    view = client.wait_for(node.base_url, reply["status_url"], timeout=120)
    assert view["state"] == "done", view
    with urllib.request.urlopen(node.base_url + view["result_url"]) as got:
        mosaic = np.asarray(Image.open(got).convert("RGB"))
    assert mosaic.shape == (160, 240, 3)
    error, random_error = resemblance(mosaic, target, tiles, cols=30, rows=20)
    assert error < 0.4 * random_error, (error, random_error)
    assert (node.media / f"{reply['id']}.jpg").is_file()


def test_a_worker_restarted_by_supervisorctl_comes_back(node: Node) -> None:
    assert node.ctl("restart", "worker:worker-1").returncode == 0
    wait_until(lambda: "worker:worker-1" in running(node), timeout=60, what="worker-1 back")


def test_tessera_status_shows_workers_queue_and_last_jobs(node: Node) -> None:
    import subprocess

    def both_ready() -> bool:
        beats = [cast(str, node.redis().hget(key, "state")) for key in node.redis().scan_iter("tessera:worker:*")]
        return sorted(beats) == ["idle", "idle"]

    wait_until(both_ready, timeout=60, what="two idle workers")
    out = subprocess.run([str(node.here / ".venv/bin/tessera"), "--config", "config/local.yaml", "status"],
                         cwd=node.here, capture_output=True, text=True, timeout=30).stdout
    assert "queue   inbox 0  length" in out and "dead 0" in out
    assert out.count(" idle ") + out.count(" busy ") == 2, out
    assert "last jobs" in out and " done " in out  # the job of the whole-loop test


def test_operators_get_metrics_the_admin_page_and_json_logs(node: Node) -> None:
    import base64
    import json

    with urllib.request.urlopen(node.base_url + "/metrics") as got:
        metrics = got.read().decode()
    assert "tessera_jobs_done_total" in metrics and "tessera_jobs_done_total 0.0" not in metrics  # the loop's job
    assert "tessera_workers{node=" in metrics
    token = base64.b64encode(f"admin:{node.password}-page".encode()).decode()
    request = urllib.request.Request(node.base_url + "/admin", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request) as got:
        assert got.status == 200 and "Operations" in got.read().decode()
    for program in ("web", "worker-0"):
        lines = [line for line in node.log(program).splitlines() if line.startswith("{")]
        assert lines and all(json.loads(line)["component"] in ("web", "worker") for line in lines), program


def test_control_socket_is_private_and_secrets_stay_out_of_logs(node: Node) -> None:
    import stat

    conf = (node.here / "supervisord.conf").read_text()
    assert "[inet_http_server]" not in conf
    socket_mode = stat.S_IMODE((node.here / "var" / "supervisor.sock").stat().st_mode)
    assert socket_mode & 0o077 == 0, oct(socket_mode)
    logs = "".join(path.read_text(errors="replace") for path in (node.here / "var" / "log").glob("*.log"))
    assert logs and node.password not in logs
    assert oct(stat.S_IMODE((node.here / "var" / "redis" / "redis.conf").stat().st_mode)) == "0o600"
