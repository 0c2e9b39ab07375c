"""Bluesky: the AppView's XRPC queries (lexicons app.bsky.actor.getProfile, app.bsky.graph.getFollows and
getFollowers: ``actor``, ``limit`` up to 100, ``cursor``).

A page is ``{"subject": profileView, "follows"|"followers": [profileView], "cursor"?}``; the last page has no
cursor. A profileView has ``did``, ``handle``, ``displayName?`` and ``avatar?``: an account without ``avatar``
shows Bluesky's default picture. An unknown actor is HTTP 400 with ``{"error": "InvalidRequest", "message":
"Actor not found: …"}`` (getProfile: "Profile not found"). A handle whose DNS or DID record broke reads
``handle.invalid``: its link then names the DID.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from config import FriendsSettings
from workers.inputs.fetch import Page
from workers.inputs.friends.api import Api, decode, error_text
from workers.inputs.friends.model import Candidate, Friend, NoSuchAccount, Tally
from workers.inputs.friends.network import Network, text

PAGE = 100
PROFILE_WEB = "https://bsky.app/profile/"
LISTS = {"follows": ("app.bsky.graph.getFollows", "follows"),
         "followers": ("app.bsky.graph.getFollowers", "followers")}
NOT_FOUND = ("ActorNotFound", "AccountTakedown", "AccountDeactivated")


class Bluesky(Network):
    title = "Bluesky"

    def __init__(self, api: Api, settings: FriendsSettings, handle: str, tally: Tally) -> None:
        super().__init__(api, settings, handle, tally)
        self.base = settings.bluesky.api.rstrip("/")
        self.token = settings.bluesky.token

    def _url(self, method: str, **params: str | int) -> str:
        return f"{self.base}/xrpc/{method}?{urlencode(params)}"

    def read(self, page: Page, url: str) -> Any:
        if page.status == 400:  # XRPC's InvalidRequest: an unknown actor among others
            data = decode(page, url)
            error = data.get("error") if isinstance(data, dict) else None
            if error in NOT_FOUND or "not found" in error_text(data).lower():
                raise NoSuchAccount(f"no such account on Bluesky: {self.handle}")
        return super().read(page, url)

    def profile(self) -> Candidate:
        data, _ = self.fetch(self._url("app.bsky.actor.getProfile", actor=self.handle))
        return self.candidate(data)

    def pages(self, name: str) -> Iterator[tuple[list[Candidate], Page]]:
        method, key = LISTS[name]
        cursor = ""
        while True:
            params: dict[str, str | int] = {"actor": self.handle, "limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            data, page = self.fetch(self._url(method, **params))
            accounts = data.get(key) if isinstance(data, dict) else None
            yield [self.candidate(a) for a in accounts or [] if isinstance(a, dict)], page
            following = data.get("cursor") if isinstance(data, dict) else None
            if not isinstance(following, str) or not following or following == cursor or not accounts:
                return
            cursor = following

    def candidate(self, view: dict[str, Any]) -> Candidate:
        did, handle = text(view.get("did"), 2048), text(view.get("handle"), 253)
        shown = handle if handle and handle != "handle.invalid" else did
        avatar = text(view.get("avatar"), 2048)  # vetted by the gatherer, like every picture URL
        if avatar and self.settings.avatar_px <= 128:  # the CDN's 128 px rendition instead of 1000 px
            avatar = avatar.replace("/img/avatar/plain/", "/img/avatar_thumbnail/plain/", 1)
        friend = Friend(name=text(view.get("displayName")).strip() or shown, handle=shown,
                        profile_url=PROFILE_WEB + quote(shown, safe=":.") if shown else "", avatar_url=avatar)
        return Candidate(friend, default=not avatar)
