"""Who the client is (web/clients.py) and which posts are cross-site (web/csrf.py): pure logic, no server."""

from __future__ import annotations

import io
from fnmatch import fnmatchcase
from typing import Any

import pytest
from bottle import Bottle

import config
from tests.helpers.settings import SettingsFactory
from web import clients, csrf
from workers.protocol.keys import Keys
from workers.service.redis_server import role_patterns

PROXY = ["10.0.0.1", "192.168.0.0/16", "2001:db8:ffff::/48"]


def request(peer: str, forwarded: str | None = None) -> dict[str, Any]:
    environ = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return environ


def who(peer: str, forwarded: str | None = None, trusted: list[str] = PROXY) -> str:
    return clients.client_key(clients.client_address(request(peer, forwarded), trusted))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert who("203.0.113.7", "198.51.100.1") == "203.0.113.7"
    assert who("203.0.113.7", "198.51.100.1", trusted=[]) == "203.0.113.7"
    assert who("10.0.0.1", "198.51.100.1", trusted=[]) == "10.0.0.1"  # trust none by default
    assert who("10.0.0.2", "198.51.100.1") == "10.0.0.2"  # next to a proxy is not a proxy


def test_a_trusted_proxy_names_the_right_most_untrusted_address() -> None:
    assert who("10.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert who("10.0.0.1", "6.6.6.6, 198.51.100.1") == "198.51.100.1"  # what the client wrote is left of it
    assert who("10.0.0.1", "6.6.6.6, 198.51.100.1, 192.168.3.4") == "198.51.100.1"  # through two proxies
    assert who("192.168.7.7", " 198.51.100.2 ,192.168.1.1") == "198.51.100.2"  # a CIDR; spaces
    assert who("10.0.0.1", "192.168.1.1, 192.168.2.2") == "192.168.1.1"  # all proxies: the first of them
    assert who("10.0.0.1") == "10.0.0.1" and who("10.0.0.1", "") == "10.0.0.1"  # nothing forwarded


@pytest.mark.parametrize("forwarded", ["not-an-address", "198.51.100.1:5000", "1.2.3.4, junk", "[2001:db8::1]",
                                       "1.2.3.4, 300.1.1.1", "unknown", "198.51.100.1, 192.168.1.1, x"])
def test_a_malformed_forwarded_value_falls_back_to_the_peer(forwarded: str) -> None:
    assert who("10.0.0.1", forwarded) == "10.0.0.1"


def test_empty_items_are_no_hops() -> None:
    assert who("10.0.0.1", "198.51.100.1, ,") == "198.51.100.1"


def test_ipv6_clients_are_counted_per_64() -> None:
    one = clients.client_id(request("2001:db8:1:2::1"), [])
    assert clients.client_id(request("2001:db8:1:2:ffff:eeee:dddd:cccc"), []) == one  # same /64
    assert clients.client_id(request("2001:db8:1:2::1%eth0"), []) == one  # a zone is no other host
    assert clients.client_id(request("2001:db8:1:3::1"), []) != one  # the next /64
    assert who("2001:db8:1:2::99") == "2001:db8:1:2::/64"
    assert who("2001:db8:ffff::1", "2001:db8:5:6:7::8") == "2001:db8:5:6::/64"  # forwarded by a v6 proxy
    assert who("10.0.0.1", "2001:db8:5:6:7::8, 192.168.0.9") == "2001:db8:5:6::/64"


def test_ipv4_clients_are_counted_per_address() -> None:
    assert clients.client_id(request("198.51.100.1"), []) != clients.client_id(request("198.51.100.2"), [])
    assert who("::ffff:198.51.100.1") == "198.51.100.1"  # IPv4-mapped, as a dual-stack socket reports it
    assert clients.client_id(request("::ffff:198.51.100.1"), []) == clients.client_id(request("198.51.100.1"), [])
    assert who("10.0.0.1", "::ffff:198.51.100.5") == "198.51.100.5"


def test_the_id_is_a_hash_and_an_unreadable_peer_is_one_client() -> None:
    ident = clients.client_id(request("198.51.100.1"), [])
    assert len(ident) == 16 and "198" not in ident
    assert clients.client_id({}, []) == clients.client_id(request("garbage"), [])


def test_account_failures_are_a_web_key() -> None:
    keys = Keys("demo")
    assert keys.login_account_failures(1700) != keys.login_failures(1700)
    assert any(fnmatchcase(keys.login_account_failures(1700), p) for p in role_patterns("web", "demo"))
    assert clients.account_id("admin") != clients.account_id("root") and len(clients.account_id("x")) == 16


def test_trusted_proxies_are_checked_at_load(make_settings: SettingsFactory) -> None:
    assert make_settings().web.trusted_proxies == []
    got = make_settings(TESSERA_WEB_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8,::1").web.trusted_proxies
    assert got == ["127.0.0.1", "10.0.0.0/8", "::1"]
    with pytest.raises(config.ConfigError, match=r"web\.trusted_proxies: .*'10\.0\.0\.300'"):
        make_settings(TESSERA_WEB_TRUSTED_PROXIES="10.0.0.300")


APP = "https://mosaic.example"


def post(**headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "HTTP_HOST": "mosaic.example", "wsgi.url_scheme": "https"}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    return environ


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": APP},  # the browser's word wins
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Origin": "http://mosaic.example"},  # another scheme is another origin
    {"Origin": "https://mosaic.example:8443"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://blog.mosaic.example"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
])
def test_cross_site_posts_are_refused(headers: dict[str, str]) -> None:
    assert csrf.cross_site(post(**headers), APP) is not None


@pytest.mark.parametrize("headers", [
    {},  # curl, scripts, `tessera demo`
    {"Origin": APP}, {"Origin": "HTTPS://Mosaic.Example:443"},
    {"Sec-Fetch-Site": "same-origin", "Origin": APP}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
])
def test_same_origin_and_header_less_posts_are_accepted(headers: dict[str, str]) -> None:
    assert csrf.cross_site(post(**headers), APP) is None


def test_the_host_header_is_an_own_origin_and_reads_are_never_refused() -> None:
    behind = {**post(Origin="http://127.0.0.1:8080"), "HTTP_HOST": "127.0.0.1:8080", "wsgi.url_scheme": "http"}
    assert csrf.cross_site(behind, APP) is None
    assert csrf.cross_site({**post(Origin="http://[::1]:8080"), "HTTP_HOST": "[::1]:8080",
                            "wsgi.url_scheme": "http"}, APP) is None
    assert csrf.cross_site({**post(**{"Sec-Fetch-Site": "cross-site"}), "REQUEST_METHOD": "GET"}, APP) is None


def test_the_app_refuses_a_cross_site_post_before_any_route(make_settings: SettingsFactory) -> None:
    """In process: the hook answers 403 in the API's error shape, and the route never runs."""
    from web.app import make_app

    app: Bottle = make_app(make_settings(TESSERA_WEB_PUBLIC_URL=APP))
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        started.extend([status, *(f"{name}: {value}" for name, value in headers)])

    environ = {**post(Origin="https://evil.example"), "PATH_INFO": "/api/mosaics", "SERVER_NAME": "mosaic.example",
               "SERVER_PORT": "443", "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO()}
    body = b"".join(app(environ, start_response))
    assert started[0].startswith("403") and b'"code": "cross_site"' in body
    assert "Content-Type: application/json" in started and "X-Content-Type-Options: nosniff" in started
    assert not any(line.lower().startswith("set-cookie") for line in started)
