"""Transient tile failures through a real loopback HTTP server: retried inside the build, never skipped.

A tile server that answers 503 once per URL (a web host restarting) must not cost the job its tiles; one that
keeps answering 503 sends the job back to the queue; a 404 or a page that is not a picture is still a skip.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

from config import Settings
from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer
from workers.cli import client
from workers.inputs.fetch import Fetcher
from workers.pipeline.mosaic import build_mosaic
from workers.protocol.errors import FetchFailed, TransientError
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration

TILES = 30


class _Flaky(SimpleHTTPRequestHandler):
    """Static files; each tile ``/t<n>.png`` answers 503 its first ``failures`` times (other paths never do)."""

    failures: ClassVar[float] = 1
    delay: ClassVar[float] = 0.0
    lock: ClassVar[threading.Lock]
    seen: ClassVar[dict[str, int]]
    busy: ClassVar[list[int]]
    """[now, most]: second or later requests of a path in progress, and the most of them at once."""

    def do_GET(self) -> None:
        with self.lock:
            count = self.seen[self.path] = self.seen.get(self.path, 0) + 1
            again = count > 1
            if again:
                self.busy[0] += 1
                self.busy[1] = max(self.busy)
        try:
            time.sleep(self.delay)
            if re.fullmatch(r"/t\d+\.png", self.path) and count <= self.failures:
                self.send_error(503, "restarting")
                return
            super().do_GET()
        finally:
            if again:
                with self.lock:
                    self.busy[0] -= 1

    def log_message(self, format: str, *args: object) -> None:
        pass


class FlakyServer:
    def __init__(self, folder: Path, failures: float, delay: float = 0.0) -> None:
        for number, tile in enumerate(make_tiles(TILES)):
            (folder / f"t{number}.png").write_bytes(encode(tile))
        (folder / "target.png").write_bytes(encode(make_target()))
        (folder / "page.png").write_bytes(b"<html>not a picture</html>")
        fields = {"failures": failures, "delay": delay, "lock": threading.Lock(), "seen": {}, "busy": [0, 0]}
        self.handler: type[_Flaky] = type("Handler", (_Flaky,), fields)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(self.handler, directory=str(folder)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.tiles = [f"{self.base}/t{n}.png" for n in range(TILES)]

    @property
    def requests(self) -> dict[str, int]:
        return dict(self.handler.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FlakyFactory = Callable[..., FlakyServer]
"""``create(failures, delay=0.0)``: a started FlakyServer, stopped at the test's end."""


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyFactory]:
    servers: list[FlakyServer] = []

    def create(failures: float, delay: float = 0.0) -> FlakyServer:
        folder = tmp_path / f"flaky-{len(servers)}"
        folder.mkdir()
        servers.append(FlakyServer(folder, failures, delay))
        return servers[-1]

    yield create
    for server in servers:
        server.close()


def _settings(make_settings: SettingsFactory, **fetch: Any) -> Settings:
    settings = make_settings()
    return dataclasses.replace(settings, fetch=dataclasses.replace(settings.fetch, **fetch))


def _build(settings: Settings, target: str, tiles: list[str]) -> dict[str, object]:
    package = JobPackage.create(target, tiles, Options(cols=8, rows=0, tile_px=16, seed=0))
    return build_mosaic(package, Fetcher(settings.fetch), settings).details


def test_a_503_once_per_tile_is_retried_and_every_tile_used(make_settings: SettingsFactory,
                                                            flaky: FlakyFactory) -> None:
    server = flaky(failures=1)
    details = _build(_settings(make_settings), f"{server.base}/target.png", server.tiles)
    assert details["tiles_used"] == TILES and details["tiles_skipped"] == 0, details
    assert all(server.requests[f"/t{n}.png"] == 2 for n in range(TILES)), server.requests


def test_retries_run_across_tiles_at_once(make_settings: SettingsFactory, flaky: FlakyFactory) -> None:
    """The retry round is spread over the fetch threads, not one tile after another."""
    server = flaky(failures=1, delay=0.05)
    details = _build(_settings(make_settings), f"{server.base}/target.png", server.tiles[:8])
    assert details["tiles_used"] == 8
    assert server.handler.busy[1] > 1


def test_a_tile_that_stays_503_raises_transient_and_a_404_is_still_a_skip(make_settings: SettingsFactory,
                                                                        flaky: FlakyFactory) -> None:
    server = flaky(failures=float("inf"))
    settings = _settings(make_settings, tries=2)
    target = f"{server.base}/target.png"
    with pytest.raises(TransientError) as caught:
        _build(settings, target, [f"{server.base}/missing.png", *server.tiles[:3]])
    assert isinstance(caught.value, FetchFailed)
    assert "3 of 4 tiles could not be fetched in 2 tries" in caught.value.reason
    assert "answered HTTP 503" in caught.value.reason
    assert all(server.requests[f"/t{n}.png"] == 2 for n in range(3))
    assert server.requests["/missing.png"] == 1  # a 404 is not tried again

    good = flaky(failures=0)
    details = _build(settings, target, [f"{good.base}/missing.png", f"{good.base}/page.png", *good.tiles[:3]])
    assert details["tiles_used"] == 3 and details["tiles_skipped"] == 2, details
    reasons = " ".join(details["skipped_reasons"])  # type: ignore[arg-type]
    assert "answered HTTP 404" in reasons and "not an image" in reasons


def test_retries_stop_within_their_time(make_settings: SettingsFactory, flaky: FlakyFactory) -> None:
    """retry_within shorter than the first backoff: no second try, the TransientError at once."""
    server = flaky(failures=float("inf"))
    with pytest.raises(FetchFailed, match="in 1 try"):
        _build(_settings(make_settings, tries=5, retry_within=0.01), f"{server.base}/target.png", server.tiles[:2])
    assert server.requests["/t0.png"] == 1


def _pending(r: redis.Redis, keys: Keys) -> int:
    return int(r.xpending(keys.jobs, GROUP)["pending"])


def test_worker_job_through_a_restarting_tile_host_ends_done(web: WebServer, r: redis.Redis,
                                                             flaky: FlakyFactory) -> None:
    server = flaky(failures=1)
    queue = dataclasses.replace(web.settings.queue, transient_tries=1)  # no rebuild: the tiles' own retries do it
    worker = Worker(dataclasses.replace(web.settings, queue=queue), slot=0)
    status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"}, tile_urls=server.tiles)
    assert status == 202, reply
    worker.run_once()
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "done", view
    assert view["details"]["tiles_used"] == TILES and view["details"]["tiles_skipped"] == 0


def test_worker_job_whose_tiles_stay_503_goes_back_to_the_queue(web: WebServer, r: redis.Redis,
                                                                flaky: FlakyFactory) -> None:
    server = flaky(failures=float("inf"))
    queue = dataclasses.replace(web.settings.queue, transient_tries=1)
    fetch = dataclasses.replace(web.settings.fetch, tries=2)
    worker = Worker(dataclasses.replace(web.settings, queue=queue, fetch=fetch), slot=0)
    urls = [f"{server.base}/missing.png", *server.tiles[:4]]
    status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"}, tile_urls=urls)
    assert status == 202, reply
    worker.run_once()
    keys = Keys(web.settings.redis.prefix)
    job = r.hgetall(keys.job(reply["id"]))
    assert job["state"] == "queued", job
    assert "answered HTTP 503" in job["last_error"]
    assert _pending(r, keys) == 1  # left pending: delivered again later, dead-lettered after max_deliveries


def test_header_bytes_trickling_in_do_not_hold_a_fetch(make_settings: SettingsFactory) -> None:
    """A status line and headers sent a byte at a time, each byte well within the read timeout, for longer
    than the timeout: FetchFailed (before, the fetch waited them out and returned the picture)."""
    listener = socket.create_server(("127.0.0.1", 0))
    png = encode(make_tiles(1)[0])
    head = b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nX-Padding: " + b"a" * 20 + b"\r\n\r\n"

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                for byte in head:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.05)  # 60 bytes: 3 s in all
                conn.sendall(png)
            except OSError:
                pass  # the fetcher gave up and cut the connection

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = _settings(make_settings, timeout=0.5, total_timeout=1.0)
    try:
        with pytest.raises(FetchFailed, match="no answer within 0.5 s"):
            Fetcher(settings.fetch).get(f"http://127.0.0.1:{listener.getsockname()[1]}/t.png")
    finally:
        thread.join(5)
        listener.close()
