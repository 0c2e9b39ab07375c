"""The fixture network (workers/inputs/friends/fixture.py) for tests: real API host names mapped to loopback.

The servers keep the names of the real services in every URL; a test's Fetcher reaches them through the URL
policy's allowlist and a resolver that maps exactly those names to 127.0.0.1 (as tests/security/test_fetch.py
does for its hosts). Any other name is refused, so nothing here can reach the internet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import config
from config import FriendsSettings
from workers.inputs.fetch import Fetcher
from workers.inputs.friends import Api, ListCache
from workers.inputs.friends.fixture import FixtureNetwork
from workers.protocol.errors import UrlRefused


class LoopbackResolver:
    """The fixture's host names to their loopback address; IP literals as they are; anything else refused."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.hosts:
            return [self.hosts[host]]
        if host[:1].isdigit() or ":" in host:
            return [host]
        raise UrlRefused(f"cannot resolve {host!r}: no such host")


def friends_settings(network: FixtureNetwork, **changes: Any) -> FriendsSettings:
    """friends.* from the defaults and ``changes``, every network's API pointed at the fixture's server for it."""
    base = dataclasses.replace(config.load(env={}).friends, **changes)
    apis = {name: dataclasses.replace(getattr(base, name), api=network.api(name))
            for name in ("bluesky", "mastodon", "github")}
    return dataclasses.replace(base, **apis)


def fixture_api(network: FixtureNetwork, cache_dir: Path | None = None, ttl: float = 3600.0,
                **changes: Any) -> tuple[Api, LoopbackResolver]:
    """An Api that reaches ``network`` only (allowlisted names, the loopback resolver), with a list cache in
    ``cache_dir`` when given."""
    resolver = LoopbackResolver(network.hosts())
    fetch = dataclasses.replace(config.load(env={}).fetch, allow_hosts=sorted(network.hosts()))
    cache = ListCache(cache_dir, ttl) if cache_dir is not None else None
    return Api(Fetcher(fetch, resolver=resolver), friends_settings(network, **changes), cache=cache), resolver


def fixture_config(network: FixtureNetwork, path: Path) -> Path:
    """A config file (for TESSERA_CONFIG) pointing every network's API at ``network``: a worker process reads
    its friends.* from it (the environment names only two levels, not friends.<network>.api)."""
    networks = ("bluesky", "mastodon", "github")
    lines = ["friends:"] + [f"  {name}:\n    api: \"{network.api(name)}\"" for name in networks]
    path.write_text("\n".join(lines) + "\n")
    return path
