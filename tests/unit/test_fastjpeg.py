"""The fast JPEG path gives Pillow's pixels for plain JPEGs and steps aside for everything else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workers.inputs import fastjpeg
from workers.inputs.images import decode, square_tile
from workers.pipeline.tiles import decode_tile

MAX = 40_000_000


def _photo(width: int = 96, height: int = 72, seed: int = 3) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((width, height), Image.Resampling.BILINEAR)


def _jpeg(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def _pillow_tile(data: bytes, px: int) -> np.ndarray:
    return square_tile(decode(data, MAX, draft_px=px), px)


@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"subsampling": 0}])
@pytest.mark.parametrize("size", [(96, 72), (33, 65), (250, 130), (17, 17), (64, 64), (320, 320)])
@pytest.mark.parametrize("px", [8, 24, 40])
def test_plain_jpeg_matches_pillow(save: dict[str, object], size: tuple[int, int], px: int) -> None:
    data = _jpeg(_photo(*size), **save)
    assert fastjpeg.decode_small(data, px, MAX) is not None
    np.testing.assert_array_equal(decode_tile(data, px, MAX), _pillow_tile(data, px))


def test_scaled_decode_keeps_both_sides_at_least_px() -> None:
    decoded = fastjpeg.decode_small(_jpeg(_photo(512, 256)), 40, MAX)
    assert decoded is not None and decoded.shape == (64, 128, 3)  # 1/4 is the most that keeps 40 px


def test_greyscale_jpeg_is_rgb_like_pillow() -> None:
    data = _jpeg(_photo().convert("L"))
    tile = decode_tile(data, 16, MAX)
    assert isinstance(tile, np.ndarray) and tile.shape == (16, 16, 3)
    assert np.abs(tile.astype(int) - _pillow_tile(data, 16)).max() <= 1


def test_exif_jpeg_goes_to_pillow_which_rotates_it() -> None:
    image = _photo(96, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    data = _jpeg(image, exif=exif.tobytes())
    assert fastjpeg.decode_small(data, 16, MAX) is None
    assert decode(data, MAX).size == (48, 96)


def test_cmyk_goes_to_pillow() -> None:
    data = _jpeg(_photo().convert("CMYK"))
    assert fastjpeg.decode_small(data, 16, MAX) is None
    assert isinstance(decode_tile(data, 16, MAX), np.ndarray)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00", b"not a jpeg at all",
                                  b"\xff\xd8\x00\x00\x00\x00\x00\x00"])
def test_odd_bytes_go_to_pillow(data: bytes) -> None:
    assert fastjpeg.decode_small(data, 16, MAX) is None
    assert isinstance(decode_tile(data, 16, MAX), str)


def test_truncated_jpeg_is_refused_with_a_reason() -> None:
    data = _jpeg(_photo())
    assert isinstance(decode_tile(data[: len(data) // 3], 16, MAX), (str, np.ndarray))  # never raises
    assert fastjpeg.decode_small(data[:200], 16, MAX) is None


def test_over_the_pixel_limit_goes_to_pillow_which_refuses_it() -> None:
    data = _jpeg(_photo(200, 200))
    assert fastjpeg.decode_small(data, 16, 100 * 100) is None
    assert "over the limit" in str(decode_tile(data, 16, 100 * 100))
