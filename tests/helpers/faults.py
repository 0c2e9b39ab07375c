"""Fault-test fixtures: nodes with tight timings, slow tile servers, and a ledger of what happened."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from tests.helpers.http import TileServers
from tests.helpers.images import encode, make_target
from tests.helpers.nodes import Node, lay_out, wait_all_final
from workers.cli import client

FAST = {
    "web": {"rate_limit_per_minute": 100000, "max_active_jobs": 100000},
    "worker": {"heartbeat_interval": 0.5, "block_ms": 500},
    "queue": {"claim_idle": 3.0, "max_deliveries": 5, "recent_jobs": 1000},
    "watchdog": {"heartbeat_stale": 4.0, "probe_cap": 1.0},
}
"""Timings short enough that each fault is noticed within seconds."""


@pytest.fixture
def make_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def create(overrides: dict[str, Any] | None = None, start: bool = True) -> Node:
        from tests.helpers.nodes import _merge

        node = lay_out(tmp_path_factory.mktemp("node"), _merge(FAST, overrides or {}))
        nodes.append(node)
        if start:
            node.start()
        return node

    yield create
    for node in nodes:
        node.stop()


@pytest.fixture
def tile_server(tmp_path: Path) -> Iterator[Callable[..., list[str]]]:
    """serve(delay, count, hang=None) → tile URLs on 127.0.0.1 whose every answer takes ``delay`` seconds
    (and whose one request ``hang`` names gets no body until released: tests.helpers.http.Hang)."""
    with TileServers(tmp_path) as servers:
        yield servers.serve


TARGET = encode(make_target(120, 80))


def submit(node: Node, tile_urls: list[str], count: int = 1, grid: str = "12") -> list[str]:
    ids = []
    for number in range(count):
        unique = [f"{url}?job={number}" for url in tile_urls]  # past the node's fetch cache: each job fetches
        status, reply = client.submit(node.base_url, TARGET, [], {"grid": grid, "tile_px": "8"}, tile_urls=unique)
        assert status == 202, reply
        ids.append(reply["id"])
    return ids


@dataclass
class Ledger:
    """What happened to each job: deliveries, final state, result files and their hashes, notes."""

    states: dict[str, str]
    deliveries: dict[str, int]
    results: dict[str, list[str]]
    notes: Counter[str]
    stats: dict[str, int]
    """The node's `done`/`failed` counters (one bump per written note): a second note shows here."""
    leftovers: list[str]
    """Temporary names left in the media folder (``.<id>.….part``, ``.<name>.….old``): a store cut short."""
    max_deliveries: int

    @classmethod
    def read(cls, node: Node, job_ids: list[str], timeout: float) -> Ledger:
        final = wait_all_final(node, job_ids, timeout)
        results: dict[str, list[str]] = {job: [] for job in job_ids}
        leftovers = sorted(p.name for p in node.media.iterdir() if p.name.startswith(".") or ".part" in p.name
                           or p.name.endswith(".old"))
        for path in node.media.iterdir():
            job = path.name.split(".")[0].lstrip(".")
            if path.name in leftovers or path.name == f"{job}.dz":  # <id>.dz: the image's zoomable view
                continue
            if job in results:
                digest = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()[:12]
                results[job].append(digest + ":" + path.name)
        return cls(states={job: s["state"] for job, s in final.items()},
                   deliveries={job: int(s.get("deliveries", 0)) for job, s in final.items()},
                   results=results, notes=Counter(cast(list[str], node.redis().lrange("tessera:recent", 0, -1))),
                   stats={name: int(cast(str, node.redis().hget("tessera:stats", name)) or 0)
                          for name in ("done", "failed")},
                   leftovers=leftovers, max_deliveries=node.settings().queue.max_deliveries)

    def table(self, faults: int, seconds: float) -> str:
        lost = sum(1 for s in self.states.values() if s != "done")
        duplicated = sum(1 for r in self.results.values() if len(r) > 1) + sum(
            1 for job in self.states if self.notes[job] > 1) + max(0, self.stats["done"] - len(self.states))
        rerun = sum(1 for d in self.deliveries.values() if d > 1)
        return (f"jobs={len(self.states)} faults={faults} lost={lost} duplicated={duplicated} "
                f"redelivered={rerun} leftovers={len(self.leftovers)} seconds={seconds:.1f}")

    def assert_exactly_once_effects(self) -> None:
        """Every job done once as the user sees it: one result file, one note on the recent list, one bump of
        the `done` counter (the node ran only these jobs), 1..max_deliveries deliveries, no temporary file."""
        for job, state in self.states.items():
            assert state == "done", (job, state)
            assert len(self.results[job]) == 1, (job, self.results[job])
            assert self.notes[job] == 1, (job, self.notes[job])
            assert 1 <= self.deliveries[job] <= self.max_deliveries, (job, self.deliveries[job])
        assert self.stats == {"done": len(self.states), "failed": 0}, self.stats  # one note written per job
        assert sum(self.notes.values()) == len(self.states), self.notes
        assert not self.leftovers, self.leftovers
