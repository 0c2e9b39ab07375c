"""Cancel through a real node (web on waitress, keeper, a real worker process, Redis with its ACL users): a queued
job never starts, a running one stops while fetching or rendering and stores nothing, the worker takes the next
job at once, and a final job answers 409."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.http import TileServers
from tests.helpers.images import encode, make_target
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.web import WebServer
from tests.helpers.worker import start_worker
from workers.cli import client
from workers.protocol.keys import GROUP, Keys
from workers.protocol.options import KEEP_MIN
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


def call(method: str, url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON body or {}) of one request with the delete token, if any, as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def submit(web: WebServer, tile_urls: list[str], **options: str) -> dict[str, Any]:
    code, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8", **options},
                                tile_urls=tile_urls)
    assert code == 202, reply
    assert reply["delete_token"], reply
    return reply


def view(web: WebServer, reply: dict[str, Any]) -> dict[str, Any]:
    return client.request(web.base_url + reply["status_url"])[1]


def cancel(web: WebServer, reply: dict[str, Any], token: str | None = "") -> tuple[int, dict[str, Any]]:
    return call("POST", f"{web.base_url}/api/mosaics/{reply['id']}/cancel",
                reply["delete_token"] if token == "" else token)


def media(web: WebServer, job_id: str) -> list[str]:
    return sorted(p.name for p in Path(web.settings.paths.media).glob(f"{job_id}*"))


@pytest.fixture
def tiles(tmp_path: Path) -> Any:
    with TileServers(tmp_path / "tiles") as servers:
        yield servers


def test_a_queued_job_canceled_never_starts_and_the_worker_skips_it(web: WebServer, r: redis.Redis,
                                                                    tiles: TileServers) -> None:
    urls = tiles.serve(delay=0, count=6)
    first, second = submit(web, urls), submit(web, urls)
    keys = Keys(web.settings.redis.prefix)
    wait_until(lambda: r.xlen(keys.jobs) == 2, timeout=10, what="both admitted to the stream")
    code, body = cancel(web, first)
    assert (code, body) == (202, {"id": first["id"], "state": "canceled", "cancel_requested": True})
    canceled = view(web, first)
    assert canceled["state"] == "canceled" and canceled["started_at"] is None, canceled
    assert canceled["expires_at"] == pytest.approx(time.time() + web.settings.jobs.result_ttl, abs=5)
    worker = Worker(web.settings, slot=0)
    while worker.run_once():
        pass
    assert view(web, second)["state"] == "done"
    after = view(web, first)
    assert after["state"] == "canceled" and after["started_at"] is None and media(web, first["id"]) == []
    assert int(r.xpending(keys.jobs, GROUP)["pending"]) == 0  # its entry taken, found final, acknowledged
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(web.base_url + "/metrics") as reply:
        assert "tessera_jobs_canceled_total 1.0" in reply.read().decode().splitlines()


def test_cancel_of_a_final_job_is_409_and_of_an_unknown_one_404(web: WebServer, tiles: TileServers) -> None:
    reply = submit(web, tiles.serve(delay=0, count=4))
    Worker(web.settings, slot=0).run_once()
    assert view(web, reply)["state"] == "done"
    code, body = cancel(web, reply)
    assert code == 409 and body["error"]["code"] == "already_final", body
    assert view(web, reply)["state"] == "done"
    queued = submit(web, tiles.serve(delay=0, count=4))
    assert cancel(web, queued)[0] == 202
    assert cancel(web, queued)[0] == 409  # canceled is final too
    unknown = {**queued, "id": "A" * 22}
    assert cancel(web, unknown)[0] == 404


def test_cancel_by_a_stranger_is_404_and_changes_nothing(web: WebServer, tiles: TileServers) -> None:
    reply = submit(web, tiles.serve(delay=0, count=4))
    for token in (None, "not-the-token", reply["delete_token"][:-1]):
        code, body = cancel(web, reply, token)
        assert code == 404 and body["error"]["code"] == "not_found", (token, body)
    assert view(web, reply)["state"] == "queued"


def test_keep_sets_the_ttl_and_expires_at(web: WebServer, r: redis.Redis, tiles: TileServers) -> None:
    reply = submit(web, tiles.serve(delay=0, count=4), keep=str(KEEP_MIN))
    Worker(web.settings, slot=0).run_once()
    done = view(web, reply)
    assert done["state"] == "done"
    assert done["expires_at"] == pytest.approx(done["finished_at"] + KEEP_MIN, abs=2)
    keys = Keys(web.settings.redis.prefix)
    assert 0 < r.ttl(keys.job(reply["id"])) <= KEEP_MIN
    assert reply["id"] not in r.lrange(keys.recent, 0, -1)  # expires out of the list's order: left off it
    queued = submit(web, tiles.serve(delay=0, count=4), keep=str(KEEP_MIN))
    assert cancel(web, queued)[0] == 202  # its note written by the web: the same keep, off the list too
    assert 0 < r.ttl(keys.job(queued["id"])) <= KEEP_MIN and queued["id"] not in r.lrange(keys.recent, 0, -1)
    for bad in ("59", str(web.settings.jobs.result_ttl + 1), "soon"):
        code, body = client.submit(web.base_url, encode(make_target()), [], {"grid": "8", "keep": bad},
                                   tile_urls=["http://127.0.0.1:9/t.png"])
        assert code == 400 and "keep" in body["error"]["message"], (bad, body)


def _wait_stage(web: WebServer, reply: dict[str, Any], starts: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def there() -> bool:
        found.update(view(web, reply))
        assert found["state"] in ("queued", "running"), found  # it must not finish before it is canceled
        return str(found.get("stage", "")).startswith(starts)

    wait_until(there, timeout=120, interval=0.02, what=f"stage {starts}")
    return found


def _stopped(web: WebServer, reply: dict[str, Any], asked: float) -> float:
    """Wait for the canceled note; the seconds from the request to it."""
    final = client.wait_for(web.base_url, reply["status_url"], timeout=60, interval=0.05)
    assert final["state"] == "canceled", final
    assert media(web, reply["id"]) == [], "a canceled job stores nothing"
    return float(final["finished_at"]) - asked


def test_cancel_while_fetching_stops_the_job_and_the_worker_takes_the_next(web: WebServer, tiles: TileServers,
                                                                          tmp_path: Path) -> None:
    process = start_worker(web, tmp_path / "worker.log")
    try:
        slow = submit(web, tiles.serve(delay=0.3, count=40))
        following = submit(web, tiles.serve(delay=0, count=4))
        _wait_stage(web, slow, ("preparing tiles",))
        asked = time.time()
        code, body = cancel(web, slow)
        assert (code, body["state"], body["cancel_requested"]) == (202, "running", True), body
        print(f"cancel while fetching: canceled {_stopped(web, slow, asked):.3f} s after the request")
        done = client.wait_for(web.base_url, following["status_url"], timeout=60, interval=0.05)
        assert done["state"] == "done" and done["started_at"] >= view(web, slow)["finished_at"]
    finally:
        stop_process(process)


def test_cancel_while_rendering_a_w2_sized_job(web: WebServer, tiles: TileServers, tmp_path: Path) -> None:
    process = start_worker(web, tmp_path / "worker.log")
    try:
        big = submit(web, tiles.serve(delay=0, count=64), grid="128x128", tile_px="32")
        _wait_stage(web, big, ("matched", "rendering", "making the zoomable view"))
        asked = time.time()
        code, body = cancel(web, big)
        assert (code, body["state"]) == (202, "running"), body
        print(f"cancel while rendering: canceled {_stopped(web, big, asked):.3f} s after the request")
        assert "canceled while" in view(web, big)["stage"]
        following = submit(web, tiles.serve(delay=0, count=4))
        assert client.wait_for(web.base_url, following["status_url"], timeout=60)["state"] == "done"
    finally:
        stop_process(process)
