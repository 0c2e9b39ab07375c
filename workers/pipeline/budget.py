"""A job's budget for its tiles, and the bound on the tile bytes it holds at once. Pure accounting, no I/O.

Each image is limited on its own (``fetch.max_bytes``, ``limits.max_image_pixels``); the budget limits a job's
tiles together, and is checked as each tile arrives, so a job past it stops fetching and fails at once
(TooLarge: permanent, never retried) instead of after all its tiles have been fetched and decoded.

What counts:

- bytes: every tile body fetched for the job, from the network or the fetch cache (it is read and held either
  way), copies of one picture included;
- pixels: the declared size (header width × height, as ``max_image_pixels`` reads it) of each tile the job
  decodes. A tile the tile cache already holds costs no decoding and does not count, nor does a second copy of
  the same bytes in the list.

The held bound is apart from the budget: however large the tiles, the bodies a job holds at once (fetches under
way, each counted at the most a fetch may bring, and bodies waiting to be decoded) stay within it.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.protocol.errors import TooLarge


@dataclass(frozen=True)
class Budget:
    """A job's limits on its tiles (settings ``limits.max_job_tile_bytes``, ``max_job_tile_pixels``,
    ``max_job_held_bytes``, and ``fetch.max_bytes`` for a fetch under way)."""

    tile_bytes: int = 1 << 62
    tile_pixels: int = 1 << 62
    held_bytes: int = 1 << 62
    body_bytes: int = 0
    """The most one fetch may bring: what a fetch under way is counted as until its body has come."""


class Spent:
    """What a job's tiles have cost so far; each charge that passes the budget raises TooLarge with the figures."""

    def __init__(self, budget: Budget, tiles: int) -> None:
        self.budget, self.tiles = budget, tiles
        self.bytes = self.pixels = self.fetched = 0

    def fetch(self, size: int) -> None:
        """A tile body of ``size`` bytes has come."""
        self.bytes += size
        self.fetched += 1
        if self.bytes > self.budget.tile_bytes:
            raise TooLarge(f"the job's tiles passed its byte budget: {self.bytes:,} bytes in the first "
                           f"{self.fetched} of {self.tiles} tiles fetched, over the limit of "
                           f"{self.budget.tile_bytes:,} bytes (limits.max_job_tile_bytes)")

    def decode(self, pixels: int) -> None:
        """A tile declaring ``pixels`` is to be decoded."""
        self.pixels += pixels
        if self.pixels > self.budget.tile_pixels:
            raise TooLarge(f"the job's tiles passed its pixel budget: {self.pixels:,} declared pixels to decode "
                           f"after {self.fetched} of {self.tiles} tiles fetched, over the limit of "
                           f"{self.budget.tile_pixels:,} pixels (limits.max_job_tile_pixels)")


class Held:
    """The tile bytes a job holds: a fetch under way counted at ``body_bytes`` from its start, then its body's
    own size until it is let go (decoded, found in the cache, a copy, or unusable).

    Only the thread that prepares the job's tiles calls it (no lock)."""

    def __init__(self, budget: Budget) -> None:
        self.bound, self.per_fetch = budget.held_bytes, budget.body_bytes
        self.total = self.peak = 0

    def room(self) -> bool:
        """Whether another fetch may start; always when nothing is held, so a bound under one body still
        lets the job go on, one tile at a time."""
        return self.total == 0 or self.total + self.per_fetch <= self.bound

    def start(self) -> None:
        """A fetch starts."""
        self._add(self.per_fetch)

    def arrived(self, size: int) -> None:
        """A started fetch ended with a body of ``size`` bytes (0: nothing usable came)."""
        self._add(size - self.per_fetch)

    def release(self, size: int) -> None:
        """A body of ``size`` bytes is no longer held."""
        self._add(-size)

    def _add(self, size: int) -> None:
        self.total += size
        self.peak = max(self.peak, self.total)
