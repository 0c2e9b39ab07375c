"""Refuse cross-site state-changing requests (CSRF): a page elsewhere must not post in a visitor's name.

Browsers say where a request comes from: ``Sec-Fetch-Site`` (same-origin, same-site, cross-site, none)
and, on every POST, ``Origin``. A request is refused when ``Sec-Fetch-Site`` is cross-site, or when
``Origin`` names another origin than this app's own (``web.public_url``, or the Host it was sent to),
or when it is same-site with no ``Origin`` to show it is ours. A request with neither header is not
from a browser page (curl, scripts, `tessera demo`) and stays accepted, as the API is used that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change state; GET and HEAD never do here, so only these are checked."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case and without a default port; None if it has no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as an Origin header writes it
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def own_origins(environ: Mapping[str, Any], public_url: str) -> set[str]:
    """The origins this app answers as: its public URL's, and the Host this request was sent to."""
    origins = {origin_of(public_url)}
    host = str(environ.get("HTTP_HOST", ""))
    if host:
        origins.add(origin_of(f"{environ.get('wsgi.url_scheme', 'http')}://{host}"))
    return {origin for origin in origins if origin}


def cross_site(environ: Mapping[str, Any], public_url: str) -> str | None:
    """Why this request must be refused as cross-site, or None when it may go on."""
    if str(environ.get("REQUEST_METHOD", "GET")).upper() not in UNSAFE_METHODS:
        return None
    fetch_site = str(environ.get("HTTP_SEC_FETCH_SITE", "")).strip().lower()
    if fetch_site == "cross-site":
        return "a cross-site request"
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        given = origin_of(str(origin))
        if given is None or given not in own_origins(environ, public_url):
            return "a request from another origin"
        return None
    if fetch_site == "same-site":  # another origin of this site, and no Origin to say otherwise
        return "a request from another origin of this site"
    return None
