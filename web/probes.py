"""`/livez` and `/readyz`: what an orchestrator (or a load balancer) asks a web process.

Two questions with two answers, as Kubernetes puts them: is the process alive (restart it if not), and should it
get requests now (take it out of rotation if not). A Redis outage makes a web process unready, never dead, so
nobody restarts healthy web processes while Redis is away. `/healthz` stays as it was, for those who use it.
"""

from __future__ import annotations

import redis
from bottle import Bottle, HTTPResponse

from web.context import Context
from web.replies import RETRY_AFTER, json_response

NO_STORE = {"Cache-Control": "no-store"}


def ready(ctx: Context) -> str | None:
    """None when Redis answers and the queue can be read (the inbox a submission goes to, the jobs stream), else
    the reason; one round trip."""
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.ping()
    pipe.exists(ctx.keys.inbox)
    pipe.exists(ctx.keys.jobs)
    try:
        pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return f"redis unreachable: {exc.__class__.__name__}"
    except redis.RedisError as exc:  # it answers, with an error (NOPERM: a role without the grants): no queue
        return f"the queue cannot be read: {str(exc)[:120]}"
    return None


def register(app: Bottle, ctx: Context) -> None:
    @app.get("/livez")
    def livez() -> HTTPResponse:
        return json_response(200, {"ok": True}, **NO_STORE)  # no Redis: alive is all it says

    @app.get("/readyz")
    def readyz() -> HTTPResponse:
        reason = ready(ctx)
        if reason is not None:  # not logged: a prober asks every few seconds all through an outage
            return json_response(503, {"ok": False, "reason": reason}, **NO_STORE, **{"Retry-After": RETRY_AFTER})
        return json_response(200, {"ok": True}, **NO_STORE)
