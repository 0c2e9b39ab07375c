"""Mastodon (and servers that speak its API): ``GET /api/v1/accounts/lookup?acct=``, then
``/api/v1/accounts/:id/following`` and ``/followers`` (``limit`` up to 80), paged by the ``Link`` header only
(the follow ids behind ``max_id`` are not in the answers).

An account has ``id``, ``acct`` (``user`` on its own instance, ``user@domain`` elsewhere), ``display_name``,
``url``, ``avatar`` and ``avatar_static`` (the still picture we take), and since 4.1 ``hide_collections``. An
account without a picture has the instance's ``…/avatars/original/missing.png``. An unknown account is 404
``{"error": "Record not found"}`` (410 for a suspended one before 3.3). A hidden network answers an empty list
(401 where the instance wants a login for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from config import FriendsSettings
from workers.inputs.fetch import Page
from workers.inputs.friends.api import Api, next_link
from workers.inputs.friends.model import Candidate, Friend, NoSuchAccount, Tally
from workers.inputs.friends.network import Hidden, Network, safe_link, text

PAGE = 80
LISTS = {"follows": "following", "followers": "followers"}
DEFAULT_AVATAR = "/missing.png"


class Mastodon(Network):
    title = "Mastodon"

    def __init__(self, api: Api, settings: FriendsSettings, handle: str, tally: Tally) -> None:
        super().__init__(api, settings, handle, tally)
        self.user, _, self.instance = handle.partition("@")
        configured = settings.mastodon.api
        self.base = (configured.replace("{instance}", self.instance) if configured
                     else f"https://{self.instance}").rstrip("/")
        self.token = settings.mastodon.token
        self.account: dict[str, Any] = {}

    def read(self, page: Page, url: str) -> Any:
        if page.status == 410:
            raise NoSuchAccount(f"no such account on Mastodon: {self.handle} (suspended)")
        return super().read(page, url)

    def _lookup(self) -> dict[str, Any]:
        if not self.account:
            data, _ = self.fetch(f"{self.base}/api/v1/accounts/lookup?{urlencode({'acct': self.user})}")
            if not isinstance(data, dict) or not isinstance(data.get("id"), str | int):
                raise NoSuchAccount(f"no such account on Mastodon: {self.handle}")
            self.account = data
        return self.account

    def profile(self) -> Candidate:
        return self.candidate(self._lookup())

    def pages(self, name: str) -> Iterator[tuple[list[Candidate], Page]]:
        account = self._lookup()
        url: str | None = (f"{self.base}/api/v1/accounts/{quote(str(account['id']), safe='')}/{LISTS[name]}?"
                           + urlencode({"limit": PAGE}))
        first, seen = True, set()
        while url and url not in seen:
            seen.add(url)
            data, page = self.fetch(url)
            accounts = [a for a in data if isinstance(a, dict)] if isinstance(data, list) else []
            if first and not accounts:
                if account.get("hide_collections") is True:
                    raise Hidden("hidden by the account (Mastodon answers an empty list)")
                raise Hidden("empty (or hidden by the account: Mastodon answers an empty list either way)")
            first = False
            yield [self.candidate(a) for a in accounts], page
            url = next_link(page.headers) if accounts else None

    def candidate(self, account: dict[str, Any]) -> Candidate:
        acct = text(account.get("acct"), 300)
        handle = acct if "@" in acct else f"{acct}@{self.instance}"
        avatar = text(account.get("avatar_static"), 2048) or text(account.get("avatar"), 2048)
        default = bool(avatar) and urlsplit(avatar).path.endswith(DEFAULT_AVATAR)
        friend = Friend(name=text(account.get("display_name")).strip() or text(account.get("username")) or handle,
                        handle=handle, profile_url=safe_link(account.get("url")), avatar_url=avatar)
        return Candidate(friend, default=default)
