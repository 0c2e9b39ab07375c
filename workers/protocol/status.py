"""The job status hash: states, progress, and the completion note (set only once)."""

from __future__ import annotations

import enum
import json
import time
from typing import Any

import redis

from workers.protocol import stats
from workers.protocol.keys import GROUP, STATS_MINUTE_TTL, Keys
from workers.protocol.package import JobPackage


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINAL = (JobState.DONE.value, JobState.FAILED.value)

# Set the completion note only if the job is not already done or failed, so a job
# that runs twice leaves one note; a written note also goes on the recent list and is
# counted (workers/protocol/stats.py): done or failed, in total and per minute, and the build time.
# With an entry id, the stream entry is then acknowledged and deleted, in the same script:
# never an ack without its note. KEYS: status hash, recent list, jobs stream, stats hash,
# this minute's stats hash. ARGV: TTL, recent length, job id, group, entry id or '',
# histogram bucket field or '', build seconds, minute TTL, then field/value pairs (the
# first pair is the state).
_FINISH = """
local function note()
  local state = redis.call('HGET', KEYS[1], 'state')
  if not state then return -1 end
  if state == 'done' or state == 'failed' then return 0 end
  redis.call('HSET', KEYS[1], unpack(ARGV, 9))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('HINCRBY', KEYS[4], ARGV[10], 1)
  redis.call('HINCRBY', KEYS[5], ARGV[10], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[8])
  if ARGV[6] ~= '' then
    redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
    redis.call('HINCRBY', KEYS[4], 'build_seconds_count', 1)
    redis.call('HINCRBYFLOAT', KEYS[4], 'build_seconds_sum', ARGV[7])
  end
  return 1
end
local written = note()
if ARGV[5] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
  redis.call('XDEL', KEYS[3], ARGV[5])
end
return written
"""

# Progress only while the job is not final, so a late update cannot undo a note.
_UPDATE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


# Start one delivery of the job whose status hash is `key`: -1 unknown job, 0 already
# final, else the delivery count after this one. `now` and `worker` are Lua locals.
START_LUA = """
local state = redis.call('HGET', key, 'state')
if not state then return -1 end
if state == 'done' or state == 'failed' then return 0 end
local deliveries = redis.call('HINCRBY', key, 'deliveries', 1)
redis.call('HSET', key, 'state', 'running', 'started_at', now, 'stage', 'starting', 'worker', worker)
return deliveries
"""
_START = "local key, now, worker = KEYS[1], ARGV[1], ARGV[2]\n" + START_LUA


def initial_fields(package: JobPackage, encoded: str) -> dict[str, Any]:
    return {
        "state": JobState.QUEUED.value,
        "progress": 0,
        "stage": "waiting in the queue",
        "created_at": package.created_at,
        "package": encoded,
    }


def _pairs(fields: dict[str, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair]


def update(r: redis.Redis, keys: Keys, job_id: str, **fields: Any) -> bool:
    """Write progress fields unless the job already has its completion note."""
    return bool(r.eval(_UPDATE, 1, keys.job(job_id), *_pairs(fields)))


def start_delivery(r: redis.Redis, keys: Keys, job_id: str, worker: str) -> int:
    """Mark the job running and count this delivery: -1 unknown job, 0 already final, else the count."""
    return int(r.eval(_START, 1, keys.job(job_id), time.time(), worker))


def requeue(r: redis.Redis, keys: Keys, job_id: str, reason: str) -> bool:
    """Back to queued after a transient failure; the entry stays pending and is claimed again later."""
    return update(r, keys, job_id, state=JobState.QUEUED.value, stage=f"will retry: {reason}", last_error=reason)


def finish_command(keys: Keys, job_id: str, ttl: int, state: JobState, recent: int = 50,
                   ack_entry: str | None = None, **fields: Any) -> tuple[Any, ...]:
    """EVAL arguments for :func:`finish`, for callers that pipeline it with their next command.

    A done job whose ``details`` carry ``build_seconds`` also goes into the build-time histogram."""
    now = time.time()
    note = {"state": state.value, "finished_at": now, **fields}
    if state is JobState.DONE:
        note.update(progress=1, stage="done")
    seconds = _build_seconds(fields) if state is JobState.DONE else None
    bucket = stats.bucket_field(seconds) if seconds is not None else ""
    return (_FINISH, 5, keys.job(job_id), keys.recent, keys.jobs, keys.stats, keys.stats_minute(stats.minute_of(now)),
            ttl, recent, job_id, GROUP, ack_entry or "", bucket, seconds or 0, STATS_MINUTE_TTL, *_pairs(note))


def _build_seconds(fields: dict[str, Any]) -> float | None:
    try:
        seconds = json.loads(fields.get("details") or "{}").get("build_seconds")
    except (ValueError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None


def finish(r: redis.Redis, keys: Keys, job_id: str, ttl: int, state: JobState, recent: int = 50,
           ack_entry: str | None = None, **fields: Any) -> int:
    """Write the completion note once: 1 written, 0 already final, -1 no such job; then ack ``ack_entry``."""
    return int(r.eval(*finish_command(keys, job_id, ttl, state, recent, ack_entry, **fields)))


def _number(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def public_view(job_id: str, raw: dict[str, str], media_prefix: str = "/media/") -> dict[str, Any]:
    """The JSON the page polls: never the package or internal fields."""
    view: dict[str, Any] = {
        "id": job_id,
        "state": raw.get("state", JobState.QUEUED.value),
        "progress": _number(raw.get("progress")) or 0.0,
        "stage": raw.get("stage", ""),
        "created_at": _number(raw.get("created_at")),
        "started_at": _number(raw.get("started_at")),
        "finished_at": _number(raw.get("finished_at")),
    }
    if raw.get("result"):
        view["result_url"] = media_prefix + raw["result"]
    if raw.get("deepzoom"):  # the zoomable view: pyramid, tile map, thumbnail (workers/pipeline/deepzoom.py)
        folder = media_prefix + raw["deepzoom"]
        view.update(dzi_url=f"{folder}/image.dzi", tilemap_url=f"{folder}/map.json", thumb_url=f"{folder}/thumb.jpg")
    if raw.get("error"):
        view["error"] = raw["error"]
    if raw.get("details"):
        view["details"] = json.loads(raw["details"])
    return view
