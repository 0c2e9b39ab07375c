"""A job's tile fetches: on threads, started while the job's held bytes allow, handed over in the list's order.

A transient failure (timeout, connection, 5xx, 429) is no reason to skip a tile: the tiles that fail close
together are fetched again together, in rounds with backoff between them (``Retries``), while the other fetches
go on. A tile that still fails stops new fetches; once those under way have ended, FetchFailed names how many
tiles failed (the job is retried).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from workers.pipeline.budget import Held, Spent
from workers.pipeline.tilecache import content_key
from workers.protocol.backoff import backoff
from workers.protocol.errors import FetchFailed, TesseraError, TransientError

RETRY_BASE = 0.5
"""Seconds before a tile's first retry (then doubled, with jitter)."""

Got = bytes | str | TransientError
"""A tile's bytes, the reason it cannot be used, or the transient failure that kept it (try it again)."""
Arrived = tuple[bytes, bytes] | str
"""A fetched tile's bytes and content key, or the reason it cannot be used."""


def fetch(get: Callable[[str], bytes], ref: str) -> Got:
    """The bytes of ``ref``, the reason they cannot be had, or the transient failure of this try."""
    try:
        return get(ref)
    except TransientError as exc:
        return exc
    except TesseraError as exc:
        return exc.reason


def _fetch_and_hash(get: Callable[[str], bytes], ref: str) -> Arrived | TransientError:
    """:func:`fetch`, and the bytes' content key, worked out on the fetching thread (hashlib lets go of the GIL)."""
    got = fetch(get, ref)
    return (got, content_key(got)) if isinstance(got, bytes) else got


@dataclass(frozen=True)
class Retries:
    """How transient tile failures are tried again inside one build (settings ``fetch.tries`` and
    ``fetch.retry_within``)."""

    tries: int = 3
    """Tries of each tile in all, the first included."""
    within: float = 20.0
    """Seconds, from the end of a tile's first fetch, after which it is not tried again."""


@dataclass
class _Round:
    """Tiles fetched again together once ``due``."""

    due: float
    tries: int
    """The try the round is for its tiles (2: the first retry)."""
    positions: list[int] = field(default_factory=list)


class Fetches:
    """The fetches of one job's ``refs`` on ``threads`` (at most ``width`` new ones at once, each started only
    while ``held`` has room), their bytes charged to ``spent`` as they come (TooLarge past the budget).

    Driven by one thread: :meth:`start`, wait on :attr:`running` (at most :meth:`timeout`), :meth:`collect`,
    then :meth:`pop` what has come."""

    def __init__(self, threads: Executor, width: int, get: Callable[[str], bytes], refs: Sequence[str],
                 held: Held, spent: Spent, retries: Retries) -> None:
        self.threads, self.width, self.get, self.refs = threads, width, get, refs
        self.held, self.spent, self.retries = held, spent, retries
        self.next = 0
        """The first position not started yet."""
        self.running: dict[Future[Arrived | TransientError], int] = {}
        self.arrived: dict[int, Arrived] = {}
        self.rounds: list[_Round] = []
        """Retry rounds not run yet, soonest first."""
        self.tries: dict[int, int] = {}
        self.until: dict[int, float] = {}
        self.failed: dict[int, TransientError] = {}
        """Tiles that failed their last try: no new fetch starts."""

    def start(self) -> None:
        """Run the retry rounds that are due, then start new fetches while a thread is free and bytes allow."""
        now = time.monotonic()
        while self.rounds and self.rounds[0].due <= now:
            for position in self.rounds.pop(0).positions:
                self._submit(position)
        while (not self.failed and self.next < len(self.refs) and len(self.running) < self.width
               and self.held.room()):
            self.held.start()
            self._submit(self.next)
            self.next += 1

    def timeout(self) -> float | None:
        """Seconds until the next retry round is due; None: none is waiting."""
        return max(0.0, self.rounds[0].due - time.monotonic()) if self.rounds else None

    def collect(self) -> None:
        """Take in the fetches that have ended; FetchFailed once a tile gave up and nothing is under way."""
        for future in [f for f in self.running if f.done()]:
            position = self.running.pop(future)
            item = future.result()
            if isinstance(item, TransientError):
                self._again(position, item)
                continue
            size = 0 if isinstance(item, str) else len(item[0])
            self.held.arrived(size)
            self.arrived[position] = item
            if size:
                self.spent.fetch(size)
        if self.failed and not self.running and not self.rounds:
            raise self._failure()

    def pop(self, position: int) -> Arrived | None:
        """The tile at ``position`` once it has come (handed over once); None until then."""
        return self.arrived.pop(position, None)

    def _submit(self, position: int) -> None:
        self.running[self.threads.submit(_fetch_and_hash, self.get, self.refs[position])] = position

    def _again(self, position: int, error: TransientError) -> None:
        """Put a tile whose try failed into a retry round, or give it up (its tries or its time are over)."""
        now = time.monotonic()
        tries = self.tries[position] = self.tries.get(position, 0) + 1
        until = self.until.setdefault(position, now + self.retries.within)
        least = now + backoff(tries - 1, base=RETRY_BASE, jitter=False) / 2  # the shortest backoff it could draw
        joined = next((r for r in self.rounds if r.tries == tries + 1 and least <= r.due < until), None)
        due = joined.due if joined is not None else now + backoff(tries - 1, base=RETRY_BASE)
        if tries >= self.retries.tries or due >= until:
            self.held.arrived(0)
            self.failed[position] = error
        elif joined is not None:  # with the tiles that failed just before it: all of them go at once
            joined.positions.append(position)
        else:
            self.rounds.append(_Round(due, tries + 1, [position]))
            self.rounds.sort(key=lambda r: r.due)

    def _failure(self) -> FetchFailed:
        first = min(self.failed)
        tries, error = self.tries[first], self.failed[first]
        failure = FetchFailed(f"{len(self.failed)} of {self.next} tiles could not be fetched in {tries} "
                              f"{'try' if tries == 1 else 'tries'} (first: {error.reason})")
        failure.__cause__ = error
        return failure
