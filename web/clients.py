"""Who the client of a request is: the one answer every per-client limit counts by.

The peer address (``REMOTE_ADDR``), unless the peer is one of ``web.trusted_proxies``: then the
right-most ``X-Forwarded-For`` address that is not itself a trusted proxy. Anything a client could
have written there is to the left of what our own proxy appended, so it is never reached; a
malformed value on the way falls back to the peer. IPv6 clients count per /64 (one home or one
host usually holds a whole /64), IPv4 clients per address.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_PREFIX = 64
"""Leading bits of an IPv6 address that name one client."""

MAX_HOPS = 32
"""Most X-Forwarded-For entries looked at, from the right; past them the peer is the client."""


@functools.lru_cache(maxsize=8)
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """``web.trusted_proxies`` parsed (config/settings.py has already refused a bad entry)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def parse_address(text: str) -> Address | None:
    """An address as a peer or a proxy writes it, IPv4-mapped IPv6 as IPv4; None when malformed."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(address.packed)
    return address


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(environ: Mapping[str, Any], trusted: Sequence[str]) -> Address | None:
    """The client's address for a WSGI request; None only when even the peer address is unreadable."""
    peer = parse_address(str(environ.get("REMOTE_ADDR", "")))
    proxies = networks(tuple(trusted))
    if peer is None or not _trusted(peer, proxies):
        return peer
    hops = [hop for hop in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops[-MAX_HOPS:]):
        address = parse_address(hop)
        if address is None:
            return peer
        client = address
        if not _trusted(address, proxies):
            break
    return client  # every hop a trusted proxy: the left-most of them sent the request


def client_key(address: Address | None) -> str:
    """What a client is counted as: an IPv4 address, or the /64 of an IPv6 one ("" if unknown)."""
    if address is None:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def client_id(environ: Mapping[str, Any], trusted: Sequence[str]) -> str:
    """A short hash of the request's client (see the module docstring): enough to count by, nothing to read back."""
    return hashlib.sha256(client_key(client_address(environ, trusted)).encode()).hexdigest()[:16]


def account_id(user: str) -> str:
    """A short hash of an /admin account name as given at login, to count its failures by."""
    return hashlib.sha256(b"account:" + user.encode()).hexdigest()[:16]
