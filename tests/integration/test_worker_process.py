"""The worker as a real process: `tessera worker`, stopped with real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import encode, make_target, make_tiles, stop_process, wait_until
from webapp import WebServer

from workers.cli import client

pytestmark = pytest.mark.integration


class _SlowHandler(SimpleHTTPRequestHandler):
    """Each tile takes a while, so a job is still running when the signal arrives."""

    def do_GET(self) -> None:
        time.sleep(0.4)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_tiles(tmp_path: Path) -> Iterator[list[str]]:
    folder = tmp_path / "slow"
    folder.mkdir()
    for number, tile in enumerate(make_tiles(24)):
        (folder / f"t{number}.png").write_bytes(encode(tile))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_SlowHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}/t{n}.png" for n in range(24)]
    server.shutdown()
    server.server_close()


def start_worker(web: WebServer, log: Path) -> subprocess.Popen[bytes]:
    s = web.settings
    env = {**os.environ, "TESSERA_REDIS_URL": s.redis.url, "TESSERA_REDIS_PASSWORD": s.redis.password,
           "TESSERA_REDIS_PREFIX": s.redis.prefix, "TESSERA_PATHS_ROOT": s.paths.root,
           "TESSERA_WEB_SIGNING_KEY": "unused", "TESSERA_WEB_PUBLIC_URL": s.web.public_url,
           "TESSERA_FETCH_ALLOW_HOSTS": "127.0.0.1", "TESSERA_CONFIG": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "workers", "worker", "--slot", "5"], env=env, cwd=log.parent,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_until(lambda: "ready" in log.read_text(), timeout=120, what="worker warmed up")
    return process


def test_sigterm_mid_job_finishes_the_job_then_exits_0(web: WebServer, slow_tiles: list[str],
                                                        tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    process = start_worker(web, log)
    try:
        status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"}, tile_urls=slow_tiles)
        assert status == 202
        url = web.base_url + reply["status_url"]
        wait_until(lambda: client.request(url)[1]["state"] == "running", timeout=30, what="job running")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
        view = client.request(url)[1]
        assert view["state"] == "done", view
    finally:
        stop_process(process)


def test_sigterm_while_idle_exits_at_once(web: WebServer, tmp_path: Path) -> None:
    process = start_worker(web, tmp_path / "worker.log")
    try:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        stop_process(process)
