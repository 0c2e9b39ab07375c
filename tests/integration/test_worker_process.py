"""The worker as a real process: `tessera worker`, stopped with real signals."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.web import WebServer
from tests.helpers.worker import start_worker
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
