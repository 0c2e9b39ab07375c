"""The whole system under the real supervisord.conf: redis, web and two workers on free ports."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis
from PIL import Image
from support import encode, free_port, make_target, make_tiles, resemblance, stop_process, wait_until

from workers import client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {"redis", "web", "worker:worker-0", "worker:worker-1", "watchdog"}


@dataclass(frozen=True)
class Node:
    here: Path
    base_url: str
    redis_port: int
    password: str

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", str(self.here / "supervisord.conf"),
                               *args], capture_output=True, text=True, timeout=60)


def _lay_out(here: Path) -> Node:
    """The real supervisord.conf in a folder of its own: %(here)s points there, ports are free ones."""
    shutil.copy(ROOT / "supervisord.conf", here / "supervisord.conf")
    (here / ".venv").symlink_to(ROOT / ".venv")
    (here / "var" / "log").mkdir(parents=True)
    (here / "config").mkdir()
    redis_port, web_port, password = free_port(), free_port(), secrets.token_urlsafe(16)
    (here / "config" / "local.yaml").write_text(
        f'redis:\n  url: redis://127.0.0.1:{redis_port}/0\n  password: "{password}"\n'
        f'web:\n  port: {web_port}\n  public_url: http://127.0.0.1:{web_port}\n  signing_key: "{password}-sign"\n'
    )
    return Node(here=here, base_url=f"http://127.0.0.1:{web_port}", redis_port=redis_port, password=password)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = _lay_out(tmp_path_factory.mktemp("node"))
    process = subprocess.Popen([str(ROOT / ".venv/bin/supervisord"), "-n", "-c", str(node.here / "supervisord.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client.wait_healthy(node.base_url, timeout=60)
        yield node
    finally:
        node.ctl("shutdown")
        try:
            process.wait(timeout=60)
        finally:
            stop_process(process)


def running(node: Node) -> set[str]:
    lines = node.ctl("status").stdout.splitlines()
    return {line.split()[0] for line in lines if " RUNNING " in line}


def test_supervisorctl_lists_every_program_running(node: Node) -> None:
    wait_until(lambda: running(node) == PROGRAMS, timeout=60, what="all programs RUNNING")


def test_redis_requires_the_password(node: Node) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=node.redis_port).ping()
    assert redis.Redis(port=node.redis_port, password=node.password).ping()


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
    assert (node.here / "var" / "media" / f"{reply['id']}.jpg").is_file()


def test_a_worker_killed_by_supervisorctl_comes_back(node: Node) -> None:
    assert node.ctl("restart", "worker:worker-1").returncode == 0
    wait_until(lambda: "worker:worker-1" in running(node), timeout=60, what="worker-1 back")
