"""The jobs stream: the web tier puts a job's id on the inbox, the keeper admits it to the stream
(workers/service/keeper.py), workers take and ack it (XREADGROUP / XACK: at-least-once)."""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from workers.protocol import scripts, stats, status
from workers.protocol.errors import DEAD_LETTER
from workers.protocol.idempotency import Claim, Record
from workers.protocol.keys import GROUP, IDEMPOTENCY_TTL, STATS_MINUTE_TTL, Keys
from workers.protocol.package import JobPackage

Entry = tuple[str, dict[str, str]]
StreamReply = list[tuple[str, list[tuple[str, dict[str, str] | None]]]] | None


def ensure_group(r: redis.Redis, keys: Keys) -> None:
    """Create the consumer group (and the stream) once; from id 0 so no earlier job is missed."""
    try:
        r.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def queue_in(pipe: redis.client.Pipeline, keys: Keys, package: JobPackage,
             fields: dict[str, str] | None = None) -> None:
    """Queue one job in ``pipe``; ``fields``: more fields of its status hash (the web's delete-token hash)."""
    encoded = package.encode()
    mapping = {**status.initial_fields(package, encoded), **(fields or {})}
    pipe.hset(keys.job(package.id), mapping=mapping)  # type: ignore[arg-type]
    pipe.lpush(keys.inbox, package.id)  # the keeper adds the package to the stream (lua/admit.lua)
    pipe.sadd(keys.backlog, package.id)  # the index the backlog's cost is summed over (protocol/backlog.py)
    pipe.hincrby(keys.stats, stats.SUBMITTED, 1)  # counted in the same transaction as the job itself


def enqueue(r: redis.Redis, keys: Keys, package: JobPackage, claim: Claim | None = None,
            fields: dict[str, str] | None = None) -> Record | None:
    """Write the status hash and put the job on the inbox in one transaction.

    With a ``claim`` (an Idempotency-Key) its record is written in that same transaction, unless the key is
    taken: then nothing is queued and the record that holds it is returned (WATCH makes two racing requests
    queue one job between them)."""
    if claim is None:
        pipe = r.pipeline(transaction=True)
        queue_in(pipe, keys, package, fields)
        pipe.execute()
        return None
    while True:
        with r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(claim.name)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                raw = pipe.get(claim.name)
                if raw is not None:
                    return Record.decode(str(raw))
                pipe.multi()
                queue_in(pipe, keys, package, fields)
                pipe.set(claim.name, claim.record.encode(), ex=IDEMPOTENCY_TTL)
                pipe.execute()
                return None
            except redis.WatchError:
                continue  # another request took the key meanwhile: read its record


Taken = tuple[str, dict[str, str], int | None]
"""A stream entry, and its delivery count when it was already started in Redis."""


def take_command(keys: Keys, consumer: str) -> tuple[Any, ...]:
    """FCALL arguments for :func:`take_new` (lua/take.lua), for pipelining it behind the previous job's note."""
    return (scripts.TAKE, 1, keys.jobs, GROUP, consumer, keys.job_prefix, time.time())


def take_new(r: redis.Redis, keys: Keys, consumer: str) -> Taken | None:
    """A new entry with its delivery already started (count, or None if the entry names no job)."""
    return parse_taken(scripts.call(r, *take_command(keys, consumer)))


def parse_taken(reply: Any) -> Taken | None:
    if not reply:
        return None
    entry_id, flat, deliveries = cast(tuple[str, list[str], int], reply)
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return entry_id, fields, (None if deliveries == -2 else int(deliveries))


def _read(r: redis.Redis, keys: Keys, consumer: str, start: str, block: int | None) -> Entry | None:
    reply = cast(StreamReply, r.xreadgroup(GROUP, consumer, {keys.jobs: start}, count=1, block=block))
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            if fields is not None:
                return entry_id, fields
            r.xack(keys.jobs, GROUP, entry_id)  # a pending entry deleted meanwhile has no fields
    return None


def enqueue_many(r: redis.Redis, keys: Keys, packages: list[JobPackage], batch: int = 500) -> int:
    """Queue many packages with one round trip per batch (each package still atomic: MULTI per batch)."""
    for start in range(0, len(packages), batch):
        pipe = r.pipeline(transaction=True)
        for package in packages[start : start + batch]:
            queue_in(pipe, keys, package)
        pipe.execute()
    return len(packages)


def read_own_pending(r: redis.Redis, keys: Keys, consumer: str) -> Entry | None:
    """The entry this consumer name took before its process died (read once, at start)."""
    return _read(r, keys, consumer, "0", None)


def read_new(r: redis.Redis, keys: Keys, consumer: str, block_ms: int) -> Entry | None:
    """One entry never delivered before, waiting up to ``block_ms`` (no sleep polling)."""
    return _read(r, keys, consumer, ">", block_ms)


AUTOCLAIM_ROUNDS = 100
"""Most XAUTOCLAIM calls one :func:`claim_stale` makes (each looks at up to 10 pending entries) before it
gives the rest of the pending list to the next call."""
START = "0-0"
"""The first id of the pending list: where an XAUTOCLAIM scan starts, and where a finished one wraps to."""


def claim_stale(r: redis.Redis, keys: Keys, consumer: str, min_idle: float,
                cursor: str = START) -> tuple[Entry | None, str]:
    """Take over one entry that a dead or stuck consumer left idle for ``min_idle`` seconds; and the cursor to
    pass next time.

    The scan follows XAUTOCLAIM's cursor from ``cursor`` (the one the previous call returned): an idle entry
    behind any number of live ones is found, and the scan wraps to the start once it reaches the end."""
    for _round in range(AUTOCLAIM_ROUNDS):
        reply = r.xautoclaim(keys.jobs, GROUP, consumer, min_idle_time=int(min_idle * 1000), start_id=cursor,
                             count=1)
        cursor = str(reply[0])
        for entry_id, fields in cast(list[tuple[str, dict[str, str] | None]], reply[1]):
            if fields is not None:
                return (entry_id, fields), cursor
        if cursor == START:  # the end of the pending list: the next call starts again from the beginning
            break
    return None, cursor


def refresh_claim(r: redis.Redis, keys: Keys, consumer: str, entry_id: str) -> bool:
    """Reset the entry's idle time (no delivery counted) while ``consumer`` still holds it, so a long job is not
    taken from us; False when it no longer does (finished, or claimed by another), which is then left alone."""
    return bool(scripts.call(r, scripts.REFRESH, 1, keys.jobs, GROUP, consumer, entry_id))


DEAD_LETTER_TTL = 604800
"""TTL of a dead-lettered job's status hash when the caller gives none (``jobs.result_ttl``'s default)."""


def dead_letter_command(keys: Keys, entry_id: str, fields: dict[str, str], error: str, deliveries: int,
                        ttl: int = DEAD_LETTER_TTL, recent: int = 50, reason: str = "",
                        code: str = DEAD_LETTER) -> tuple[Any, ...]:
    """FCALL arguments for :func:`dead_letter` (lua/dead_letter.lua, which joins lua/note.lua)."""
    now = time.time()
    job_id = fields.get("id", "")
    letter: dict[str, Any] = {**fields, "error": error, "deliveries": deliveries, "entry": entry_id,
                              "failed_at": now}
    note: dict[str, Any] = {"state": status.JobState.FAILED.value, "finished_at": now,
                            "error": reason or f"gave up after {deliveries} deliveries; last error: {error}",
                            "error_code": code}
    letter_items = [item for pair in letter.items() for item in pair]
    return (scripts.DEAD_LETTER, 7, keys.job(job_id), keys.recent, keys.jobs, keys.stats,
            keys.stats_minute(stats.minute_of(now)), keys.dead, keys.webhook_outbox,
            ttl, recent, job_id, GROUP, entry_id, "", 0, STATS_MINUTE_TTL,
            len(letter_items), *letter_items, *[item for pair in note.items() for item in pair])


def dead_letter(r: redis.Redis, keys: Keys, entry_id: str, fields: dict[str, str], error: str, deliveries: int,
                ttl: int = DEAD_LETTER_TTL, recent: int = 50, reason: str = "", code: str = DEAD_LETTER) -> bool:
    """Move an entry to the dead-letter stream with its last error, ack it, and fail its job (the note FINISH
    writes), all in one function; True when this call added the letter (False: it was already done)."""
    command = dead_letter_command(keys, entry_id, fields, error, deliveries, ttl, recent, reason, code)
    letter, _note = cast(list[Any], scripts.call(r, *command))
    return bool(letter)


def ack(r: redis.Redis, keys: Keys, entry_id: str) -> None:
    """Acknowledge the entry; the keeper trims it off the stream (lua/trim.lua), as workers may not delete."""
    r.xack(keys.jobs, GROUP, entry_id)
