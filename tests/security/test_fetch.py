"""The whole fetch path against a hostile loopback server, with a test resolver for names.

Only 127.0.0.1 is ever connected to: `good.test` maps there and is allowlisted; every
other name or address is refused before a connection is made (and the test resolver
records each lookup so a test can show what was asked).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import config
from tests.helpers.hostile import PNG, Hostile, QuietServer
from workers.inputs.fetch import Fetcher
from workers.inputs.fetchcache import FetchCache
from workers.protocol.errors import BadImage, FetchFailed, JobRejected, TooLarge, UrlRefused


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = QuietServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Resolver:
    """good.test and evil.test both map to 127.0.0.1; only good.test is allowlisted."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        table = {"good.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"], "mixed.test": ["93.184.216.34", "10.0.0.9"]}
        if host in table:
            return table[host]
        if host[0].isdigit() or ":" in host:
            return [host]
        raise FetchFailed(f"cannot resolve {host!r}")


def fetcher(resolver: Resolver, **changes: Any) -> Fetcher:
    settings = dataclasses.replace(config.load(env={}).fetch, allow_hosts=["good.test"], timeout=2.0,
                                   total_timeout=1.0, max_bytes=2048, **changes)
    return Fetcher(settings, resolver=resolver)


CASES = [
    ("/ok.png", None, ""),
    ("/hop1", None, ""),
    ("/page.png", BadImage, "is text/html, not an image"),
    ("/missing.png", JobRejected, "answered HTTP 404"),
    ("/broken.png", FetchFailed, "answered HTTP 503"),
    ("/huge.png", TooLarge, "4,096 bytes, over the limit of 2,048"),
    ("/endless.png", TooLarge, "over the limit of 2,048 bytes"),
    ("/slow.png", FetchFailed, "took longer than 1 s"),
    ("/to-private", UrlRefused, "10.1.2.3 is a private or loopback address; refused"),
    ("/to-metadata", UrlRefused, "169.254.169.254 is a private or loopback address"),
    ("/to-evil-name", UrlRefused, "evil.test resolves to a private or loopback address; refused"),
    ("/to-file", JobRejected, ""),
    ("/loop", JobRejected, "more than 5 redirects"),
]


@pytest.mark.parametrize(("path", "error", "reason"), CASES, ids=[c[0] for c in CASES])
def test_hostile_answers(port: int, path: str, error: type[Exception] | None, reason: str) -> None:
    get = fetcher(Resolver()).get
    url = f"http://good.test:{port}{path}"
    if error is None:
        assert get(url) == PNG
        return
    with pytest.raises(error) as caught:
        get(url)
    assert reason in str(caught.value)
    assert path != "/to-evil-name" or "127.0.0.1" not in str(caught.value)  # a name's address is never told


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://good.test/a.png", "gopher://good.test/",
                                 "data:image/png;base64,AAAA", "http://127.0.0.1/x.png", "http://[::1]/x.png",
                                 "http://169.254.169.254/", "http://224.0.0.1/", "http://mixed.test/a.png"])
def test_refused_before_any_connection(url: str) -> None:
    with pytest.raises(UrlRefused):
        fetcher(Resolver()).get(url)


def test_dns_answer_that_changes_after_the_check_is_refused_at_connect(port: int) -> None:
    class Rebinding(Resolver):
        def __call__(self, host: str, port: int) -> list[str]:
            self.asked.append(host)
            return ["93.184.216.34"] if len(self.asked) == 1 else ["127.0.0.1"]  # public, then loopback

    resolver = Rebinding()
    with pytest.raises(UrlRefused, match="rebind.test resolves to a private or loopback address"):
        fetcher(resolver).get(f"http://rebind.test:{port}/ok.png")
    assert resolver.asked == ["rebind.test", "rebind.test"]  # checked, then vetted again at connect


def test_the_same_picture_is_fetched_once(port: int, tmp_path: pytest.TempPathFactory) -> None:
    resolver = Resolver()
    settings = dataclasses.replace(config.load(env={}).fetch, allow_hosts=["good.test"])
    cached = Fetcher(settings, resolver=resolver, cache=FetchCache(str(tmp_path), max_age=60))
    url = f"http://good.test:{port}/ok.png"
    assert cached.get(url) == cached.get(url) == PNG
    assert resolver.asked.count("good.test") == 1  # the second get never reached the network


def test_https_goes_through_the_pinned_path_and_verifies(port: int) -> None:
    resolver = Resolver()
    with pytest.raises(FetchFailed, match="cannot fetch"):  # a plain-HTTP server: the TLS handshake fails
        fetcher(resolver).get(f"https://good.test:{port}/ok.png")
    assert resolver.asked == ["good.test"]  # resolved at connect, by the policy
