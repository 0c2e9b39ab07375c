"""GitHub: ``GET /users/:login``, ``/users/:login/followers`` and ``/following`` (``per_page`` up to 100), paged
by the ``Link`` header (``rel="next"``, ``page=``).

A user has ``login``, ``html_url`` and ``avatar_url`` (``https://avatars.githubusercontent.com/u/<id>?v=4``,
resized on request with ``s=<px>``); the lists give no display name (``/users/:login`` has ``name``). Every
account has a picture: a default one is a generated identicon, and nothing in the answer says so (the engine's
identity groups catch repeats). An unknown login is 404 ``{"message": "Not Found"}``. Without a token GitHub
allows 60 requests an hour per address (``x-ratelimit-*``; an exhausted limit answers 403 or 429).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from config import FriendsSettings
from workers.inputs.fetch import Page
from workers.inputs.friends.api import Api, next_link
from workers.inputs.friends.model import Candidate, Friend, Tally
from workers.inputs.friends.network import Network, safe_link, text

PAGE = 100
LISTS = {"follows": "following", "followers": "followers"}


class GitHub(Network):
    title = "GitHub"

    def __init__(self, api: Api, settings: FriendsSettings, handle: str, tally: Tally) -> None:
        super().__init__(api, settings, handle, tally)
        self.base = settings.github.api.rstrip("/")
        self.token = settings.github.token

    def get(self, url: str) -> tuple[Any, Page]:
        page = self.api.get(url, self.tally, self.token, self.base, accept="application/vnd.github+json")
        return self.read(page, url), page

    def profile(self) -> Candidate:
        data, _ = self.get(f"{self.base}/users/{quote(self.handle)}")
        user = data if isinstance(data, dict) else {}
        candidate = self.candidate(user)
        name = text(user.get("name")).strip()  # the one answer that has the display name
        return Candidate(dataclasses.replace(candidate.friend, name=name)) if name else candidate

    def pages(self, name: str) -> Iterator[tuple[list[Candidate], Page]]:
        url: str | None = f"{self.base}/users/{quote(self.handle)}/{LISTS[name]}?" + urlencode({"per_page": PAGE})
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            data, page = self.get(url)
            users = [u for u in data if isinstance(u, dict)] if isinstance(data, list) else []
            yield [self.candidate(u) for u in users], page
            url = next_link(page.headers) if users else None

    def candidate(self, user: dict[str, Any]) -> Candidate:
        login = text(user.get("login"), 39)
        avatar = sized(text(user.get("avatar_url"), 2048), self.settings.avatar_px)
        return Candidate(Friend(name=login, handle=login, profile_url=safe_link(user.get("html_url")),
                                avatar_url=avatar))


def sized(url: str, px: int) -> str:
    """``url`` asking for ``px`` pixels (``s=``), its other query fields kept."""
    if not url.startswith(("https://", "http://")):
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "s"] + [("s", str(px))]
    return urlunsplit(parts._replace(query=urlencode(query)))
