"""The pure parts of friends as tiles: the package field, the form's fields, the stage's counts, map.json labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from web import friends_form
from workers.inputs.friends import BadHandle, Friend, FriendsRequest, Tally
from workers.pipeline import deepzoom, friends
from workers.protocol.errors import BadPackage
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

REQUEST = {"network": "github", "handle": "alice", "lists": ["followers"], "max": 300, "include_self": False}


def test_the_package_records_the_request_and_reads_it_back() -> None:
    package = JobPackage.create("https://example.com/t.jpg", [], Options(cols=8, rows=0, tile_px=16, seed=0),
                                friends=REQUEST)
    again = JobPackage.decode(package.encode())
    assert again.friends == REQUEST and again.tiles == ()
    assert "friends" not in JobPackage.decode(JobPackage.create("u", ["t"], package.options).encode()).to_json()


def test_a_package_whose_friends_is_not_an_object_is_refused() -> None:
    raw = json.loads(JobPackage.create("u", [], Options(cols=8, rows=0, tile_px=16, seed=0)).encode())
    with pytest.raises(BadPackage, match="friends must be an object"):
        JobPackage.decode(json.dumps({**raw, "friends": "github:alice"}))


def test_the_form_fields_become_a_request() -> None:
    fields = {"friends_network": "mastodon", "friends_handle": " @Alice@Example.Social ", "friends_lists": "follows",
              "friends_max": "120", "friends_include_self": "1"}
    assert friends_form.from_form(fields, 5000, 0) == FriendsRequest("mastodon", "Alice@example.social",
                                                                     ("follows",), 120, True)
    both = friends_form.from_form({"friends_network": "github", "friends_handle": "alice"}, 5000, 0)
    assert both is not None and both.lists == ("follows", "followers") and not both.include_self
    assert friends_form.from_form({"friends_network": "github", "friends_handle": "  "}, 5000, 0) is None


@pytest.mark.parametrize(("fields", "other", "why"), [
    ({"friends_max": "12a"}, 0, "friends.max must be a whole number, not '12a'"),
    ({"friends_max": "4991"}, 10, "friends.max must be a whole number from 1 to 4990"),
    ({}, 5000, "5000 other tiles leave no room for friends under the limit of 5000"),
])
def test_the_form_refuses_what_does_not_fit(fields: dict[str, str], other: int, why: str) -> None:
    with pytest.raises(BadHandle, match=why):
        friends_form.from_form({"friends_network": "github", "friends_handle": "alice", **fields}, 5000, other)


def test_the_json_friends_share_the_limit_with_the_other_tiles() -> None:
    assert friends_form.from_json(None, 5000, 3) is None
    with pytest.raises(BadHandle, match="from 1 to 4997"):
        friends_form.from_json({**REQUEST, "max": 4998}, 5000, 3)


def test_the_stage_text_and_counts_name_each_skip() -> None:
    tally = Tally(listed=340, kept=300, pages=4, waits=1, waited=2.4)
    tally.skipped.update(default_avatar=36, duplicate_avatar=3, refused_url=1)
    request = FriendsRequest("bluesky", "alice.bsky.social")
    assert friends.stage_text(tally) == ("gathering friends: 340 listed, 300 pictures, 40 skipped (36 default avatar, "
                                         "3 duplicate avatar, 1 refused url); waited 2 s for rate limits (1x)")
    counts = friends.counts(request, tally)
    assert counts["skipped"] == {"default_avatar": 36, "duplicate_avatar": 3, "refused_url": 1}  # no zeros
    assert (counts["listed"], counts["pictures"], counts["rate_limit_waits"]) == (340, 300, 1)


def test_map_json_labels_friends_as_objects_and_other_tiles_as_before() -> None:
    friend = Friend("Ann <b>", "ann.bsky.social", "https://bsky.app/profile/ann.bsky.social", "https://x/a.jpg")
    labels: list[deepzoom.Label] = [friends.label(friend), *deepzoom.tile_labels(["https://x/t.png"], [])]
    data = json.loads(deepzoom.tile_map(np.array([[1, 0], [0, 0]]), labels, 8))
    assert data["labels"] == [{"name": "Ann <b>", "handle": "ann.bsky.social",
                               "profile_url": "https://bsky.app/profile/ann.bsky.social"}, "https://x/t.png"]
    assert data["cells"] == [1, 0, 0, 0]
