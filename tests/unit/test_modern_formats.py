"""AVIF and HEIC/HEIF are taken like the other formats: sniffed by their ``ftyp`` brands, size checked from the
header before decoding, decoded upright to RGB, the primary picture of a file of several."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.helpers.images import make_target
from workers.inputs import images
from workers.inputs.images import decode, probe, sniff_isobmff
from workers.pipeline.tiles import decode_tile
from workers.protocol.errors import BadImage, TooLarge

FORMATS = ["AVIF", "HEIF"]
RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)
ORIENTATION = 0x0112


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    """The picture as a camera or a social network would send it (Pillow saves AVIF, pillow-heif HEIF)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **{"quality": 90, **params})
    return buffer.getvalue()


def halves(size: tuple[int, int] = (128, 64)) -> Image.Image:
    """Left half red, right half green: which way up it is shows."""
    image = Image.new("RGB", size, RED)
    image.paste(GREEN, (size[0] // 2, 0, size[0], size[1]))
    return image


def noise(size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def declaring(data: bytes, width: int, height: int) -> bytes:
    """The same file with its ``ispe`` property (the size the header declares) rewritten; pixels unchanged."""
    at = data.find(b"ispe")
    assert at > 0
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16:]


def close(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(got) - want) < 40 for got, want in zip(pixel, colour, strict=True))


@pytest.mark.parametrize("fmt", FORMATS)
def test_probe_reads_format_and_size_from_the_header(fmt: str) -> None:
    got = probe(encoded(noise((96, 64)), fmt), 10_000_000)
    assert (got.format, got.width, got.height) == (fmt, 96, 64)


def test_sniffed_by_their_ftyp_brands() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\0\0\0\0" + b"".join(compatible)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\0" * 32

    assert sniff_isobmff(encoded(noise(), "AVIF")) == "AVIF"
    assert sniff_isobmff(encoded(noise(), "HEIF")) == "HEIF"
    for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis"):
        assert sniff_isobmff(ftyp(brand, b"mif1")) == "HEIF"
    assert sniff_isobmff(ftyp(b"avis", b"msf1")) == "AVIF"
    assert sniff_isobmff(ftyp(b"mif1", b"miaf", b"avif")) == "AVIF"
    assert sniff_isobmff(ftyp(b"mif1", b"heic")) == "HEIF"
    assert sniff_isobmff(encoded(noise(), "PNG")) is None
    for other in (b"isom", b"mp42", b"qt  ", b"jp2 "):  # video, JPEG 2000: ISO BMFF, but not pictures we take
        with pytest.raises(BadImage, match="not an image we can read"):
            probe(ftyp(other, b"isom"), 10_000_000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_gives_the_picture_in_rgb(fmt: str) -> None:
    original = Image.fromarray(make_target(96, 64).astype(np.uint8), "RGB")  # photo-like: gradients, discs
    image = decode(encoded(original, fmt), 10_000_000)
    assert image.mode == "RGB" and image.size == original.size
    error = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(original, dtype=np.int16)).mean()
    assert error < 6, error  # lossy, but the same picture


@pytest.mark.parametrize("fmt", FORMATS)
def test_transparent_pixels_go_on_the_background(fmt: str) -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((20, 20, 220, 255), (0, 0, 16, 32))
    got = decode(encoded(image, fmt), 10_000_000)
    assert got.mode == "RGB" and close(got.getpixel((4, 16)), BLUE) and close(got.getpixel((28, 16)), (255,) * 3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_photo_taken_sideways_is_decoded_upright(fmt: str) -> None:
    """As an iPhone stores a portrait photo: landscape pixels and orientation 6 (rotate 90° clockwise), which
    HEIF also carries as its ``irot`` box; the result is the upright picture, turned once, not twice."""
    stored = halves((128, 64))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    reference = ImageOps.exif_transpose(_with_exif(stored, exif))
    assert reference.size == (64, 128)
    assert close(reference.getpixel((32, 16)), RED) and close(reference.getpixel((32, 112)), GREEN)
    image = decode(encoded(stored, fmt, exif=exif.tobytes()), 10_000_000)
    assert image.size == (64, 128)
    assert close(image.getpixel((32, 16)), RED) and close(image.getpixel((32, 112)), GREEN)
    assert probe(encoded(stored, fmt, exif=exif.tobytes()), 10_000_000).format == fmt


def _with_exif(image: Image.Image, exif: Image.Exif) -> Image.Image:
    """What exif_transpose makes of the same pixels in a JPEG: the reference for upright."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_a_heif_of_several_pictures_gives_its_primary_one() -> None:
    first, second = Image.new("RGB", (48, 32), RED), Image.new("RGB", (64, 40), GREEN)
    data = encoded(first, "HEIF", save_all=True, append_images=[second], primary_index=1)
    assert probe(data, 10_000_000) == images.Probe("HEIF", 64, 40)
    image = decode(data, 10_000_000)
    assert image.size == (64, 40) and close(image.getpixel((10, 10)), GREEN)


def test_an_avif_sequence_gives_its_first_frame() -> None:
    first, second = Image.new("RGB", (48, 32), RED), Image.new("RGB", (48, 32), GREEN)
    data = encoded(first, "AVIF", save_all=True, append_images=[second])
    image = decode(data, 10_000_000)
    assert image.size == (48, 32) and close(image.getpixel((10, 10)), RED)


@pytest.mark.parametrize("fmt", FORMATS)
def test_over_the_pixel_limit_is_too_large(fmt: str) -> None:
    data = encoded(noise((96, 64)), fmt)
    assert probe(data, 96 * 64).width == 96
    with pytest.raises(TooLarge):
        probe(data, 96 * 64 - 1)
    with pytest.raises(TooLarge):
        decode(data, 96 * 64 - 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_declared_size_over_the_limit_is_refused_before_decoding(fmt: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file whose header claims 12000x12000: refused from the header; nothing is decoded (libavif would
    otherwise decode all 144 megapixels of it)."""
    bomb = declaring(encoded(noise(), fmt), 12000, 12000)
    loaded: list[str] = []
    opened = Image.open(io.BytesIO(bomb), formats=(fmt,))
    monkeypatch.setattr(type(opened), "load", lambda self: loaded.append(fmt))
    with pytest.raises(TooLarge, match="12000x12000"):
        probe(bomb, 40_000_000)
    with pytest.raises(TooLarge, match="12000x12000"):
        decode(bomb, 40_000_000)
    assert loaded == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("keep", [0.5, 0.99, 40])
def test_a_truncated_file_is_a_bad_image(fmt: str, keep: float) -> None:
    data = encoded(noise(), fmt)
    assert decode(data, 10_000_000).size == (96, 64)  # whole, it is read
    cut = data[: int(len(data) * keep) if keep < 1 else int(keep)]
    with pytest.raises(BadImage):
        decode(cut, 10_000_000)
    assert isinstance(decode_tile(cut, 16, 10_000_000), str)  # a tile: a reason, never an exception


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_corrupt_header_is_a_bad_image(fmt: str) -> None:
    data = encoded(noise(), fmt)
    assert decode(data, 10_000_000).size == (96, 64)  # whole, it is read
    meta = data.find(b"meta")
    with pytest.raises(BadImage):
        decode(data[: meta + 4] + b"\xff" * 64 + data[meta + 68:], 10_000_000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_tile_decodes(fmt: str) -> None:
    tile = decode_tile(encoded(halves((64, 48)), fmt), 16, 10_000_000)
    assert not isinstance(tile, str), tile
    assert tile.shape == (16, 16, 3) and tile[8, 2, 0] > 180 and tile[8, 13, 1] > 180


def test_configure_pillow_registers_heif_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import pillow_heif

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(pillow_heif, "register_heif_opener", lambda **options: calls.append(options))
    monkeypatch.setattr(images, "_heif_registered", False)
    images.configure_pillow()
    images.configure_pillow()
    images.register_heif()
    assert len(calls) == 1 and calls[0]["thumbnails"] is False
    assert Image.ID.count("HEIF") == 1 and "HEIF" in images.FORMATS
