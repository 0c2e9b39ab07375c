"""The job status hash: states, progress, and the completion note (set only once)."""

from __future__ import annotations

import enum
import json
import math
import time
from typing import Any, cast

import redis

from workers.protocol import cost, scripts, stats, webhooks
from workers.protocol.keys import GROUP, STATS_MINUTE_TTL, Keys
from workers.protocol.package import JobPackage
from workers.protocol.queue import Waiting


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    """Stopped on request (POST /api/mosaics/<id>/cancel): never started, or stopped by its worker; no result."""


FINAL = (JobState.DONE.value, JobState.FAILED.value, JobState.CANCELED.value)

def initial_fields(package: JobPackage, encoded: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "state": JobState.QUEUED.value,
        "progress": 0,
        "stage": "waiting in the queue",
        "created_at": package.created_at,
        "package": encoded,
        cost.FIELD: round(cost.work_units(package), 4),  # its predicted cost, summed over the backlog (backlog.py)
    }
    if package.options.webhook:  # the completion note puts the job on the webhook outbox (lua/note.lua)
        fields[webhooks.FIELD] = webhooks.WAITING
    return fields


def _pairs(fields: dict[str, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair]


def update(r: redis.Redis, keys: Keys, job_id: str, **fields: Any) -> bool:
    """Write progress fields unless the job already has its completion note."""
    return bool(scripts.call(r, scripts.UPDATE, 1, keys.job(job_id), *_pairs(fields)))


def keep_going(r: redis.Redis, keys: Keys, job_id: str, **fields: Any) -> bool:
    """Write a running job's progress fields; False when its worker should stop: a cancel was asked for, or the
    job is final or gone (deleted), which the same call tells (lua/update.lua), so a stop costs no round trip."""
    return int(scripts.call(r, scripts.UPDATE, 1, keys.job(job_id), *_pairs(fields))) == 1


class Cancel(enum.IntEnum):
    """What :func:`cancel` did (lua/cancel.lua)."""

    UNKNOWN = -1
    ALREADY_FINAL = 0
    CANCELED = 1
    """It was queued: it has its canceled note now, and never starts."""
    STOPPING = 2
    """It is running: its worker stops at its next progress write or stage boundary."""


def cancel(r: redis.Redis, keys: Keys, job_id: str, ttl: int, recent: int = 50) -> tuple[Cancel, str]:
    """Cancel a job: (what was done, the job's state now; "" for an unknown job)."""
    now = time.time()
    note = {"state": JobState.CANCELED.value, "finished_at": now, "stage": "canceled"}
    reply = scripts.call(r, scripts.CANCEL, 6, keys.job(job_id), keys.recent, keys.job(job_id), keys.stats,
                         keys.stats_minute(stats.minute_of(now)), keys.webhook_outbox, ttl, recent, job_id, GROUP,
                         "", "", 0, STATS_MINUTE_TTL, *_pairs(note))
    if not reply:
        return Cancel.UNKNOWN, ""
    outcome, state = reply
    return Cancel(int(outcome)), str(state)


def listed(recent: int, ttl: int, result_ttl: int) -> int:
    """The recent-list length to pass with a note: 0 (not listed) for a job kept shorter than ``result_ttl``.

    The reconciler takes a finished id whose hash is gone while an older one's lives for a vanished job
    (workers/service/reconcile.py); a job kept shorter expires out of that order, so it stays off the list."""
    return recent if ttl >= result_ttl else 0


def start_delivery(r: redis.Redis, keys: Keys, job_id: str, worker: str) -> int:
    """Mark the job running and count this delivery: -1 unknown job, 0 already final, else the count."""
    return int(scripts.call(r, scripts.START, 1, keys.job(job_id), time.time(), worker))


def requeue(r: redis.Redis, keys: Keys, job_id: str, reason: str) -> bool:
    """Back to queued after a transient failure; the entry stays pending and is claimed again later."""
    return update(r, keys, job_id, state=JobState.QUEUED.value, stage=f"will retry: {reason}", last_error=reason)


def finish_command(keys: Keys, job_id: str, ttl: int, state: JobState, recent: int = 50,
                   ack_entry: str | None = None, build_seconds: float | None = None,
                   **fields: Any) -> tuple[Any, ...]:
    """FCALL arguments for :func:`finish`, for callers that pipeline it with their next command.

    A done job with ``build_seconds`` (not negative) also goes into the build-time histogram."""
    now = time.time()
    note = {"state": state.value, "finished_at": now, **fields}
    if state is JobState.DONE:
        note.update(progress=1, stage="done")
    if state is JobState.CANCELED:
        note.setdefault("stage", "canceled")
    seconds = build_seconds if state is JobState.DONE and build_seconds is not None and build_seconds >= 0 else None
    bucket = stats.bucket_field(seconds) if seconds is not None else ""
    return (scripts.FINISH, 6, keys.job(job_id), keys.recent, keys.jobs, keys.stats,
            keys.stats_minute(stats.minute_of(now)), keys.webhook_outbox,
            ttl, recent, job_id, GROUP, ack_entry or "", bucket, seconds or 0, STATS_MINUTE_TTL, *_pairs(note))


def finish(r: redis.Redis, keys: Keys, job_id: str, ttl: int, state: JobState, recent: int = 50,
           ack_entry: str | None = None, build_seconds: float | None = None, **fields: Any) -> int:
    """Write the completion note once: 1 written, 0 already final, -1 no such job; then ack ``ack_entry``."""
    return int(scripts.call(r, *finish_command(keys, job_id, ttl, state, recent, ack_entry, build_seconds, **fields)))


def number(value: object) -> float | None:
    """A status-hash field as a number; None when absent or not a finite number (a hand-edited hash crashes no
    reader: the API's view, the backlog's sum)."""
    try:
        found = float(cast(str, value))
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


def public_view(job_id: str, raw: dict[str, str], media_prefix: str = "/media/",
                waiting: Waiting | None = None) -> dict[str, Any]:
    """The JSON the page polls: never the package or internal fields; a queued job's place in the queue when
    ``waiting`` (queue.waiting) is given."""
    view: dict[str, Any] = {
        "id": job_id,
        "state": raw.get("state", JobState.QUEUED.value),
        "progress": number(raw.get("progress")) or 0.0,
        "stage": raw.get("stage", ""),
        "created_at": number(raw.get("created_at")),
        "started_at": number(raw.get("started_at")),
        "finished_at": number(raw.get("finished_at")),
    }
    if raw.get("result"):
        view["result_url"] = media_prefix + raw["result"]
    if raw.get("deepzoom"):  # the zoomable view: pyramid, tile map, thumbnail (workers/pipeline/deepzoom.py)
        folder = media_prefix + raw["deepzoom"]
        view.update(dzi_url=f"{folder}/image.dzi", tilemap_url=f"{folder}/map.json", thumb_url=f"{folder}/thumb.jpg")
    if raw.get("error"):
        view["error"] = raw["error"]
    if raw.get("expires_at"):  # set with the completion note (lua/note.lua): when the job and its files go
        view["expires_at"] = float(raw["expires_at"])
    if raw.get("details"):
        view["details"] = json.loads(raw["details"])
    if raw.get("friends"):  # a friends job's live counts (workers/pipeline/friends.py)
        view["friends"] = json.loads(raw["friends"])
    if (delivery := webhooks.record_view(raw)) is not None:
        view["webhook"] = delivery
    if waiting is not None and view["state"] == JobState.QUEUED.value:
        view.update(position=waiting.position, eta=waiting.eta)
    return view
