"""The end of a job's life, asked for by its owner (web/ownership.py): cancel (``POST /api/mosaics/<id>/cancel``)
and delete (``DELETE /api/mosaics/<id>``). Anyone else gets the 404 an unknown job gets.

Cancel: a queued job is canceled at once and never starts; a running one is asked to stop, and its worker ends
it ``canceled`` at its next progress write or stage boundary (lua/cancel.lua). Delete cancels first, then
removes the status hash, the job's place on the recent list and in My mosaics, its result, zoomable view and
uploads; a worker still storing it removes what it stored (workers/service/daemon.py), and the sweep takes
anything left (web/retention.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

from bottle import Bottle, HTTPResponse, request

from web import ownership
from web.context import Context
from web.replies import json_error, json_response, queue_down
from web.routes import JOB_ID
from workers.protocol import status
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.errors import BadPackage
from workers.protocol.files import remove_entries, result_entries
from workers.protocol.package import JobPackage
from workers.protocol.status import Cancel

log = logging.getLogger("tessera.web")

_FIELDS = ("state", ownership.TOKEN_FIELD, "package")


def _ttl(ctx: Context, package: str | None) -> int:
    """Seconds a canceled job is kept: its own ``keep``, else jobs.result_ttl."""
    result_ttl = ctx.settings.jobs.result_ttl
    try:
        return JobPackage.decode(package or "").options.ttl(result_ttl)
    except BadPackage:
        return result_ttl


def _not_found() -> HTTPResponse:
    return json_error(404, "not_found", "no such mosaic (it may have expired)")


def register(app: Bottle, ctx: Context) -> None:
    settings = ctx.settings
    recent = settings.queue.recent_jobs

    def found(job_id: str) -> tuple[dict[str, str | None], str | None] | HTTPResponse:
        """The job's fields and its owning browser, when this request may change it; else the reply to give."""
        if not JOB_ID.match(job_id):
            return _not_found()
        values = cast(list[str | None], ctx.redis.hmget(ctx.keys.job(job_id), list(_FIELDS)))
        raw = dict(zip(_FIELDS, values, strict=True))
        if raw["state"] is None:
            return _not_found()
        allowed, browser = ownership.owner(ctx, request, job_id, raw[ownership.TOKEN_FIELD])
        return (raw, browser) if allowed else _not_found()

    @app.post("/api/mosaics/<job_id>/cancel")
    def cancel(job_id: str) -> HTTPResponse:
        try:
            job = found(job_id)
            if isinstance(job, HTTPResponse):
                return job
            outcome, state = cancel_job(job_id, job[0]["package"])
        except REDIS_DOWN:
            return queue_down()
        if outcome is Cancel.UNKNOWN:
            return _not_found()
        if outcome is Cancel.ALREADY_FINAL:
            return json_error(409, "already_final", f"the mosaic is already {state}; there is nothing to cancel")
        log.info("job %s: cancel requested (%s)", job_id, state)
        return json_response(202, {"id": job_id, "state": state, "cancel_requested": True})

    @app.delete("/api/mosaics/<job_id>")
    def delete(job_id: str) -> HTTPResponse:
        try:
            job = found(job_id)
            if isinstance(job, HTTPResponse):
                return job
            raw, browser = job
            if raw["state"] not in status.FINAL:  # a running worker stops; a queued job never starts
                cancel_job(job_id, raw["package"])
            forget(job_id, browser)
        except REDIS_DOWN:
            return queue_down()
        remove_files(job_id)
        log.info("job %s deleted", job_id)
        return HTTPResponse(status=204)

    def cancel_job(job_id: str, package: str | None) -> tuple[Cancel, str]:
        """Cancel, a queued job kept for its own ``keep`` (and then off the recent list: status.listed)."""
        ttl = _ttl(ctx, package)
        return status.cancel(ctx.redis, ctx.keys, job_id, ttl, status.listed(recent, ttl, settings.jobs.result_ttl))

    def forget(job_id: str, browser: str | None) -> None:
        """The status hash, and the id on the recent list (else it reads as vanished) and in My mosaics."""
        with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.delete(ctx.keys.job(job_id))
            pipe.lrem(ctx.keys.recent, 0, job_id)
            if browser is not None:
                pipe.lrem(ctx.keys.browser_jobs(browser), 0, job_id)
            pipe.execute()

    def remove_files(job_id: str) -> None:
        """The result, its zoomable view and the uploads; what cannot go now the sweep takes (its job is gone).

        A worker still storing the job finds it gone when it writes its note and removes what it stored."""
        try:
            remove_entries(Path(settings.paths.media), result_entries(job_id))
            ctx.inputs.remove(job_id)
        except OSError as exc:
            log.error("job %s deleted, but not all its files could be removed (the sweep will): %s", job_id, exc)
