"""JSON replies of the API: a body, an error in one shape, and the 503 a Redis outage answers."""

from __future__ import annotations

import json
from typing import Any

from bottle import HTTPResponse

RETRY_AFTER = "5"
"""Seconds a client is asked to wait after a 503 or a 429 for too many jobs."""


def json_response(status_code: int, payload: Any, **headers: str) -> HTTPResponse:
    body = json.dumps(payload)
    return HTTPResponse(body, status=status_code, headers={"Content-Type": "application/json", **headers})


def json_error(status_code: int, code: str, message: str, **headers: str) -> HTTPResponse:
    return json_response(status_code, {"error": {"code": code, "message": message}}, **headers)


def queue_down() -> HTTPResponse:
    return json_error(503, "queue_unavailable", "the job queue is unreachable; try again shortly",
                      **{"Retry-After": RETRY_AFTER})


def not_replicated() -> HTTPResponse:
    """With Sentinel: the job is on the primary but no replica acknowledged it in time, so a failover now could
    lose it. Not a 202; the job may still run, and a retry with the same Idempotency-Key gets it, not a second."""
    return json_error(503, "not_replicated", "the job could not be stored safely in time (no replica acknowledged "
                      "it); try again shortly, with the same Idempotency-Key", **{"Retry-After": RETRY_AFTER})
