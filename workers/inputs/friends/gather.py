"""Gather one request's friends: the account itself if asked, then its lists, to the end or to ``max``.

Each listed account is counted once (an account in both lists too) and kept only with a picture worth a tile:
not the network's default one, not missing, not a picture URL another account already gave, and allowed by the
URL policy (checked here, before any picture is fetched; the fetch checks again at connect). The counts go to
``progress`` after every page. A list the network hides becomes a note; if nothing is kept the request fails
with the notes as its reason. A gathered list is kept for ``friends.list_ttl`` on this node.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from workers.inputs.friends.api import Api
from workers.inputs.friends.bluesky import Bluesky
from workers.inputs.friends.github import GitHub
from workers.inputs.friends.mastodon import Mastodon
from workers.inputs.friends.model import BadHandle, Candidate, Friend, FriendsRequest, NoFriends, Tally
from workers.inputs.friends.network import Hidden, Network
from workers.inputs.urlpolicy import UrlPolicy
from workers.protocol.errors import UrlRefused

Progress = Callable[[Tally], None]
"""Called with a copy of the counts after every page, and once at the end."""
NETWORKS: dict[str, type[Network]] = {"bluesky": Bluesky, "mastodon": Mastodon, "github": GitHub}


class _Keeper:
    """The accounts kept so far, and the rules that skip the others."""

    def __init__(self, limit: int, policy: UrlPolicy, tally: Tally) -> None:
        self.limit, self.policy, self.tally = limit, policy, tally
        self.friends: list[Friend] = []
        self._handles: set[str] = set()
        self._avatars: set[str] = set()
        self._hosts: dict[tuple[str, int], bool] = {}
        """The address rule's answer per picture host: one lookup per host, not per picture."""

    @property
    def full(self) -> bool:
        return len(self.friends) >= self.limit

    def offer(self, candidate: Candidate) -> None:
        friend = candidate.friend
        if self.full or friend.handle.lower() in self._handles:
            return
        self._handles.add(friend.handle.lower())
        self.tally.listed += 1
        if candidate.default:
            self.tally.skip("default_avatar")
        elif not friend.avatar_url:
            self.tally.skip("no_avatar")
        elif friend.avatar_url in self._avatars:
            self.tally.skip("duplicate_avatar")
        elif not self._allowed(friend.avatar_url):
            self.tally.skip("refused_url")
        else:
            self._avatars.add(friend.avatar_url)
            self.friends.append(friend)
            self.tally.kept += 1

    def _allowed(self, url: str) -> bool:
        try:
            endpoint = self.policy.endpoint_to_vet(url)
            if endpoint is None:
                return True
            if endpoint not in self._hosts:
                try:
                    self.policy.check(url)
                    self._hosts[endpoint] = True
                except UrlRefused:
                    self._hosts[endpoint] = False
            return self._hosts[endpoint]
        except UrlRefused:  # the URL's own form or scheme
            return False


def gather(request: FriendsRequest, http: Api, progress: Progress | None = None) -> list[Friend]:
    """The friends of ``request`` whose pictures can be tiles, in the network's order, at most ``request.max``
    (the account itself first when asked, and counted in ``max``)."""
    if request.network not in NETWORKS:
        raise BadHandle(f"network must be one of {', '.join(NETWORKS)}, not {request.network[:40]!r}")
    tally = Tally()
    report = progress or (lambda _: None)
    network = NETWORKS[request.network](http, http.settings, request.handle, tally)
    key = json.dumps([network.base, request.as_json(), http.settings.avatar_px])
    if http.cache is not None and (hit := http.cache.get(key)) is not None:
        cached = Tally.from_json({**hit["tally"], "cached": True})
        report(cached)
        return [Friend.from_json(f) for f in hit["friends"]]
    keeper = _Keeper(request.max, http.fetcher.policy, tally)
    if request.include_self:
        keeper.offer(network.profile())
    for name in request.lists:
        if keeper.full:
            break
        _read_list(network, name, keeper, report)
    if not keeper.friends:
        raise NoFriends(_nothing_kept(request, tally))
    if http.cache is not None:
        http.cache.put(key, {"friends": [f.as_json() for f in keeper.friends], "tally": tally.as_json()})
    report(tally.snapshot())
    return keeper.friends


def _read_list(network: Network, name: str, keeper: _Keeper, report: Progress) -> None:
    tally, cap = keeper.tally, network.settings.max_pages
    try:
        for number, (candidates, _) in enumerate(network.pages(name), 1):
            tally.pages += 1
            for candidate in candidates:
                keeper.offer(candidate)
            report(tally.snapshot())
            if keeper.full:
                return
            if number >= cap:
                tally.notes.append(f"{name}: read the first {cap} pages only (friends.max_pages)")
                return
    except Hidden as hidden:
        tally.notes.append(f"{network.handle}'s {name}: {hidden.reason}")


def _nothing_kept(request: FriendsRequest, tally: Tally) -> str:
    lists = " and ".join(request.lists)
    if tally.notes:
        return f"no friends' pictures to use from {request.handle}'s {lists}: " + "; ".join(tally.notes)
    skipped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in tally.skipped.items() if n)
    return (f"no friends' pictures to use: {request.handle}'s {lists} listed {tally.listed} accounts"
            + (f" ({skipped})" if skipped else ""))
