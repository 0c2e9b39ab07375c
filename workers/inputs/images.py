"""Decode untrusted image bytes safely: sniffed format, size checked before decoding, RGB out."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.protocol.errors import BadImage, TooLarge

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
"""Formats we decode; anything else (SVG, PDF, TIFF, …) is refused."""

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp"}

FAMILY = {"MPO": "JPEG"}
"""Formats Pillow names apart that we treat as one of FORMATS: a multi-picture camera JPEG (MPO) is opened by
the JPEG plugin, checked and decoded as a JPEG, and only its first picture is used."""

BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on this colour."""


def configure_pillow() -> None:
    """Turn Pillow's own pixel guard off, once at process start (entry points, the tests' conftest).

    We check declared sizes ourselves (max_image_pixels) before decoding; Pillow's guard would otherwise cap
    the configurable limit and report it as a decode error.
    """
    Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Probe:
    format: str
    width: int
    height: int


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImage("the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise BadImage(f"not an image we can read (JPEG, PNG, GIF, WebP or BMP): {exc.__class__.__name__}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"corrupt image: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise BadImage("the image has no pixels")
    if width * height > max_pixels:
        raise TooLarge(f"the image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels")
    return image


def family(image: Image.Image) -> str:
    """The one of FORMATS the image is decoded as (an MPO is a JPEG)."""
    name = image.format or ""
    return FAMILY.get(name, name)


def probe(data: bytes, max_pixels: int) -> Probe:
    """Format (one of FORMATS) and size of the first picture, from the header only; nothing is decoded."""
    image = _open(data, max_pixels)
    return Probe(family(image), image.width, image.height)


def decode(data: bytes, max_pixels: int, draft_px: int | None = None) -> Image.Image:
    """An upright RGB image; JPEGs are decoded at reduced size when ``draft_px`` allows."""
    image = _open(data, max_pixels)
    try:
        if draft_px and family(image) == "JPEG":  # an MPO too: its first picture
            image.draft("RGB", (draft_px, draft_px))
        image = ImageOps.exif_transpose(image) or image
        return to_rgb(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"corrupt image: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode: alpha composited on BACKGROUND, 16-bit scaled down, CMYK converted."""
    if image.mode == "RGB":
        image.load()
        return image
    if image.mode.startswith("I"):  # 16-bit greyscale (PNG gives I;16 or I): full scale is 65535
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" or image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def square_tile(image: Image.Image, px: int) -> np.ndarray:
    """Centre crop to a square and resize to px×px; uint8 (px, px, 3)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((px, px), Image.Resampling.LANCZOS, reducing_gap=2.0), dtype=np.uint8)
