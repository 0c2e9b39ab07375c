"""Fetch images by URL for a job: http(s) only, public addresses only, bounded size and time."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from config import FetchSettings
from workers.errors import FetchFailed, JobRejected, TooLarge, UrlRefused

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
Resolver = Callable[[str, int], Iterable[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a name may have several)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return [str(info[4][0]) for info in infos]


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


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


class UrlPolicy:
    """Which URLs a worker may fetch: the web host's own inputs, allowlisted hosts, public addresses."""

    def __init__(self, allow_hosts: Iterable[str], trusted_prefixes: Iterable[str] = (),
                 resolver: Resolver = resolve) -> None:
        self.allow_hosts = {h.lower() for h in allow_hosts}
        self.trusted_prefixes = tuple(p.rstrip("/") + "/" for p in trusted_prefixes if p)
        self.resolver = resolver

    def check(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise UrlRefused(f"malformed URL ({exc}): {url[:80]}") from exc
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {parts.scheme or 'no scheme'!r}: {url[:80]}")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"the URL has no host: {url[:80]}")
        if host in self.allow_hosts or (url.startswith(self.trusted_prefixes) and ".." not in parts.path.split("/")):
            return
        for address in self.resolver(host, port):
            if not is_public(address):
                raise UrlRefused(f"{host} resolves to a private or loopback address ({address}); refused")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def,unused-ignore]
        self.policy.check(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Fetcher:
    """Gets the bytes behind a URL under the policy and the configured limits."""

    def __init__(self, settings: FetchSettings, trusted_prefixes: Iterable[str] = (),
                 resolver: Resolver = resolve) -> None:
        self.settings = settings
        self.policy = UrlPolicy(settings.allow_hosts, trusted_prefixes, resolver)
        # No ProxyHandler from the environment: a proxy would hide where we really connect.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _CheckedRedirects(self.policy))

    def get(self, url: str) -> bytes:
        self.policy.check(url)
        request = urllib.request.Request(url, headers={"User-Agent": "tessera/0.1", "Accept": "image/*"})
        try:
            with self.opener.open(request, timeout=self.settings.timeout) as response:
                return self._read_limited(response, url)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise FetchFailed(f"{_short(url)} answered HTTP {exc.code}") from exc
            raise JobRejected(f"{_short(url)} answered HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, JobRejected):
                raise exc.reason from exc
            raise FetchFailed(f"cannot fetch {_short(url)}: {exc.reason}") from exc
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise FetchFailed(f"cannot fetch {_short(url)}: {exc}") from exc

    def _read_limited(self, response: Any, url: str) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"{_short(url)} is {int(declared):,} bytes, over the limit of {limit:,}")
        chunks, size = [], 0
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{_short(url)} is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
