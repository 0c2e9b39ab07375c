"""Fixtures that start real servers on free loopback ports and stop them by PID.

One password-protected redis-server per session; a fresh key prefix per test.
A server that cannot start is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from support import RedisServer, start_redis, stop_process
from webapp import SettingsFactory, WebServer, serving

import config
from config import Settings
from workers.protocol.connection import connect

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var" / "numba-cache"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_process(server.process)


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
