"""Capped exponential backoff with jitter, used for every retry in Tessera."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None,
            jitter: bool = True) -> float:
    """Seconds to wait before try ``attempt`` (0-based): base·2^attempt, capped, times a jitter in [0.5, 1].

    ``jitter=False`` gives the capped delay itself, for callers that must be deterministic (the scaling policy)."""
    delay: float = min(cap, base * (2 ** min(max(attempt, 0), 32)))
    if not jitter:
        return delay
    return delay * (0.5 + 0.5 * (rng or random).random())
