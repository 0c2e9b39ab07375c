"""The in-process memo of tile sets: found by references and stamps, never stale, bounded in bytes."""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import config
from config import Settings
from tests.helpers.images import MemorySource
from workers.cli.build import LocalSource
from workers.inputs.fetch import Fetcher
from workers.inputs.fetchcache import FetchCache
from workers.pipeline import tilememo
from workers.pipeline.mosaic import BuildResult, build_mosaic
from workers.pipeline.tiletypes import PreparedTiles
from workers.protocol.options import Options
from workers.protocol.package import JobPackage


def png(colour: tuple[int, int, int], px: int = 12) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (px, px), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i in range(6):
        (tiles / f"t{i}.png").write_bytes(png((40 * i, 200 - 30 * i, 90)))
    (tmp_path / "target.png").write_bytes(png((120, 120, 120), 48))
    return tmp_path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})
    return dataclasses.replace(base, mosaic=dataclasses.replace(base.mosaic, tile_cache="", tile_memo_mb=16))


@pytest.fixture(autouse=True)
def empty_memo() -> None:
    tilememo.MEMO.clear()


def refs(folder: Path) -> list[str]:
    return sorted(str(p) for p in (folder / "tiles").iterdir())


def test_a_source_that_cannot_stamp_is_never_memoised() -> None:
    assert tilememo.fingerprint(MemorySource({"a": b""}), ["a"], 8) is None


def test_files_are_stamped_by_size_and_mtime(folder: Path, settings: Settings) -> None:
    source = LocalSource(Fetcher(settings.fetch), refs(folder))
    first = tilememo.fingerprint(source, refs(folder), 8)
    assert first is not None and first == tilememo.fingerprint(source, refs(folder), 8)
    assert tilememo.fingerprint(source, refs(folder), 9) != first
    path = Path(refs(folder)[2])
    os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 10**9))
    assert tilememo.fingerprint(source, refs(folder), 8) != first
    assert tilememo.fingerprint(source, [*refs(folder), str(folder / "missing.png")], 8) is None


def test_urls_are_stamped_only_while_their_fetch_cache_entry_is_fresh(tmp_path: Path, settings: Settings) -> None:
    cache = FetchCache(str(tmp_path / "fetch"), max_age=60)
    fetcher = Fetcher(settings.fetch, trusted_prefixes=["http://127.0.0.1:9/inputs/"], cache=cache)
    url = "http://127.0.0.1:9/friend.jpg"
    assert fetcher.stamp(url) is None
    cache.put(url, b"bytes")
    assert fetcher.stamp(url) is not None
    assert Fetcher(settings.fetch).stamp(url) is None  # no cache: nothing vouches for the bytes
    cache.put("http://127.0.0.1:9/inputs/x", b"upload")
    assert fetcher.stamp("http://127.0.0.1:9/inputs/x") is None  # uploads are never cached
    assert FetchCache(str(tmp_path / "fetch"), max_age=-1).stamp(url) is None  # expired


def test_a_set_used_again_is_not_prepared_again_until_a_file_changes(folder: Path, settings: Settings) -> None:
    tiles = refs(folder)
    package = JobPackage.create(str(folder / "target.png"), tiles, Options(4, 4, 8, 0, blend=0))

    def build() -> BuildResult:
        return build_mosaic(package, LocalSource(Fetcher(settings.fetch), tiles), settings)

    first, second = build(), build()
    assert first.details["decoded"] == 6 and second.details["decoded"] == 0 and second.details["cache_hits"] == 6
    assert second.data == first.data  # the memoised tiles and their features give the same mosaic
    Path(tiles[0]).write_bytes(png((255, 255, 255), 16))  # new bytes, new size
    assert build().details["decoded"] == 6


def test_memo_holds_the_most_recent_sets_within_its_bytes() -> None:
    def prepared(n: int) -> PreparedTiles:
        return PreparedTiles(tiles=np.zeros((n, 4, 4, 3), np.uint8))

    memo = tilememo.TileSetMemo()
    keys = [(4, (f"r{i}",), (i,)) for i in range(3)]
    memo.put(keys[0], prepared(10), max_bytes=1000)  # 480 bytes
    memo.put(keys[1], prepared(10), max_bytes=1000)
    assert memo.get(keys[0]) is not None  # now the most recent
    memo.put(keys[2], prepared(10), max_bytes=1000)  # evicts keys[1]
    assert memo.get(keys[1]) is None and memo.get(keys[0]) is not None and memo.get(keys[2]) is not None
    memo.put((4, ("big",), (0,)), prepared(100), max_bytes=1000)  # larger than the whole memo: not kept
    assert memo.get((4, ("big",), (0,))) is None
    hit = memo.get(keys[0])
    assert hit is not None and not hit.tiles.flags.writeable and hit.decoded == 0 and hit.cache_hits == 10


# -- the records in the tile cache: `tessera build` (one build per process) and restarted workers ---------------

class CountingSource(LocalSource):
    """Files, counting every read (the decoding processes are off: processes=1 reads here)."""

    def __init__(self, settings: Settings, tiles: list[str]) -> None:
        super().__init__(Fetcher(settings.fetch), tiles)
        self.reads = 0

    def get(self, ref: str) -> bytes:
        self.reads += 1
        return super().get(ref)


@pytest.fixture
def cached(settings: Settings) -> Settings:
    """A tile cache, and no memo in memory: every build is as if in a new process."""
    return dataclasses.replace(settings, mosaic=dataclasses.replace(settings.mosaic, tile_cache="tile-cache",
                                                                    tile_memo_mb=0))


def test_a_record_lets_a_new_process_skip_reading_the_set(folder: Path, cached: Settings) -> None:
    tiles = refs(folder)
    (folder / "tiles" / "t5.png").write_bytes(png((0, 0, 0)))  # t5 and t6 have the same bytes
    (folder / "tiles" / "t6.png").write_bytes(png((0, 0, 0)))
    (folder / "tiles" / "t7.png").write_bytes(b"not an image")
    tiles = refs(folder)
    package = JobPackage.create(str(folder / "target.png"), tiles, Options(4, 4, 8, 0, blend=0))

    def build() -> tuple[BuildResult, int]:
        source = CountingSource(cached, tiles)
        return build_mosaic(package, source, cached), source.reads

    (first, first_reads), (second, second_reads) = build(), build()
    assert first_reads == len(tiles) + 1 and second_reads == 1  # the second read only its target
    assert second.data == first.data
    for name in ("tiles_used", "tiles_skipped", "duplicate_tiles"):
        assert second.details[name] == first.details[name]
    assert (first.details["tiles_used"], first.details["tiles_skipped"], first.details["duplicate_tiles"]) == (6, 1, 1)
    assert second.details["decoded"] == 0 and second.details["cache_hits"] == 6
    records = list((Path(cached.paths.root) / "tile-cache").glob(f"*/{tilememo.SETS}/*.npz"))
    assert len(records) == 1
    with np.load(records[0]) as record:  # with the tiles' features, so the second build did not compute them
        names = [name for name in record.files if " " in name]
        assert [name.split()[0] for name in names if not name.startswith(tilememo.IDENTITY)] == \
            ["mean", "rotation", "features"]
        assert {f"{tilememo.IDENTITY} groups", f"{tilememo.IDENTITY} avatars"} <= set(names)  # and its groups
    other_k = dataclasses.replace(cached, mosaic=dataclasses.replace(cached.mosaic, features_k=2))
    assert build_mosaic(package, CountingSource(other_k, tiles), other_k).details["features_k"] == 2
    with np.load(records[0]) as record:  # features for both rules now
        assert sum(name.startswith("features ") for name in record.files) == 2

    os.utime(tiles[1], ns=(time.time_ns(), time.time_ns()))  # touched: maybe new bytes, so read them all
    assert build()[1] == len(tiles) + 1


def test_a_record_whose_tiles_left_the_cache_is_not_used(folder: Path, cached: Settings) -> None:
    tiles = refs(folder)
    package = JobPackage.create(str(folder / "target.png"), tiles, Options(4, 4, 8, 0, blend=0))
    source = CountingSource(cached, tiles)
    first = build_mosaic(package, source, cached)
    for pack in (Path(cached.paths.root) / "tile-cache").glob("*/*.tiles.npy"):
        pack.unlink()  # evicted by another worker, say
    again = CountingSource(cached, tiles)
    assert build_mosaic(package, again, cached).data == first.data and again.reads == len(tiles) + 1


def test_records_are_bounded_and_a_bad_one_is_a_miss(folder: Path, cached: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tilememo, "KEEP_SETS", 2)
    tiles = refs(folder)
    for count in (3, 4, 5):
        package = JobPackage.create(str(folder / "target.png"), tiles[:count], Options(4, 4, 8, 0, blend=0))
        build_mosaic(package, CountingSource(cached, tiles), cached)
    records = sorted((Path(cached.paths.root) / "tile-cache").glob(f"*/{tilememo.SETS}/*.npz"))
    assert len(records) == 2
    for record in records:
        record.write_bytes(b"garbage")
    source = CountingSource(cached, tiles)
    build_mosaic(package, source, cached)
    assert source.reads == 6  # prepared again


def test_stamps_checked_in_a_forked_process_or_here_agree(folder: Path, settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    tiles = refs(folder)
    source = LocalSource(None, tiles)
    here = tilememo.stamps_digest(source, tiles)
    assert here is not None and tilememo.stamps_later(source, tiles)() == here  # forked: no other thread
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert tilememo.stamps_later(source, tiles)() == here  # with a thread running: in this process
    finally:
        stop.set()
        other.join()
    assert tilememo.stamps_later(source, [*tiles, str(folder / "missing.png")])() is None
    assert tilememo.stamps_later(MemorySource({"a": b""}), ["a"])() is None  # cannot stamp at all

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert tilememo.stamps_later(source, tiles)() == here


def test_a_worker_stamps_each_file_once_per_job(folder: Path, cached: Settings) -> None:
    worker = dataclasses.replace(cached, mosaic=dataclasses.replace(cached.mosaic, tile_memo_mb=16))
    tiles = refs(folder)
    package = JobPackage.create(str(folder / "target.png"), tiles, Options(4, 4, 8, 0, blend=0))

    class Stamping(CountingSource):
        stamps = 0

        def stamp(self, ref: str) -> tuple[int, ...] | int | None:
            Stamping.stamps += 1
            return super().stamp(ref)

    for _ in range(2):  # a new set (recorded at the end), then a restarted worker that finds the record
        tilememo.MEMO.clear()
        Stamping.stamps = 0
        source = Stamping(worker, tiles)
        build_mosaic(package, source, worker)
        assert Stamping.stamps == len(tiles)  # the memo key's stamps serve the record too
    assert source.reads == 1  # the second found the record: only the target was read
