"""Friends as tiles through the whole service: the form and the API, a real worker process, the fixture network.

The worker reaches the local fixture network (workers/inputs/friends/fixture.py, ``real_names=False``: every URL
names 127.0.0.1, which the test worker allowlists) through a config file pointing friends.<network>.api at it.
``alice`` follows 40 accounts and has 30 followers, 10 in both: 60 accounts; every 10th has the default picture,
3 and 4 share one, 5's is on a private address.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.friends import fixture_api, fixture_config
from tests.helpers.images import encode, make_target
from tests.helpers.processes import stop_process
from tests.helpers.web import WebServer
from tests.helpers.worker import start_worker
from workers.cli import client
from workers.inputs.friends.fixture import FixtureNetwork
from workers.pipeline import friends
from workers.protocol.errors import Canceled
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network() -> Iterator[FixtureNetwork]:
    with FixtureNetwork(follows=40, followers=30, overlap=10, real_names=False) as fixture:
        yield fixture


@pytest.fixture
def worker(web: WebServer, network: FixtureNetwork, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    config = fixture_config(network, tmp_path / "friends.yaml")
    process = start_worker(web, tmp_path / "worker.log", extra={"TESSERA_CONFIG": str(config)})
    yield process
    stop_process(process)


def post_json(web: WebServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return client.request(web.base_url + "/api/mosaics", json.dumps(body).encode(), "application/json")


def media(web: WebServer, path: str) -> Any:
    with urllib.request.urlopen(web.base_url + path, timeout=30) as reply:
        return json.loads(reply.read())


def test_a_form_job_of_friends_ends_done_with_their_names_in_the_tile_map(web: WebServer, worker: object,
                                                                          r: redis.Redis) -> None:
    options = {"grid": "12", "friends_network": "bluesky", "friends_handle": "@Alice.bsky.social",
               "friends_lists": "both", "friends_max": "5000", "friends_include_self": "1"}
    code, reply = client.submit(web.base_url, encode(make_target()), [], options)
    assert code == 202, reply
    package = json.loads(str(r.hget(web.settings.redis.prefix + ":job:" + reply["id"], "package")))
    assert package["tiles"] == [] and package["friends"] == {  # the request, in its one form; no pictures
        "network": "bluesky", "handle": "alice.bsky.social", "lists": ["follows", "followers"], "max": 5000,
        "include_self": True}
    view = client.wait_for(web.base_url, reply["status_url"], timeout=120)
    assert view["state"] == "done", view
    counts = view["friends"]
    assert counts["listed"] == 61 and counts["pictures"] == 61 - 6 - 2  # 6 defaults, a shared and a private one
    assert counts["skipped"] == {"default_avatar": 6, "duplicate_avatar": 1, "refused_url": 1}
    assert view["details"]["friends"]["pictures_fetched"] == 53
    labels = media(web, view["tilemap_url"])["labels"]
    assert len(labels) > 10 and all(isinstance(label, dict) for label in labels)
    for label in labels:  # each friend's display name and handle, as the network gave them
        number = label["handle"].split(".")[0].removeprefix("f")
        name = "Alice" if number == "alice" else "Six <b>Sixth</b>" if number == "6" else f"F{number}"
        assert label == {"name": name, "handle": label["handle"],
                         "profile_url": "https://bsky.app/profile/" + label["handle"]}
        assert number == "alice" or int(number) % 10 and int(number) not in (4, 5)  # skipped ones never placed


def test_json_with_friends_and_extra_tile_urls_labels_each_its_own_way(web: WebServer, worker: object,
                                                                      file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    (folder / "target.png").write_bytes(encode(make_target()))
    (folder / "extra.png").write_bytes(encode(make_target(seed=3)))
    code, reply = post_json(web, {"target_url": f"{base}/target.png", "tile_urls": [f"{base}/extra.png"],
                                  "friends": {"network": "github", "handle": "alice", "lists": ["followers"]},
                                  "options": {"grid": "10", "use_all": True}})
    assert code == 202, reply
    view = client.wait_for(web.base_url, reply["status_url"], timeout=120)
    assert view["state"] == "done", view
    assert view["friends"]["listed"] == 30 and view["friends"]["lists"] == ["followers"]
    labels = media(web, view["tilemap_url"])["labels"]
    assert f"{base}/extra.png" in labels  # a URL stays its own label
    friends = [label for label in labels if isinstance(label, dict)]
    assert friends and all(label["profile_url"] == f"https://github.com/{label['handle']}" for label in friends)


FAILURES = [
    ("bluesky", "ghost.bsky.social", "no_such_account", "no such account on Bluesky: ghost.bsky.social"),
    ("mastodon", "ghost@mastodon.social", "no_such_account", "no such account on Mastodon: ghost@mastodon.social"),
    ("mastodon", "hidden@mastodon.social", "no_friends", "hidden by the account (Mastodon answers an empty list)"),
    ("github", "broken", "rejected", "with a page that is not JSON (text/html)"),
]


def test_unknown_accounts_and_hidden_lists_fail_at_once_with_the_reason(web: WebServer, worker: object,
                                                                       network: FixtureNetwork, r: redis.Redis,
                                                                       file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    (folder / "target.png").write_bytes(encode(make_target()))
    jobs = []
    for name, handle, _, _ in FAILURES:
        code, reply = post_json(web, {"target_url": f"{base}/target.png",
                                      "friends": {"network": name, "handle": handle}})
        assert code == 202, reply
        jobs.append(reply)
    for (name, handle, error_code, reason), reply in zip(FAILURES, jobs, strict=True):
        view = client.wait_for(web.base_url, reply["status_url"], timeout=120)
        assert view["state"] == "failed" and reason in view["error"], view
        job = r.hgetall(web.settings.redis.prefix + ":job:" + reply["id"])
        assert job["error_code"] == error_code and job["deliveries"] == "1"  # permanent: never tried again
        user = handle.partition("@")[0].split(".")[0]
        asked = [p for p in network.requests(name) if user in p]
        assert 1 <= len(asked) <= 3  # the profile or lookup, a list page: nothing more


BAD = [
    ({"network": "bluesky", "handle": "alice"}, "needs a dot"),
    ({"network": "mastodon", "handle": "alice"}, "write user@instance"),
    ({"network": "github", "handle": "-alice-"}, "is not a GitHub login"),
    ({"network": "bluesky", "handle": "alice.bsky.social", "max": 5001}, "friends.max must be a whole number from 1"),
    ({"network": "myspace", "handle": "tom"}, "network must be one of bluesky, mastodon, github"),
]


@pytest.mark.parametrize(("friends", "why"), BAD)
def test_a_bad_handle_is_refused_with_400_and_nothing_is_queued(web: WebServer, r: redis.Redis,
                                                                friends: dict[str, Any], why: str) -> None:
    code, reply = post_json(web, {"target_url": "http://127.0.0.1:9/t.png", "friends": friends})
    assert code == 400 and reply["error"]["code"] == "bad_handle" and why in reply["error"]["message"], reply
    assert not list(r.scan_iter(match=web.settings.redis.prefix + ":job:*"))  # nothing queued


def test_the_form_refuses_a_bad_handle_with_400(web: WebServer) -> None:
    code, reply = client.submit(web.base_url, encode(make_target()), [],
                                {"friends_network": "mastodon", "friends_handle": "alice@localhost"})
    assert code == 400 and reply["error"]["code"] == "bad_handle", reply
    assert "is not a Mastodon instance" in reply["error"]["message"]


def busy_package() -> JobPackage:
    return JobPackage.create("https://example.com/t.jpg", [], Options(cols=8, rows=0, tile_px=16, seed=0),
                             friends={"network": "bluesky", "handle": "busy.bsky.social"})


def test_a_rate_limit_wait_keeps_reporting_and_is_counted() -> None:
    reports: list[tuple[str, dict[str, str]]] = []
    with FixtureNetwork() as fresh:  # ``busy`` is rate-limited once (429, Retry-After: 1)
        api, _ = fixture_api(fresh)
        gathered = friends.gather_tiles(busy_package(), api, 5000,
                                        lambda stage, fraction, **fields: reports.append((stage, fields)))
    assert any(stage.endswith("; waiting for a rate limit") for stage, _ in reports)  # the heartbeat sees a live job
    assert gathered.counts["rate_limit_waits"] == 1 and api.sleep is time.sleep
    assert json.loads(reports[-1][1]["friends"])["listed"] == 360


def test_a_cancel_heard_during_a_rate_limit_wait_stops_the_gathering() -> None:
    def report(stage: str, fraction: float, **fields: str) -> None:
        if "waiting for a rate limit" in stage:
            raise Canceled("canceled while gathering friends")

    with FixtureNetwork() as fresh:
        api, _ = fixture_api(fresh)
        with pytest.raises(Canceled):
            friends.gather_tiles(busy_package(), api, 5000, report)
        assert api.sleep is time.sleep
        assert not any("cursor=" in path for path in fresh.requests("bluesky"))  # no page after the wait
