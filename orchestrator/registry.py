"""The node registry in Redis: each node's state, since when and why, so a restarted orchestrator goes on."""

from __future__ import annotations

import json
import time
from typing import cast

import redis

from orchestrator.policy import NodeRecord, NodeState
from workers.keys import Keys

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
