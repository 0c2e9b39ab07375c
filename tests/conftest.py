"""Fixtures that start real servers on free loopback ports and stop them by PID.

One password-protected redis-server per session; a fresh key prefix per test.
A server that cannot start is an error, never a skip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from config import Settings
from tests.helpers.processes import stop_process
from tests.helpers.redis import RedisServer, start_redis
from tests.helpers.settings import SettingsFactory, settings_factory
from tests.helpers.web import WebServer, serving
from workers.cli.startup import prepare_kernels, prepare_process
from workers.protocol.connection import connect

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var" / "numba-cache"))


def pytest_configure(config: pytest.Config) -> None:
    """The process set up as the entry points do it (Numba, Pillow), before any test module loads a kernel."""
    prepare_process()
    prepare_kernels()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_process(server.process)


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Path) -> SettingsFactory:
    """Settings for this test: the session's Redis under a fresh prefix, files under tmp_path.

    Unit tests get a Redis-free factory of the same name instead (tests/unit/conftest.py)."""
    return settings_factory(tmp_path, redis_server.url, redis_server.password)


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
