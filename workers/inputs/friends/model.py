"""What a friend list is made of: the request, one friend, the running counts, and the errors of a gathering.

A request records what was asked (network, handle, lists, how many), never the pictures: a worker on any node
gathers the list again from it (workers/inputs/friends/gather.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.protocol.errors import JobRejected

NETWORKS = ("bluesky", "mastodon", "github")
LISTS = ("follows", "followers")
MAX_FRIENDS = 5000
"""The most accounts one request may ask for (a common cap on friend lists; limits.max_tiles matches it)."""

SKIP_REASONS = ("default_avatar", "no_avatar", "duplicate_avatar", "refused_url")
"""Why a listed account gives no picture: the network's default picture, none at all, a picture another account
in the list already gave, or a picture URL the URL policy refuses (private address, bad scheme)."""


class BadHandle(JobRejected):
    """A handle that cannot be an account of its network (checked before any request)."""

    code = "bad_handle"


class NoSuchAccount(JobRejected):
    """The network says the account does not exist."""

    code = "no_such_account"


class NoFriends(JobRejected):
    """The lists asked for gave no picture: hidden by the account, empty, or every picture skipped."""

    code = "no_friends"


@dataclass(frozen=True)
class FriendsRequest:
    """Whose pictures to gather: ``lists`` of ``handle`` on ``network``, at most ``max`` accounts."""

    network: str
    handle: str
    lists: tuple[str, ...] = LISTS
    max: int = 2000
    include_self: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"network": self.network, "handle": self.handle, "lists": list(self.lists), "max": self.max,
                "include_self": self.include_self}


@dataclass(frozen=True)
class Friend:
    """One account whose picture becomes a tile; ``name`` is the display name, or the handle when it has none."""

    name: str
    handle: str
    profile_url: str
    avatar_url: str

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Friend:
        return cls(**{f.name: str(data[f.name]) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Candidate:
    """An account as a network's page lists it, before it is vetted: ``avatar`` is "" when it has none, and
    ``default`` says the network marks its picture as the default one."""

    friend: Friend
    default: bool = False


@dataclass
class Tally:
    """The running counts of one gathering, handed to the progress callback after every page."""

    listed: int = 0
    """Accounts read from the lists (the account itself included when asked)."""
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    pages: int = 0
    waits: int = 0
    """Rate-limit waits (429 Retry-After, an exhausted limit's reset time)."""
    waited: float = 0.0
    """Seconds spent in those waits."""
    notes: list[str] = field(default_factory=list)
    """What the user should know: a hidden list, a list cut at the page cap."""
    cached: bool = False
    """The list came from this node's cache (friends.list_ttl), not the network."""

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def snapshot(self) -> Tally:
        return dataclasses.replace(self, skipped=dict(self.skipped), notes=list(self.notes))

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
