"""The Bottle app and its server (waitress: real, multi-threaded, pure Python)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import redis
import waitress
from bottle import BaseRequest, Bottle, HTTPResponse, request, response

import config
from config import Settings
from web import admin, csrf, lifecycle, metrics, mine, openapi, probes, retention
from web.context import Context
from web.inputs import InputStore
from web.replies import json_error
from web.routes import register
from workers.inputs.urlpolicy import UrlPolicy
from workers.protocol import logs
from workers.protocol.connection import connect
from workers.protocol.exitcodes import RET_CONFIG, RET_OK, guarded
from workers.protocol.files import sweep
from workers.protocol.keys import Keys

log = logging.getLogger("tessera.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
SWEEP_SECONDS = 600
CLEAR_PROXY_HEADERS = False
"""waitress's ``clear_untrusted_proxy_headers``: pass X-Forwarded-For on to the app, which alone decides whom
to trust (web/clients.py).

waitress 3 otherwise drops it before the app sees it; its own ``trusted_proxy`` takes one host, no CIDRs."""


def make_app(settings: Settings) -> Bottle:
    # Bottle caps the sum of in-memory multipart parts at MEMFILE_MAX (100 KB by default), which
    # refuses any real set of tiles; our own limit is max_request_bytes (waitress enforces it too).
    BaseRequest.MEMFILE_MAX = settings.limits.max_request_bytes
    app = Bottle()
    inputs = InputStore(settings.paths.uploads, settings.web.signing_key, settings.web.public_url,
                        settings.web.input_url_ttl)
    ctx = Context(settings=settings, redis=connect(settings.redis, "web"), keys=Keys(settings.redis.prefix),
                  inputs=inputs, policy=UrlPolicy(settings.fetch.allow_hosts))
    inputs.track(ctx.redis, ctx.keys)  # a job not yet final keeps its inputs past the TTL
    register(app, ctx)
    mine.register(app, ctx)  # My mosaics: /mine, /api/mine
    lifecycle.register(app, ctx)  # cancel and delete a job
    probes.register(app, ctx)  # /livez, /readyz
    openapi.register(app, settings)  # /api/openapi.json
    metrics.register(app, settings)  # /metrics for Prometheus, as the read-only monitor user
    admin.register(app, settings, ctx.redis)  # /admin, the operator's page (off without web.admin_password)
    app.add_hook("before_request", _refuse_cross_site(settings.web.public_url))
    app.add_hook("after_request", _security_headers)
    for code in (400, 404, 405, 413, 500):
        app.error(code)(_error_page)
    return app


def _refuse_cross_site(public_url: str) -> Callable[[], None]:
    """A hook that answers 403 to a cross-site POST (web/csrf.py) before any route runs, so no cookie is set."""

    def refuse() -> None:
        reason = csrf.cross_site(request.environ, public_url)
        if reason is not None:
            log.warning("refused %s %s: %s", request.method, request.path, reason)
            raise json_error(403, "cross_site", f"refused {reason}: submit from this site's own pages")

    return refuse


def _security_headers() -> None:
    for name, value in SECURITY_HEADERS.items():
        response.set_header(name, value)


def _error_page(error: HTTPResponse) -> str:
    """JSON errors under /api/, short text elsewhere; never a traceback."""
    status = error.status_code
    message = "not found" if status == 404 else str(getattr(error, "body", "") or error.status_line)
    _security_headers()
    if request.path.startswith("/api/"):
        reply = json_error(status, {404: "not_found", 405: "method_not_allowed"}.get(status, "error"), message)
        response.content_type = "application/json"
        return str(reply.body)
    response.content_type = "text/plain; charset=utf-8"
    return f"{error.status_line}\n"


def _sweeper(settings: Settings) -> None:
    """Remove results once their jobs have expired, and uploads once past the TTL and no longer needed."""
    stop = threading.Event()
    r = connect(settings.redis, "web")
    inputs = InputStore.from_settings(settings, r)
    while not stop.wait(SWEEP_SECONDS):
        sweep_once(settings, inputs, results=r)


def sweep_once(settings: Settings, inputs: InputStore, now: float | None = None,
               results: redis.Redis | None = None) -> None:
    """One pass of the sweeper; an error is logged and the next pass tries again.

    ``results``: Redis, to remove the results of jobs whose own ``keep`` ran out (web/retention.py)."""
    try:
        sweep(settings.paths.media, settings.jobs.result_ttl, now)
        if results is not None:
            retention.sweep_expired(settings.paths.media, results, Keys(settings.redis.prefix), now)
        inputs.sweep(now)
    except Exception:
        log.exception("sweep failed; trying again in %d s", SWEEP_SECONDS)


@guarded
def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; a config error gives RET_CONFIG, an unexpected exception RET_INTERNAL (logged)."""
    parser = argparse.ArgumentParser(prog="tessera-web", description="Serve the Tessera web app.")
    parser.add_argument("--config", help="local YAML config (default: $TESSERA_CONFIG or config/local.yaml)")
    args = parser.parse_args(argv)
    logs.setup("web")
    try:
        settings = config.load(config.locate(args.config))
        settings.require_secrets()
    except config.ConfigError as exc:
        print(f"tessera-web: {exc}", file=sys.stderr)
        return RET_CONFIG
    for folder in (settings.paths.media, settings.paths.uploads):
        Path(folder).mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_sweeper, args=(settings,), daemon=True, name="sweeper").start()
    log.info("serving on http://%s:%d", settings.web.host, settings.web.port)
    waitress.serve(make_app(settings), host=settings.web.host, port=settings.web.port,
                   threads=settings.web.threads, max_request_body_size=settings.limits.max_request_bytes,
                   ident="tessera", clear_untrusted_proxy_headers=CLEAR_PROXY_HEADERS)
    return RET_OK
