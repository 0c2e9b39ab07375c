"""Fixtures that start real servers on free loopback ports and stop them by PID.

One redis-server per session with the embedded Redis's ACL users (no default user); a fresh key prefix
per test, its role users (web, worker, keeper, orchestrator, monitor, webhooks, admin) made for that prefix from
the same ``acl_lines`` as production, so every test connects as its role. A server that cannot start is an error,
never a skip.
"""

from __future__ import annotations

import secrets
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
from workers.cli.startup import prepare_kernels, prepare_process, use_one_kernel_cache
from workers.protocol import scripts
from workers.protocol.connection import connect
from workers.service.redis_server import acl_lines

ROOT = Path(__file__).resolve().parent.parent
use_one_kernel_cache()  # var/numba-cache, as every process of the checkout: before anything loads Numba


def pytest_configure(config: pytest.Config) -> None:
    """The process set up as the entry points do it (Numba, Pillow), before any test module loads a kernel."""
    prepare_process()
    prepare_kernels()


ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks")
"""The role users besides admin; each test's settings carry a password for every one."""
FIXTURE_USER = "tessera-tests"
"""The session server's own user, which makes each test's role users; no test connects as it."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """`default` off as in the embedded Redis; the roles themselves are made per test (make_settings)."""
    password = secrets.token_urlsafe(16)
    acl = ["user default off resetpass ~* &* +@all", f"user {FIXTURE_USER} on >{password} ~* &* +@all"]
    server = start_redis(tmp_path_factory.mktemp("redis"), password=password, acl=acl, superuser=FIXTURE_USER)
    with redis.Redis(port=server.port, username=FIXTURE_USER, password=password) as fixture:
        scripts.load(fixture)  # as a keeper would; tests that need a keeper's admissions start one (keeping)
    yield server
    stop_process(server.process)


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Path) -> Iterator[SettingsFactory]:
    """Settings for this test: the session's Redis under a fresh prefix, files under tmp_path, a password per
    role, and those users (the lines of workers/service/redis_server.py acl_lines) made for the prefix.

    Unit tests get a Redis-free factory of the same name instead (tests/unit/conftest.py); a server without
    the fixture user (tests/orchestrator's) gets the factory as it is."""
    if redis_server.superuser is None:
        yield settings_factory(tmp_path, redis_server.url, redis_server.password)
        return
    roles = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES}
    factory = settings_factory(tmp_path, redis_server.url, secrets.token_urlsafe(16))
    fixture = redis.Redis(port=redis_server.port, username=redis_server.superuser, password=redis_server.password)

    def create(**env: str) -> Settings:
        settings = factory(**{**roles, **env})
        if settings.redis.url == redis_server.url and settings.redis.acl:
            for line in acl_lines(settings.redis):
                user, *rules = line.split()[1:]
                if user != "default":
                    fixture.execute_command("ACL", "SETUSER", user, "reset", *rules)
        return settings

    yield create
    fixture.close()


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
