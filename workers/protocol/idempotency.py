"""Idempotent submission (the IETF ``Idempotency-Key`` draft): a client's key, the fingerprint of what it asked
for, and the first 202, kept for IDEMPOTENCY_TTL so the same request again gets that reply and no second job.

The record is written in the same transaction as the job (:func:`workers.protocol.stream.enqueue`), watched, so
of two requests with one key that race, exactly one queues a job and the other answers with its reply.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import redis

from workers.protocol.keys import Keys

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x20-\x7e]{1,255}")
"""A key the API takes: 1 to 255 printable ASCII characters."""


def valid_key(key: str) -> bool:
    return KEY.fullmatch(key) is not None


@dataclass(frozen=True)
class Record:
    """What a key stands for: the fingerprint of the request that first used it, and the reply it got."""

    fingerprint: str
    reply: dict[str, Any]

    def encode(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, "reply": self.reply}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> Record:
        data = json.loads(raw)
        return cls(fingerprint=str(data["fingerprint"]), reply=dict(data["reply"]))


@dataclass(frozen=True)
class Claim:
    """A key to take for a new job: its Redis name and the record to leave there."""

    name: str
    record: Record


def key_name(keys: Keys, client: str, key: str) -> str:
    """Where ``client``'s key lives: keys are the client's own (the draft's scope), so another client's same key
    neither collides with it nor replays its reply (which holds the job's delete token)."""
    return keys.idempotency(client, hashlib.sha256(key.encode("ascii")).hexdigest())


def lookup(r: redis.Redis, name: str) -> Record | None:
    raw = r.get(name)
    return None if raw is None else Record.decode(str(raw))
