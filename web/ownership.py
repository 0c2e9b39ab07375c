"""Who may cancel or delete a job: the browser that made it, or a holder of its delete token.

The browser is known by its signed My-mosaics cookie (web/mine.py) whose list holds the job. The delete token
is made at submission and returned once, in the 202 of ``POST /api/mosaics``; the status hash keeps only its
SHA-256, so a reader of Redis cannot delete with it. It comes back as ``Authorization: Bearer <token>`` or
``X-Delete-Token: <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import cast

from bottle import BaseRequest

from web import mine
from web.context import Context
from workers.protocol.keys import BROWSER_JOBS

TOKEN_FIELD = "delete_token_sha256"
"""The status-hash field that holds the SHA-256 (hex) of the job's delete token, never the token."""
TOKEN_HEADER = "X-Delete-Token"
"""The other header a delete token may come in (besides ``Authorization: Bearer <token>``)."""
def new_token() -> tuple[str, dict[str, str]]:
    """A fresh delete token (192 random bits) and the status-hash fields that let it be checked."""
    token = secrets.token_urlsafe(24)
    return token, {TOKEN_FIELD: _digest(token)}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def presented_token(req: BaseRequest) -> str | None:
    """The delete token a request carries: ``Authorization: Bearer <token>`` or ``X-Delete-Token: <token>``."""
    scheme, _, value = (req.get_header("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (req.get_header(TOKEN_HEADER) or "").strip() or None


def owner(ctx: Context, req: BaseRequest, job_id: str, digest: str | None) -> tuple[bool, str | None]:
    """(whether the request may cancel or delete the job, the browser whose My mosaics lists it, if that one)."""
    token = presented_token(req)
    by_token = bool(token and digest and hmac.compare_digest(_digest(token), digest))
    browser = mine.verified_id(ctx.settings.web.signing_key, req.get_cookie(mine.COOKIE))
    if browser is not None and job_id in cast(list[str], ctx.redis.lrange(ctx.keys.browser_jobs(browser), 0,
                                                                          BROWSER_JOBS - 1)):
        return True, browser
    return by_token, None
