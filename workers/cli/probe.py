"""`tessera probe worker`: whether a worker on this node is alive, from its heartbeat, for a supervisor's or an
orchestrator's health check. Exit 0 and one line when one is; else non-zero with a one-line reason."""

from __future__ import annotations

import sys
import time

from config import Settings
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.exitcodes import RET_CONNECT, RET_ERROR, RET_OK
from workers.protocol.keys import HEARTBEAT_TTL, Keys
from workers.protocol.queue import heartbeats


def fresh(beats: list[dict[str, str]], now: float) -> list[dict[str, str]]:
    """The beats written within HEARTBEAT_TTL (pure): a beat's key expires then, but a clock can be read twice."""
    return [beat for beat in beats if now - float(beat.get("at") or 0) <= HEARTBEAT_TTL]


def probe_worker(settings: Settings, node: str | None = None) -> int:
    node = node or settings.node
    r = connect(settings.redis, "worker", timeout=3.0)
    try:
        beats = fresh(heartbeats(r, Keys(settings.redis.prefix), node), time.time())
    except REDIS_DOWN as exc:
        print(f"tessera probe worker: redis unreachable: {exc}", file=sys.stderr)
        return RET_CONNECT
    finally:
        r.close()
    if not beats:
        print(f"tessera probe worker: no worker on node {node} has a heartbeat from the last {HEARTBEAT_TTL} s",
              file=sys.stderr)
        return RET_ERROR
    states = ", ".join(f"{beat.get('consumer', '?')} {beat.get('state', '?')}" for beat in beats)
    print(f"ok: {len(beats)} worker{'s' if len(beats) > 1 else ''} alive on node {node} ({states})")
    return RET_OK
