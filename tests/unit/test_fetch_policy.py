"""Which addresses and URLs a worker may fetch. Only classifies; never connects or resolves for real."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

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


EMBEDDED_PRIVATE = ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
"""IPv4 addresses no fetch may reach, whatever IPv6 form carries them."""


def nat64(ipv4: str) -> str:
    """The well-known-prefix NAT64 address (RFC 6052, 64:ff9b::/96) that reaches ``ipv4``."""
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(ipv4))))


def sixtofour(ipv4: str, host: str = "::1") -> str:
    """A 6to4 address (RFC 3056, 2002:<ipv4>::/48) whose relay delivers to ``ipv4``."""
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(ipv4)) << 80)
                                     | int(ipaddress.IPv6Address(host))))


@pytest.mark.parametrize("ipv4", EMBEDDED_PRIVATE)
@pytest.mark.parametrize("form", [nat64, sixtofour], ids=["nat64", "6to4"])
def test_nat64_and_6to4_carrying_a_private_ipv4_are_refused(form: Callable[[str], str], ipv4: str) -> None:
    """Python calls these IPv6 addresses global: only the embedded-IPv4 rule of is_public refuses them."""
    address = form(ipv4)
    assert ipaddress.ip_address(address).is_global  # so the rule, not the library, is what is tested
    assert is_public(address) is False
    checker = UrlPolicy([], resolver=lambda host, port: [address])
    with pytest.raises(UrlRefused):
        checker.check("http://nat.example/a.png")


@pytest.mark.parametrize("ipv4", ["8.8.8.8", "93.184.216.34"])
@pytest.mark.parametrize("form", [nat64, sixtofour], ids=["nat64", "6to4"])
def test_nat64_and_6to4_carrying_a_public_ipv4_are_public(form: Callable[[str], str], ipv4: str) -> None:
    """The rule judges the carried address: an IPv6-only network's way to a public host stays open."""
    address = form(ipv4)
    assert is_public(address) is True
    UrlPolicy([], resolver=lambda host, port: [address]).check("http://nat.example/a.png")


def test_embedded_address_forms_are_the_ones_the_rules_read() -> None:
    assert nat64("169.254.169.254") == "64:ff9b::a9fe:a9fe"
    assert ipaddress.IPv6Address(sixtofour("10.0.0.1")).sixtofour == ipaddress.IPv4Address("10.0.0.1")


def test_dot_segments_do_not_escape_a_trusted_prefix() -> None:
    checker = UrlPolicy([], ["http://127.0.0.1:8080/inputs/"], resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(UrlRefused):
        checker.check("http://127.0.0.1:8080/inputs/../admin")
