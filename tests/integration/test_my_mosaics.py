"""My mosaics on a real server against a real Redis: each browser sees its own jobs, and only those."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.web import WebServer
from web import mine
from workers.cli import client
from workers.protocol.keys import BROWSER_JOBS, Keys

pytestmark = pytest.mark.integration


class Browser:
    """A urllib opener with its own cookie jar: one browser."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, path: str, body: bytes | None = None, content_type: str = "") -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        req = urllib.request.Request(self.base_url + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def submit(self) -> str:
        files = [("target", "target.png", encode(make_target()))] + [
            ("tiles", f"t{i}.png", encode(tile)) for i, tile in enumerate(make_tiles(3))]
        body, content_type = client.encode_multipart({"grid": "8", "tile_px": "8"}, files)
        status, _, reply = self.open("/api/mosaics", body, content_type)
        assert status == 202, reply
        return str(json.loads(reply)["id"])

    def mine(self) -> list[dict[str, Any]]:
        status, headers, reply = self.open("/api/mine")
        assert status == 200 and headers["Content-Type"] == "application/json"
        return list(json.loads(reply)["mosaics"])

    def cookie(self) -> str | None:
        return next((c.value for c in self.jar if c.name == mine.COOKIE), None)


def test_a_browser_lists_its_own_jobs_newest_first(web: WebServer, r: redis.Redis) -> None:
    browser = Browser(web.base_url)
    first, second = browser.submit(), browser.submit()
    listed = browser.mine()
    assert [m["id"] for m in listed] == [second, first]
    assert listed[0] == {"id": second, "state": "queued", "created_at": listed[0]["created_at"],
                         "page_url": f"/mosaics/{second}"}
    assert isinstance(listed[0]["created_at"], float)
    key = Keys(web.settings.redis.prefix).browser_jobs(mine.verified_id(web.settings.web.signing_key,
                                                                        browser.cookie()) or "")
    assert 0 < int(r.ttl(key)) <= web.settings.jobs.result_ttl


def test_another_browser_sees_none_of_mine(web: WebServer, r: redis.Redis) -> None:
    mine_browser, other = Browser(web.base_url), Browser(web.base_url)
    job = mine_browser.submit()
    assert other.mine() == []
    assert other.cookie() and other.cookie() != mine_browser.cookie()  # a fresh id of its own
    other.submit()
    assert [m["id"] for m in mine_browser.mine()] == [job]
    status, _, page = other.open("/mine")
    assert status == 200 and job not in page.decode()


def test_a_forged_cookie_gets_a_fresh_id_and_an_empty_list(web: WebServer, r: redis.Redis) -> None:
    browser = Browser(web.base_url)
    browser.submit()
    real = browser.cookie()
    assert real is not None
    browser_id, _, signature = real.partition(".")
    for forged in (f"{'A' * 24}.{signature}", f"{browser_id}.{'A' * 43}", browser_id, "!pickled?"):
        req = urllib.request.Request(web.base_url + "/api/mine", headers={"Cookie": f"{mine.COOKIE}={forged}"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as reply:
            assert json.loads(reply.read()) == {"mosaics": []}
            fresh = reply.headers["Set-Cookie"]
        assert fresh.startswith(f"{mine.COOKIE}=") and not fresh.startswith(f"{mine.COOKIE}={browser_id}")
        assert "HttpOnly" in fresh


def test_the_page_lists_thumbnails_and_the_list_is_capped(web: WebServer, r: redis.Redis) -> None:
    browser = Browser(web.base_url)
    job = browser.submit()
    keys = Keys(web.settings.redis.prefix)
    r.hset(keys.job(job), mapping={"state": "done", "result": f"{job}.jpg", "deepzoom": f"{job}.dz"})
    assert browser.mine()[0]["thumb_url"] == f"/media/{job}.dz/thumb.jpg"
    status, headers, page = browser.open("/mine")
    assert status == 200 and f'src="/media/{job}.dz/thumb.jpg"' in page.decode()
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    browser_id = mine.verified_id(web.settings.web.signing_key, browser.cookie())
    assert browser_id is not None
    for number in range(BROWSER_JOBS + 5):
        r.lpush(keys.browser_jobs(browser_id), f"expired-job-{number:08d}")
    mine.record(r, keys, browser_id, job, 60)
    browser_key = keys.browser_jobs(browser_id)
    assert int(r.llen(browser_key)) == BROWSER_JOBS
    assert [m["id"] for m in browser.mine()] == [job]  # expired jobs (no status hash) are left out
