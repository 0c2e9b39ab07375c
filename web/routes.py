"""The routes: the form, the job API, the job page, results, inputs for workers, health."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import redis
from bottle import Bottle, HTTPResponse, request, static_file, template

from web import clients, files, idempotency, mine, ownership, ratelimit
from web.context import Context
from web.replies import RETRY_AFTER, json_error, json_response, not_replicated, queue_down
from web.submit import check_submission, read_submission, store_submission
from workers.protocol import queue, replication, status, stream
from workers.protocol.connection import REDIS_DOWN
from workers.protocol.errors import BadImage, JobRejected, TooLarge

HERE = Path(__file__).parent
VIEWS = str(HERE / "views")
STATIC = str(HERE / "static")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MEDIA_NAME = re.compile(r"[A-Za-z0-9_-]{16,64}(?:\.jpg|\.png|\.dz/(?:image\.dzi|map\.json|thumb\.jpg"
                        r"|image_files/[0-9]{1,2}/[0-9]{1,6}_[0-9]{1,6}\.jpg))")
"""A result, or a file of its zoomable view (workers/pipeline/deepzoom.py); nothing else is served from media."""


def _rejection_status(exc: JobRejected) -> int:
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, BadImage):
        return 415
    return 400


def _client_limits(ctx: Context, client: str) -> HTTPResponse | None:
    """429 with Retry-After when the client submits too fast or has too many jobs unfinished."""
    web = ctx.settings.web
    wait = ratelimit.rate_exceeded(ctx.redis, ctx.keys, client, web.rate_limit_per_minute)
    if wait:
        return json_error(429, "rate_limited", f"at most {web.rate_limit_per_minute} mosaics a minute; "
                          f"try again in {wait} s", **{"Retry-After": str(wait)})
    if ratelimit.active_jobs(ctx.redis, ctx.keys, client) >= web.max_active_jobs:
        return json_error(429, "too_many_jobs", f"you already have {web.max_active_jobs} mosaics in progress; "
                          "wait for one to finish", **{"Retry-After": RETRY_AFTER})
    return None


def register(app: Bottle, ctx: Context) -> None:
    settings, limits = ctx.settings, ctx.settings.limits

    @app.get("/")
    def index() -> str:
        page_limits = {"max_tiles": limits.max_tiles, "max_cells_per_side": limits.max_cells_per_side,
                       "tile_px_min": limits.tile_px_min, "tile_px_max": limits.tile_px_max,
                       "max_upload_mb": limits.max_upload_bytes // 2**20, "max_cells": limits.max_cells,
                       "max_output_pixels": limits.max_output_pixels}
        defaults = {"grid": settings.jobs.default_grid, "tile_px": settings.jobs.default_tile_px,
                    "blend": settings.mosaic.blend}
        page: str = template("index", template_lookup=[VIEWS], title="Make a mosaic", limits=page_limits,
                             defaults=defaults)
        return page

    @app.post("/api/mosaics")
    def create_mosaic() -> HTTPResponse:
        if (request.content_length or 0) > limits.max_request_bytes:
            return json_error(413, "too_large", f"the request is over {limits.max_request_bytes // 2**20} MiB")
        key = request.environ.get(idempotency.ENVIRON)  # as sent (latin-1): Bottle's get_header decodes UTF-8
        if key is not None and not idempotency.valid_key(key):
            return idempotency.bad_key()
        client = clients.client_id(request.environ, settings.web.trusted_proxies)
        try:  # a key seen before is answered whatever the limits: it queues nothing
            earlier = None if key is None else idempotency.earlier(ctx.redis, ctx.keys, client, key)
            refusal = None if earlier is not None else _client_limits(ctx, client)
        except REDIS_DOWN:
            return queue_down()
        if refusal is not None:
            return refusal
        try:
            submission = read_submission(request, settings)
            if earlier is not None and key is not None:
                return idempotency.replay(ctx.redis, ctx.keys, settings.redis, client, key, earlier, submission)
            target, tiles = check_submission(submission, settings, ctx.policy)
            package = store_submission(submission, target, tiles, ctx.inputs)
        except JobRejected as exc:
            return json_error(_rejection_status(exc), exc.code, exc.reason)
        payload = {"id": package.id, "status_url": f"/api/mosaics/{package.id}", "page_url": f"/mosaics/{package.id}"}
        payload["delete_token"], owned = ownership.new_token()  # returned this once; the hash keeps its SHA-256
        claim = None if key is None else idempotency.claim(ctx.keys, client, key, submission, payload)
        try:
            with replication.pinned(ctx.redis, settings.redis) as r:  # the job and its WAIT on one connection
                earlier = stream.enqueue(r, ctx.keys, package, claim, fields=owned)
                if earlier is not None and key is not None:  # a request with this key won the race: its job
                    return idempotency.replay(ctx.redis, ctx.keys, settings.redis, client, key, earlier, submission)
                ratelimit.remember_job(r, ctx.keys, client, package.id, settings.jobs.result_ttl)
                replication.replicated(r, settings.redis)  # with Sentinel: a 202 only once a replica has the job
        except replication.NotReplicated:
            return not_replicated()
        except REDIS_DOWN:
            return queue_down()
        reply = json_response(202, payload)
        mine.remember_submission(ctx, request, reply, package.id)
        return reply

    @app.get("/api/mosaics/<job_id>")
    def job_status(job_id: str) -> HTTPResponse:
        if not JOB_ID.match(job_id):
            return json_error(404, "not_found", "no such mosaic")
        try:
            raw = cast(dict[str, str], ctx.redis.hgetall(ctx.keys.job(job_id)))
        except REDIS_DOWN:
            return queue_down()
        if not raw:
            return json_error(404, "not_found", "no such mosaic (it may have expired)")
        try:  # a queued job's place: counters only, cheap enough for the page's 1 s poll
            waiting = queue.waiting(ctx.redis, ctx.keys, raw.get("seq")) if raw.get("state") == "queued" else None
        except REDIS_DOWN:
            return queue_down()
        return json_response(200, status.public_view(job_id, raw, waiting=waiting), **{"Cache-Control": "no-store"})

    @app.get("/mosaics/<job_id>")
    def job_page(job_id: str) -> str:
        if not JOB_ID.match(job_id):
            refused: str = HTTPResponse("no such mosaic", status=404)  # bottle is untyped: Any
            return refused
        page: str = template("job", template_lookup=[VIEWS], title="Your mosaic", job_id=job_id,
                             status_url=f"/api/mosaics/{job_id}")
        return page

    @app.get("/media/<name:path>")
    def media(name: str) -> HTTPResponse:
        if not MEDIA_NAME.fullmatch(name):
            return files.not_found()
        mimetype: str | bool = "application/xml" if name.endswith(".dzi") else True  # True: from the name
        return files.serve(settings.paths.media, name, mimetype=mimetype)  # never through a link

    @app.get("/inputs/<job_id>/<name>")
    def inputs(job_id: str, name: str) -> HTTPResponse:
        path = ctx.inputs.path_if_valid(job_id, name, request.query.get("exp", ""), request.query.get("sig", ""))
        if path is None:
            return files.not_found()
        return files.serve(str(ctx.inputs.folder), f"{job_id}/{name}")  # never through a link

    @app.get("/static/<name:path>")
    def static(name: str) -> HTTPResponse:
        return static_file(name, root=STATIC)

    @app.get("/healthz")
    def healthz() -> HTTPResponse:
        try:
            ctx.redis.ping()
        except redis.RedisError:
            return json_response(503, {"ok": False, "redis": "unreachable"}, **{"Retry-After": RETRY_AFTER})
        return json_response(200, {"ok": True, "redis": "ok"})
