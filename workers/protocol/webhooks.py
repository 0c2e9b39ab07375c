"""Webhooks, the Standard Webhooks way: what is sent when a job with option ``webhook`` ends, how it is signed,
and the delivery record its status shows.

A message has an id that stays the same on every retry (``webhook-id``: the job and its final state), the Unix
time of the attempt (``webhook-timestamp``) and ``webhook-signature`` = ``v1,`` + base64 HMAC-SHA256, under the
deployment's secret (``webhooks.secret``, ``whsec_`` + base64), of ``id.timestamp.body``. The body is
``{"type": "mosaic.<state>", "timestamp", "data": <the job's status>}``.

The completion note puts the job on the outbox (lua/note.lua); `tessera webhooks` (workers/service/webhooks.py)
sends it. Its hash carries the delivery record, in the FIELDS below.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from config.errors import ConfigError

PREFIX = "whsec_"
SECRET_BYTES = 24
"""Random bytes of a generated secret (Standard Webhooks asks for 24 to 64)."""

FIELD, ATTEMPTS, FIRST_AT, LAST_AT, LAST_RESULT, DELIVERED_AT = (
    "webhook", "webhook_attempts", "webhook_first_at", "webhook_last_at", "webhook_last_result",
    "webhook_delivered_at")
"""The delivery record in the job's hash; FIELD is its state (STATES), set at submission to WAITING."""
WAITING, PENDING, DELIVERED, FAILED = "waiting", "pending", "delivered", "failed"
STATES = (WAITING, PENDING, DELIVERED, FAILED)
"""waiting: the job is not final yet; pending: on the outbox; delivered: a 2xx came back; failed: given up."""


class BadSecret(ConfigError, ValueError):
    """``webhooks.secret`` is not ``whsec_`` followed by base64 of at least 24 bytes."""

    code = "bad_webhook_secret"


def new_secret() -> str:
    """A fresh ``webhooks.secret`` (`tessera init` writes one)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret."""
    if not secret.startswith(PREFIX):
        raise BadSecret(f"webhooks.secret must start with {PREFIX} (run `tessera init` for a new one)")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSecret("webhooks.secret is not base64 after whsec_") from exc
    if len(key) < SECRET_BYTES:
        raise BadSecret(f"webhooks.secret must hold at least {SECRET_BYTES} bytes, not {len(key)}")
    return key


def message_id(job_id: str, state: str) -> str:
    """The same for every attempt at one message, so a receiver can drop a repeat."""
    return f"msg_{job_id}_{state}"


def body(state: str, data: dict[str, Any], event_at: float) -> bytes:
    """The message: its type, when the job ended (ISO 8601, UTC) and the job's status."""
    stamp = datetime.fromtimestamp(event_at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": f"mosaic.{state}", "timestamp": stamp, "data": data},
                      separators=(",", ":")).encode()


def signature(key: bytes, msg_id: str, timestamp: int, payload: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The three headers of one attempt."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, msg_id, timestamp, payload)}


def record_view(raw: dict[str, str]) -> dict[str, Any] | None:
    """The delivery record as the status JSON shows it (never the URL, which may hold the receiver's token)."""
    state = raw.get(FIELD)
    if not state:
        return None
    view: dict[str, Any] = {"state": state, "attempts": int(raw.get(ATTEMPTS) or 0)}
    if raw.get(LAST_AT):
        view.update(last_attempt_at=float(raw[LAST_AT]), last_result=raw.get(LAST_RESULT, ""))
    if raw.get(DELIVERED_AT):
        view["delivered_at"] = float(raw[DELIVERED_AT])
    return view
