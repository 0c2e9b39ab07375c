"""JSON GETs for the friend lists, polite and bounded.

Every request goes through the worker's Fetcher (workers/inputs/fetch.py ``get_page``): the URL policy, pinned
connections, checked redirects, ``friends.timeout`` per step and ``friends.page_bytes`` per answer. Rate limits
are honoured the way each network announces them:

- a 429 (or GitHub's 403 with ``x-ratelimit-remaining: 0``) is waited out: ``Retry-After`` (seconds or an HTTP
  date), else the limit's reset time, else backoff (workers/protocol/backoff.py); then asked again, up to TRIES;
- an answer that says no request is left (``ratelimit-remaining: 0``, Bluesky; ``x-ratelimit-remaining``, GitHub
  and Mastodon) makes the next request wait for the reset (``ratelimit-reset``: epoch seconds, Bluesky;
  ``x-ratelimit-reset``: epoch seconds on GitHub, an ISO 8601 time on Mastodon).

A wait longer than ``friends.max_wait`` is not slept: the try fails as FetchFailed (transient, the job is retried
later). Every wait is counted in the tally.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from config import FriendsSettings
from workers.inputs.fetch import Fetcher, Page
from workers.inputs.friends.cache import ListCache
from workers.inputs.friends.model import Tally
from workers.protocol.backoff import backoff
from workers.protocol.errors import FetchFailed, JobRejected

TRIES = 4
"""Requests of one URL while it is rate-limited (the first and three after waits)."""
LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]*)*)')
EPOCH_FROM = 1e9
"""A reset value at least this large is a Unix time; a smaller one counts seconds from now."""


class Api:
    """JSON GETs through ``fetcher`` under ``settings`` (friends.*), and the node's list ``cache``; ``sleep`` and
    ``clock`` are time's own unless a caller needs otherwise."""

    def __init__(self, fetcher: Fetcher, settings: FriendsSettings, cache: ListCache | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.fetcher = fetcher
        self.settings = settings
        self.cache = cache
        """Where gathered lists are kept for friends.list_ttl (workers/inputs/friends/cache.py); None = nowhere."""
        self.sleep = sleep
        self.clock = clock
        self._quiet_until: dict[str, float] = {}
        """Per host: when its exhausted rate limit resets (the next request waits for it)."""

    def get(self, url: str, tally: Tally, token: str = "", origin: str = "",
            accept: str = "application/json") -> Page:
        """The answer to GET ``url`` once no rate limit holds it back (any other status is the caller's).

        ``token`` goes as a Bearer token only to URLs under ``origin`` (a Link header may point elsewhere)."""
        headers = {"Accept": accept}
        if token and origin and url.startswith(origin.rstrip("/") + "/"):
            headers["Authorization"] = f"Bearer {token}"
        host = urlsplit(url).netloc
        for attempt in range(TRIES):
            self._wait_until(self._quiet_until.pop(host, 0.0), host, tally)
            page = self.fetcher.get_page(url, headers, self.settings.page_bytes, self.settings.timeout)
            if not _limited(page):
                if _remaining(page.headers) == 0 and (reset := _reset_at(page.headers, self.clock())):
                    self._quiet_until[host] = reset
                return page
            if attempt == TRIES - 1:
                break
            self._wait_until(self.clock() + self._retry_delay(page, attempt), host, tally)
        raise FetchFailed(f"{host} is still rate-limiting after {TRIES} tries")

    def _retry_delay(self, page: Page, attempt: int) -> float:
        now = self.clock()
        after = _retry_after(page.headers, now)
        if after is None and (reset := _reset_at(page.headers, now)) is not None:
            after = reset - now
        return max(0.0, after) if after is not None else backoff(attempt, base=1.0, cap=self.settings.max_wait)

    def _wait_until(self, when: float, host: str, tally: Tally) -> None:
        delay = when - self.clock()
        if delay <= 0:
            return
        if delay > self.settings.max_wait:
            raise FetchFailed(f"{host} asks to wait {delay:.0f} s (rate limit), over friends.max_wait "
                              f"{self.settings.max_wait:g} s; try again later")
        tally.waits += 1
        tally.waited += delay
        self.sleep(delay)


def decode(page: Page, url: str) -> Any:
    """The JSON of a page; a 5xx is transient, a page that is not JSON permanent (a wrong API base, a portal)."""
    if page.status >= 500:
        raise FetchFailed(f"{_short(url)} answered HTTP {page.status}")
    kind = (page.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    try:
        return json.loads(page.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise JobRejected(f"{_short(url)} answered HTTP {page.status} with a page that is not JSON "
                          f"({kind or 'no content type'}); is the API address right?") from exc


def error_text(data: Any) -> str:
    """The message of an API's JSON error (XRPC ``error``/``message``, Mastodon ``error``, GitHub ``message``)."""
    if not isinstance(data, dict):
        return ""
    parts = [str(data[key]) for key in ("error", "message") if isinstance(data.get(key), str)]
    return ": ".join(parts)[:200]


def next_link(headers: Message) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header (Mastodon and GitHub paginate with it), or None."""
    for value in headers.get_all("Link") or []:
        for target, params in LINK.findall(value):
            rels = re.search(r';\s*rel\s*=\s*"?([^";]*)"?', params)
            if rels and "next" in rels.group(1).split():
                return str(target).strip()
    return None


def _limited(page: Page) -> bool:
    return page.status == 429 or (page.status == 403 and (_remaining(page.headers) == 0
                                                          or page.headers.get("Retry-After") is not None))


def _remaining(headers: Message) -> int | None:
    for name in ("RateLimit-Remaining", "X-RateLimit-Remaining"):
        value = (headers.get(name) or "").strip()
        if value.isdigit():
            return int(value)
    return None


def _reset_at(headers: Message, now: float) -> float | None:
    """When the announced rate limit resets, as a Unix time, or None."""
    for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            try:  # Mastodon: an ISO 8601 time
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
        return number if number >= EPOCH_FROM else now + number
    return None


def _retry_after(headers: Message, now: float) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
