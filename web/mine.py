"""My mosaics: a signed browser-id cookie, the job ids each browser submitted, and the /mine pages.

The cookie holds ``<browser id>.<HMAC-SHA256 of it>`` under web.signing_key: plain text, never
bottle's pickled "secure cookies". A missing or forged cookie gets a fresh id, so one browser can
never name another's list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any, cast

import redis
from bottle import BaseRequest, BaseResponse, Bottle, HTTPResponse, request, response, template

from web.context import Context
from web.replies import queue_down
from workers.protocol import status
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.keys import BROWSER_JOBS, Keys

log = logging.getLogger(__name__)

VIEWS = str(Path(__file__).parent / "views")
COOKIE = "tessera_browser"
_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")
_FIELDS = ("state", "created_at", "result", "deepzoom")
"""Status-hash fields a list entry needs (never the package: it can hold thousands of URLs)."""


def _signature(key: str, browser: str) -> str:
    digest = hmac.new(key.encode(), b"browser:" + browser.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def cookie_value(key: str, browser: str) -> str:
    return f"{browser}.{_signature(key, browser)}"


def verified_id(key: str, value: str | None) -> str | None:
    """The browser id in a cookie value, or None when it is missing, malformed or not signed by ``key``."""
    browser, _, signature = (value or "").partition(".")
    if not _ID.match(browser) or not hmac.compare_digest(signature, _signature(key, browser)):
        return None
    return browser


def browser_id(req: BaseRequest, key: str) -> tuple[str, bool]:
    """(this browser's id, whether it is new and the cookie must be set)."""
    browser = verified_id(key, req.get_cookie(COOKIE))
    return (browser, False) if browser else (secrets.token_urlsafe(18), True)


def set_cookie(resp: BaseResponse, key: str, browser: str, max_age: int, secure: bool) -> None:
    resp.set_cookie(COOKIE, cookie_value(key, browser), max_age=max_age, path="/", httponly=True,
                    samesite="Lax", secure=secure)


def record(r: redis.Redis, keys: Keys, browser: str, job_id: str, ttl: int) -> None:
    """Put a job at the head of the browser's capped list; the list lives as long as a job does."""
    with r.pipeline(transaction=True) as pipe:
        pipe.lpush(keys.browser_jobs(browser), job_id)
        pipe.ltrim(keys.browser_jobs(browser), 0, BROWSER_JOBS - 1)
        pipe.expire(keys.browser_jobs(browser), ttl)
        pipe.execute()


def mosaics(r: redis.Redis, keys: Keys, browser: str) -> list[dict[str, Any]]:
    """The browser's jobs that still exist, newest first, as /api/mine lists them."""
    job_ids = cast(list[str], r.lrange(keys.browser_jobs(browser), 0, BROWSER_JOBS - 1))
    with r.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), _FIELDS)
        rows = cast(list[list[str | None]], pipe.execute())
    listed = []
    for job_id, values in zip(job_ids, rows, strict=True):
        raw = {name: value for name, value in zip(_FIELDS, values, strict=True) if value is not None}
        if "state" not in raw:
            continue  # expired
        view = status.public_view(job_id, raw)
        entry = {"id": job_id, "state": view["state"], "created_at": view["created_at"],
                 "page_url": f"/mosaics/{job_id}"}
        if "thumb_url" in view:
            entry["thumb_url"] = view["thumb_url"]
        listed.append(entry)
    return listed


def remember_submission(ctx: Context, req: BaseRequest, reply: BaseResponse, job_id: str) -> None:
    """After a job was queued: list it under this browser and (re)set the cookie on the reply.

    A Redis failure here costs only the listing, never the accepted job."""
    key, web = ctx.settings.web.signing_key, ctx.settings.web
    browser, _ = browser_id(req, key)
    try:
        record(ctx.redis, ctx.keys, browser, job_id, ctx.settings.jobs.result_ttl)
    except REDIS_DOWN as exc:
        log.warning("could not list job %s under its browser: %s", job_id, exc)
        return
    set_cookie(reply, key, browser, ctx.settings.jobs.result_ttl, web.public_url.startswith("https:"))


def register(app: Bottle, ctx: Context) -> None:
    settings = ctx.settings
    secure = settings.web.public_url.startswith("https:")

    def current(resp: BaseResponse) -> str:
        browser, fresh = browser_id(request, settings.web.signing_key)
        if fresh:
            set_cookie(resp, settings.web.signing_key, browser, settings.jobs.result_ttl, secure)
        return browser

    @app.get("/api/mine")
    def api_mine() -> HTTPResponse:
        reply = HTTPResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-store"})
        browser = current(reply)
        try:
            reply.body = json.dumps({"mosaics": mosaics(ctx.redis, ctx.keys, browser)})
        except REDIS_DOWN:
            return queue_down()
        return reply

    @app.get("/mine")
    def mine_page() -> str:
        browser = current(response)
        response.set_header("Cache-Control", "no-store")
        try:
            listed, reachable = mosaics(ctx.redis, ctx.keys, browser), True
        except REDIS_DOWN:
            listed, reachable = [], False
        return str(template("mine", template_lookup=[VIEWS], title="My mosaics", mosaics=listed,
                            reachable=reachable))
