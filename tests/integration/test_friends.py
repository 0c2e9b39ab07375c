"""Friend lists from the local fixture network: real HTTP on loopback, each network's real answer shapes.

The fixture (workers/inputs/friends/fixture.py) serves Bluesky's XRPC, a Mastodon instance and GitHub's REST API
under their real host names, which the test's resolver maps to 127.0.0.1 (tests/helpers/friends.py). ``alice``
follows 230 accounts and has 150 followers, 20 of them in both lists: 360 accounts, 361 with alice herself.
Every 10th has the default picture, accounts 3 and 4 share one picture, account 5's picture is on 10.0.0.7.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import config
from tests.helpers.friends import fixture_api, friends_settings
from workers.inputs.fetch import Fetcher
from workers.inputs.friends import (
    Api,
    Friend,
    FriendsRequest,
    ListCache,
    NoFriends,
    NoSuchAccount,
    Tally,
    gather,
)
from workers.inputs.friends.fixture import FixtureNetwork
from workers.protocol.errors import FetchFailed, JobRejected, TooLarge, UrlRefused

pytestmark = pytest.mark.integration

HANDLES = {"bluesky": "{}.bsky.social", "mastodon": "{}@mastodon.social", "github": "{}"}
NETWORKS = list(HANDLES)
ACCOUNTS = 360
DEFAULTS = ACCOUNTS // 10  # numbers 10, 20, …, 360


@pytest.fixture(scope="module")
def network() -> Iterator[FixtureNetwork]:
    with FixtureNetwork(follows=230, followers=150, overlap=20) as fixture:
        yield fixture


def ask(network: str, who: str = "alice", **fields: object) -> FriendsRequest:
    return FriendsRequest(network, HANDLES[network].format(who), **fields)  # type: ignore[arg-type]


def run(fixture: FixtureNetwork, request: FriendsRequest, **changes: Any) -> tuple[list[Friend], Tally]:
    api, _ = fixture_api(fixture, **changes)
    seen: list[Tally] = []
    friends = gather(request, api, seen.append)
    return friends, seen[-1]


def number(handle: str) -> int:
    return int(handle.split(".")[0].split("@")[0].removeprefix("f"))


@pytest.mark.parametrize("name", NETWORKS)
def test_both_lists_are_read_to_their_last_page(network: FixtureNetwork, name: str) -> None:
    before = len(network.requests(name))
    friends, tally = run(network, ask(name, max=5000))
    assert tally.listed == ACCOUNTS and tally.pages == {"bluesky": 5, "mastodon": 5, "github": 5}[name]
    defaults = set() if name == "github" else set(range(10, ACCOUNTS + 1, 10))
    assert {number(f.handle) for f in friends} == set(range(1, ACCOUNTS + 1)) - {4, 5} - defaults
    paths = network.requests(name)[before:]
    last = {"bluesky": "cursor=200", "mastodon": "max_id=160", "github": "page=3"}[name]
    assert any(last in p for p in paths)  # the follows list's third page was asked for, and it was the last
    assert len(paths) == tally.pages + (name == "mastodon")  # Mastodon looks the account id up first


@pytest.mark.parametrize("name", NETWORKS)
def test_at_most_max_accounts_and_no_page_past_them(network: FixtureNetwork, name: str) -> None:
    before = len(network.requests(name))
    friends, tally = run(network, ask(name, max=120, include_self=True))
    assert len(friends) == tally.kept == 120
    assert friends[0].handle == HANDLES[name].format("alice")  # the account itself first
    assert tally.pages == 2  # 120 pictures fit in two pages of 80-100 accounts: the rest is never asked for
    assert len(network.requests(name)[before:]) == tally.pages + 1


@pytest.mark.parametrize("name", NETWORKS)
def test_default_missing_duplicate_and_private_pictures_are_skipped_and_counted(network: FixtureNetwork,
                                                                                  name: str) -> None:
    friends, tally = run(network, ask(name, max=5000))
    defaults = 0 if name == "github" else DEFAULTS  # GitHub's answers cannot tell an identicon from a photo
    assert tally.skipped == {"default_avatar": defaults, "no_avatar": 0, "duplicate_avatar": 1, "refused_url": 1}
    assert tally.kept == len(friends) == ACCOUNTS - defaults - 2
    handles = {f.handle for f in friends}
    assert HANDLES[name].format("f3") in handles and HANDLES[name].format("f4") not in handles  # counted once
    assert all("10.0.0.7" not in f.avatar_url for f in friends)  # the private address is refused, never fetched
    if name == "bluesky":
        assert all("/img/avatar_thumbnail/plain/" in f.avatar_url for f in friends)  # 128 px, not 1000 px
    if name == "github":
        assert all(f.avatar_url.endswith("&s=128") for f in friends)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_rate_limit_is_waited_out_and_counted(name: str) -> None:
    with FixtureNetwork() as fresh:  # ``busy`` is rate-limited once per server
        friends, tally = run(fresh, ask(name, "busy", max=5000))
        paths = fresh.requests(name)
    assert tally.kept == len(friends) == ACCOUNTS - 2 - (0 if name == "github" else DEFAULTS)
    assert tally.waits == 1 and 0 < tally.waited <= 1.0
    first_list_request = paths[1] if name == "mastodon" else paths[0]
    assert paths.count(first_list_request) == 2  # refused once with 429 (GitHub: 403, no request left), asked again


def test_a_wait_longer_than_max_wait_fails_the_try_without_sleeping() -> None:
    with FixtureNetwork() as fresh:
        api, _ = fixture_api(fresh, max_wait=0.5)
        slept: list[float] = []
        api.sleep = slept.append
        with pytest.raises(FetchFailed, match=r"asks to wait 1 s \(rate limit\), over friends.max_wait 0.5 s"):
            gather(ask("mastodon", "busy"), api)
    assert slept == []


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("include_self", [False, True])
def test_an_unknown_account_fails_with_no_such_account(network: FixtureNetwork, name: str,
                                                       include_self: bool) -> None:
    with pytest.raises(NoSuchAccount, match=f"no such account on .*: {HANDLES[name].format('ghost')}"):
        run(network, ask(name, "ghost", include_self=include_self))


HIDDEN = [("hidden", "hidden by the account (Mastodon answers an empty list)"),
          ("locked", "wants a login to show it (HTTP 401: This API requires an authenticated user)")]


@pytest.mark.parametrize(("who", "why"), HIDDEN)
def test_a_hidden_mastodon_network_says_which_way_it_is_hidden(network: FixtureNetwork, who: str, why: str) -> None:
    with pytest.raises(NoFriends) as caught:
        run(network, ask("mastodon", who))
    assert f"{who}@mastodon.social's follows: " in str(caught.value) and why in str(caught.value)
    assert "followers" in str(caught.value)


def test_a_hidden_list_is_a_note_when_the_account_itself_gives_a_picture(network: FixtureNetwork) -> None:
    friends, tally = run(network, ask("mastodon", "hidden", include_self=True))
    assert [f.handle for f in friends] == ["hidden@mastodon.social"]
    assert len(tally.notes) == 2 and all("hidden by the account" in note for note in tally.notes)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_page_that_is_not_json_is_a_clear_permanent_error(network: FixtureNetwork, name: str) -> None:
    with pytest.raises(JobRejected, match=r"with a page that is not JSON \(text/html\)"):
        run(network, ask(name, "broken"))


def test_the_page_cap_stops_a_list_and_says_so(network: FixtureNetwork) -> None:
    friends, tally = run(network, ask("bluesky", max=5000), max_pages=1)
    assert tally.pages == 2 and tally.listed == 200
    assert tally.notes == ["follows: read the first 1 pages only (friends.max_pages)",
                           "followers: read the first 1 pages only (friends.max_pages)"]


def test_a_second_gathering_comes_from_the_node_cache(network: FixtureNetwork, tmp_path: Path) -> None:
    api, resolver = fixture_api(network, cache_dir=tmp_path / "friends")
    request = ask("github", max=300)
    first = gather(request, api)
    asked, before = len(resolver.asked), len(network.requests("github"))
    seen: list[Tally] = []
    assert gather(request, api, seen.append) == first
    assert len(network.requests("github")) == before and len(resolver.asked) == asked  # nothing left the node
    assert seen[-1].cached and seen[-1].kept == 300
    other = gather(ask("github", max=299), api)  # another request is another entry
    assert len(other) == 299 and len(network.requests("github")) > before


def test_a_cached_list_is_deleted_once_its_time_is_up(network: FixtureNetwork, tmp_path: Path) -> None:
    folder = tmp_path / "friends"
    api, _ = fixture_api(network, cache_dir=folder, ttl=60)
    gather(ask("bluesky", max=10), api)
    (entry,) = folder.glob("*.json")
    assert entry.stat().st_mode & 0o777 == 0o600  # a friend list is nobody else's to read
    old = time.time() - 61
    os.utime(entry, (old, old))
    before = len(network.requests("bluesky"))
    gather(ask("bluesky", max=10), api)
    assert len(network.requests("bluesky")) > before  # asked the network again
    os.utime(next(folder.glob("*.json")), (old, old))
    ListCache(folder, 60).put("another", {"friends": []})  # any write sweeps what is stale
    assert len(list(folder.glob("*.json"))) == 1


def test_no_list_is_kept_when_list_ttl_is_zero(network: FixtureNetwork, tmp_path: Path) -> None:
    folder = tmp_path / "friends"
    api, _ = fixture_api(network, cache_dir=folder, ttl=0)
    gather(ask("bluesky", max=10), api)
    assert not folder.exists() or not any(folder.iterdir())


def test_a_configured_token_is_sent_to_the_api_and_none_otherwise(network: FixtureNetwork) -> None:
    github, bluesky = network.servers["github"], network.servers["bluesky"]
    before = len(github.tokens), len(bluesky.tokens)
    github_settings = dataclasses.replace(friends_settings(network).github, token="t0ken")
    api, _ = fixture_api(network, github=github_settings)
    gather(ask("github", max=150), api)
    gather(ask("bluesky", max=150), api)
    assert set(github.tokens[before[0]:]) == {"Bearer t0ken"} and set(bluesky.tokens[before[1]:]) == {None}


def test_an_answer_over_page_bytes_is_refused(network: FixtureNetwork) -> None:
    with pytest.raises(TooLarge, match=r"is [0-9,]+ bytes, over the limit of 2,000"):
        run(network, ask("bluesky"), page_bytes=2000)


def test_an_api_on_a_private_address_is_refused_before_any_request(network: FixtureNetwork) -> None:
    api, resolver = fixture_api(network)
    private = dataclasses.replace(api.settings.github, api="http://10.0.0.9")
    api.settings = dataclasses.replace(api.settings, github=private)
    with pytest.raises(UrlRefused, match="10.0.0.9 is a private or loopback address; refused"):
        gather(ask("github"), api)


def test_a_demo_fixture_network_needs_only_its_loopback_address_allowlisted(tmp_path: Path) -> None:
    with FixtureNetwork(follows=40, followers=0, overlap=0, real_names=False) as demo:
        assert demo.hosts() == {"127.0.0.1": "127.0.0.1"}
        fetch = dataclasses.replace(config.load(env={}).fetch, allow_hosts=["127.0.0.1"])
        api = Api(Fetcher(fetch), friends_settings(demo))  # the system's own resolver: 127.0.0.1 is a literal
        for name in NETWORKS:
            friends = gather(ask(name, max=40, lists=("follows",)), api)
            assert len(friends) == 40 - 2 - (0 if name == "github" else 4)
            assert all(f.avatar_url.startswith("http://127.0.0.1:") for f in friends)


def test_names_lose_control_characters_and_links_are_http(network: FixtureNetwork) -> None:
    friends, _ = run(network, ask("bluesky", max=10))
    six = next(f for f in friends if f.handle == "f6.bsky.social")
    assert six.name == "Six <b>Sixth</b>"  # markup stays text: the viewer inserts it as text
    assert all(f.profile_url.startswith("https://bsky.app/profile/") for f in friends)
