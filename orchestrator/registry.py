"""The node registry in Redis: each node's state, since when and why, and the policy's hysteresis timers
(when a condition started holding, the last action per direction), so a restarted orchestrator goes on
where it was instead of restarting its timers and cooldowns."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import cast

import redis

from orchestrator.policy import Memory, NodeRecord, NodeState
from workers.protocol.keys import Keys

log = logging.getLogger(__name__)
EVENTS_KEPT = 500
"""Node state changes kept in the events list."""


class Registry:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = r, keys

    def all(self) -> dict[str, NodeRecord]:
        names = sorted(cast(set[str], self.r.smembers(self.keys.nodes)))
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.node(name))
        return {name: _record(name, raw) for name, raw in zip(names, pipe.execute(), strict=True) if raw}

    def get(self, name: str) -> NodeRecord:
        raw = cast(dict[str, str], self.r.hgetall(self.keys.node(name)))
        return _record(name, raw) if raw else NodeRecord(name)

    def set(self, name: str, state: NodeState, reason: str, failures: int | None = None,
            now: float | None = None) -> NodeRecord:
        """Record a new state; ``failures`` counts failed tries in a row (kept when None)."""
        now = time.time() if now is None else now
        if failures is None:
            failures = self.get(name).failures
        record = NodeRecord(name, state, now, reason, failures)
        event = json.dumps({"at": now, "node": name, "state": state.value, "reason": reason})
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(self.keys.nodes, name)
        pipe.hset(self.keys.node(name), mapping={"state": state.value, "since": now, "reason": reason,
                                                 "failures": failures})
        pipe.lpush(self.keys.node_events, event)
        pipe.ltrim(self.keys.node_events, 0, EVENTS_KEPT - 1)
        pipe.execute()
        return record

    @property
    def timers_key(self) -> str:
        return self.keys.node_timers

    def load_timers(self) -> Memory:
        """The timers a previous orchestrator left; fresh ones when there are none or they cannot be read."""
        raw = cast(str | None, self.r.get(self.timers_key))
        if not raw:
            return Memory()
        try:
            return _decode_timers(raw)
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("registry: unreadable timers in %s (%s): starting fresh", self.timers_key, exc)
            return Memory()

    def save_timers(self, memory: Memory) -> None:
        self.r.set(self.timers_key, _encode_timers(memory))

    def events(self) -> list[dict[str, object]]:
        """State changes, oldest first."""
        return [json.loads(raw) for raw in reversed(cast(list[str], self.r.lrange(self.keys.node_events, 0, -1)))]


def _record(name: str, raw: dict[str, str]) -> NodeRecord:
    try:
        state = NodeState(raw.get("state", "removed"))
    except ValueError:
        state = NodeState.REMOVED
    return NodeRecord(name, state, float(raw.get("since") or 0), raw.get("reason", ""),
                      int(raw.get("failures") or 0))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _encode_timers(m: Memory) -> str:
    return json.dumps({"pressure_since": m.pressure_since, "idle_since": m.idle_since, "last_seen": m.last_seen,
                       "last_up": _finite(m.last_up), "last_down": _finite(m.last_down)})


def _decode_timers(raw: str) -> Memory:
    data = json.loads(raw)
    since = data.get("pressure_since")
    return Memory(pressure_since=None if since is None else float(since),
                  idle_since={str(k): float(v) for k, v in (data.get("idle_since") or {}).items()},
                  last_seen={str(k): float(v) for k, v in (data.get("last_seen") or {}).items()},
                  last_up=-math.inf if data.get("last_up") is None else float(data["last_up"]),
                  last_down=-math.inf if data.get("last_down") is None else float(data["last_down"]))
