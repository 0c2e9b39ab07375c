"""Fixtures that start real servers on free loopback ports and stop them by PID.

One password-protected redis-server per session; a fresh key prefix per test.
A server that cannot start is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import waitress.server
from support import RedisServer, free_port, start_redis, stop_process

import config
from config import Settings
from workers.connection import connect

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var" / "numba-cache"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_process(server.process)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Path) -> SettingsFactory:
    """Settings for this test: the session's Redis under a fresh prefix, files under tmp_path."""
    prefix = "t" + secrets.token_hex(4)

    def create(**env: str) -> Settings:
        base = {
            "TESSERA_REDIS_URL": redis_server.url,
            "TESSERA_REDIS_PASSWORD": redis_server.password,
            "TESSERA_REDIS_PREFIX": prefix,
            "TESSERA_PATHS_ROOT": str(tmp_path),
            "TESSERA_WEB_SIGNING_KEY": "test-signing-key",
            "TESSERA_FETCH_ALLOW_HOSTS": "127.0.0.1",
            "TESSERA_NODE": "testnode",
            "TESSERA_WORKER_BLOCK_MS": "200",
            "TESSERA_WEB_RATE_LIMIT_PER_MINUTE": "100000",
            "TESSERA_WEB_MAX_ACTIVE_JOBS": "100000",
        }
        return config.load(env={**base, **env})

    return create


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect(settings.redis, "admin")
    yield client
    keys = list(client.scan_iter(match=f"{settings.redis.prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass(frozen=True)
class WebServer:
    base_url: str
    settings: Settings


@contextmanager
def serving(make_settings: SettingsFactory, **env: str) -> Iterator[WebServer]:
    """The real Bottle app on waitress, in a thread, on a free port."""
    from web.app import make_app

    port = free_port()
    settings = make_settings(TESSERA_WEB_PORT=str(port), TESSERA_WEB_PUBLIC_URL=f"http://127.0.0.1:{port}", **env)
    server = waitress.server.create_server(make_app(settings), host="127.0.0.1", port=port, threads=4,
                                           max_request_body_size=settings.limits.max_request_bytes)
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not stopping.is_set():  # closing the socket under the loop is how waitress stops here
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield WebServer(base_url=f"http://127.0.0.1:{port}", settings=settings)
    finally:
        stopping.set()
        server.close()
        thread.join(timeout=5)


@pytest.fixture
def web(make_settings: SettingsFactory) -> Iterator[WebServer]:
    with serving(make_settings) as server:
        yield server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 for tile URLs: (base URL, folder to put files in)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()
