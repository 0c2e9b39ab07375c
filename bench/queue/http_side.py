"""Tessera through its HTTP API: POST /api/mosaics to the real app on waitress, in its own process."""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from procs import WorkerPool
from redis_proc import free_port
from tessera_side import TARGET, TILES, TesseraSystem

HERE = Path(__file__).resolve().parent
BODY = json.dumps({"target_url": TARGET, "tile_urls": TILES, "options": {"grid": "4", "noop": True}}).encode()
HEADERS = {"Content-Type": "application/json"}


@contextmanager
def web_server(tessera: TesseraSystem, noop_shim: bool) -> Iterator[int]:
    """The web app on a free loopback port, against the same Redis database and prefix as the workers."""
    port = free_port()
    env = {**tessera.env, "TESSERA_WEB_PORT": str(port), "TESSERA_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    command = [sys.executable, str(HERE / "web_shim.py")] + (["--noop-shim"] if noop_shim else [])
    pool = WorkerPool([command], env, cwd=tessera.logs.parent, logs=tessera.logs, name="web")
    try:
        pool.wait_ready(lambda: _healthy(port), timeout=30)
        yield port
    finally:
        pool.stop()


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


class HttpSystem:
    """Submits through the API on one keep-alive connection; completion is read from Redis."""

    batched = False

    def __init__(self, tessera: TesseraSystem, port: int) -> None:
        self.tessera = tessera
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def submit(self) -> str:
        self.conn.request("POST", "/api/mosaics", body=BODY, headers=HEADERS)
        reply = self.conn.getresponse()
        data = reply.read()
        if reply.status != 202:
            raise RuntimeError(f"POST /api/mosaics answered {reply.status}: {data[:200]!r}")
        return str(json.loads(data)["id"])

    def fill(self, count: int) -> list[str]:
        return [self.submit() for _ in range(count)]

    def done_times(self, ids: Sequence[str]) -> list[float | None]:
        return self.tessera.done_times(ids)

    def reset(self) -> None:
        self.tessera.reset()

    def start_workers(self) -> WorkerPool:
        return self.tessera.start_workers()

    def workers_ready(self) -> bool:
        return self.tessera.workers_ready()

