"""The pure parts of the friend-list client: Link pagination and the networks' rate-limit headers."""

from __future__ import annotations

import dataclasses
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

import config
from config import ConfigError
from workers.inputs.fetch import Page
from workers.inputs.friends import Api, Tally
from workers.inputs.friends.api import _reset_at, _retry_after, next_link
from workers.inputs.friends.github import sized
from workers.protocol.errors import FetchFailed

NOW = 1_700_000_000.0


def headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


@pytest.mark.parametrize(("link", "expected"), [
    # Mastodon's docs: next first, then prev
    ('<https://mastodon.example/api/v1/accounts/14715/followers?limit=2&max_id=7486869>; rel="next", '
     '<https://mastodon.example/api/v1/accounts/14715/followers?limit=2&since_id=7489740>; rel="prev"',
     "https://mastodon.example/api/v1/accounts/14715/followers?limit=2&max_id=7486869"),
    # GitHub's docs: prev and first before next and last, on one line
    ('<https://api.github.com/users/o/followers?page=1>; rel="prev", <https://api.github.com/users/o/followers'
     '?page=3>; rel="next", <https://api.github.com/users/o/followers?page=5>; rel="last"',
     "https://api.github.com/users/o/followers?page=3"),
    ('<https://a.example/x?page=2>; rel=next', "https://a.example/x?page=2"),
    ('<https://a.example/x?page=2>; title="next"; rel="last"', None),
    ('<https://a.example/x?since_id=1>; rel="prev"', None),
])
def test_the_next_page_comes_from_the_link_header(link: str, expected: str | None) -> None:
    assert next_link(headers(Link=link)) == expected


def test_no_link_header_is_the_last_page() -> None:
    assert next_link(headers()) is None


@pytest.mark.parametrize(("values", "expected"), [
    ({"RateLimit_Reset": "1700000030"}, NOW + 30),  # Bluesky: epoch seconds
    ({"x_ratelimit_reset": "1700000045"}, NOW + 45),  # GitHub: epoch seconds, lower case
    ({"X_RateLimit_Reset": "2023-11-14T22:14:00.000Z"}, NOW + 40),  # Mastodon: ISO 8601
    ({"RateLimit_Reset": "20"}, NOW + 20),  # the IETF draft's delta seconds
    ({"RateLimit_Reset": "soon"}, None),
    ({}, None),
])
def test_a_rate_limit_reset_is_read_in_each_networks_form(values: dict[str, str], expected: float | None) -> None:
    assert _reset_at(headers(**values), NOW) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("7", 7.0),
    ("Tue, 14 Nov 2023 22:13:40 GMT", 20.0),
    ("later", None),
])
def test_retry_after_is_seconds_or_an_http_date(value: str, expected: float | None) -> None:
    assert _retry_after(headers(Retry_After=value), NOW) == expected


def test_a_github_avatar_asks_for_its_size() -> None:
    assert sized("https://avatars.githubusercontent.com/u/583231?v=4", 64) == (
        "https://avatars.githubusercontent.com/u/583231?v=4&s=64")
    assert sized("https://avatars.githubusercontent.com/u/1?s=460&v=4", 64).endswith("?v=4&s=64")


class Answers:
    """Stands in for the Fetcher in these pure tests only (the HTTP path is tests/integration/test_friends.py):
    answers ``pages`` in turn and records what was asked."""

    def __init__(self, *pages: Page) -> None:
        self.pages = list(pages)
        self.asked: list[tuple[str, dict[str, str]]] = []

    def get_page(self, url: str, headers: dict[str, str], limit: int, timeout: float) -> Page:
        self.asked.append((url, dict(headers)))
        return self.pages.pop(0)


def api(answers: Answers, **changes: Any) -> tuple[Api, list[float]]:
    slept: list[float] = []
    settings = dataclasses.replace(config.load(env={}).friends, **changes)
    return Api(answers, settings, sleep=slept.append, clock=lambda: NOW), slept  # type: ignore[arg-type]


def test_an_exhausted_limit_makes_the_next_request_wait_for_its_reset() -> None:
    last_one = Page(200, headers(RateLimit_Remaining="0", RateLimit_Reset=str(int(NOW) + 12)), b"[]")
    answers = Answers(last_one, Page(200, headers(), b"[]"), Page(200, headers(), b"[]"))
    client, slept = api(answers)
    tally = Tally()
    client.get("https://public.api.bsky.app/xrpc/a", tally)
    assert slept == []  # the answer itself is fine
    client.get("https://public.api.bsky.app/xrpc/b", tally)
    assert slept == [12.0] and tally.waits == 1  # the next request waited for the reset
    client.get("https://cdn.example.net/c", tally)
    assert slept == [12.0]  # another host is not held back


def test_the_token_goes_only_to_the_api_it_is_for() -> None:
    answers = Answers(*[Page(200, headers(), b"[]")] * 3)
    client, _ = api(answers)
    for url in ("https://api.github.com/users/a", "https://api.github.com.evil.example/x",
                "https://avatars.githubusercontent.com/u/1"):
        client.get(url, Tally(), token="secret", origin="https://api.github.com")
    assert [h.get("Authorization") for _, h in answers.asked] == ["Bearer secret", None, None]


def test_a_rate_limit_that_never_lifts_fails_the_try_after_its_tries() -> None:
    limited = Page(429, headers(Retry_After="2"), b"{}")
    answers = Answers(*[limited] * 4)
    client, slept = api(answers)
    with pytest.raises(FetchFailed, match="still rate-limiting after 4 tries"):
        client.get("https://mastodon.social/api/v1/x", Tally())
    assert slept == [2.0, 2.0, 2.0] and len(answers.asked) == 4


def test_the_default_apis_are_the_public_ones_and_mastodons_is_the_handles_instance() -> None:
    from workers.inputs.friends.bluesky import Bluesky
    from workers.inputs.friends.github import GitHub
    from workers.inputs.friends.mastodon import Mastodon

    settings = config.load(env={}).friends
    client = Api(Answers(), settings)  # type: ignore[arg-type]
    assert Bluesky(client, settings, "a.bsky.social", Tally()).base == "https://public.api.bsky.app"
    assert GitHub(client, settings, "a", Tally()).base == "https://api.github.com"
    assert Mastodon(client, settings, "a@example.social", Tally()).base == "https://example.social"
    template = dataclasses.replace(settings.mastodon, api="https://m.example/{instance}/")
    mirror = dataclasses.replace(settings, mastodon=template)
    assert Mastodon(client, mirror, "a@example.social", Tally()).base == "https://m.example/example.social"
    assert config.load(env={}).limits.max_tiles == 5000  # every job may have as many tiles as a friend request


def test_an_api_that_is_not_an_http_url_is_refused_at_start_up(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text("friends:\n  github:\n    api: ftp://mirror.example/api\n")
    with pytest.raises(ConfigError, match=r"friends\.github\.api: not an http\(s\) URL: 'ftp://mirror.example/api'"):
        config.load(local, env={})
    local.write_text("friends:\n  bluesky:\n    apis: x\n")
    with pytest.raises(ConfigError, match=r"friends\.bluesky\.apis: unknown key"):
        config.load(local, env={})
