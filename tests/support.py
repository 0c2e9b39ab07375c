"""Helpers shared by the tests: ports, processes, redis-server, generated images, resemblance."""

from __future__ import annotations

import io
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import redis
from PIL import Image

from workers.protocol.errors import JobRejected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class RedisServer:
    port: int
    password: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(folder: Path, port: int | None = None, password: str | None = None,
                appendonly: bool = False, acl: list[str] | None = None, bind: str = "127.0.0.1") -> RedisServer:
    """A redis-server of the test's own; with ``acl`` lines instead of requirepass (``password`` is admin's).

    ``bind``: the addresses it listens on (e.g. also a test network's host address), 127.0.0.1 among them."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it)"
    port = port or free_port()
    password = password or secrets.token_urlsafe(16)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "redis.conf"
    auth = "\n".join(acl) if acl else f'requirepass "{password}"'
    conf.write_text(f'port {port}\nbind {bind}\n{auth}\ndir {folder}\nsave ""\n'
                    f"appendonly {'yes' if appendonly else 'no'}\nmaxmemory-policy noeviction\n")
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, username="admin" if acl else None, password=password)
    wait_until(lambda: _pings(client), timeout=10, what=f"redis-server on port {port}")
    return RedisServer(port=port, password=password, process=process)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), "RGB").save(out, fmt)
    return out.getvalue()


def make_target(width: int = 240, height: int = 160, seed: int = 1) -> np.ndarray:
    """A photo-like target: smooth colour gradients with a few bright discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([255 * x / width, 255 * y / height, 255 * (1 - x / width) * (y / height)], axis=-1)
    for _ in range(4):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 40)
        image[(x - cx) ** 2 + (y - cy) ** 2 < radius**2] = rng.uniform(0, 255, 3)
    return image.astype(np.uint8)


def make_tiles(count: int = 64, px: int = 24, seed: int = 2) -> list[np.ndarray]:
    """Tiles of distinct colours with a little texture, so a good match is possible."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3)
        noise = rng.normal(0, 12, (px, px, 3))
        tiles.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return tiles


def cell_means(image: np.ndarray, cols: int, rows: int) -> np.ndarray:
    """Mean colour per cell of a grid laid over the image (float, rows×cols×3)."""
    small = Image.fromarray(image).resize((cols, rows), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


def resemblance(mosaic: np.ndarray, target: np.ndarray, tiles: list[np.ndarray], cols: int, rows: int,
                seed: int = 3) -> tuple[float, float]:
    """(mean per-cell colour error of the mosaic, same for a random tile arrangement)."""
    want = cell_means(target, cols, rows)
    got = cell_means(mosaic, cols, rows)
    rng = np.random.default_rng(seed)
    tile_means = np.array([t.reshape(-1, 3).mean(axis=0) for t in tiles])
    random_cells = tile_means[rng.integers(0, len(tiles), size=(rows, cols))]
    error = float(np.linalg.norm(got - want, axis=-1).mean())
    random_error = float(np.linalg.norm(random_cells - want, axis=-1).mean())
    return error, random_error


class _DelayHandler(SimpleHTTPRequestHandler):
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker killed mid-fetch breaks the pipe: expected here


class TileServers:
    """Static tile servers (on 127.0.0.1, or ``host``) whose every answer takes a set delay (slow jobs on demand)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder, self.host = folder, host
        self.servers: list[ThreadingHTTPServer] = []

    def serve(self, delay: float, count: int = 8) -> list[str]:
        folder = self.folder / f"tiles-{len(self.servers)}"
        folder.mkdir(parents=True)
        for number, tile in enumerate(make_tiles(count)):
            (folder / f"t{number}.png").write_bytes(encode(tile))
        handler = type("Handler", (_DelayHandler,), {"delay": delay})
        server = _QuietServer((self.host, 0), partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return [f"http://{self.host}:{server.server_address[1]}/t{n}.png" for n in range(count)]

    def __enter__(self) -> TileServers:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


class MemorySource:
    """Image bytes by name, as a fetcher would give them (a Source for build_mosaic without files)."""

    concurrency = 1

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def get(self, ref: str) -> bytes:
        if ref not in self.files:
            raise JobRejected(f"no such file {ref}")
        return self.files[ref]
