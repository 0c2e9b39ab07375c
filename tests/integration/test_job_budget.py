"""A job's tile budget, progress per tile and tiles cached as they are decoded, through a real worker process,
the session's ACL Redis and a loopback tile server that counts what it is asked for.

Before: a job was limited only per image (so 2,000 flat 40-megapixel tiles cost thousands of CPU-seconds),
progress moved once per 1,024-tile batch (the watchdog took a slow batch for a hung worker), and the decoded
tiles reached the tile cache only at the job's end (a job killed midway decoded them all again).
"""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.web import WebServer
from tests.helpers.worker import start_worker
from workers.cli import client
from workers.pipeline.tilecache import KEY_BYTES, TileCache
from workers.protocol.keys import Keys
from workers.protocol.status import FINAL

pytestmark = pytest.mark.integration

TILE_PX = 32
"""jobs.default_tile_px: the tile cache's folder for these jobs."""


class _Handler(BaseHTTPRequestHandler):
    server: TileServer

    def do_GET(self) -> None:
        tiles = self.server
        with tiles.lock:
            tiles.requests += 1
        time.sleep(tiles.delay)
        body = tiles.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == tiles.hang_path and not tiles.hung.is_set():
            tiles.hung.set()
            self.wfile.flush()
            tiles.release.wait(timeout=600)  # the headers are out; the body only once released
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the worker was killed mid-fetch

    def log_message(self, format: str, *args: object) -> None:
        pass


class TileServer(ThreadingHTTPServer):
    """Tiles ``/t<n>.png`` from memory; counts requests; each answer takes ``delay``; the first request for
    ``hang_path`` gets its headers and then waits for ``release``."""

    daemon_threads = True

    def __init__(self, bodies: list[bytes], delay: float = 0.0, hang_path: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {f"/t{n}.png": body for n, body in enumerate(bodies)}
        self.delay, self.hang_path = delay, hang_path
        self.lock, self.requests = threading.Lock(), 0
        self.hung, self.release = threading.Event(), threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.urls = [f"http://127.0.0.1:{self.server_address[1]}/t{n}.png" for n in range(len(bodies))]

    def handle_error(self, request: object, client_address: object) -> None:
        pass

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


ServerFactory = Callable[..., TileServer]


@pytest.fixture
def tile_server() -> Iterator[ServerFactory]:
    servers: list[TileServer] = []

    def create(bodies: list[bytes], delay: float = 0.0, hang_path: str = "") -> TileServer:
        servers.append(TileServer(bodies, delay, hang_path))
        return servers[-1]

    yield create
    for server in servers:
        server.close()


def flat_png(side: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (shade, 255 - shade, (3 * shade) % 256)).save(out, "PNG")
    return out.getvalue()


def noise_png(side: int, seed: int) -> bytes:
    return encode(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def cached_tiles(root: Path) -> int:
    """Tiles in the listed (complete) packs of the tile cache."""
    folder = TileCache(root, TILE_PX, 2**40).dir
    return sum(path.stat().st_size for path in folder.glob("*.keys")) // KEY_BYTES


def submit(web: WebServer, urls: list[str]) -> str:
    status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"}, tile_urls=urls)
    assert status == 202, reply
    return str(reply["id"])


def final_view(web: WebServer, job_id: str, timeout: float = 120) -> dict[str, Any]:
    url = f"{web.base_url}/api/mosaics/{job_id}"
    wait_until(lambda: client.request(url)[1]["state"] in FINAL, timeout=timeout, what="job final")
    view: dict[str, Any] = client.request(url)[1]
    return view


@pytest.mark.parametrize("budget", ["pixels", "bytes"])
def test_a_job_past_its_tile_budget_fails_with_it_soon_after_and_the_worker_goes_on(
        budget: str, web: WebServer, r: redis.Redis, tile_server: ServerFactory, tmp_path: Path) -> None:
    if budget == "pixels":  # flat tiles: a few kilobytes, a million pixels each
        bodies = [flat_png(1000, n) for n in range(200)]
        extra = {"TESSERA_LIMITS_MAX_JOB_TILE_PIXELS": str(20 * 1000 * 1000)}
    else:
        bodies = [noise_png(64, n) for n in range(200)]
        extra = {"TESSERA_LIMITS_MAX_JOB_TILE_BYTES": str(20 * max(map(len, bodies)))}
    server = tile_server(bodies)
    log = tmp_path / "worker.log"
    process = start_worker(web, log, extra=extra)
    try:
        job_id = submit(web, server.urls)
        view = final_view(web, job_id)
        assert view["state"] == "failed", view
        word = {"pixels": "pixel", "bytes": "byte"}[budget]
        assert f"passed its {word} budget" in view["error"], view
        assert f"(limits.max_job_tile_{budget})" in view["error"] and "tiles fetched" in view["error"], view
        assert server.requests < 100, server.requests  # it stopped soon after the budget, far from all 200
        job = r.hgetall(Keys(web.settings.redis.prefix).job(job_id))
        assert job["deliveries"] == "1" and job["error_code"] == "too_large", job  # failed once, not retried
        assert process.poll() is None and log.read_text().count("ready") == 1  # the same worker, still up
    finally:
        stop_process(process)


def test_progress_moves_as_the_tiles_of_one_batch_come(web: WebServer, r: redis.Redis, tile_server: ServerFactory,
                                                       tmp_path: Path) -> None:
    """Fewer tiles than one batch, each slow: the job's progress and the heartbeat's progress time (what the
    watchdog judges a hung worker by) move while they come, not only once they all have."""
    server = tile_server([encode(tile) for tile in make_tiles(64)], delay=0.15)
    process = start_worker(web, tmp_path / "worker.log", extra={"TESSERA_WORKER_PROGRESS_INTERVAL": "0.05",
                                                                "TESSERA_WORKER_HEARTBEAT_INTERVAL": "0.2"})
    keys = Keys(web.settings.redis.prefix)
    try:
        job_id = submit(web, server.urls)
        seen: set[float] = set()
        beats: set[str] = set()

        def sample() -> bool:
            job = r.hgetall(keys.job(job_id))
            progress = float(job.get("progress") or 0)
            if job.get("state") == "running" and 0.02 < progress < 0.6:  # the tile stage, before it ends
                seen.add(progress)
                beats.add(str(r.hget(keys.worker(web.settings.node, process.pid), "progress_at")))
            return job.get("state") in FINAL

        wait_until(sample, timeout=120, what="job final", interval=0.02)
        assert r.hget(keys.job(job_id), "state") == "done"
        assert len(seen) >= 3, seen
        assert len(beats) >= 2, beats
    finally:
        stop_process(process)


def test_decoded_tiles_reach_the_cache_while_the_job_runs_and_a_retry_takes_them_from_there(
        web: WebServer, r: redis.Redis, tile_server: ServerFactory, tmp_path: Path) -> None:
    """Tile 100 of 120 hangs: the 100 before it are decoded and in the tile cache while the job still runs; the
    worker is killed (-9), its restart takes those 100 from the cache and decodes only the rest."""
    server = tile_server([encode(tile) for tile in make_tiles(120)], hang_path="/t100.png")
    slow_fetch = {"TESSERA_FETCH_TIMEOUT": "300", "TESSERA_FETCH_TOTAL_TIMEOUT": "600"}  # the hang is no timeout
    process = start_worker(web, tmp_path / "worker.log", extra=slow_fetch)
    cache_root = Path(web.settings.paths.root) / web.settings.mosaic.tile_cache
    keys = Keys(web.settings.redis.prefix)
    try:
        job_id = submit(web, server.urls)
        wait_until(lambda: cached_tiles(cache_root) >= 100, timeout=60, what="the first 100 tiles in the tile cache")
        assert server.hung.is_set() and r.hget(keys.job(job_id), "state") == "running"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop_process(process)
    server.release.set()
    again = start_worker(web, tmp_path / "again.log", extra=slow_fetch)
    try:
        view = final_view(web, job_id)
        assert view["state"] == "done", view
        details = view["details"]
        assert details["cache_hits"] >= 100 and details["decoded"] <= 20, details
        assert details["tiles_used"] == 120, details
    finally:
        stop_process(again)
