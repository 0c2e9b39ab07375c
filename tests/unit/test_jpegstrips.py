"""JPEG strips encoded apart and joined with restart markers decode to the pixels of a one-piece encode."""

from __future__ import annotations

import io

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from workers.pipeline import jpegstrips


def _photo(height: int, width: int, channels: int = 3) -> np.ndarray:
    """Smooth gradients plus noise: something like a photo, with detail in every block."""
    rng = np.random.default_rng(height * 7 + width)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) % 256], axis=-1)
    image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    if channels == 4:
        image = np.concatenate([image, np.zeros((height, width, 1), np.uint8)], axis=-1)
    return np.ascontiguousarray(image)


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _whole(image: np.ndarray, quality: int = 90) -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(image[..., :3]), quality=quality, colorspace="RGB",
                                  colorsubsampling=jpegstrips.SUBSAMPLING)


@pytest.mark.parametrize(("height", "width", "rows"), [(1000, 1000, 96), (333, 517, 16), (64, 40, 32),
                                                      (400, 256, 400)])
def test_joined_strips_decode_like_one_encode(height: int, width: int, rows: int) -> None:
    image = _photo(height, width)
    parts = [_whole(image[first : first + rows]) for first in range(0, height, rows)]
    joined = jpegstrips.join(parts, height, -(-width // 16) * (rows // 16))
    decoded = Image.open(io.BytesIO(joined))
    assert decoded.size == (width, height) and decoded.format == "JPEG"
    np.testing.assert_array_equal(_pixels(joined), _pixels(_whole(image)))  # 63 strips: RST0..7 wrap round


@pytest.mark.parametrize("channels", [3, 4])
def test_encode_of_an_array_rgb_or_rgbx(channels: int) -> None:
    image = _photo(700, 300, channels)
    data = jpegstrips.encode(image, 85, threads=3)
    assert data == jpegstrips.encode(image[..., :3], 85, threads=1)
    np.testing.assert_array_equal(_pixels(data), _pixels(_whole(image, 85)))


def test_encode_rendered_reuses_a_few_buffers_and_reports_progress() -> None:
    image = _photo(640, 200)
    seen: set[int] = set()
    progress: list[float] = []

    def render(first: int, end: int, out: np.ndarray) -> None:
        seen.add(out.__array_interface__["data"][0])
        out[...] = image[first:end]

    data = jpegstrips.encode_rendered(200, 640, 90, render, 32, threads=2, step=progress.append)
    np.testing.assert_array_equal(_pixels(data), _pixels(_whole(image)))
    assert len(seen) <= 3  # threads + 1 buffers for 20 strips
    assert progress[-1] == 1.0 and progress == sorted(progress) and len(progress) == 20


@pytest.mark.parametrize(("width", "height", "unit", "strips"),
                         [(4096, 4096, 32, 8), (16384, 16384, 32, 128), (4096, 4096, 20, 9), (100, 50, 7, 1),
                          (2**20, 64, 16, 1)])
def test_strip_rows_are_whole_mcu_rows_of_whole_cells_within_one_interval(width: int, height: int, unit: int,
                                                                          strips: int) -> None:
    rows = jpegstrips.strip_rows(width, height, unit)
    assert -(-height // rows) == strips  # one strip: a cell taller than the image, or a row over one interval
    if strips > 1:
        assert rows % 16 == 0 and rows % unit == 0
        assert 0 < -(-width // 16) * (rows // 16) <= jpegstrips.MAX_INTERVAL
