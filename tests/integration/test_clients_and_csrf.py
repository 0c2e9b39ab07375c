"""Per-client limits behind a reverse proxy, the /admin lockout per account, and CSRF, on a real server.

The "proxy" is the loopback address 127.0.0.2 (trusted through web.trusted_proxies); a request from
127.0.0.1 is a client talking to the app directly, whatever X-Forwarded-For it writes.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
import redis

from tests.helpers.keeper import queued_count
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from web import mine
from web.admin import MAX_ACCOUNT_FAILURES, MAX_LOGIN_FAILURES
from workers.protocol.keys import Keys

pytestmark = pytest.mark.integration
PROXY, DIRECT = "127.0.0.2", "127.0.0.1"
PASSWORD = "correct horse battery staple"
JOB = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()
FORM = urlencode({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": "http://127.0.0.1:9/a.png"}).encode()


def send(web: WebServer, method: str, path: str, source: str = DIRECT, body: bytes | None = None,
         **headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request from the loopback address ``source``: (status, headers, body)."""
    url = urlsplit(web.base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def submit(web: WebServer, source: str = DIRECT, forwarded: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return send(web, "POST", "/api/mosaics", source, JOB, **headers)[0]


def inside_one_minute(seconds: float = 15) -> None:
    """The limits count in fixed one-minute windows: start a burst where it ends inside the same one."""
    if time.time() % 60 > 60 - seconds:
        time.sleep(60.5 - time.time() % 60)


@pytest.fixture
def proxied(make_settings: SettingsFactory) -> Iterator[WebServer]:
    with serving(make_settings, TESSERA_WEB_TRUSTED_PROXIES=f"{PROXY},10.9.0.0/16",
                 TESSERA_WEB_RATE_LIMIT_PER_MINUTE="2", TESSERA_WEB_ADMIN_PASSWORD=PASSWORD) as server:
        yield server


def test_clients_behind_a_trusted_proxy_have_their_own_rate_limit(proxied: WebServer, r: redis.Redis) -> None:
    inside_one_minute()
    # Straight from a client: a header it wrote names nobody, so changing it escapes nothing.
    assert [submit(proxied, DIRECT, f"198.51.100.{i}") for i in range(4)] == [202, 202, 429, 429]
    # Through the proxy: each client counts on its own.
    assert [submit(proxied, PROXY, "198.51.100.10") for _ in range(3)] == [202, 202, 429]
    assert submit(proxied, PROXY, "6.6.6.6, 198.51.100.10") == 429  # what the client prepended is not read
    assert submit(proxied, PROXY, "198.51.100.10, 10.9.3.4") == 429  # through a second trusted proxy: the same
    assert submit(proxied, PROXY, "198.51.100.11") == 202
    assert submit(proxied, PROXY, "198.51.100.12, 10.9.3.4") == 202
    assert submit(proxied, PROXY, "not an address") == 202  # malformed: the proxy itself is the client
    assert submit(proxied, PROXY) == 202  # the proxy again: its own second submission
    assert submit(proxied, PROXY, "garbage") == 429


def test_active_jobs_are_counted_per_client_and_per_ipv6_64(make_settings: SettingsFactory, r: redis.Redis) -> None:
    with serving(make_settings, TESSERA_WEB_TRUSTED_PROXIES=PROXY, TESSERA_WEB_MAX_ACTIVE_JOBS="1") as web:
        assert [submit(web, PROXY, "198.51.100.1") for _ in range(2)] == [202, 429]
        assert submit(web, PROXY, "198.51.100.2") == 202
        assert submit(web, PROXY, "2001:db8:1:2::1") == 202
        assert submit(web, PROXY, "2001:db8:1:2:aaaa:bbbb:cccc:dddd") == 429  # the same /64: one client
        assert submit(web, PROXY, "2001:db8:1:3::1") == 202
        assert submit(web, DIRECT, "198.51.100.3") == 202 and submit(web, DIRECT, "198.51.100.4") == 429


def login(web: WebServer, user: str, password: str, forwarded: str) -> int:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return send(web, "GET", "/admin", PROXY, Authorization=f"Basic {token}", X_Forwarded_For=forwarded)[0]


def test_admin_logins_are_limited_per_client_and_per_account(proxied: WebServer, r: redis.Redis) -> None:
    inside_one_minute(30)
    # Per client behind the proxy: one client's failures lock that client, not the operator next to it.
    assert [login(proxied, "admin", "wrong", "203.0.113.1") for _ in range(MAX_LOGIN_FAILURES)] == \
        [401] * MAX_LOGIN_FAILURES
    assert login(proxied, "admin", PASSWORD, "203.0.113.1") == 429
    assert login(proxied, "admin", PASSWORD, "203.0.113.2") == 200
    # Per account: guessing one account from many addresses locks that account only.
    guesses = [login(proxied, "root", "guess", f"198.18.0.{i}") for i in range(MAX_ACCOUNT_FAILURES)]
    assert guesses == [401] * MAX_ACCOUNT_FAILURES
    assert login(proxied, "root", "guess", "198.18.1.1") == 429
    assert login(proxied, "admin", PASSWORD, "198.18.1.2") == 200
    more = MAX_ACCOUNT_FAILURES - MAX_LOGIN_FAILURES
    assert [login(proxied, "admin", "wrong", f"198.19.0.{i}") for i in range(more)] == [401] * more
    assert login(proxied, "admin", PASSWORD, "198.19.1.1") == 429  # the right password too, until the minute ends
    prefix = proxied.settings.redis.prefix
    counts = list(r.scan_iter(match=f"{prefix}:rate:admin-account:*"))
    assert len(counts) == 1 and 60 < r.ttl(counts[0]) <= 120
    assert sorted(r.hgetall(counts[0]).values(), key=int) == [str(MAX_ACCOUNT_FAILURES)] * 2  # hashed names
    assert not any(name in str(r.hgetall(counts[0])) for name in ("root", "admin"))


def test_a_cross_site_form_post_is_refused_and_keeps_the_cookie(web: WebServer, r: redis.Redis) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = send(web, "POST", "/api/mosaics", body=FORM, **form)  # the victim's own job
    assert status == 202
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith(mine.COOKIE + "=")
    keys = Keys(web.settings.redis.prefix)
    queued = queued_count(r, keys)
    for where in ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
                  {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"},
                  {"Sec-Fetch-Site": "same-site", "Origin": "http://blog.127.0.0.1.nip.example"}):
        status, headers, body = send(web, "POST", "/api/mosaics", body=FORM, Cookie=cookie, **form, **where)
        assert status == 403, where
        assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"
        assert json.loads(body)["error"]["code"] == "cross_site" and set(json.loads(body)["error"]) == {"code",
                                                                                                        "message"}
        assert "Set-Cookie" not in headers, where
    assert queued_count(r, keys) == queued  # nothing was queued
    status, _, listed = send(web, "GET", "/api/mine", Cookie=cookie)
    assert status == 200 and len(json.loads(listed)["mosaics"]) == 1  # the victim's list is still its own
    same_origin = {"Origin": web.base_url, "Sec-Fetch-Site": "same-origin"}
    status, headers, _ = send(web, "POST", "/api/mosaics", body=FORM, Cookie=cookie, **form, **same_origin)
    assert status == 202 and headers["Set-Cookie"].split(";")[0] == cookie
    assert send(web, "POST", "/api/mosaics", body=JOB, **{"Content-Type": "application/json",
                                                          "Origin": web.base_url})[0] == 202
    assert queued_count(r, keys) == queued + 2
