"""/metrics and /admin on a real web server, with a real worker process building real jobs.

The worker also shows the structured logs: its JSON lines carry each job's id.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import free_port, stop_process, wait_until
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from tests.helpers.worker import start_worker
from web.admin import MAX_LOGIN_FAILURES
from workers.cli import client

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, Message, str]:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as reply:
            return reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def submit_jobs(web: WebServer, missing_base: str) -> tuple[list[str], str]:
    """Two jobs that build and one whose target answers 404: (good ids, failing id)."""
    tiles = [encode(t) for t in make_tiles(6, px=8)]
    good = []
    for seed in (1, 2):
        code, reply = client.submit(web.base_url, encode(make_target(48, 32, seed=seed)), tiles,
                                    {"grid": "6", "tile_px": "4"})
        assert code == 202, reply
        good.append(reply["id"])
    body = {"target_url": f"{missing_base}/missing.png", "tile_urls": [f"{missing_base}/missing-tile.png"],
            "options": {"grid": "6", "tile_px": 4}}
    code, reply = client.request(web.base_url + "/api/mosaics", json.dumps(body).encode(), "application/json")
    assert code == 202, reply
    return good, reply["id"]


@pytest.fixture
def admin_web(make_settings: SettingsFactory) -> Iterator[WebServer]:
    with serving(make_settings, TESSERA_WEB_ADMIN_PASSWORD=PASSWORD) as server:
        yield server


def test_jobs_show_up_in_metrics_admin_and_the_worker_log(admin_web: WebServer, file_server: tuple[str, Path],
                                                         tmp_path: Path) -> None:
    web, log = admin_web, tmp_path / "worker.log"
    process = start_worker(web, log)
    try:
        good, failing = submit_jobs(web, file_server[0])
        views = {job: client.wait_for(web.base_url, f"/api/mosaics/{job}", timeout=120) for job in [*good, failing]}
        assert [views[job]["state"] for job in good] == ["done", "done"], views
        assert views[failing]["state"] == "failed" and "HTTP 404" in views[failing]["error"]
        check_metrics(web)
        check_admin(web, failing)
    finally:
        stop_process(process)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all(line["component"] == "worker" and line["worker"] == "testnode-5" for line in lines)
    for job in [*good, failing]:
        mine = [line for line in lines if line.get("job_id") == job]
        assert mine and any(line["msg"] == f"job {job} {views[job]['state']}" for line in mine), lines


def check_metrics(web: WebServer) -> None:
    wait_until(lambda: "tessera_workers{" in get(web.base_url + "/metrics")[2], timeout=10, what="a heartbeat")
    code, headers, text = get(web.base_url + "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    got = samples(text)
    assert got[("tessera_jobs_submitted_total", ())] == 3
    assert got[("tessera_jobs_done_total", ())] == 2 and got[("tessera_jobs_failed_total", ())] == 1
    assert got[("tessera_build_seconds_count", ())] == 2
    assert got[("tessera_build_seconds_bucket", (("le", "+Inf"),))] == 2
    assert 0 < got[("tessera_build_seconds_sum", ())] < 120
    assert got[("tessera_queue_depth", ())] == 0 and got[("tessera_queue_pending", ())] == 0
    assert got[("tessera_dead_letters", ())] == 0
    assert got[("tessera_backlog_seconds", ())] == 0 and got[("tessera_backlog_estimated", ())] == 0  # all finished
    assert got[("tessera_workers", (("node", "testnode"),))] == 1


def check_admin(web: WebServer, failing: str) -> None:
    code, headers, page = get(web.base_url + "/admin", ("admin", PASSWORD))
    assert code == 200 and headers["Cache-Control"] == "no-store"
    assert "style-src 'self'" in headers["Content-Security-Policy"]
    assert 'id="jobs-done">2<' in page and 'id="jobs-failed">1<' in page and 'id="jobs-submitted">3<' in page
    assert 'id="jobs-last-hour">3<' in page and 'id="dead-letters">0<' in page
    assert failing in page and "answered HTTP 404" in page
    assert "<svg" in page and 'class="bar-done"' in page and "style=" not in page
    assert "testnode-5" in page and "testnode" in page  # the worker under its node, with its heartbeat age


def test_admin_wants_the_password(admin_web: WebServer) -> None:
    for auth in (None, ("admin", "wrong"), ("root", PASSWORD), ("admin", PASSWORD + "x")):
        code, headers, _ = get(admin_web.base_url + "/admin", auth)
        assert code == 401, auth
        assert headers["WWW-Authenticate"].startswith("Basic realm=") and headers["Cache-Control"] == "no-store"
    code, _, page = get(admin_web.base_url + "/admin", ("admin", PASSWORD))
    assert code == 200 and 'id="queue-depth">0<' in page and "No live workers" in page


def test_admin_is_off_without_a_password_and_metrics_need_none(web: WebServer) -> None:
    assert get(web.base_url + "/admin")[0] == 404
    assert get(web.base_url + "/admin", ("admin", ""))[0] == 404
    code, _, text = get(web.base_url + "/metrics")
    assert code == 200 and samples(text)[("tessera_jobs_submitted_total", ())] == 0


def test_redis_down_is_503_not_a_traceback(make_settings: SettingsFactory) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with serving(make_settings, TESSERA_REDIS_URL=dead, TESSERA_WEB_ADMIN_PASSWORD=PASSWORD) as server:
        for auth in (None, ("admin", PASSWORD)):
            code, headers, body = get(server.base_url + ("/admin" if auth else "/metrics"), auth)
            assert code == 503 and "Traceback" not in body and headers["Retry-After"]


def get_from(source: str, url: str, auth: tuple[str, str]) -> int:
    """The status of GET ``url`` sent from another loopback address (a different client to the limiter)."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", "/admin", headers={"Authorization": f"Basic {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_failed_logins_are_limited_per_address(admin_web: WebServer, r: redis.Redis) -> None:
    if time.time() % 60 > 50:  # one-minute windows: do the whole burst inside one
        time.sleep(60.5 - time.time() % 60)
    url, wrong = admin_web.base_url + "/admin", ("admin", "wrong")
    for _ in range(3):  # a browser's first request, without credentials, is not a failed login
        assert get(url)[0] == 401
    for attempt in range(MAX_LOGIN_FAILURES):
        assert get(url, wrong)[0] == 401, attempt
    for auth in (("admin", PASSWORD), wrong, None):  # the right password too, until the minute is over
        code, headers, body = get(url, auth)
        assert code == 429 and 1 <= int(headers["Retry-After"]) <= 60 and "Traceback" not in body, auth
        assert headers["Cache-Control"] == "no-store" and "WWW-Authenticate" not in headers
    assert get_from("127.0.0.2", url, ("admin", PASSWORD)) == 200  # counted per client address
    counts = list(r.scan_iter(match=f"{admin_web.settings.redis.prefix}:rate:admin-login:*"))
    assert len(counts) == 1 and 60 < r.ttl(counts[0]) <= 120  # the window's count expires on its own
    assert list(r.hgetall(counts[0]).values()) == [str(MAX_LOGIN_FAILURES)]  # hashed addresses, not addresses
    r.delete(*counts)  # as when the minute has passed
    assert get(url, ("admin", PASSWORD))[0] == 200
