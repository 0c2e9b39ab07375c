"""A job's tile set as the pipeline passes it on: where tile bytes come from, the prepared tiles with their keys
and features, and the check that enough of them could be used (made by workers/pipeline/tiles.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from workers.protocol.errors import JobRejected

FETCH_THREADS = 8
"""Threads fetching one job's tiles from the network."""


class Source(Protocol):
    """Where image bytes come from: the URL fetcher in a worker, files for `tessera build`."""

    def get(self, ref: str) -> bytes: ...


def concurrency(source: Source) -> int:
    """Threads worth using to fetch from ``source``: many for the network, one for local files (the GIL)."""
    return int(getattr(source, "concurrency", FETCH_THREADS))


@dataclass(frozen=True)
class TileFeatures:
    """A tile set's features under one ``k`` and lightness weight, in the tiles' principal frame
    (kernels.principal_frame): what matching computes from the tiles alone, so it is kept with them."""

    k: int
    lightness_weight: float
    mean: np.ndarray
    """float32 (D,): the frame's origin."""
    rotation: np.ndarray
    """float32 (D, D): the frame's axes, largest variance first."""
    values: np.ndarray
    """float32 (N, D): the tiles' weighted features in the frame, in the order of the set's tiles."""

    @property
    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, self.rotation


IDENTITY_VERSION = 2
"""The grouping rules' version (workers/pipeline/identity.py): a remembered identity of another is computed again."""


@dataclass(frozen=True)
class Identity:
    """Which tiles show one picture (workers/pipeline/identity.py): computed from the tiles alone, kept with them."""

    groups: np.ndarray
    """int32 (N,): near-duplicates share a group, numbered 0, 1, ... in the order of each group's first tile."""
    avatars: np.ndarray
    """bool (N,): tiles of a default avatar's group (a drawn placeholder, or one picture under many names)."""

    @property
    def merged(self) -> int:
        """Tiles that joined another tile's group (files less groups)."""
        return len(self.groups) - (int(self.groups.max()) + 1 if len(self.groups) else 0)


@dataclass
class PreparedTiles:
    """A job's tile set: the usable tiles, where each came from in the tile list, their keys and features."""

    tiles: np.ndarray
    """uint8 (N, px, px, 3), in the order of the job's tile list, unusable and duplicate tiles left out."""
    sources: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """int64 (N,): the index in the job's tile list of each tile in ``tiles``."""
    keys: list[bytes] = field(default_factory=list)
    """The content key (workers/pipeline/tilecache.py) of each tile in ``tiles``."""
    features: tuple[TileFeatures, ...] = ()
    """What matching computed from these tiles before, one entry per (k, lightness weight)."""
    identity: Identity | None = None
    """The tiles' identity groups and avatars, once computed."""
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0
    cache_hits: int = 0
    decoded: int = 0
    held_peak: int = 0
    """The most tile bytes held at once while fetching (workers/pipeline/budget.py Held)."""

    def features_for(self, k: int, lightness_weight: float) -> TileFeatures | None:
        """The features computed before under these rules, if any."""
        return next((f for f in self.features if (f.k, f.lightness_weight) == (k, lightness_weight)), None)


@dataclass
class Keyed:
    """Tiles by their position in the job's tile list, with the content key of each, in the order found."""

    positions: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)

    def add(self, position: int, key: bytes) -> None:
        self.positions.append(position)
        self.keys.append(key)


def require_tiles(prepared: PreparedTiles, total: int, minimum: int) -> None:
    """Refuse the job when too few tiles could be used."""
    need = max(1, minimum)
    if len(prepared.tiles) < need:
        why = f" (first problem: {prepared.skipped[0]})" if prepared.skipped else ""
        raise JobRejected(f"only {len(prepared.tiles)} of {total} tiles could be used; at least {need} needed{why}")
