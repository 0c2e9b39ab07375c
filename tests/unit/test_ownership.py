"""Who may cancel or delete a job: the delete token as a request carries it, kept only as its hash; and the
status view of a canceled, expiring job."""

from __future__ import annotations

import hashlib

import pytest
from bottle import BaseRequest

from web import ownership
from workers.protocol import status


@pytest.mark.parametrize(("headers", "token"), [
    ({"HTTP_AUTHORIZATION": "Bearer abc"}, "abc"),
    ({"HTTP_AUTHORIZATION": "bearer  abc "}, "abc"),
    ({"HTTP_X_DELETE_TOKEN": "abc"}, "abc"),
    ({"HTTP_AUTHORIZATION": "Basic abc", "HTTP_X_DELETE_TOKEN": "xyz"}, "xyz"),
    ({"HTTP_AUTHORIZATION": "Basic abc"}, None),
    ({"HTTP_AUTHORIZATION": "abc"}, None),
    ({"HTTP_AUTHORIZATION": "Bearer "}, None),
    ({}, None),
])
def test_the_token_comes_as_a_bearer_or_in_its_own_header(headers: dict[str, str], token: str | None) -> None:
    assert ownership.presented_token(BaseRequest(headers)) == token


def test_a_new_token_is_random_and_kept_only_as_its_sha256() -> None:
    token, fields = ownership.new_token()
    other, _ = ownership.new_token()
    assert token != other and len(token) >= 32
    assert fields == {ownership.TOKEN_FIELD: hashlib.sha256(token.encode()).hexdigest()}
    assert token not in "".join(fields.values())


def test_the_view_of_a_canceled_job_says_when_it_expires() -> None:
    raw = {"state": "canceled", "stage": "canceled", "finished_at": "100.5", "expires_at": "160"}
    view = status.public_view("J" * 22, raw)
    assert view["state"] == "canceled" and view["expires_at"] == 160.0
    assert "expires_at" not in status.public_view("J" * 22, {"state": "running"})
    assert status.JobState.CANCELED.value in status.FINAL
