"""A job's tile budget and the bound on the tile bytes it holds: the accounting alone, then through the preparer.

Each image is limited alone; these limit a job's tiles together, checked as each tile comes, and keep the
bodies held at once under a bound whatever the tile size (before, 1,024 fetched bodies were held together).
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from tests.helpers.images import encode, make_tiles
from workers.inputs.images import declared_pixels, probe
from workers.pipeline import tiles as tiles_module
from workers.pipeline.budget import Budget, Held, Spent
from workers.pipeline.tilecache import TileCache
from workers.pipeline.tiles import TilePreparer
from workers.pipeline.tiletypes import PreparedTiles
from workers.protocol.errors import BadImage, TooLarge

PX = 8
MIB = 1 << 20


class CountingSource:
    """Image bytes by name from memory, fetched on several threads, counting the fetches."""

    concurrency = 4

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls = 0
        self._lock = threading.Lock()

    def get(self, ref: str) -> bytes:
        with self._lock:
            self.calls += 1
        return self.files[ref]


def flat_png(width: int, height: int, shade: int) -> bytes:
    """A flat picture: few bytes, many pixels (what the pixel budget is for)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, shade // 2)).save(out, "PNG")
    return out.getvalue()


def noise_png(side: int, seed: int) -> bytes:
    """A noisy picture: about 3 bytes a pixel (what the byte bound is for)."""
    rng = np.random.default_rng(seed)
    return encode(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


def prepare(source: CountingSource, budget: Budget, processes: int = 1,
            cache: TileCache | None = None) -> PreparedTiles:
    return TilePreparer(source, PX, 10**9, cache, processes, budget=budget).run(sorted(source.files),
                                                                                 lambda done, total: None)


def test_spent_bytes_fail_the_job_as_the_tile_that_passes_comes() -> None:
    spent = Spent(Budget(tile_bytes=1000), tiles=50)
    for _ in range(10):
        spent.fetch(100)  # exactly at the budget: still fine
    with pytest.raises(TooLarge) as caught:
        spent.fetch(1)
    assert caught.value.reason == ("the job's tiles passed its byte budget: 1,001 bytes in the first 11 of 50 "
                                   "tiles fetched, over the limit of 1,000 bytes (limits.max_job_tile_bytes)")


def test_spent_pixels_fail_the_job_before_the_tile_that_passes_is_decoded() -> None:
    spent = Spent(Budget(tile_pixels=2_000_000), tiles=9)
    spent.fetch(10)
    spent.decode(1_500_000)
    with pytest.raises(TooLarge, match=r"pixel budget: 3,000,000 declared pixels to decode after 1 of 9 tiles "
                                        r"fetched, over the limit of 2,000,000 pixels \(limits.max_job_tile_pixels\)"):
        spent.decode(1_500_000)


def test_held_counts_a_fetch_at_its_most_until_its_body_comes() -> None:
    held = Held(Budget(held_bytes=32, body_bytes=10))
    for _ in range(3):
        assert held.room()
        held.start()
    assert not held.room() and held.total == 30  # a fourth fetch could bring 10 more: over the bound
    held.arrived(2)  # a small body: the rest of its fetch's room is given back
    assert held.room() and held.total == 22
    held.start()
    assert not held.room() and held.peak == 32
    held.release(2)
    held.arrived(0)  # a fetch that brought nothing usable
    assert held.room() and held.total == 20


def test_held_lets_one_fetch_go_when_nothing_is_held_even_past_the_bound() -> None:
    held = Held(Budget(held_bytes=5, body_bytes=10))
    assert held.room()
    held.start()
    assert not held.room()
    held.arrived(8)
    held.release(8)
    assert held.room() and held.total == 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_declared_pixels_are_the_probe_s_whichever_way_the_header_is_read(fmt: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 70), (10, 200, 30)).save(out, fmt)
    found = probe(out.getvalue(), 10**9)
    assert declared_pixels(out.getvalue(), 10**9) == found.width * found.height == 21_000
    with pytest.raises(TooLarge, match="the image is 300x70 pixels, over the limit of 20,999 pixels"):
        declared_pixels(out.getvalue(), 20_999)


def test_a_png_header_that_is_not_well_formed_is_left_to_pillow() -> None:
    data = bytearray(flat_png(40, 30, 1))
    data[20] ^= 0xFF  # the height, under an IHDR checksum that no longer matches
    with pytest.raises(BadImage):
        declared_pixels(bytes(data), 10**9)


def test_a_job_past_its_pixel_budget_stops_fetching_soon_after() -> None:
    source = CountingSource({f"t{n:03}.png": flat_png(1000, 1000, n) for n in range(200)})
    with pytest.raises(TooLarge, match="pixel budget: 11,000,000 declared pixels"):
        prepare(source, Budget(tile_pixels=10_000_000))
    assert source.calls < 60, source.calls  # not all 200: the fetches ahead of the 11th tile are few


def test_a_job_past_its_byte_budget_stops_fetching_soon_after() -> None:
    files = {f"t{n:03}.png": encode(tile) for n, tile in enumerate(make_tiles(200, px=24))}
    size = len(next(iter(files.values())))
    source = CountingSource(files)
    with pytest.raises(TooLarge, match="byte budget"):
        prepare(source, Budget(tile_bytes=20 * size))
    assert source.calls < 60, source.calls


def test_tiles_from_the_cache_cost_no_pixels(tmp_path: object) -> None:
    source = CountingSource({f"t{n:03}.png": flat_png(1000, 1000, n) for n in range(12)})
    cache = TileCache(str(tmp_path), PX, 10**9)
    prepare(source, Budget(), cache=cache)  # the first build decodes them and fills the cache
    again = prepare(source, Budget(tile_pixels=1), cache=TileCache(str(tmp_path), PX, 10**9))
    assert again.cache_hits == 12 and again.decoded == 0


@pytest.mark.parametrize("processes", [1, 2])
def test_the_bytes_held_at_once_stay_under_the_bound_whatever_the_tile_size(processes: int,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiles_module, "MIN_PIXELS_FOR_PROCESSES", 1)  # a few large tiles go to the pool
    files = {f"t{n:02}.png": noise_png(400, n) for n in range(24)}
    biggest = max(len(data) for data in files.values())
    budget = Budget(held_bytes=4 * biggest, body_bytes=biggest)
    prepared = prepare(CountingSource(files), budget, processes)
    assert prepared.decoded == 24 and not prepared.skipped
    assert 0 < prepared.held_peak <= 4 * biggest  # under the bound, never all 24 bodies together
    unbounded = prepare(CountingSource(files), Budget(body_bytes=biggest), processes)
    np.testing.assert_array_equal(prepared.tiles, unbounded.tiles)  # the bound changes the pace, not the tiles


def test_many_small_tiles_still_go_to_the_decoding_processes_together(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    original = TilePreparer.decode_there

    def counted(self: TilePreparer, datas: list[bytes]) -> object:
        sent.append(len(datas))
        return original(self, datas)

    monkeypatch.setattr(TilePreparer, "decode_there", counted)
    files = {f"t{n:03}.png": encode(tile) for n, tile in enumerate(make_tiles(300, px=12))}
    prepared = prepare(CountingSource(files), Budget(body_bytes=10 * MIB), processes=2)
    assert prepared.decoded == 300
    assert sum(sent) == 300 and len(sent) <= -(-300 // tiles_module.CHUNK)  # tasks of many tiles, not one by one
