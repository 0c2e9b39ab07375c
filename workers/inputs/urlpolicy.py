"""Which URLs a worker may fetch, and which addresses it may connect to.

http(s) only; public unicast addresses only (no loopback, private, link-local,
multicast or reserved, IPv4 or IPv6, including IPv6 forms that carry an IPv4
address), unless the host is allowlisted. The web host's own signed inputs
(a trusted URL prefix) are allowed too. The address rule is applied when the
connection is made, to the address actually used, so a redirect or a DNS answer
that changes between check and connect cannot get around it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import SplitResult, urlsplit

from workers.protocol.errors import FetchFailed, UrlRefused

Resolver = Callable[[str, int], Iterable[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a name may have several)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, link-local, …).

    IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are judged by it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _split(url: str) -> tuple[SplitResult, int]:
    try:
        parts = urlsplit(url)
        return parts, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused(f"malformed URL ({exc}): {url[:80]}") from exc


class UrlPolicy:
    """The rules above; ``resolver`` is replaceable so tests can map names to 127.0.0.x."""

    def __init__(self, allow_hosts: Iterable[str], trusted_prefixes: Iterable[str] = (),
                 resolver: Resolver = resolve) -> None:
        self.allow_hosts = {h.lower() for h in allow_hosts}
        self.trusted_prefixes = tuple(p.rstrip("/") + "/" for p in trusted_prefixes if p)
        self.trusted_endpoints = {(parts.hostname, port) for parts, port in map(_split, self.trusted_prefixes)}
        self.resolver = resolver

    def check(self, url: str) -> None:
        """Refuse a URL by scheme, form or (resolved) address; used before any request is sent."""
        parts, port = _split(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {parts.scheme or 'no scheme'!r}: {url[:80]}")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"the URL has no host: {url[:80]}")
        if host in self.allow_hosts or (url.startswith(self.trusted_prefixes) and ".." not in parts.path.split("/")):
            return
        self._public_address(host, port)  # the web host's other paths get no exemption

    def address_for(self, host: str, port: int) -> str:
        """The address to connect to (URLs were checked first): allowlisted and trusted hosts, else public."""
        host = host.lower()
        if host in self.allow_hosts or (host, port) in self.trusted_endpoints:
            return self._addresses(host, port)[0]
        return self._public_address(host, port)

    def _addresses(self, host: str, port: int) -> list[str]:
        addresses = list(self.resolver(host, port))
        if not addresses:
            raise FetchFailed(f"{host} has no address")
        return addresses

    def _public_address(self, host: str, port: int) -> str:
        addresses = self._addresses(host, port)
        for address in addresses:
            if not is_public(address):
                raise UrlRefused(f"{host} resolves to a private or loopback address ({address}); refused")
        return addresses[0]
