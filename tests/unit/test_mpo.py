"""A multi-picture camera JPEG (MPO) is taken as a JPEG: its first picture, with the same size checks."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from workers.inputs.images import decode, probe
from workers.pipeline.tiles import decode_tile
from workers.protocol.errors import TooLarge

RED, GREEN = (220, 20, 20), (20, 220, 20)


def mpo(size: tuple[int, int] = (320, 240)) -> bytes:
    """Two pictures in one file, as a stereo or multi-shot camera writes them: red first, then green."""
    buffer = io.BytesIO()
    first, second = Image.new("RGB", size, RED), Image.new("RGB", size, GREEN)
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"  # what the camera file is, before we judge it
    return data


def test_probe_names_an_mpo_a_jpeg() -> None:
    got = probe(mpo(), 10_000_000)
    assert (got.format, got.width, got.height) == ("JPEG", 320, 240)


def test_decode_gives_the_first_picture() -> None:
    image = decode(mpo(), 10_000_000)
    assert image.mode == "RGB" and image.size == (320, 240)
    red, green, _ = image.getpixel((10, 10))  # type: ignore[misc]
    assert red > 180 and green < 60


def test_decode_drafts_an_mpo_as_a_jpeg() -> None:
    assert max(decode(mpo(), 10_000_000, draft_px=40).size) <= 80  # the JPEG draft scale, not 320


def test_an_mpo_over_the_pixel_limit_is_too_large() -> None:
    with pytest.raises(TooLarge):
        probe(mpo(), 320 * 240 - 1)


def test_an_mpo_tile_decodes() -> None:
    tile = decode_tile(mpo((64, 48)), 16, 10_000_000)
    assert not isinstance(tile, str), tile
    assert tile.shape == (16, 16, 3) and tile[8, 8, 0] > 180
