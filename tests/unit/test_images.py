"""Decoding untrusted image bytes: formats, modes, orientation, refusals. All images are made in memory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workers.inputs.images import decode, probe, square_tile, to_rgb
from workers.pipeline.tiles import decode_tile
from workers.protocol.errors import BadImage, JobRejected, TooLarge

MAX = 10_000_000


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture
def photo(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_formats_decode_to_rgb(photo: Image.Image, fmt: str) -> None:
    data = encode(photo, fmt)
    assert probe(data, MAX).format == fmt
    assert (probe(data, MAX).width, probe(data, MAX).height) == (32, 24)
    image = decode(data, MAX)
    assert image.mode == "RGB"
    assert image.size == (32, 24)


def test_png_decodes_losslessly(photo: Image.Image) -> None:
    assert np.array_equal(np.asarray(decode(encode(photo, "PNG"), MAX)), np.asarray(photo))


def test_rgba_transparent_composited_on_white() -> None:
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[..., 0] = 200  # red-ish everywhere...
    array[:2, :, 3] = 255  # ...opaque in the top half, fully transparent below
    image = decode(encode(Image.fromarray(array, "RGBA"), "PNG"), MAX)
    pixels = np.asarray(image)
    assert image.mode == "RGB"
    assert tuple(pixels[0, 0]) == (200, 0, 0)
    assert tuple(pixels[3, 3]) == (255, 255, 255)


def test_palette_png_with_transparency() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 black, index 1 blue
    image.putpixel((0, 0), 1)
    pixels = np.asarray(decode(encode(image, "PNG", transparency=0), MAX))
    assert tuple(pixels[0, 0]) == (0, 0, 255)
    assert tuple(pixels[3, 3]) == (255, 255, 255)  # transparent black → white


def test_la_png_composited() -> None:
    image = Image.new("LA", (2, 2), (10, 0))
    pixels = np.asarray(decode(encode(image, "PNG"), MAX))
    assert tuple(pixels[0, 0]) == (255, 255, 255)


def test_greyscale() -> None:
    image = decode(encode(Image.new("L", (3, 2), 77), "PNG"), MAX)
    assert image.mode == "RGB"
    assert tuple(np.asarray(image)[1, 2]) == (77, 77, 77)


def test_16bit_png_scaled() -> None:
    array = np.array([[0, 65535], [32896, 1000]], dtype=np.uint16)
    data = encode(Image.fromarray(array), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    pixels = np.asarray(decode(data, MAX))
    assert pixels.dtype == np.uint8
    assert pixels[0, 0, 0] == 0
    assert pixels[0, 1, 0] == 255
    assert pixels[1, 0, 0] == 128
    assert pixels[1, 1, 0] in (3, 4)  # 1000/65535 of full scale


def test_dark_16bit_png_stays_dark() -> None:
    data = encode(Image.fromarray(np.full((2, 2), 255, dtype=np.uint16)), "PNG")
    assert np.asarray(decode(data, MAX))[0, 0, 0] <= 1


def test_cmyk_jpeg() -> None:
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)
    image = decode(data, MAX)
    assert image.mode == "RGB"
    r, g, b = (int(v) for v in np.asarray(image)[4, 4])
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    assert (probe(data, MAX).width, probe(data, MAX).height) == (40, 20)
    upright = decode(data, MAX)
    assert upright.size == (20, 40)
    pixels = np.asarray(upright).astype(int)
    assert pixels[5, 10, 2] > 200 and pixels[5, 10, 0] < 60  # the left (blue) half is now on top
    assert pixels[35, 10, 0] > 200 and pixels[35, 10, 2] < 60


def test_draft_jpeg_not_larger_than_asked(rng: np.random.Generator) -> None:
    big = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), "RGB")
    image = decode(encode(big, "JPEG"), MAX, draft_px=32)
    assert image.mode == "RGB"
    assert 32 <= image.width < 256


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    image = decode(buffer.getvalue(), MAX)
    assert image.mode == "RGB"
    assert tuple(np.asarray(image)[3, 3]) == (255, 0, 0)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9"/>',
     b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", b"GIF89a"],
    ids=["empty", "signature-only", "svg", "pdf", "gif-header-only"],
)
def test_not_images(data: bytes) -> None:
    with pytest.raises(BadImage):
        decode(data, MAX)


def test_random_bytes(rng: np.random.Generator) -> None:
    with pytest.raises(BadImage):
        decode(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), MAX)


def test_truncated_png(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    with pytest.raises(BadImage):
        decode(data[: len(data) // 2], MAX)


def test_tiff_refused(photo: Image.Image) -> None:
    with pytest.raises(BadImage):
        probe(encode(photo, "TIFF"), MAX)


def test_over_max_pixels_is_too_large(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    probe(data, 32 * 24)
    with pytest.raises(TooLarge, match="32x24"):
        probe(data, 32 * 24 - 1)
    with pytest.raises(TooLarge):
        decode(data, 100)


def test_crafted_header_probe() -> None:
    small = png_header(30, 20)
    assert (probe(small, MAX).width, probe(small, MAX).height) == (30, 20)
    with pytest.raises(TooLarge):
        probe(png_header(4000, 3000), MAX)


def test_huge_declared_png_refused_before_decoding() -> None:
    # 50000x50000 with no pixel data: only the header can have refused it.
    with pytest.raises(JobRejected):
        probe(png_header(50000, 50000), 40_000_000)


def test_huge_declared_png_is_too_large() -> None:
    with pytest.raises(TooLarge):
        probe(png_header(50000, 50000), 40_000_000)


def test_to_rgb_keeps_rgb(photo: Image.Image) -> None:
    assert to_rgb(photo) is photo


def test_square_tile_centre_crop() -> None:
    array = np.zeros((10, 30, 3), dtype=np.uint8)
    array[:, :10] = (255, 0, 0)
    array[:, 10:20] = (0, 255, 0)
    array[:, 20:] = (0, 0, 255)
    tile = square_tile(Image.fromarray(array, "RGB"), 5)
    assert tile.shape == (5, 5, 3)
    assert tile.dtype == np.uint8
    assert np.all(tile == (0, 255, 0))


def test_square_tile_tall(rng: np.random.Generator) -> None:
    array = rng.integers(0, 256, (40, 8, 3), dtype=np.uint8)
    tile = square_tile(Image.fromarray(array, "RGB"), 8)
    assert tile.shape == (8, 8, 3)
    assert np.array_equal(tile, array[16:24])


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_decode_tile_odd_modes(mode: str) -> None:
    source = Image.new("RGB", (40, 30), (200, 100, 50))
    if mode == "I;16":
        image = Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16))
    else:
        image = source.convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    tile = decode_tile(encode(image, fmt), 8, MAX)
    assert isinstance(tile, np.ndarray) and tile.shape == (8, 8, 3) and tile.dtype == np.uint8
    if mode == "I;16":
        assert tile.min() == 255


def test_decode_tile_exif_orientation_with_draft() -> None:
    # A big JPEG, left half red, stored rotated: EXIF 6 asks to turn it 90° clockwise when shown.
    array = np.zeros((256, 512, 3), dtype=np.uint8)
    array[:, :256] = (255, 0, 0)
    image = Image.fromarray(array, "RGB").rotate(90, expand=True)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6
    tile = decode_tile(encode(image, "JPEG", exif=exif), 16, MAX)
    assert isinstance(tile, np.ndarray) and tile.shape == (16, 16, 3)
    assert tile[8, 2, 0] > 200 and tile[8, 13, 0] < 60  # red on the left again, after the crop to the centre


def test_decode_tile_gives_the_reason_for_a_bad_tile() -> None:
    assert "not an image" in str(decode_tile(b"hello", 8, MAX))
