"""`tessera dead` and `tessera retry`: look at dead letters and put one back on the queue."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import cast

import redis

from workers.protocol.errors import BadPackage
from workers.protocol.keys import Keys
from workers.protocol.package import JobPackage
from workers.protocol.signing import UrlSigner
from workers.protocol.status import JobState

DeadLetter = tuple[str, dict[str, str]]


def dead_letters(r: redis.Redis, keys: Keys, count: int = 100) -> list[DeadLetter]:
    """Newest first."""
    return cast(list[DeadLetter], r.xrevrange(keys.dead, count=count))


def job_id_of(letter: DeadLetter) -> str:
    try:
        return str(json.loads(letter[1].get("package", "{}")).get("id", ""))
    except (ValueError, AttributeError):
        return ""


def retry(r: redis.Redis, keys: Keys, job_id: str, signer: UrlSigner | None = None) -> bool:
    """Queue the job again with a fresh delivery count; False when no dead letter names it.

    With ``signer`` (the web host's key: the admin's settings have it) the package's input URLs are signed
    again, so a dead letter older than their TTL can still fetch its uploads."""
    for letter_id, fields in dead_letters(r, keys, count=10_000):
        if job_id_of((letter_id, fields)) != job_id:
            continue
        package = fields["package"] if signer is None else resigned(fields["package"], signer)
        pipe = r.pipeline(transaction=True)
        pipe.hset(keys.job(job_id), mapping={"state": JobState.QUEUED.value, "stage": "queued again by an operator",
                                             "deliveries": 0, "progress": 0, "error": "", "finished_at": "",
                                             "error_code": "", "created_at": time.time(), "package": package})
        pipe.persist(keys.job(job_id))
        pipe.lpush(keys.inbox, job_id)  # the keeper admits it to the stream with the package above
        pipe.xdel(keys.dead, letter_id)
        pipe.execute()
        return True
    return False


def resigned(raw: str, signer: UrlSigner, now: float | None = None) -> str:
    """The package with the web host's input URLs signed afresh; unchanged if it cannot be read (the worker
    then fails the job with the reason)."""
    try:
        package = JobPackage.decode(raw)
    except BadPackage:
        return raw
    return dataclasses.replace(package, target=signer.resign(package.target, now),
                               tiles=tuple(signer.resign(tile, now) for tile in package.tiles)).encode()


def print_dead(r: redis.Redis, keys: Keys) -> int:
    letters = dead_letters(r, keys)
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'job':<24} {'deliveries':>10}  {'failed':<19}  last error")
    for letter in letters:
        fields = letter[1]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(fields.get("failed_at", 0))))
        print(f"{job_id_of(letter):<24} {fields.get('deliveries', '?'):>10}  {when:<19}  {fields.get('error', '')}")
    return 0
