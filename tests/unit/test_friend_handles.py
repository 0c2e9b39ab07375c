"""Friend handles and requests, checked per network before any request (workers/inputs/friends/handles.py)."""

from __future__ import annotations

import pytest

from workers.inputs.friends import BadHandle, FriendsRequest, parse_handle, parse_request
from workers.protocol.errors import JobRejected

GOOD = [
    ("bluesky", "alice.bsky.social", "alice.bsky.social"),
    ("bluesky", "@Alice.Bsky.Social", "alice.bsky.social"),
    ("bluesky", "xn--ls8h.test", "xn--ls8h.test"),
    ("bluesky", "a-b.c0.example.com", "a-b.c0.example.com"),
    ("bluesky", "did:plc:z72i7hdynmk6r22z27h6tvur", "did:plc:z72i7hdynmk6r22z27h6tvur"),
    ("bluesky", "did:web:Blog.Example.org", "did:web:blog.example.org"),
    ("mastodon", "alice@example.social", "alice@example.social"),
    ("mastodon", "@alice@Example.Social", "alice@example.social"),
    ("mastodon", "Gargron@mastodon.social", "Gargron@mastodon.social"),
    ("mastodon", "first.last@fosstodon.org", "first.last@fosstodon.org"),
    ("github", "alice", "alice"),
    ("github", "a", "a"),
    ("github", "octo-cat-2", "octo-cat-2"),
    ("github", "@torvalds", "torvalds"),
    ("github", "a" * 39, "a" * 39),
]

BAD = [
    ("bluesky", "alice", "needs a dot"),
    ("bluesky", "alice..bsky.social", "1-63 letters"),
    ("bluesky", "-alice.bsky.social", "1-63 letters"),
    ("bluesky", "alice_b.bsky.social", "1-63 letters"),
    ("bluesky", "alice.bsky.123", "must not start with a digit"),
    ("bluesky", "alice.local", ".local is a reserved"),
    ("bluesky", "x." * 127 + "com", "over 253"),
    ("bluesky", "did:plc:short", "not a Bluesky DID"),
    ("bluesky", "did:key:z6Mkabc", "not a Bluesky DID"),
    ("bluesky", "alice .bsky.social", "spaces"),
    ("mastodon", "alice", "write user@instance"),
    ("mastodon", "alice@", "needs a dot"),
    ("mastodon", "al ice@example.social", "spaces"),
    ("mastodon", "al/ice@example.social", "not a Mastodon user name"),
    ("mastodon", "alice@localhost", "needs a dot"),
    ("mastodon", "alice@10.0.0.1", "must not start with a digit"),
    ("mastodon", "alice@example.social/x", "not a Mastodon instance"),
    ("github", "-alice", "not a GitHub login"),
    ("github", "alice-", "not a GitHub login"),
    ("github", "al--ice", "not a GitHub login"),
    ("github", "al_ice", "not a GitHub login"),
    ("github", "a" * 40, "not a GitHub login"),
    ("github", "../admin", "not a GitHub login"),
    ("github", "", "handle is required"),
    ("github", None, "handle is required"),
    ("myspace", "tom", "network must be one of bluesky, mastodon, github"),
]


@pytest.mark.parametrize(("network", "text", "handle"), GOOD)
def test_a_good_handle_is_taken_in_its_one_form(network: str, text: str, handle: str) -> None:
    assert parse_handle(network, text) == handle


@pytest.mark.parametrize(("network", "text", "reason"), BAD)
def test_a_bad_handle_is_refused_with_the_reason(network: str, text: object, reason: str) -> None:
    with pytest.raises(BadHandle) as caught:
        parse_handle(network, text)
    assert reason in str(caught.value)
    assert isinstance(caught.value, JobRejected) and caught.value.code == "bad_handle"  # a 400, never a 500


def test_a_request_is_read_with_its_defaults() -> None:
    assert parse_request({"network": "github", "handle": "alice"}) == FriendsRequest(
        "github", "alice", ("follows", "followers"), 2000, False)
    assert parse_request({"network": "mastodon", "handle": "@a@b.social", "lists": ["followers", "follows"],
                          "max": 5000, "include_self": True}) == FriendsRequest(
        "mastodon", "a@b.social", ("follows", "followers"), 5000, True)
    assert parse_request({"network": "bluesky", "handle": "a.bsky.social", "lists": "followers"}).lists == (
        "followers",)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"max": 5001}, "from 1 to 5000"),
    ({"max": 0}, "from 1 to 5000"),
    ({"max": True}, "from 1 to 5000"),
    ({"max": "50"}, "from 1 to 5000"),
    ({"lists": []}, "follows, followers or both"),
    ({"lists": ["friends"]}, "follows, followers or both"),
    ({"include_self": "yes"}, "true or false"),
    ({"token": "x"}, "unknown field 'token'"),
])
def test_a_bad_request_is_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(BadHandle, match=reason):
        parse_request({"network": "github", "handle": "alice", **fields})


def test_the_job_tile_limit_caps_max() -> None:
    with pytest.raises(BadHandle, match="from 1 to 300"):
        parse_request({"network": "github", "handle": "alice", "max": 301}, max_tiles=300)
