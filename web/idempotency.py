"""``Idempotency-Key`` on POST /api/mosaics: what "the same request" means, and the answers to a key seen before.

The same key with the same submission within 24 h answers the first 202 again (with ``Idempotent-Replayed:
true``) and queues nothing; with another submission, 422. "The same submission" is what was asked for, not the
bytes on the wire: a multipart body carries a random boundary, so two uploads of the same files differ in bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import redis
from bottle import HTTPResponse

from config import RedisSettings
from web.replies import json_error, json_response, not_replicated, queue_down
from web.submit import Submission
from workers.protocol import replication
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.idempotency import HEADER, Claim, Record, key_name, lookup, valid_key
from workers.protocol.keys import Keys

ENVIRON = "HTTP_IDEMPOTENCY_KEY"
"""The header in the WSGI environ, where its bytes are still latin-1 text (any byte is refused by valid_key, not
decoded)."""

__all__ = ["ENVIRON", "HEADER", "answer", "bad_key", "claim", "earlier", "fingerprint", "replay", "valid_key"]


def earlier(r: redis.Redis, keys: Keys, client: str, key: str) -> Record | None:
    """What ``client``'s ``key`` stands for, if it was used before."""
    return lookup(r, key_name(keys, client, key))


def bad_key() -> HTTPResponse:
    return json_error(400, "bad_idempotency_key", f"{HEADER} must be 1 to 255 printable ASCII characters")


def fingerprint(sub: Submission) -> str:
    """SHA-256 over the submission as parsed: options, URLs, and each file's own SHA-256 and name."""
    digest = {
        "options": sub.options.to_json(),
        "target_url": sub.target_url,
        "target_file": None if sub.target_file is None else hashlib.sha256(sub.target_file).hexdigest(),
        "tile_urls": sub.tile_urls,
        "tile_files": [hashlib.sha256(data).hexdigest() for data in sub.tile_files],
        "tile_names": sub.tile_names,
    }
    if sub.friends is not None:  # only then: fingerprints of other submissions stay as they were
        digest["friends"] = sub.friends.as_json()
    return hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()


def claim(keys: Keys, client: str, key: str, sub: Submission, reply: Mapping[str, Any]) -> Claim:
    """What :func:`workers.protocol.stream.enqueue` writes with the job: this submission and its reply."""
    return Claim(key_name(keys, client, key), Record(fingerprint(sub), dict(reply)))


def answer(earlier: Record, sub: Submission) -> HTTPResponse:
    """The reply to a key already used: its first 202 for the same submission, else 422."""
    if earlier.fingerprint != fingerprint(sub):
        return json_error(422, "idempotency_key_reused",
                          f"this {HEADER} was used for a different request; use a new key for a new mosaic")
    return json_response(202, earlier.reply, **{"Idempotent-Replayed": "true"})


def replay(r: redis.Redis, keys: Keys, settings: RedisSettings, client: str, key: str, earlier: Record,
           sub: Submission) -> HTTPResponse:
    """:func:`answer`, and with Sentinel only once a replica holds the job it names: that first answer may have
    been a 503 not_replicated (the job on the primary alone), and a replayed 202 must not promise more. A WAIT
    counts only its connection's own writes, so the record is written again (the same value) on the connection
    that WAITs: the replica's ack of it covers every write before it, the job's too."""
    try:
        with replication.pinned(r, settings) as pinned:
            if settings.ha:
                pinned.set(key_name(keys, client, key), earlier.encode(), xx=True, keepttl=True)
            replication.replicated(pinned, settings)
    except replication.NotReplicated:
        return not_replicated()
    except REDIS_DOWN:
        return queue_down()
    return answer(earlier, sub)
