"""Local tile files read, hashed and decoded in the decoding processes: the same tiles as in one process."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import config
from workers.cli.build import LocalSource
from workers.inputs.fetch import Fetcher
from workers.pipeline.tilecache import TileCache
from workers.pipeline.tiles import TilePreparer
from workers.pipeline.tiletypes import PreparedTiles

PX = 8


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((32, 24)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def refs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "tiles"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:02}.jpg").write_bytes(jpeg(i))
    shutil.copy(folder / "03.jpg", folder / "03-again.jpg")  # a duplicate
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    paths = sorted(str(p) for p in folder.iterdir())
    return [*paths, str(folder / "missing.jpg")]


def prepare(refs: list[str], processes: int, cache: TileCache | None = None) -> PreparedTiles:
    source = LocalSource(Fetcher(config.load(env={}).fetch), refs)
    return TilePreparer(source, PX, 10**6, cache, processes).run(refs, lambda done, total: None)


@pytest.fixture(autouse=True)
def few_enough_for_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.pipeline.tiles.MIN_FOR_PROCESSES", 2)


def same(a: PreparedTiles, b: PreparedTiles) -> None:
    np.testing.assert_array_equal(a.tiles, b.tiles)
    np.testing.assert_array_equal(a.sources, b.sources)
    assert (a.duplicates, sorted(a.skipped)) == (b.duplicates, sorted(b.skipped))


def test_files_prepared_in_the_decoding_processes_match_one_process(refs: list[str]) -> None:
    alone, spread = prepare(refs, 1), prepare(refs, 2)
    same(alone, spread)
    assert spread.duplicates == 1 and spread.decoded == 40 and len(spread.skipped) == 2
    assert any("cannot read" in reason for reason in spread.skipped)


def test_cached_tiles_are_taken_from_the_cache(refs: list[str], tmp_path: Path) -> None:
    first = prepare(refs, 2, TileCache(tmp_path / "cache", PX, 2**20))
    again = prepare(refs, 2, TileCache(tmp_path / "cache", PX, 2**20))
    same(first, again)
    assert (first.decoded, first.cache_hits) == (40, 0) and (again.decoded, again.cache_hits) == (0, 40)


def test_a_pack_that_vanishes_after_listing_is_decoded_after_all(refs: list[str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = prepare(refs, 2, TileCache(tmp_path / "cache", PX, 2**20))
    original = TileCache.get

    def get_after_eviction(self: TileCache, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        for pack in self.dir.glob("*"):  # another worker evicted everything meanwhile
            pack.unlink()
        return original(self, keys)

    monkeypatch.setattr(TileCache, "get", get_after_eviction)
    again = prepare(refs, 2, TileCache(tmp_path / "cache", PX, 2**20))
    same(first, again)
    assert again.cache_hits == 0 and again.decoded == 40
