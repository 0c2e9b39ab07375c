"""Fetch images by URL for a job, under the URL policy and bounded in bytes, time and redirects.

Connections are pinned: the address a socket connects to is the one the policy
vetted at that moment (workers/inputs/urlpolicy.py), for the first request and after
every redirect. Answers must say they are images (or say nothing).

Time is bounded at every step (``fetch.timeout`` is T): the connection within T; the TLS handshake, the request
and the whole status line and headers within T more, however slowly they trickle in; each body read within T;
the whole body within ``fetch.total_timeout``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from functools import partial
from typing import Any

from config import FetchSettings
from workers.inputs.fetchcache import FetchCache
from workers.inputs.urlpolicy import Resolver, UrlPolicy, is_public, resolve
from workers.protocol.errors import BadImage, FetchFailed, JobRejected, TooLarge

__all__ = ["Fetcher", "Page", "Poster", "UrlPolicy", "is_public", "resolve"]

CHUNK = 64 * 1024
IMAGE_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")


class _HeaderClock:
    """Cuts a connection whose answer's headers have not all come ``seconds`` after it was made.

    A socket timeout bounds each read, not a status line and headers sent a byte at a time; so a timer shuts
    the socket down (the blocked read then ends) unless :meth:`stop` came first."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sock: socket.socket | None = None
        """What to cut: the connection's socket, once made."""
        self._lock = threading.Lock()
        self._stopped = self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` when the clock runs out (at once if it has)."""
        with self._lock:
            self.sock = sock
            if self.expired:
                self._cut()

    def _expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.expired = True
            self._cut()

    def _cut(self) -> None:
        if self.sock is not None:
            try:  # the base class's: an SSLSocket's own shutdown would also drop its TLS state under a reader
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile

    def stop(self) -> bool:
        """Stop the clock; whether it had run out (then the connection was cut)."""
        with self._lock:
            self._stopped = True
        self._timer.cancel()
        return self.expired


class _Pinned:
    """Mixin for http.client connections: connect to the address the policy vets right now, and have the answer's
    headers within ``timeout`` of connecting (_HeaderClock)."""

    host: str
    port: int
    timeout: float | None
    _clock: _HeaderClock | None = None
    _timed_out = False

    def __init__(self, *args: Any, policy: UrlPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _socket(self) -> socket.socket:
        address = self.policy.address_for(self.host, self.port)
        sock = socket.create_connection((address, self.port), self.timeout)
        if isinstance(self.timeout, int | float):
            self._stop_clock()
            self._clock = _HeaderClock(self.timeout)
            self._clock.watch(sock)
        return sock

    def _stop_clock(self) -> bool:
        """Stop the clock; whether it ran out on this connection (remembered: http.client closes the connection,
        which stops the clock, before it re-raises the cut read as a ConnectionError)."""
        clock, self._clock = self._clock, None
        if clock is not None and clock.stop():
            self._timed_out = True
        return self._timed_out

    def getresponse(self) -> http.client.HTTPResponse:
        try:
            response: http.client.HTTPResponse = super().getresponse()  # type: ignore[misc]
        except Exception as exc:
            if self._stop_clock():
                raise TimeoutError(f"no answer within {self.timeout:g} s") from exc
            raise
        if self._stop_clock():
            response.close()
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        return response

    def close(self) -> None:
        self._stop_clock()
        super().close()  # type: ignore[misc]


class _PinnedHTTPConnection(_Pinned, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._socket()


class _PinnedHTTPSConnection(_Pinned, http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = self._context.wrap_socket(self._socket(), server_hostname=self.host,  # type: ignore[attr-defined]
                                         do_handshake_on_connect=False)
        if self._clock is not None:
            self._clock.watch(sock)  # the same descriptor: the clock now also covers the handshake
        self.sock = sock
        sock.do_handshake()


class _PinnedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """Opens http and https URLs through pinned connections."""

    def __init__(self, policy: UrlPolicy, context: ssl.SSLContext | None = None) -> None:
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self, context=context)
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(partial(_PinnedHTTPConnection, policy=self.policy), req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(partial(_PinnedHTTPSConnection, policy=self.policy), req,
                            context=self._context)  # type: ignore[attr-defined]  # None: the default context


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, policy: UrlPolicy, max_redirects: int) -> None:
        self.policy = policy
        self.max_redirections = max_redirects  # type: ignore[misc]  # per instance: from settings

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def,unused-ignore]
        try:
            self.policy.check(newurl)
        except Exception:
            fp.close()  # the refused redirect's own answer (its socket), not left to the garbage collector
            raise
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Fetcher:
    """Gets the bytes behind a URL under the policy and the configured limits."""

    def __init__(self, settings: FetchSettings, trusted_prefixes: Iterable[str] = (),
                 resolver: Resolver = resolve, cache: FetchCache | None = None) -> None:
        self.settings = settings
        self.policy = UrlPolicy(settings.allow_hosts, trusted_prefixes, resolver)
        self.cache = cache
        # No ProxyHandler from the environment: a proxy would hide where we really connect.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _PinnedHandler(self.policy),
            _CheckedRedirects(self.policy, settings.max_redirects))

    def stamp(self, url: str) -> int | None:
        """The fetch cache's stamp of ``url`` (see FetchCache.stamp); None when it is not cached."""
        if self.cache is None or url.startswith(self.policy.trusted_prefixes):
            return None
        return self.cache.stamp(url)

    def get(self, url: str) -> bytes:
        self.policy.check(url)
        cacheable = self.cache is not None and not url.startswith(self.policy.trusted_prefixes)
        if cacheable and (hit := self.cache.get(url)) is not None:  # type: ignore[union-attr]
            return hit
        data = self._download(url)
        if cacheable:
            self.cache.put(url, data)  # type: ignore[union-attr]
        return data

    def _download(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": "tessera/0.1", "Accept": "image/*"})
        with _no_answer(url, "fetch"):
            try:
                with self.opener.open(request, timeout=self.settings.timeout) as response:
                    _check_type(response, url)
                    return self._read_limited(response, url)
            except urllib.error.HTTPError as exc:
                exc.close()  # it holds the answer's socket
                if exc.code >= 500 or exc.code == 429:
                    raise FetchFailed(f"{_short(url)} answered HTTP {exc.code}") from exc
                if 300 <= exc.code < 400:
                    raise JobRejected(f"{_short(url)}: more than {self.settings.max_redirects} redirects") from exc
                raise JobRejected(f"{_short(url)} answered HTTP {exc.code}") from exc

    def get_page(self, url: str, headers: Mapping[str, str], limit: int, timeout: float) -> Page:
        """An API answer of any HTTP status (its body says why), for JSON clients such as the friend lists: the
        same policy, pinning and redirect checks as images, ``timeout`` per step, at most ``limit`` bytes; never
        cached here. Refusals raise UrlRefused, an answer over ``limit`` TooLarge, no answer FetchFailed."""
        self.policy.check(url)
        request = urllib.request.Request(url, headers={"User-Agent": "tessera/0.1", **headers})
        with _no_answer(url, "fetch"), _any_status(self.opener, request, timeout) as response:
            return Page(response.getcode() or 0, response.headers, self._read_limited(response, url, limit))

    def _read_limited(self, response: Any, url: str, limit: int | None = None) -> bytes:
        limit = self.settings.max_bytes if limit is None else limit
        deadline = time.monotonic() + self.settings.total_timeout
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"{_short(url)} is {int(declared):,} bytes, over the limit of {limit:,}")
        chunks, size = [], 0
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{_short(url)} is over the limit of {limit:,} bytes")
            if time.monotonic() > deadline:
                raise FetchFailed(f"{_short(url)} took longer than {self.settings.total_timeout:.0f} s")
            chunks.append(chunk)
        return b"".join(chunks)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other (a webhook is not re-sent elsewhere, and never turned into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def,unused-ignore]
        return None


class Poster:
    """POSTs a small body (a webhook) under the URL policy: the same pinned connections as fetches, no redirect
    followed, ``timeout`` to connect and again for the answer's status line and headers; the body of the answer
    is never read (its status is all that counts), so a receiver that trickles it holds nothing up."""

    def __init__(self, allow_hosts: Iterable[str], timeout: float, ca_file: str = "",
                 resolver: Resolver = resolve) -> None:
        self.policy = UrlPolicy(allow_hosts, (), resolver)  # no trusted prefix: the web host is no exception
        self.timeout = timeout
        context = ssl.create_default_context(cafile=ca_file or None)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  _PinnedHandler(self.policy, context), _NoRedirects())

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """The answer's HTTP status, whatever it is. UrlRefused for a URL the policy refuses (also after a DNS
        change), FetchFailed when no answer came in time or the connection failed."""
        self.policy.check(url)
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "User-Agent": "tessera/0.1", "Content-Type": "application/json", **headers})
        with _no_answer(url, "reach"), _any_status(self.opener, request, self.timeout) as response:
            return int(response.getcode() or 0)


@contextlib.contextmanager
def _no_answer(url: str, verb: str) -> Iterator[None]:
    """No answer (a timeout, a refused or broken connection) is FetchFailed, transient; a refusal the opener's
    handlers raised (UrlRefused, as a URLError's reason) comes out as itself."""
    try:
        yield
    except urllib.error.HTTPError:
        raise  # an answer: the caller's to read
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, JobRejected):
            raise exc.reason from exc
        raise FetchFailed(f"cannot {verb} {_short(url)}: {exc.reason}") from exc
    except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
        raise FetchFailed(f"cannot {verb} {_short(url)}: {exc}") from exc


@contextlib.contextmanager
def _any_status(opener: urllib.request.OpenerDirector, request: urllib.request.Request,
                timeout: float) -> Iterator[Any]:
    """The answer, whatever its status: a 3xx, 4xx or 5xx is read like a 200 (its body says why)."""
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        response = exc
    with response:
        yield response


@dataclass(frozen=True)
class Page:
    """One answer of :meth:`Fetcher.get_page`."""

    status: int
    headers: Message
    body: bytes


def _check_type(response: Any, url: str) -> None:
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(IMAGE_TYPES):
        raise BadImage(f"{_short(url)} is {content_type}, not an image")


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
