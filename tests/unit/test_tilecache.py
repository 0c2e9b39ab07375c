"""The per-node tile cache: round trip, misses, separate tile sizes, eviction, vanished packs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from workers.pipeline.tilecache import ORPHAN_SECONDS, TileCache, content_key, remove_orphans


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def tiles(rng: np.random.Generator, n: int, px: int = 5) -> np.ndarray:
    return rng.integers(0, 256, size=(n, px, px, 3), dtype=np.uint8)


def test_content_key_is_a_content_hash() -> None:
    assert content_key(b"abc") == content_key(b"abc") != content_key(b"abd")
    assert len(content_key(b"")) == 16


def test_round_trip_in_any_order(tmp_path: Path, rng: np.random.Generator) -> None:
    first, second = tiles(rng, 4), tiles(rng, 3)
    keys = [content_key(bytes([i])) for i in range(7)]
    TileCache(tmp_path, 5, 10**9).put(keys[:4], first)
    TileCache(tmp_path, 5, 10**9).put(keys[4:], second)
    wanted = [keys[5], b"x" * 16, keys[0], keys[3]]
    positions, got = TileCache(tmp_path, 5, 10**9).get(wanted)
    assert sorted(positions.tolist()) == [0, 2, 3]
    expected = {0: second[1], 2: first[0], 3: first[3]}
    for position, tile in zip(positions.tolist(), got, strict=True):
        np.testing.assert_array_equal(tile, expected[position])


def test_tile_sizes_are_kept_apart(tmp_path: Path, rng: np.random.Generator) -> None:
    key = content_key(b"photo")
    TileCache(tmp_path, 5, 10**9).put([key], tiles(rng, 1, 5))
    assert TileCache(tmp_path, 6, 10**9).get([key])[0].size == 0
    assert TileCache(tmp_path, 5, 10**9).get([key])[0].tolist() == [0]


def test_empty_or_missing_cache_finds_nothing(tmp_path: Path) -> None:
    positions, got = TileCache(tmp_path / "nowhere", 5, 10**9).get([content_key(b"a")])
    assert positions.size == 0 and got.shape == (0, 5, 5, 3)


def test_oldest_packs_are_evicted_past_the_limit(tmp_path: Path, rng: np.random.Generator) -> None:
    pack_bytes = 10 * 5 * 5 * 3 + 128
    cache = TileCache(tmp_path, 5, 2 * pack_bytes + 10)
    for i in range(4):
        cache.put([content_key(bytes([i, j])) for j in range(10)], tiles(rng, 10))
    left = TileCache(tmp_path, 5, 0)
    assert len(list(left.dir.glob("*.keys"))) == 2
    found, _ = left.get([content_key(bytes([i, 0])) for i in range(4)])
    assert len(found) == 2


def test_a_vanished_pack_is_a_miss(tmp_path: Path, rng: np.random.Generator) -> None:
    key = content_key(b"photo")
    TileCache(tmp_path, 5, 10**9).put([key], tiles(rng, 1))
    cache = TileCache(tmp_path, 5, 10**9)
    cache._index()  # listed, then removed by another process
    for path in cache.dir.glob("*.npy"):
        path.unlink()
    assert cache.get([key])[0].size == 0


def test_a_pack_whose_writer_died_midway_is_never_read(tmp_path: Path, rng: np.random.Generator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Packs now go in as a job decodes, so a killed job may leave one half written: its tiles are written
    whole (temporary name, then renamed) and its keys last, so until both are there nobody lists it."""
    key = content_key(b"photo")

    def killed(path: Path, data: bytes, mode: int = 0o644) -> None:
        raise OSError("killed before the keys were written")

    monkeypatch.setattr("workers.pipeline.tilecache.write_atomic", killed)
    TileCache(tmp_path, 5, 10**9).put([key], tiles(rng, 1))  # best effort: logged, not raised
    monkeypatch.undo()
    cache = TileCache(tmp_path, 5, 10**9)
    assert list(cache.dir.glob("*.tiles.npy")) and not list(cache.dir.glob("*.keys"))
    assert key not in cache.known() and cache.get([key])[0].size == 0


def test_what_killed_writers_left_is_removed_and_nothing_else(tmp_path: Path, rng: np.random.Generator) -> None:
    cache = TileCache(tmp_path, 5, 10**9)
    cache.put([content_key(b"kept")], tiles(rng, 1))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a writer that is no longer running
    dead_temp = cache.dir / f".abc.tiles.npy.{gone.pid}.x1.part"
    live_temp = cache.dir / f".def.tiles.npy.{os.getpid()}.x2.part"
    old_lone, new_lone = cache.dir / "old.tiles.npy", cache.dir / "new.tiles.npy"
    for path in (dead_temp, live_temp, old_lone, new_lone):
        path.write_bytes(b"x")
    long_ago = time.time() - ORPHAN_SECONDS - 60
    os.utime(old_lone, (long_ago, long_ago))
    assert remove_orphans(tmp_path) == 2
    assert not dead_temp.exists() and not old_lone.exists()
    assert live_temp.exists() and new_lone.exists()  # a live writer's, and one whose keys may be coming
    assert content_key(b"kept") in TileCache(tmp_path, 5, 10**9).known()


def test_put_checks_shape(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(ValueError):
        TileCache(tmp_path, 5, 10**9).put([content_key(b"a")], tiles(rng, 2))
