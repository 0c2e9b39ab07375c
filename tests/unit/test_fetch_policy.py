"""Which addresses and URLs a worker may fetch. Only classifies; never connects or resolves for real."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from workers.inputs.fetch import UrlPolicy, is_public
from workers.protocol.errors import UrlRefused

PRIVATE = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
           "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "100.64.0.1", "::",
           "ff02::1"]
PUBLIC = ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", PRIVATE)
def test_not_public(address: str) -> None:
    assert is_public(address) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert is_public(address) is True


DNS = {
    "public.example": ["93.184.216.34"],
    "public6.example": ["2606:4700::1111"],
    "loop.example": ["127.0.0.1"],
    "meta.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "localhost": ["127.0.0.1", "::1"],
    "127.0.0.1": ["127.0.0.1"],
}


class FakeResolver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Iterable[str]:
        self.calls.append((host, port))
        return DNS[host]


def policy(allow: Iterable[str] = (), trusted: Iterable[str] = ()) -> tuple[UrlPolicy, FakeResolver]:
    resolver = FakeResolver()
    return UrlPolicy(allow, trusted, resolver=resolver), resolver


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://public.example/a.png", "data:image/png;base64,AAAA", "gopher://public.example/",
     "public.example/a.png", "http:///a.png", "https://"],
)
def test_refuses_schemes_and_hostless(url: str) -> None:
    checker, resolver = policy()
    with pytest.raises(UrlRefused):
        checker.check(url)
    assert resolver.calls == []


@pytest.mark.parametrize("host", ["loop.example", "meta.example", "mixed.example", "localhost", "127.0.0.1"])
def test_refuses_private_resolution(host: str) -> None:
    checker, _ = policy()
    with pytest.raises(UrlRefused, match="private or loopback"):
        checker.check(f"http://{host}/a.png")


def test_accepts_public_and_resolves_with_port() -> None:
    checker, resolver = policy()
    checker.check("http://public.example/a.png")
    checker.check("https://PUBLIC.example/a.png")
    checker.check("https://public6.example:8443/a.png")
    assert resolver.calls == [("public.example", 80), ("public.example", 443), ("public6.example", 8443)]


def test_allowlisted_host_accepted_without_resolving() -> None:
    checker, resolver = policy(allow=["LocalHost"])
    checker.check("http://localhost:9000/a.png")
    assert resolver.calls == []
    with pytest.raises(UrlRefused):
        checker.check("http://loop.example/a.png")


def test_allowlist_does_not_open_other_schemes() -> None:
    checker, _ = policy(allow=["localhost"])
    with pytest.raises(UrlRefused):
        checker.check("file://localhost/etc/passwd")


def test_trusted_prefix_accepted() -> None:
    checker, resolver = policy(trusted=["http://127.0.0.1:8080/inputs"])
    checker.check("http://127.0.0.1:8080/inputs/job/a.png?exp=1&sig=x")
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/admin", "http://127.0.0.1:8080/inputsX/a.png", "http://127.0.0.1:8080/inputs",
     "http://127.0.0.1:80/inputs/a.png"],
)
def test_trusted_prefix_does_not_match_other_paths(url: str) -> None:
    checker, _ = policy(trusted=["http://127.0.0.1:8080/inputs/"])
    with pytest.raises(UrlRefused):
        checker.check(url)


def test_empty_trusted_prefix_ignored() -> None:
    checker, _ = policy(trusted=[""])
    with pytest.raises(UrlRefused):
        checker.check("http://loop.example/a.png")


@pytest.mark.parametrize("url", ["http://public.example:99999/a.png", "http://public.example:abc/a.png"])
def test_bad_port_is_url_refused(url: str) -> None:
    checker, _ = policy()
    with pytest.raises(UrlRefused):
        checker.check(url)


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "2002:a00:1::"])
def test_ipv6_forms_carrying_private_ipv4_are_not_public(address: str) -> None:
    assert not is_public(address)


def test_dot_segments_do_not_escape_a_trusted_prefix() -> None:
    checker = UrlPolicy([], ["http://127.0.0.1:8080/inputs/"], resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(UrlRefused):
        checker.check("http://127.0.0.1:8080/inputs/../admin")
