"""`GET /admin`: the operator's page: queue, workers per node, jobs per minute, recent failures.

HTTP Basic auth as user `admin` with ``web.admin_password``; without a password the page
does not exist (404). It reads Redis as the read-only `monitor` user, never as `web`; only the
counts of failed logins per client and per account (web/ratelimit.py) are written, as `web`.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from bottle import Bottle, HTTPResponse, abort, parse_auth, request, template

from config import Settings
from web import clients, ratelimit
from web.chart import jobs_chart
from web.metrics import monitor_client, unavailable
from web.routes import VIEWS
from workers.protocol import queue as readings
from workers.protocol import stats
from workers.protocol.keys import Keys

log = logging.getLogger("tessera.web.admin")
USER = "admin"
CHALLENGE = 'Basic realm="Tessera admin", charset="UTF-8"'
NO_STORE = {"Cache-Control": "no-store"}
TEXT = {"Content-Type": "text/plain; charset=utf-8", **NO_STORE}
MAX_LOGIN_FAILURES = 10
"""Wrong credentials per client (web/clients.py) a minute; then 429, the right password too, until the minute ends."""
MAX_ACCOUNT_FAILURES = 30
"""Wrong credentials per account name a minute, from all clients together; then that account gets 429."""


def authorized(header: str, password: str) -> bool:
    """Basic credentials match user `admin` and ``password``, compared in constant time."""
    user, given = parse_auth(header) or ("", "")
    same_user = hmac.compare_digest(user.encode(), USER.encode())
    same_password = hmac.compare_digest((given or "").encode(), password.encode())
    return same_user and same_password


@dataclass(frozen=True)
class Snapshot:
    """Everything the page shows, read from Redis in one go."""

    now: float
    queue: readings.QueueNumbers
    counters: stats.Counters
    nodes: dict[str, list[dict[str, Any]]]
    minutes: list[tuple[int, int, int]]
    failures: list[dict[str, str]]


def read_snapshot(r: redis.Redis, keys: Keys, recent: int) -> Snapshot:
    now = time.time()
    nodes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for beat in readings.heartbeats(r, keys):
        age = max(now - float(beat.get("at") or now), 0.0)
        nodes[beat.get("node", "?")].append({**beat, "age": age})
    failures = [{"id": job_id, **job, "ago": _ago(now, job.get("finished_at", ""))}
                for job_id, job in readings.recent_jobs(r, keys, count=recent) if job.get("state") == "failed"]
    return Snapshot(now=now, queue=readings.read_queue(r, keys), counters=stats.read_counters(r, keys),
                    nodes=dict(sorted(nodes.items())), minutes=stats.per_minute(r, keys, now), failures=failures)


def _ago(now: float, stamp: str) -> str:
    try:
        seconds = now - float(stamp)
    except ValueError:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def render(snapshot: Snapshot) -> str:
    minutes = snapshot.minutes
    last_full = minutes[-2] if len(minutes) > 1 else (0, 0, 0)
    page: str = template("admin", template_lookup=[VIEWS], title="Operations", snap=snapshot,
                         per_minute=last_full[1] + last_full[2], this_minute=minutes[-1][1] + minutes[-1][2],
                         hour=sum(done + failed for _, done, failed in minutes), chart=jobs_chart(minutes))
    return page


def check_login(r: redis.Redis, keys: Keys, password: str, trusted: Sequence[str]) -> HTTPResponse | None:
    """None when this request may see the page; else its 401, 429 (too many failures) or 503 answer.

    Failures count per client (web/clients.py, ``trusted``: web.trusted_proxies) and per account name."""
    client, header = clients.client_id(request.environ, trusted), request.environ.get("HTTP_AUTHORIZATION", "")
    account = clients.account_id((parse_auth(header) or ("", ""))[0] if header else USER)
    try:
        wait = ratelimit.login_blocked(r, keys, client, MAX_LOGIN_FAILURES, account, MAX_ACCOUNT_FAILURES)
        if wait:
            return HTTPResponse("429 Too Many Requests: too many failed logins\n", status=429,
                                headers={"Retry-After": str(wait), **TEXT})
        if authorized(header, password):
            return None
        if header:  # a browser's first request carries no credentials: that is no failed login
            ratelimit.login_failed(r, keys, client, account)
            log.warning("admin: wrong credentials from %s", clients.client_key(
                clients.client_address(request.environ, trusted)))
    except redis.RedisError as exc:
        log.warning("admin: redis: %s", exc)
        return unavailable("redis unreachable")
    return HTTPResponse("401 Unauthorized\n", status=401, headers={"WWW-Authenticate": CHALLENGE, **TEXT})


def register(app: Bottle, settings: Settings, web_redis: redis.Redis) -> None:
    """Add /admin; ``web_redis`` (the `web` user) counts failed logins, the `monitor` user reads the rest."""
    password = settings.web.admin_password
    client = monitor_client(settings) if password else None
    keys = Keys(settings.redis.prefix)

    @app.get("/admin")
    def admin() -> HTTPResponse | str:
        if not password:
            abort(404)  # off: the same answer as any unknown page
        refused = check_login(web_redis, keys, password, settings.web.trusted_proxies)
        if refused is not None:
            return refused
        if client is None:
            return unavailable("redis.monitor_password is not set")
        try:
            snapshot = read_snapshot(client, keys, settings.queue.recent_jobs)
        except redis.RedisError as exc:
            log.warning("admin: redis: %s", exc)
            return unavailable("redis unreachable")
        return HTTPResponse(render(snapshot), status=200, headers={"Content-Type": "text/html; charset=utf-8",
                                                                   **NO_STORE})
