"""Which URLs a worker may fetch, and which addresses it may connect to.

http(s) only; public unicast addresses only (no loopback, private, link-local,
multicast or reserved, IPv4 or IPv6, including IPv6 forms that carry an IPv4
address), unless the host is allowlisted. The web host's own signed inputs
(a trusted URL prefix) are allowed too. The address rule is applied when the
connection is made, to the address actually used, so a redirect or a DNS answer
that changes between check and connect cannot get around it.

The web checks a submission's URLs with :meth:`UrlPolicy.check_all`: the same rules, host names looked up on
a small shared pool of threads within one time budget per request, and refusals that never name the address
a host resolves to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from urllib.parse import SplitResult, urlsplit

from workers.protocol.errors import FetchFailed, UrlRefused

Resolver = Callable[[str, int], Iterable[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
LOOKUP_BUDGET = 5.0
"""Seconds the web waits, in all, for the DNS lookups of one submission's URLs; slower hosts are refused."""
LOOKUP_THREADS = 8
"""DNS lookups the web runs at once, shared by all its requests (a lookup cannot be cancelled)."""
MAX_NAME = 253
MAX_LABEL = 63


NO_SUCH_HOST = frozenset(code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code)
"""Resolver answers that mean the name does not exist (a permanent refusal); others (EAI_AGAIN…) are transient."""


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a name may have several)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in NO_SUCH_HOST:  # an authoritative answer: asking again will not help
            raise UrlRefused(f"cannot resolve {host[:80]!r}: no such host") from exc
        raise FetchFailed(f"cannot resolve {host!r}: {exc.strerror}") from exc
    except (UnicodeError, ValueError) as exc:  # a name the IDNA codec or the C library refuses: not a host
        raise UrlRefused(f"{host[:80]!r} is not a valid host name") from exc
    return [str(info[4][0]) for info in infos]


def host_problem(host: str) -> str | None:
    """Why ``host`` (as urlsplit gives it: lower case, no brackets) cannot be a host, or None if it can.

    An IP literal, or a name of 1-63 character labels (an empty one, as in ``a..b``, is refused), 253 in all."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return None
    except ValueError:
        pass
    if any(ch.isspace() or not ch.isprintable() for ch in host):
        return "it contains spaces or control characters"
    name = host[:-1] if host.endswith(".") else host  # one trailing dot: the fully qualified form
    try:
        encoded = name.encode("idna")
    except UnicodeError:
        return "it has an empty, over-long or invalid label"
    if len(encoded) > MAX_NAME:
        return f"it is over {MAX_NAME} characters"
    if not all(0 < len(label) <= MAX_LABEL for label in encoded.split(b".")):
        return "it has an empty or over-long label"
    return None


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
                 resolver: Resolver = resolve, lookup_budget: float = LOOKUP_BUDGET,
                 lookup_threads: int = LOOKUP_THREADS) -> None:
        self.allow_hosts = {h.lower() for h in allow_hosts}
        self.trusted_prefixes = tuple(p.rstrip("/") + "/" for p in trusted_prefixes if p)
        self.trusted_endpoints = {(parts.hostname, port) for parts, port in map(_split, self.trusted_prefixes)}
        self.resolver = resolver
        self.lookup_budget = lookup_budget
        self._lookups = ThreadPoolExecutor(max_workers=lookup_threads, thread_name_prefix="tessera-dns")
        """Threads start on the first check_all (only the web calls it)."""

    def check(self, url: str) -> None:
        """Refuse a URL by scheme, form or (resolved) address; used before any request is sent."""
        endpoint = self.endpoint_to_vet(url)
        if endpoint is not None:
            self._public_address(*endpoint)  # the web host's other paths get no exemption

    def endpoint_to_vet(self, url: str) -> tuple[str, int] | None:
        """The checks that need no lookup: refuse a URL by scheme or form. Returns the host and port whose
        addresses must be public, or None for an allowlisted host or a trusted prefix."""
        parts, port = _split(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {parts.scheme or 'no scheme'!r}: {url[:80]}")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"the URL has no host: {url[:80]}")
        problem = host_problem(host)
        if problem:
            raise UrlRefused(f"the URL's host is not a valid name ({problem}): {url[:80]}")
        if host in self.allow_hosts or (url.startswith(self.trusted_prefixes) and ".." not in parts.path.split("/")):
            return None
        return host, port

    def check_all(self, urls: Iterable[str]) -> None:
        """:meth:`check` for every URL of one submission, as the web does before it answers.

        Every URL's form first; then each distinct host is looked up once, on the shared lookup threads, all
        within ``lookup_budget`` seconds: a host that does not resolve, resolves to a private address or takes
        longer is refused (UrlRefused, never FetchFailed) without naming any address it resolves to."""
        endpoints: list[tuple[str, int]] = []
        for url in urls:
            endpoint = self.endpoint_to_vet(url)
            if endpoint is not None and endpoint not in endpoints:
                endpoints.append(endpoint)
        if not endpoints:
            return
        futures = [self._lookups.submit(self._vet_quietly, host, port) for host, port in endpoints]
        done, late = wait(futures, timeout=self.lookup_budget, return_when=FIRST_EXCEPTION)
        for future in late:
            future.cancel()  # not started yet: never started; running: its thread finishes on its own
        for future in futures:
            if future in done and (error := future.exception()) is not None:
                raise error
        for (host, _), future in zip(endpoints, futures, strict=True):
            if future in late:
                raise UrlRefused(f"looking up {host} took longer than {self.lookup_budget:g} s; refused")

    def _vet_quietly(self, host: str, port: int) -> None:
        """The address rule for the web: its refusals say why, never the address."""
        try:
            addresses = list(self.resolver(host, port))
        except UrlRefused:
            raise
        except (FetchFailed, OSError, ValueError) as exc:
            raise UrlRefused(f"cannot resolve {host}: no such host") from exc
        if not addresses:
            raise UrlRefused(f"cannot resolve {host}: it has no address")
        if not all(is_public(address) for address in addresses):
            raise UrlRefused(f"{host} is not an allowed host (it resolves to a private or loopback address)")

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
                raise UrlRefused(refusal(host))
        return addresses[0]


def refusal(host: str) -> str:
    """Why ``host`` is refused, naming an address only when the URL itself gave it: the reason reaches the job's
    status, and what an internal name resolves to is nobody's business."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return f"{host} resolves to a private or loopback address; refused"
    return f"{host} is a private or loopback address; refused"
