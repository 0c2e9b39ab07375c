"""What every network's lister does the same way: ask, tell an unknown account from other refusals, page on.

A network module (bluesky.py, mastodon.py, github.py) says how to build its URLs, how to read one account and
where the next page is; this base turns HTTP answers into the errors of the exception tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config import FriendsSettings
from workers.inputs.fetch import Page
from workers.inputs.friends.api import Api, decode, error_text
from workers.inputs.friends.model import Candidate, NoSuchAccount, Tally
from workers.protocol.errors import JobRejected, TesseraError


class Hidden(TesseraError):
    """A list the network will not show (no login, or hidden by its owner); the gatherer notes ``reason``."""

    code = "list_hidden"


class Network:
    """One handle's lists on one network; subclasses fill in the URLs and the account shape."""

    title = ""
    """The network's name in messages."""
    token = ""

    def __init__(self, api: Api, settings: FriendsSettings, handle: str, tally: Tally) -> None:
        self.api = api
        self.settings = settings
        self.handle = handle
        self.tally = tally
        self.base = ""
        """The API base URL (also part of the cache key: another base is another list)."""

    def profile(self) -> Candidate:
        """The account itself (NoSuchAccount when the network has none by that handle)."""
        raise NotImplementedError

    def pages(self, name: str) -> Iterator[tuple[list[Candidate], Page]]:
        """Each page of list ``name`` (follows or followers), in the network's order, to its end."""
        raise NotImplementedError

    def fetch(self, url: str) -> tuple[Any, Page]:
        """The JSON of ``url`` with its answer, or the error the answer means: 404 is "no such account", 401 and
        403 a list that needs a login (Hidden), a 5xx transient, any other status permanent."""
        page = self.api.get(url, self.tally, self.token, self.base)
        return self.read(page, url), page

    def read(self, page: Page, url: str) -> Any:
        """The JSON of an answer, or the error its status means."""
        if page.status == 404:
            raise NoSuchAccount(f"no such account on {self.title}: {self.handle}")
        data = decode(page, url)
        if page.status in (401, 403):
            raise Hidden(f"{self.title} wants a login to show it (HTTP {page.status}: {error_text(data)})")
        if page.status != 200:
            raise JobRejected(f"{self.title} answered HTTP {page.status} for {self.handle}: {error_text(data)}")
        return data


def safe_link(url: Any) -> str:
    """``url`` if it is an http(s) link (it becomes a link in the viewer), else ""."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 2048 else ""


def text(value: Any, limit: int = 200) -> str:
    """A string field of an API's account without control characters, cut to ``limit``; "" for anything else
    (names and handles end up as labels in the viewer)."""
    return "".join(ch for ch in value[:limit] if ch.isprintable()) if isinstance(value, str) else ""
