"""The jobs stream: XADD by the web tier, XREADGROUP / XACK by workers (at-least-once)."""

from __future__ import annotations

from typing import cast

import redis

from workers import status
from workers.keys import GROUP, Keys
from workers.package import JobPackage

Entry = tuple[str, dict[str, str]]
StreamReply = list[tuple[str, list[tuple[str, dict[str, str] | None]]]] | None


def ensure_group(r: redis.Redis, keys: Keys) -> None:
    """Create the consumer group (and the stream) once; from id 0 so no earlier job is missed."""
    try:
        r.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def enqueue(r: redis.Redis, keys: Keys, package: JobPackage) -> str:
    """Write the status hash and add the package to the stream in one transaction."""
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.job(package.id), mapping=status.initial_fields(package))  # type: ignore[arg-type]
    pipe.xadd(keys.jobs, {"package": package.encode()})
    return str(pipe.execute()[1])


def read_one(r: redis.Redis, keys: Keys, consumer: str, block_ms: int) -> Entry | None:
    """This consumer's own unacknowledged entry first (after a restart), else one new entry."""
    for start, block in (("0", None), (">", block_ms)):
        reply = cast(StreamReply, r.xreadgroup(GROUP, consumer, {keys.jobs: start}, count=1, block=block))
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                if fields is not None:  # a pending entry deleted meanwhile has no fields
                    return entry_id, fields
                r.xack(keys.jobs, GROUP, entry_id)
    return None


def ack(r: redis.Redis, keys: Keys, entry_id: str) -> None:
    """Acknowledge and only then delete the entry, so nothing pending is ever removed."""
    pipe = r.pipeline(transaction=True)
    pipe.xack(keys.jobs, GROUP, entry_id)
    pipe.xdel(keys.jobs, entry_id)
    pipe.execute()
