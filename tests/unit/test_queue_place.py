"""A queued job's position and eta from the queue's counters (workers/protocol/queue.py), without Redis."""

from __future__ import annotations

import pytest

from workers.protocol.queue import eta, place


@pytest.mark.parametrize("seq, entries_read, lag, position", [
    (5, 2, 7, 3),      # two delivered: the fifth admitted is third
    (3, 2, 1, 1),      # the next to start
    (4, None, 4, 4),   # nothing delivered since the group began: Redis answers a nil entries-read
    (2, 5, 0, 1),      # delivered, and queued again after a transient failure: next
    (None, 10, 6, 7),  # not admitted yet (the keeper is behind): after every undelivered entry
    (None, None, None, 1),  # no stream yet
])
def test_place(seq: int | None, entries_read: int | None, lag: int | None, position: int) -> None:
    assert place(seq, entries_read, lag) == position


@pytest.mark.parametrize("position, workers, build, expected", [
    (1, 1, 2.0, 2.0),
    (3, 1, 2.0, 6.0),
    (3, 2, 2.0, 4.0),   # two at a time: rounds of builds, its own included
    (4, 2, 2.5, 5.0),
    (1, 8, 4.0, 4.0),
    (3, 0, 2.0, None),  # no ready worker: nobody will build it
    (3, 2, None, None),  # no build time yet
])
def test_eta(position: int, workers: int, build: float | None, expected: float | None) -> None:
    assert eta(position, workers, build) == expected
