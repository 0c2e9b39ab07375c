"""The My-mosaics browser cookie: signed plain text, forged or foreign values refused, safe attributes."""

from __future__ import annotations

import re

import pytest
from bottle import BaseRequest, BaseResponse

from web import mine

KEY = "unit-signing-key"


def request_with(cookie: str | None) -> BaseRequest:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/mine"}
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"{mine.COOKIE}={cookie}"
    return BaseRequest(environ)


def test_a_signed_value_gives_back_its_id() -> None:
    browser, fresh = mine.browser_id(request_with(None), KEY)
    assert fresh and re.fullmatch(r"[A-Za-z0-9_-]{24}", browser)
    again, fresh_again = mine.browser_id(request_with(mine.cookie_value(KEY, browser)), KEY)
    assert (again, fresh_again) == (browser, False)


@pytest.mark.parametrize("value", [
    "", "garbage", "a" * 24, "a" * 24 + ".", "a" * 24 + ".AAAA",
    "../../etc/passwd." + "A" * 43,  # not an id at all, whatever the signature
    "a" * 23 + "*." + "A" * 43,
])
def test_malformed_or_unsigned_values_are_refused(value: str) -> None:
    assert mine.verified_id(KEY, value) is None
    browser, fresh = mine.browser_id(request_with(value), KEY)
    assert fresh and browser != value.partition(".")[0]


def test_a_signature_under_another_key_or_for_another_id_is_refused() -> None:
    browser = "b" * 24
    assert mine.verified_id(KEY, mine.cookie_value(KEY, browser)) == browser
    assert mine.verified_id("another-key", mine.cookie_value(KEY, browser)) is None
    signature = mine.cookie_value(KEY, browser).partition(".")[2]
    assert mine.verified_id(KEY, "c" * 24 + "." + signature) is None  # a signature does not move to another id


def test_the_cookie_is_http_only_lax_site_wide_and_not_pickled() -> None:
    response = BaseResponse()
    mine.set_cookie(response, KEY, "d" * 24, max_age=3600, secure=False)
    header = dict(response.headerlist)["Set-Cookie"]
    assert header.startswith(f"{mine.COOKIE}={'d' * 24}.")
    assert "HttpOnly" in header and "samesite=lax" in header.lower() and "Path=/" in header and "Max-Age=3600" in header
    assert "Secure" not in header and "!" not in header  # bottle's pickled cookies start with '!'
    secure = BaseResponse()
    mine.set_cookie(secure, KEY, "d" * 24, max_age=3600, secure=True)
    assert "Secure" in dict(secure.headerlist)["Set-Cookie"]
