"""The probes (issue 16, item 7) against real servers: `/livez` answers 200 all through a Redis outage while
`/readyz` answers 503 with Retry-After, both 200 once Redis is back (the test's own redis-server, stopped and
started again on its port); `tessera probe worker` exits 0 for a live worker of the node and non-zero, with a
one-line reason, once it has stopped."""

from __future__ import annotations

import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from tests.helpers.processes import free_port, stop_process, wait_until
from tests.helpers.redis import start_redis
from tests.helpers.settings import SettingsFactory, settings_factory
from tests.helpers.web import WebServer, serving
from tests.helpers.worker import start_worker, worker_env
from web import probes
from web.context import Context
from web.inputs import InputStore
from workers.inputs.urlpolicy import UrlPolicy
from workers.protocol.connection import connect
from workers.protocol.exitcodes import RET_CONNECT, RET_ERROR, RET_OK
from workers.protocol.keys import Keys
from workers.service.redis_server import ROLES, acl_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def get(url: str) -> tuple[int, str, dict[str, str]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as reply:
            return reply.status, reply.read().decode(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def test_readyz_follows_redis_and_livez_never_does(tmp_path: Path) -> None:
    port, password = free_port(), secrets.token_urlsafe(16)
    roles = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES if role != "admin"}
    factory = settings_factory(tmp_path, f"redis://127.0.0.1:{port}/0", password)
    acl = acl_lines(factory(**roles).redis)
    server = start_redis(tmp_path / "redis", port=port, password=password, acl=acl)
    try:
        with serving(lambda **env: factory(**roles, **env)) as web:
            assert get(web.base_url + "/readyz")[:2] == (200, '{"ok": true}')
            assert get(web.base_url + "/livez")[:2] == (200, '{"ok": true}')

            stop_process(server.process)  # the outage
            code, body, headers = get(web.base_url + "/readyz")
            assert (code, headers.get("Retry-After")) == (503, "5"), body
            assert '"ok": false' in body and "redis unreachable" in body
            assert get(web.base_url + "/livez")[:2] == (200, '{"ok": true}')
            assert get(web.base_url + "/healthz")[0] == 503  # as it always was

            server = start_redis(tmp_path / "redis", port=port, password=password, acl=acl)  # back
            assert get(web.base_url + "/readyz")[:2] == (200, '{"ok": true}')
            assert get(web.base_url + "/livez")[:2] == (200, '{"ok": true}')
    finally:
        stop_process(server.process)


def probe(web: WebServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers", "probe", "worker", *args], env=worker_env(web),
                          capture_output=True, text=True, timeout=60)


def test_probe_worker_live_then_stopped(make_settings: SettingsFactory, tmp_path: Path) -> None:
    with serving(make_settings) as web:
        none_yet = probe(web)
        assert none_yet.returncode != RET_OK and f"no worker on node {web.settings.node}" in none_yet.stderr

        worker = start_worker(web, tmp_path / "worker.log", slot=3)
        try:
            wait_until(lambda: probe(web).returncode == RET_OK, timeout=60, what="the worker's first heartbeat")
            alive = probe(web)
            assert alive.returncode == RET_OK, alive.stderr
            assert alive.stdout.startswith(f"ok: 1 worker alive on node {web.settings.node}")
            other = probe(web, "--node", "another-node")  # a worker of another node is no answer for this one
            assert other.returncode != RET_OK
        finally:
            stop_process(worker)  # a warm stop: its heartbeat goes with it

        stopped = probe(web)
        assert stopped.returncode == RET_ERROR
        assert stopped.stderr.count("\n") == 1 and "heartbeat" in stopped.stderr, stopped.stderr

    nowhere = subprocess.run([sys.executable, "-m", "workers", "probe", "worker"], capture_output=True, text=True,
                             env={**worker_env(web), "TESSERA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
                             timeout=60)
    assert nowhere.returncode == RET_CONNECT and "redis unreachable" in nowhere.stderr, nowhere.stderr
    assert nowhere.stderr.count("\n") == 1


def test_readyz_says_when_redis_answers_but_the_queue_cannot_be_read(make_settings: SettingsFactory) -> None:
    """The web role's grants cover its own prefix only: asked about another, Redis answers NOPERM, not ready."""
    settings = make_settings()
    ctx = Context(settings=settings, redis=connect(settings.redis, "web"), keys=Keys("elsewhere"),
                  inputs=cast(InputStore, None), policy=cast(UrlPolicy, None))  # ready() reads neither
    reason = probes.ready(ctx)
    assert reason is not None and reason.startswith("the queue cannot be read") and "permission" in reason, reason
    assert probes.ready(replace(ctx, keys=Keys(settings.redis.prefix))) is None
