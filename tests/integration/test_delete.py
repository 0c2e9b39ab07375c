"""Delete through a real node: by the browser that made the job (its signed cookie) or with its delete token,
404 for anyone else; the result, zoomable view, uploads, status hash and My-mosaics entry go, a running job is
canceled first, and the sweep honours each job's ``keep``."""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.http import TileServers
from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.web import WebServer
from tests.helpers.worker import start_worker
from web.app import sweep_once
from web.inputs import InputStore
from workers.cli import client
from workers.protocol.keys import Keys
from workers.protocol.options import KEEP_MIN
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


class Browser:
    """One browser: its own cookie jar."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + path, data=body, headers=headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=30) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def submit(self, tiles: int = 3, **options: str) -> dict[str, Any]:
        files = [("target", "target.png", encode(make_target()))] + [
            ("tiles", f"t{i}.png", encode(tile)) for i, tile in enumerate(make_tiles(tiles))]
        body, content_type = client.encode_multipart({"grid": "8", "tile_px": "8", **options}, files)
        code, reply = self.open("POST", "/api/mosaics", body, {"Content-Type": content_type})
        assert code == 202, reply
        return dict(json.loads(reply))

    def delete(self, job_id: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return self.open("DELETE", f"/api/mosaics/{job_id}", headers=headers)

    def mine(self) -> list[str]:
        code, reply = self.open("GET", "/api/mine")
        assert code == 200
        return [item["id"] for item in json.loads(reply)["mosaics"]]


def built(web: WebServer) -> None:
    worker = Worker(web.settings, slot=0)
    while worker.run_once():
        pass


def leftovers(web: WebServer, job_id: str) -> list[str]:
    """Every file or folder of the job: results, zoomable view, uploads."""
    media = [p.name for p in Path(web.settings.paths.media).glob(f"{job_id}*")]
    uploads = [p.name for p in Path(web.settings.paths.uploads).glob(f"{job_id}*")]
    return sorted(media + uploads)


def gone(web: WebServer, r: redis.Redis, browser: Browser, job_id: str) -> None:
    keys = Keys(web.settings.redis.prefix)
    assert leftovers(web, job_id) == []
    assert not r.exists(keys.job(job_id)) and job_id not in r.lrange(keys.recent, 0, -1)
    assert client.request(f"{web.base_url}/api/mosaics/{job_id}")[0] == 404
    assert job_id not in browser.mine()


def test_the_owner_deletes_by_cookie_every_file_and_record(web: WebServer, r: redis.Redis) -> None:
    owner = Browser(web.base_url)
    reply = owner.submit()
    built(web)
    job_id = reply["id"]
    assert sorted(leftovers(web, job_id)) == sorted([job_id, f"{job_id}.dz", f"{job_id}.jpg"])
    keys = Keys(web.settings.redis.prefix)
    assert job_id in r.lrange(keys.recent, 0, -1) and job_id in owner.mine()
    assert owner.delete(job_id) == (204, b"")
    gone(web, r, owner, job_id)
    cookie = next(str(c.value) for c in owner.jar)
    assert r.llen(keys.browser_jobs(cookie.split(".")[0])) == 0
    assert owner.delete(job_id)[0] == 404  # twice: as unknown as any


@pytest.mark.parametrize("header", ["Authorization", "X-Delete-Token"])
def test_a_holder_of_the_token_deletes_from_anywhere(web: WebServer, r: redis.Redis, header: str) -> None:
    reply = Browser(web.base_url).submit()
    built(web)
    value = reply["delete_token"] if header == "X-Delete-Token" else f"Bearer {reply['delete_token']}"
    other = Browser(web.base_url)
    assert other.delete(reply["id"], {header: value}) == (204, b"")
    gone(web, r, other, reply["id"])


def test_anyone_else_gets_the_404_of_an_unknown_job(web: WebServer, r: redis.Redis) -> None:
    owner, stranger = Browser(web.base_url), Browser(web.base_url)
    stranger.submit()  # a cookie of its own, listing another job
    reply = owner.submit()
    built(web)
    unknown = stranger.delete("B" * 22)
    assert unknown[0] == 404
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Delete-Token": reply["delete_token"] + "x"},
                    {"Authorization": reply["delete_token"]}):  # no Bearer scheme: not a token
        assert stranger.delete(reply["id"], headers) == unknown, headers
    assert client.request(web.base_url + reply["status_url"])[1]["state"] == "done"
    assert len(leftovers(web, reply["id"])) == 3 and reply["id"] in owner.mine()


def test_deleting_a_running_job_cancels_it_and_nothing_is_stored(web: WebServer, r: redis.Redis,
                                                                 tmp_path: Path) -> None:
    process = start_worker(web, tmp_path / "worker.log")
    try:
        with TileServers(tmp_path / "tiles") as tiles:
            owner = Browser(web.base_url)
            files = [("target", "target.png", encode(make_target()))]
            body, content_type = client.encode_multipart(
                {"grid": "8", "tile_urls": "\n".join(tiles.serve(delay=0.3, count=40))}, files)
            code, raw = owner.open("POST", "/api/mosaics", body, {"Content-Type": content_type})
            assert code == 202, raw
            job_id = json.loads(raw)["id"]
            wait_until(lambda: client.request(f"{web.base_url}/api/mosaics/{job_id}")[1].get("state") == "running",
                       timeout=60, what="running")
            assert owner.delete(job_id) == (204, b"")
            gone(web, r, owner, job_id)
            log = tmp_path / "worker.log"
            wait_until(lambda: "canceled or deleted" in log.read_text(), timeout=30, what="the worker to stop")
            following = Browser(web.base_url).submit()
            assert client.wait_for(web.base_url, following["status_url"], timeout=60)["state"] == "done"
            assert leftovers(web, job_id) == []
    finally:
        stop_process(process)


def test_a_job_deleted_while_it_was_stored_has_its_files_removed_by_the_worker(web: WebServer,
                                                                               r: redis.Redis) -> None:
    reply = Browser(web.base_url).submit()
    worker = Worker(web.settings, slot=0)
    keys = Keys(web.settings.redis.prefix)
    store = worker.store

    class DeletedMidStore:  # the web deletes the job between the store and the note, as a real race would
        def put(self, job_id: str, data: bytes, ext: str) -> str:
            name = store.put(job_id, data, ext)
            r.delete(keys.job(job_id))
            return name

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    worker.store = DeletedMidStore()
    worker.run_once()
    assert [p.name for p in Path(web.settings.paths.media).glob(f"{reply['id']}*")] == []


def test_the_sweep_removes_results_once_their_keep_runs_out(web: WebServer, r: redis.Redis) -> None:
    browser = Browser(web.base_url)
    short, default = browser.submit(keep=str(KEEP_MIN)), browser.submit()
    built(web)
    keys = Keys(web.settings.redis.prefix)
    inputs = InputStore.from_settings(web.settings, r)
    later = time.time() + KEEP_MIN + 1
    sweep_once(web.settings, inputs, now=later, results=r)
    assert {short["id"], default["id"]} <= {p.name.split(".")[0] for p in Path(web.settings.paths.media).iterdir()}
    r.pexpire(keys.job(short["id"]), 1)  # its keep runs out, as Redis expires it KEEP_MIN after its note
    wait_until(lambda: not r.exists(keys.job(short["id"])), timeout=5, what="expiry")
    sweep_once(web.settings, inputs, now=later, results=r)
    names = sorted(p.name for p in Path(web.settings.paths.media).iterdir())
    assert names == sorted([f"{default['id']}.jpg", f"{default['id']}.dz"]), names


def test_the_sweep_leaves_results_whose_status_redis_lost_to_the_age_rule(web: WebServer, r: redis.Redis) -> None:
    """Redis wiped (or a replica promoted empty): the hashes are gone and the keeper marks new data; results
    written before that are no one's expired job, so they stay until jobs.result_ttl."""
    browser = Browser(web.base_url)
    job = browser.submit(keep=str(KEEP_MIN))
    built(web)
    keys = Keys(web.settings.redis.prefix)
    inputs = InputStore.from_settings(web.settings, r)
    assert r.get(keys.epoch) is not None, "the keeper marks when this Redis's data began"
    r.delete(keys.job(job["id"]), keys.epoch)  # the data is lost...
    r.set(keys.epoch, repr(time.time() + 1))  # ...and the keeper, restarted on the empty data, marks it anew
    sweep_once(web.settings, inputs, now=time.time() + KEEP_MIN + 1, results=r)
    names = sorted(p.name for p in Path(web.settings.paths.media).iterdir())
    assert names == sorted([f"{job['id']}.jpg", f"{job['id']}.dz"]), names
